/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The buffer pool under a real (no-hugepage) EAL: buffers are page-aligned
 * pinned external buffers, the mempool handler keeps the ledger in step, and
 * whatever a frame or the device left in a buffer is zeroed before the
 * buffer reaches a VM with another frame.
 */
#include <sys/mman.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_mbuf.h>

#include "check.h"
#include "pool.h"

#define NB_BUFS 8

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static void test_layout(struct zcd_pool *pool, uint32_t pages_per_buf)
{
	const struct zcd_buf_region *r = &pool->region;

	CHECK_EQ(r->nb_bufs, NB_BUFS);
	CHECK_EQ(r->pages_per_buf, pages_per_buf);
	CHECK_EQ(r->buf_size, pages_per_buf * ZCD_PAGE_SIZE);
	CHECK_EQ((uintptr_t)r->base % ZCD_PAGE_SIZE, 0);
	CHECK_EQ(zcd_pool_free_count(pool), NB_BUFS);
	CHECK_EQ(rte_mempool_avail_count(pool->nodes[0].mp), NB_BUFS);
	for (uint32_t id = 0; id < NB_BUFS; id++) {
		struct rte_mbuf *m = pool->mbuf_of[id];

		CHECK_EQ(zcd_mbuf_buf_id(m), id);
		CHECK(m->buf_addr == zcd_buf_addr(r, id));
		CHECK_EQ(m->buf_len, r->buf_size);
		/* The mbuf header is nowhere near the pages a VM may see. */
		CHECK((uint8_t *)m + sizeof(*m) <= r->base || (uint8_t *)m >= r->base + r->bytes);
		CHECK_EQ(zcd_ledger_state(&pool->ledger, id), ZCD_BUF_FREE);
	}
}

/* Everything but the frame, in buffer m, is zero. */
static bool only_frame_left(const struct zcd_pool *pool, const struct rte_mbuf *m)
{
	const uint8_t *buf = m->buf_addr;

	return all_zero(buf, m->data_off) &&
	       all_zero(buf + m->data_off + m->data_len,
			pool->region.buf_size - m->data_off - m->data_len);
}

/* The driver takes a buffer and the device writes a frame of len bytes. */
static struct rte_mbuf *receive(struct zcd_pool *pool, uint16_t len, uint8_t fill)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool->nodes[0].mp);

	CHECK(m != NULL);
	if (m == NULL)
		return NULL;
	CHECK_EQ(zcd_ledger_state(&pool->ledger, zcd_mbuf_buf_id(m)), ZCD_BUF_POSTED);
	memset(rte_pktmbuf_append(m, len), fill, len);
	zcd_pool_note_frame(pool, m);
	CHECK_EQ(zcd_ledger_receive(&pool->ledger, zcd_mbuf_buf_id(m)), 0);
	return m;
}

/*
 * A dropped frame leaves its bytes (no work on the drop path); when the
 * buffer next goes to a VM with a shorter frame, the rest of the old frame
 * is zeroed and the new frame is untouched.
 */
static void test_dropped_frame_cleaned_at_handoff(struct zcd_pool *pool)
{
	struct rte_mbuf *m = receive(pool, 1000, 0x5a);
	uint32_t id;

	if (m == NULL)
		return;
	id = zcd_mbuf_buf_id(m);
	rte_pktmbuf_free(m);
	CHECK_EQ(zcd_ledger_state(&pool->ledger, id), ZCD_BUF_FREE);
	CHECK_EQ(zcd_pool_free_count(pool), NB_BUFS);

	m = receive(pool, 64, 0x11); /* LIFO: the same buffer */
	if (m == NULL)
		return;
	CHECK_EQ(zcd_mbuf_buf_id(m), id);
	CHECK_EQ(zcd_pool_clean_around_frame(pool, m), 1000 - 64);
	CHECK(only_frame_left(pool, m));
	CHECK_EQ(rte_pktmbuf_mtod(m, uint8_t *)[63], 0x11);
	/* A frame that covers the last one costs nothing. */
	CHECK_EQ(zcd_pool_clean_around_frame(pool, m), 0);
	rte_pktmbuf_free(m);
}

