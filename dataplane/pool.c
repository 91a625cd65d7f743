/* SPDX-License-Identifier: BSD-3-Clause */
/* The buffer pool and its mempool handler; see pool.h. */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <numa.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_mempool.h>

#include "pool.h"

#define ZCD_MEMPOOL_OPS "zcdemux_ledger"

uint32_t zcd_pool_pages_per_buf(uint32_t frame_limit)
{
	return (RTE_PKTMBUF_HEADROOM + frame_limit + ZCD_PAGE_SIZE - 1) / ZCD_PAGE_SIZE;
}

uint32_t zcd_pool_clean_around_frame(struct zcd_pool *pool, const struct rte_mbuf *m)
{
	struct zcd_dirty_range *d = &pool->dirty[zcd_mbuf_buf_id(m)];
	uint32_t lo = m->data_off, hi = (uint32_t)m->data_off + m->data_len;
	uint8_t *buf = m->buf_addr;
	uint32_t zeroed = 0;

	if (d->lo < lo) {
		memset(buf + d->lo, 0, RTE_MIN(d->hi, lo) - d->lo);
		zeroed += RTE_MIN(d->hi, lo) - d->lo;
	}
	if (d->hi > hi) {
		uint32_t from = RTE_MAX(d->lo, hi);

		memset(buf + from, 0, d->hi - from);
		zeroed += d->hi - from;
	}
	d->lo = lo;
	d->hi = hi;
	return zeroed;
}

/* ---- test-only fault injection (see pool.h) ---- */

static uint64_t buffer_hash(const struct zcd_pool *pool, uint32_t id)
{
	const uint8_t *p = zcd_buf_addr(&pool->region, id);
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	for (uint32_t i = 0; i < pool->region.buf_size; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

void zcd_pool_fault_victim(struct zcd_pool *pool, uint32_t id)
{
	struct zcd_dma_fault *f = &pool->fault;

	if (!f->armed || f->has_victim)
		return;
	f->victim = id;
	f->victim_generation = pool->ledger.entries[id].generation;
	f->victim_iova = rte_mbuf_iova_get(pool->mbuf_of[id]);
	f->victim_hash = buffer_hash(pool, id);
	f->has_victim = true;
}

/* Called with the node's lock held, on buffers being posted to the device. */
static void fault_poison(struct zcd_pool *pool, struct rte_mbuf *m)
{
	struct zcd_dma_fault *f = &pool->fault;

	if (!f->has_victim || f->done)
		return;
	f->poisoned = m;
	f->poisoned_iova = rte_mbuf_iova_get(m);
	rte_mbuf_iova_set(m, f->victim_iova);
	f->done = true;
}

/* The poisoned buffer is back: it gets its own IOVA again. */
static bool fault_unpoison(struct zcd_pool *pool, struct rte_mbuf *m)
{
	struct zcd_dma_fault *f = &pool->fault;

	if (m != f->poisoned)
		return false;
	rte_mbuf_iova_set(m, f->poisoned_iova);
	f->poisoned = NULL;
	return true;
}

bool zcd_pool_fault_received(struct zcd_pool *pool, struct rte_mbuf *m)
{
	struct zcd_pool_node *node = m->pool->pool_data;
	bool poisoned;

	rte_spinlock_lock(&node->lock);
	poisoned = fault_unpoison(pool, m);
	rte_spinlock_unlock(&node->lock);
	if (poisoned)
		pool->fault.frames_dropped++;
	return poisoned;
}

void zcd_pool_fault_verify(struct zcd_pool *pool)
{
	struct zcd_dma_fault *f = &pool->fault;
	const struct zcd_ledger_entry *e;

	if (!f->has_victim)
		return;
	/* Only while the same VM still holds it is "unchanged" meaningful:
	 * a returned buffer is scrubbed and reused. */
	e = &pool->ledger.entries[f->victim];
	f->victim_checked = e->state == ZCD_BUF_GRANTED && e->generation == f->victim_generation;
	if (f->victim_checked)
		f->victim_changed = buffer_hash(pool, f->victim) != f->victim_hash;
}

/* ---- mempool handler: the ledger sees every buffer enter and leave ---- */

static int ledger_pool_alloc(struct rte_mempool *mp)
{
	mp->pool_data = mp->pool_config;
	return 0;
}

static void ledger_pool_free(struct rte_mempool *mp)
{
	mp->pool_data = NULL;
}

/*
 * A buffer enters the free pool from the device (which may have written
 * anywhere in it: all of it counts as dirty), from the dataplane after a
 * drop or a copy (its frame is recorded as dirty already) or back from a VM
 * (which could only read it).  Anything else is a bug and the buffer is
 * kept out of circulation rather than risk exposing it.
 */
static int ledger_pool_enqueue(struct rte_mempool *mp, void *const *obj_table, unsigned int n)
{
	struct zcd_pool_node *node = mp->pool_data;
	struct zcd_pool *pool = node->pool;

	rte_spinlock_lock(&node->lock);
	for (unsigned int i = 0; i < n; i++) {
		struct rte_mbuf *m = obj_table[i];
		uint32_t id;
		int rc;

		/* While the mempool is being populated, mbufs are not set up yet. */
		if (pool->ledger.entries == NULL) {
			node->free_stack[node->free_top++] = m;
			continue;
		}
		id = zcd_mbuf_buf_id(m);
		fault_unpoison(pool, m);
		switch (zcd_ledger_state(&pool->ledger, id)) {
		case ZCD_BUF_POSTED:
			pool->dirty[id] = (struct zcd_dirty_range){.lo = 0, .hi = m->buf_len};
			rc = zcd_ledger_unpost(&pool->ledger, id);
			break;
		case ZCD_BUF_HELD:
			rc = zcd_ledger_release(&pool->ledger, id);
			break;
		case ZCD_BUF_SCRUBBED:
			rc = zcd_ledger_recycle(&pool->ledger, id);
			break;
		default:
			zcd_ledger_violation(&pool->ledger);
			rc = -1;
			break;
		}
		if (rc == 0)
			node->free_stack[node->free_top++] = m;
	}
	rte_spinlock_unlock(&node->lock);
	return 0;
}

static int ledger_pool_dequeue(struct rte_mempool *mp, void **obj_table, unsigned int n)
{
	struct zcd_pool_node *node = mp->pool_data;
	struct zcd_pool *pool = node->pool;

	rte_spinlock_lock(&node->lock);
	if (node->free_top < n) {
		rte_spinlock_unlock(&node->lock);
		return -ENOBUFS;
	}
	for (unsigned int i = 0; i < n; i++) {
		struct rte_mbuf *m = node->free_stack[--node->free_top];

		zcd_ledger_post(&pool->ledger, zcd_mbuf_buf_id(m));
		if (unlikely(pool->fault.armed))
			fault_poison(pool, m);
		obj_table[i] = m;
	}
	rte_spinlock_unlock(&node->lock);
	return 0;
}

static unsigned int ledger_pool_count(const struct rte_mempool *mp)
{
	const struct zcd_pool_node *node = mp->pool_data;

	return __atomic_load_n(&node->free_top, __ATOMIC_RELAXED);
}

static const struct rte_mempool_ops ledger_pool_ops = {
	.name = ZCD_MEMPOOL_OPS,
	.alloc = ledger_pool_alloc,
	.free = ledger_pool_free,
	.enqueue = ledger_pool_enqueue,
	.dequeue = ledger_pool_dequeue,
	.get_count = ledger_pool_count,
};

RTE_MEMPOOL_REGISTER_OPS(ledger_pool_ops);

/* ---- creation ---- */

struct mbuf_init_ctx {
	struct zcd_pool *pool;
	uint32_t first_buf; /* the node's first buffer id */
	rte_iova_t iova_base; /* RTE_BAD_IOVA unless IOVA is VA */
};

/*
 * Runs only if another mbuf was attached to one of ours and let go of it
 * last; the buffer then goes back to the pool like any other free.
 */
static void pinned_buf_release(void *addr, void *opaque)
{
	struct rte_mbuf *m = opaque;

	RTE_SET_USED(addr);
	rte_mbuf_ext_refcnt_set(m->shinfo, 1);
	m->ol_flags = RTE_MBUF_F_EXTERNAL;
	m->next = NULL;
	m->nb_segs = 1;
	rte_mbuf_raw_free(m);
}

/* Attach the node's mbuf number i to its buffer i for good (a pinned external buffer). */
static void mbuf_init(struct rte_mempool *mp, void *opaque, void *obj, unsigned int i)
{
	struct mbuf_init_ctx *ctx = opaque;
	struct zcd_pool *pool = ctx->pool;
	struct rte_mbuf *m = obj;
	uint32_t mbuf_size = sizeof(struct rte_mbuf) + rte_pktmbuf_priv_size(mp);
	struct rte_mbuf_ext_shared_info *shinfo = RTE_PTR_ADD(m, mbuf_size);
	uint32_t id = ctx->first_buf + i;
	size_t offset = (size_t)id * pool->region.buf_size;

	memset(m, 0, mbuf_size);
	m->priv_size = rte_pktmbuf_priv_size(mp);
	m->buf_addr = pool->region.base + offset;
	rte_mbuf_iova_set(m, ctx->iova_base == RTE_BAD_IOVA ? RTE_BAD_IOVA : ctx->iova_base + offset);
	m->buf_len = (uint16_t)pool->region.buf_size;
	m->data_off = RTE_PKTMBUF_HEADROOM;
	m->pool = mp;
	m->nb_segs = 1;
	m->port = RTE_MBUF_PORT_INVALID;
	m->ol_flags = RTE_MBUF_F_EXTERNAL;
	rte_mbuf_refcnt_set(m, 1);
	m->shinfo = shinfo;
	shinfo->free_cb = pinned_buf_release;
	shinfo->fcb_opaque = m;
	rte_mbuf_ext_refcnt_set(shinfo, 1);
	((struct zcd_mbuf_priv *)rte_mbuf_to_priv(m))->buf_id = id;
	pool->mbuf_of[id] = m;
}

/*
 * Put the region's pages on NUMA node socket (where the device writes and
 * the dataplane reads them), if there is more than one node.
 */
static void region_place(uint8_t *base, size_t bytes, int socket)
{
	if (socket >= 0 && numa_available() >= 0 && numa_max_node() > 0)
		numa_tonode_memory(base, bytes, socket);
}

/* Map every page of the region now, rather than on the hot path; reading keeps what is there. */
static void region_fault_in(const uint8_t *base, size_t bytes)
{
	for (size_t off = 0; off < bytes; off += ZCD_PAGE_SIZE)
		(void)*(const volatile uint8_t *)(base + off);
}

/* Node k's mempool over its slice of the region. */
static int node_create(struct zcd_pool *pool, unsigned k, const struct zcd_pool_part *part,
		       uint32_t first_buf, char *err, size_t errlen)
{
	struct zcd_pool_node *node = &pool->nodes[k];
	struct rte_pktmbuf_pool_private mbp_priv = {
		.mbuf_data_room_size = (uint16_t)pool->region.buf_size,
		.mbuf_priv_size = sizeof(struct zcd_mbuf_priv),
		.flags = RTE_PKTMBUF_POOL_F_PINNED_EXT_BUF,
	};
	struct mbuf_init_ctx ctx = {.pool = pool, .first_buf = first_buf};
	char name[RTE_MEMPOOL_NAMESIZE];
	int rc;

	node->pool = pool;
	node->socket = part->socket;
	node->first_buf = first_buf;
	node->nb_bufs = part->nb_bufs;
	rte_spinlock_init(&node->lock);
	node->free_stack = rte_calloc_socket("zcd_free_stack", part->nb_bufs,
					     sizeof(*node->free_stack), 0, part->socket);
	if (node->free_stack == NULL) {
		snprintf(err, errlen, "out of DPDK memory for %u buffer descriptors", part->nb_bufs);
		return -1;
	}
	region_place(zcd_buf_addr(&pool->region, first_buf),
		     (size_t)part->nb_bufs * pool->region.buf_size, part->socket);
	snprintf(name, sizeof(name), "zcd_pool%u_s%d", k, part->socket);
	node->mp = rte_mempool_create_empty(name, part->nb_bufs,
					    sizeof(struct rte_mbuf) + sizeof(struct zcd_mbuf_priv) +
						    sizeof(struct rte_mbuf_ext_shared_info),
					    0, sizeof(struct rte_pktmbuf_pool_private),
					    part->socket, 0);
	if (node->mp == NULL) {
		snprintf(err, errlen, "cannot create mempool %s: %s", name, rte_strerror(rte_errno));
		return -1;
	}
	rc = rte_mempool_set_ops_byname(node->mp, ZCD_MEMPOOL_OPS, node);
	if (rc != 0) {
		snprintf(err, errlen, "cannot select mempool handler %s: %s", ZCD_MEMPOOL_OPS,
			 strerror(-rc));
		return -1;
	}
	rte_pktmbuf_pool_init(node->mp, &mbp_priv);
	rc = rte_mempool_populate_default(node->mp);
	if (rc < 0 || (uint32_t)rc != part->nb_bufs) {
		snprintf(err, errlen, "cannot populate mempool %s with %u mbufs: %s", name,
			 part->nb_bufs, rc < 0 ? strerror(-rc) : "short");
		return -1;
	}
	/* Device DMA to external buffers needs their IOVA; the identity is only
	 * known when DPDK runs in IOVA-as-VA mode (virtual devices, VFIO). */
	ctx.iova_base = rte_eal_iova_mode() == RTE_IOVA_VA ? (rte_iova_t)(uintptr_t)pool->region.base
							    : RTE_BAD_IOVA;
	rte_mempool_obj_iter(node->mp, mbuf_init, &ctx);
	return 0;
}

/* The pool's file, and the bytes of it to map; 0, or -1 with a message in err. */
static int region_file(struct zcd_pool *pool, const struct zcd_pool_file *file, char *err,
		       size_t errlen)
{
	struct stat sb;

	pool->region.fd = file != NULL ? fcntl(file->fd, F_DUPFD_CLOEXEC, 0)
				       : memfd_create("zcdemux-pool", MFD_CLOEXEC);
	if (pool->region.fd < 0 ||
	    (file == NULL && ftruncate(pool->region.fd, (off_t)pool->region.bytes) != 0) ||
	    fstat(pool->region.fd, &sb) != 0) {
		snprintf(err, errlen, "cannot make a file of %zu bytes for %u buffers: %s",
			 pool->region.bytes, pool->region.nb_bufs, strerror(errno));
		return -1;
	}
	/* hugetlbfs maps whole huge pages. */
	pool->map_bytes = sb.st_blksize > 0 ? RTE_ALIGN_CEIL(pool->region.bytes, (size_t)sb.st_blksize)
					     : pool->region.bytes;
	if ((uint64_t)sb.st_size < pool->map_bytes) {
		snprintf(err, errlen, "the pool's file has %" PRIu64 " bytes, %zu needed",
			 (uint64_t)sb.st_size, pool->map_bytes);
		return -1;
	}
	return 0;
}

struct zcd_pool *zcd_pool_create(const struct zcd_pool_part *parts, unsigned nb_parts,
				 uint32_t pages_per_buf, struct zcd_ledger_entry *ledger_storage,
				 const struct zcd_pool_file *file, char *err, size_t errlen)
{
	struct zcd_pool *pool;
	uint64_t nb_bufs = 0;

	if (pages_per_buf == 0 || pages_per_buf * ZCD_PAGE_SIZE > UINT16_MAX) {
		snprintf(err, errlen, "buffers of %u pages cannot be described by an mbuf",
			 pages_per_buf);
		return NULL;
	}
	if (nb_parts == 0 || nb_parts > ZCD_POOL_MAX_NODES) {
		snprintf(err, errlen, "%u NUMA nodes: 1 to %u can have buffers", nb_parts,
			 ZCD_POOL_MAX_NODES);
		return NULL;
	}
	for (unsigned k = 0; k < nb_parts; k++)
		nb_bufs += parts[k].nb_bufs;
	if (nb_bufs == 0 || nb_bufs > UINT32_MAX) {
		snprintf(err, errlen, "cannot make a pool of %" PRIu64 " buffers", nb_bufs);
		return NULL;
	}
	pool = rte_zmalloc_socket("zcd_pool", sizeof(*pool), RTE_CACHE_LINE_SIZE, parts[0].socket);
	if (pool == NULL) {
		snprintf(err, errlen, "out of DPDK memory for the pool descriptor");
		return NULL;
	}
	pool->region.fd = -1;
	pool->region.nb_bufs = (uint32_t)nb_bufs;
	pool->region.pages_per_buf = pages_per_buf;
	pool->region.buf_size = pages_per_buf * ZCD_PAGE_SIZE;
	pool->region.bytes = (size_t)nb_bufs * pool->region.buf_size;
	/* A file (a memfd unless given one): pages that a hypervisor helper
	 * can pin and a simulated guest can map; none of DPDK's metadata is
	 * in them. */
	if (region_file(pool, file, err, errlen) != 0)
		goto fail;
	pool->region.base = mmap(NULL, pool->map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
				 pool->region.fd, 0);
	if (pool->region.base == MAP_FAILED) {
		pool->region.base = NULL;
		snprintf(err, errlen, "cannot map %zu bytes for %" PRIu64 " buffers: %s",
			 pool->map_bytes, nb_bufs, strerror(errno));
		goto fail;
	}
	pool->mbuf_of = rte_calloc_socket("zcd_mbuf_of", nb_bufs, sizeof(*pool->mbuf_of), 0,
					  parts[0].socket);
	pool->dirty = rte_calloc_socket("zcd_dirty", nb_bufs, sizeof(*pool->dirty), 0,
					parts[0].socket);
	if (pool->mbuf_of == NULL || pool->dirty == NULL) {
		snprintf(err, errlen, "out of DPDK memory for %" PRIu64 " buffer descriptors",
			 nb_bufs);
		goto fail;
	}
	for (uint32_t k = 0, first = 0; k < nb_parts; first += parts[k].nb_bufs, k++) {
		pool->nb_nodes = k + 1;
		if (node_create(pool, k, &parts[k], first, err, errlen) != 0)
			goto fail;
	}
	/* Every page now, where each node's policy puts it (a SIGBUS on the
	 * hot path when memory runs out otherwise). */
	if (file == NULL && fallocate(pool->region.fd, 0, 0, (off_t)pool->map_bytes) != 0) {
		snprintf(err, errlen, "cannot allocate %zu bytes for %" PRIu64 " buffers: %s",
			 pool->map_bytes, nb_bufs, strerror(errno));
		goto fail;
	}
	region_fault_in(pool->region.base, pool->region.bytes);
	/* An earlier run's frames may be anywhere in its buffers: scrub all. */
	for (uint64_t id = 0; file != NULL && file->kept && id < nb_bufs; id++)
		pool->dirty[id] = (struct zcd_dirty_range){.lo = 0, .hi = pool->region.buf_size};
	if (zcd_ledger_init(&pool->ledger, pool->region.nb_bufs, ledger_storage) != 0) {
		snprintf(err, errlen, "out of memory for the ledger of %" PRIu64 " buffers", nb_bufs);
		goto fail;
	}
	return pool;
fail:
	zcd_pool_destroy(pool);
	return NULL;
}

int zcd_pool_keep(struct zcd_pool *pool, uint32_t id, uint16_t vm, uint32_t generation)
{
	struct zcd_ledger_entry *e;

	if (id >= pool->region.nb_bufs || zcd_ledger_state(&pool->ledger, id) != ZCD_BUF_FREE)
		return -1;
	e = &pool->ledger.entries[id];
	e->generation = generation;
	e->owner = vm;
	e->last_owner = vm;
	__atomic_store_n(&e->state, (uint8_t)ZCD_BUF_GRANTED, __ATOMIC_RELEASE);
	return 0;
}

void zcd_pool_prune_free(struct zcd_pool *pool)
{
	for (unsigned k = 0; k < pool->nb_nodes; k++) {
		struct zcd_pool_node *node = &pool->nodes[k];
		uint32_t kept = 0;

		for (uint32_t i = 0; i < node->free_top; i++) {
			struct rte_mbuf *m = node->free_stack[i];

			if (zcd_ledger_state(&pool->ledger, zcd_mbuf_buf_id(m)) == ZCD_BUF_FREE)
				node->free_stack[kept++] = m;
		}
		node->free_top = kept;
	}
}

void zcd_pool_destroy(struct zcd_pool *pool)
{
	if (pool == NULL)
		return;
	for (unsigned k = 0; k < pool->nb_nodes; k++) {
		rte_mempool_free(pool->nodes[k].mp);
		rte_free(pool->nodes[k].free_stack);
	}
	zcd_ledger_fini(&pool->ledger);
	rte_free(pool->dirty);
	rte_free(pool->mbuf_of);
	if (pool->region.base != NULL)
		munmap(pool->region.base, pool->map_bytes);
	if (pool->region.fd >= 0)
		close(pool->region.fd);
	rte_free(pool);
}