/* A posted buffer given back by the driver may hold anything: all of it is dirty. */
static void test_unposted_buffer_all_dirty(struct zcd_pool *pool)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool->nodes[0].mp);
	uint32_t id;
	uint8_t *page;

	CHECK(m != NULL);
	if (m == NULL)
		return;
	id = zcd_mbuf_buf_id(m);
	page = zcd_buf_addr(&pool->region, id);
	page[0] = 1; /* a device wrote where no frame was recorded */
	page[pool->region.buf_size - 1] = 1;
	rte_pktmbuf_free(m);
	CHECK_EQ(zcd_ledger_state(&pool->ledger, id), ZCD_BUF_FREE);

	m = receive(pool, 200, 0x22);
	if (m == NULL)
		return;
	CHECK_EQ(zcd_mbuf_buf_id(m), id);
	zcd_pool_clean_around_frame(pool, m);
	CHECK(only_frame_left(pool, m));
	rte_pktmbuf_free(m);
}

/* The full trip through a VM, then a buffer in the wrong state is refused. */
static void test_reclaimed_path_and_quarantine(struct zcd_pool *pool)
{
	struct zcd_ledger *l = &pool->ledger;
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool->nodes[0].mp);
	uint32_t id;

	CHECK(m != NULL);
	if (m == NULL)
		return;
	id = zcd_mbuf_buf_id(m);
	memset(rte_pktmbuf_append(m, 64), 0x77, 64);
	zcd_pool_note_frame(pool, m);
	CHECK_EQ(zcd_ledger_receive(l, id), 0);
	zcd_pool_clean_around_frame(pool, m);
	CHECK(only_frame_left(pool, m));
	CHECK_EQ(zcd_ledger_grant(l, id, 3), 0);
	CHECK_EQ(zcd_ledger_accept_return(l, 3, id, l->entries[id].generation), ZCD_RETURN_OK);
	CHECK_EQ(zcd_ledger_revoked(l, id), 0);
	CHECK_EQ(zcd_ledger_scrubbed(l, id), 0);
	rte_pktmbuf_free(m);
	CHECK_EQ(zcd_ledger_state(l, id), ZCD_BUF_FREE);
	CHECK_EQ(l->violations, 0);

	/* A granted buffer freed by mistake stays out of the pool, counted. */
	m = rte_pktmbuf_alloc(pool->nodes[0].mp);
	id = zcd_mbuf_buf_id(m);
	CHECK_EQ(zcd_ledger_receive(l, id), 0);
	CHECK_EQ(zcd_ledger_grant(l, id, 3), 0);
	rte_pktmbuf_free(m);
	CHECK_EQ(zcd_ledger_state(l, id), ZCD_BUF_GRANTED);
	CHECK_EQ(l->violations, 1);
	CHECK_EQ(zcd_pool_free_count(pool), NB_BUFS - 1);
}

/* The pool refuses to hand out more than it has. */
static void test_exhaustion(struct zcd_pool *pool)
{
	struct rte_mbuf *m[NB_BUFS + 1];
	unsigned free_before = zcd_pool_free_count(pool);
	uint32_t count[ZCD_BUF_STATE_COUNT];

	CHECK(rte_pktmbuf_alloc_bulk(pool->nodes[0].mp, m, free_before + 1) != 0);
	CHECK_EQ(rte_pktmbuf_alloc_bulk(pool->nodes[0].mp, m, free_before), 0);
	CHECK(rte_pktmbuf_alloc(pool->nodes[0].mp) == NULL);
	zcd_ledger_tally(&pool->ledger, count);
	CHECK_EQ(count[ZCD_BUF_POSTED], free_before);
	rte_pktmbuf_free_bulk(m, free_before);
	CHECK_EQ(zcd_pool_free_count(pool), free_before);
}

/*
 * A pool over two nodes (one machine node twice: the split is what is
 * tested): each node's mempool hands out only its slice of the ids, runs
 * dry on its own, and takes its own buffers back; one ledger covers all.
 */
static void test_two_nodes(void)
{
	const struct zcd_pool_part parts[2] = {{.socket = 0, .nb_bufs = 3}, {.socket = 0, .nb_bufs = 5}};
	struct rte_mbuf *m[8];
	struct zcd_pool *pool;
	uint32_t count[ZCD_BUF_STATE_COUNT];
	char err[256];

	pool = zcd_pool_create(parts, 2, 1, NULL, NULL, err, sizeof(err));
	CHECK(pool != NULL);
	if (pool == NULL) {
		fprintf(stderr, "zcd_pool_create: %s\n", err);
		return;
	}
	CHECK_EQ(pool->nb_nodes, 2);
	CHECK_EQ(pool->region.nb_bufs, 8);
	CHECK_EQ(pool->nodes[1].first_buf, 3);
	CHECK_EQ(zcd_pool_free_count(pool), 8);
	CHECK(zcd_pool_mempool(pool, 0) == pool->nodes[0].mp);
	CHECK(zcd_pool_mempool(pool, 7) == pool->nodes[0].mp);
	for (uint32_t id = 0; id < 8; id++)
		CHECK(pool->mbuf_of[id]->buf_addr == zcd_buf_addr(&pool->region, id));

	CHECK_EQ(rte_pktmbuf_alloc_bulk(pool->nodes[1].mp, m, 5), 0);
	for (unsigned i = 0; i < 5; i++) {
		CHECK(zcd_mbuf_buf_id(m[i]) >= 3 && zcd_mbuf_buf_id(m[i]) < 8);
		CHECK(m[i]->pool == pool->nodes[1].mp);
	}
	CHECK(rte_pktmbuf_alloc(pool->nodes[1].mp) == NULL);
	CHECK_EQ(zcd_pool_free_count(pool), 3);
	CHECK_EQ(rte_mempool_avail_count(pool->nodes[0].mp), 3);
	zcd_ledger_tally(&pool->ledger, count);
	CHECK_EQ(count[ZCD_BUF_POSTED], 5);
	CHECK_EQ(count[ZCD_BUF_FREE], 3);
	CHECK_EQ(rte_pktmbuf_alloc_bulk(pool->nodes[0].mp, m + 5, 3), 0);
	for (unsigned i = 5; i < 8; i++)
		CHECK(zcd_mbuf_buf_id(m[i]) < 3);
	rte_pktmbuf_free_bulk(m, 8);
	CHECK_EQ(rte_mempool_avail_count(pool->nodes[0].mp), 3);
	CHECK_EQ(rte_mempool_avail_count(pool->nodes[1].mp), 5);
	CHECK_EQ(pool->ledger.violations, 0);
	zcd_pool_destroy(pool);
}

/*
 * A pool over a file an earlier run left: its bytes are the buffers as
 * they were, every byte of them counts as dirty, and a buffer a guest kept
 * leaves the free pool as GRANTED at the generation it has.
 */
static void test_kept_file(void)
{
	const struct zcd_pool_part part = {.socket = 0, .nb_bufs = 4};
	struct zcd_pool_file file = {.fd = memfd_create("test-pool-kept", MFD_CLOEXEC),
				     .kept = true};
	const struct zcd_ledger_entry *e;
	struct zcd_pool *pool;
	char err[256];

	CHECK(file.fd >= 0 && ftruncate(file.fd, 4 * ZCD_PAGE_SIZE) == 0);
	CHECK(pwrite(file.fd, "left", 4, 2 * ZCD_PAGE_SIZE + 100) == 4);
	pool = zcd_pool_create(&part, 1, 1, NULL, &file, err, sizeof(err));
	close(file.fd); /* the pool has its own descriptor */
	CHECK(pool != NULL);
	if (pool == NULL) {
		fprintf(stderr, "zcd_pool_create: %s\n", err);
		return;
	}
	CHECK(pool->region.fd >= 0);
	CHECK(memcmp(zcd_buf_addr(&pool->region, 2) + 100, "left", 4) == 0);
	for (uint32_t id = 0; id < 4; id++) {
		CHECK_EQ(pool->dirty[id].lo, 0);
		CHECK_EQ(pool->dirty[id].hi, ZCD_PAGE_SIZE);
	}
	CHECK_EQ(zcd_pool_keep(pool, 2, 1, 41), 0);
	zcd_pool_prune_free(pool);
	e = &pool->ledger.entries[2];
	CHECK_EQ(e->state, ZCD_BUF_GRANTED);
	CHECK_EQ(e->owner, 1);
	CHECK_EQ(e->last_owner, 1);
	CHECK_EQ(e->generation, 41);
	CHECK_EQ(zcd_pool_free_count(pool), 3);
	/* Neither twice nor a buffer that is not there. */
	CHECK_EQ(zcd_pool_keep(pool, 2, 0, 41), -1);
	CHECK_EQ(zcd_pool_keep(pool, 4, 0, 1), -1);
	/* The device never gets it. */
	for (unsigned i = 0; i < 3; i++) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(pool->nodes[0].mp);

		CHECK(m != NULL && zcd_mbuf_buf_id(m) != 2);
	}
	CHECK(rte_pktmbuf_alloc(pool->nodes[0].mp) == NULL);
	CHECK_EQ(pool->ledger.violations, 0);
	zcd_pool_destroy(pool);
}

int main(int argc, char **argv)
{
	char *eal_args[] = {argv[0], "--no-huge", "-m", "64", "--no-pci", "-l", "0",
			    "--file-prefix", "zcd-test-pool", "--log-level", "lib.eal:error",
			    "--no-telemetry"};
	const struct zcd_pool_part one_node = {.socket = 0, .nb_bufs = NB_BUFS};
	struct zcd_pool *pool;
	char err[256];

	(void)argc;
	if (rte_eal_init((int)(sizeof(eal_args) / sizeof(eal_args[0])), eal_args) < 0) {
		fprintf(stderr, "test_pool: cannot initialise EAL\n");
		return 1;
	}
	CHECK_EQ(zcd_pool_pages_per_buf(1518), 1);
	CHECK_EQ(zcd_pool_pages_per_buf(ZCD_PAGE_SIZE - RTE_PKTMBUF_HEADROOM), 1);
	CHECK_EQ(zcd_pool_pages_per_buf(ZCD_PAGE_SIZE - RTE_PKTMBUF_HEADROOM + 1), 2);
	CHECK_EQ(zcd_pool_pages_per_buf(9018), 3);

	for (uint32_t ppb = 1; ppb <= 3; ppb += 2) {
		pool = zcd_pool_create(&one_node, 1, ppb, NULL, NULL, err, sizeof(err));
		CHECK(pool != NULL);
		if (pool == NULL) {
			fprintf(stderr, "zcd_pool_create: %s\n", err);
			break;
		}
		test_layout(pool, ppb);
		test_dropped_frame_cleaned_at_handoff(pool);
		test_unposted_buffer_all_dirty(pool);
		test_reclaimed_path_and_quarantine(pool);
		test_exhaustion(pool);
		zcd_pool_destroy(pool);
	}
	CHECK(zcd_pool_create(&one_node, 1, 17, NULL, NULL, err, sizeof(err)) == NULL);
	CHECK_STR_CONTAINS(err, "17 pages");
	CHECK(zcd_pool_create(&one_node, 0, 1, NULL, NULL, err, sizeof(err)) == NULL);
	CHECK_STR_CONTAINS(err, "0 NUMA nodes");
	test_two_nodes();
	test_kept_file();
	rte_eal_cleanup();
	return check_report("test_pool");
}
