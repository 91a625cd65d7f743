/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the shared-ring wire format and helpers (include/zcdemux/ring.h). */
#include <stdlib.h>

#include "check.h"
#include "zcdemux/ring.h"

#define RX_SIZE 8U
#define RET_SIZE 16U

/* A zeroed shared area formatted by the "backend" and attached by the "guest". */
struct ring_pair {
	void *area;
	size_t bytes;
	struct zcd_ring backend;
	struct zcd_ring guest;
};

static int pair_open(struct ring_pair *p)
{
	p->bytes = zcd_ring_area_bytes(RX_SIZE, RET_SIZE);
	p->area = aligned_alloc(ZCD_PAGE_SIZE, p->bytes);
	if (p->area == NULL)
		return -1;
	if (zcd_ring_format(&p->backend, p->area, p->bytes, RX_SIZE, RET_SIZE, 4) != 0 ||
	    zcd_ring_attach(&p->guest, p->area, p->bytes) != 0) {
		free(p->area);
		return -1;
	}
	return 0;
}

/* Move every index of both views and the header to start. */
static void pair_set_indices(struct ring_pair *p, uint32_t start)
{
	struct zcd_ring_hdr *h = p->backend.hdr;

	h->rx_prod = h->rx_cons = h->ret_prod = h->ret_cons = start;
	p->backend.rx_prod = p->backend.rx_published = p->backend.ret_cons = start;
	p->guest.rx_cons = p->guest.ret_prod = p->guest.ret_published = start;
}

static struct zcd_rx_desc rx_desc(uint32_t id)
{
	return (struct zcd_rx_desc){ .buf_id = id, .generation = id * 3 + 1, .handle = id * 2,
				     .nr_pages = 1, .offset = (uint16_t)id, .length = 60 };
}

static void test_sizes(void)
{
	CHECK_EQ(zcd_ring_area_bytes(64, 64), 2 * ZCD_PAGE_SIZE); /* 4096 + 2048 + 1024 */
	CHECK_EQ(zcd_ring_area_bytes(64, 64) % ZCD_PAGE_SIZE, 0);
	CHECK_EQ(zcd_ring_area_bytes(1, 1), 2 * ZCD_PAGE_SIZE);
}

static void test_format_attach_round_trip(void)
{
	struct ring_pair p;

	if (pair_open(&p) != 0) {
		CHECK(!"pair_open");
		return;
	}
	CHECK_EQ(p.backend.hdr->magic, ZCD_RING_MAGIC);
	CHECK_EQ(p.backend.hdr->rx_size, RX_SIZE);
	CHECK_EQ(p.backend.hdr->ret_size, RET_SIZE);
	CHECK_EQ(p.backend.hdr->area_bytes, p.bytes);
	CHECK_EQ(p.backend.hdr->credits, 4);
	CHECK(p.guest.hdr == p.backend.hdr);
	CHECK(p.guest.rx == p.backend.rx);
	CHECK(p.guest.ret == p.backend.ret);
	CHECK_EQ(p.guest.rx_mask, RX_SIZE - 1);
	CHECK_EQ(p.guest.ret_mask, RET_SIZE - 1);
	CHECK((uint8_t *)p.backend.rx >= (uint8_t *)p.area + sizeof(struct zcd_ring_hdr));
	CHECK((uint8_t *)(p.backend.ret + RET_SIZE) <= (uint8_t *)p.area + p.bytes);
	CHECK((uint8_t *)(p.backend.rx + RX_SIZE) <= (uint8_t *)p.backend.ret);
	free(p.area);
}

static void test_format_rejects(void)
{
	size_t bytes = zcd_ring_area_bytes(RX_SIZE, RET_SIZE);
	void *area = aligned_alloc(ZCD_PAGE_SIZE, bytes);
	struct zcd_ring r;

	if (area == NULL) {
		CHECK(!"aligned_alloc");
		return;
	}
	CHECK_EQ(zcd_ring_format(&r, area, bytes, 6, RET_SIZE, 1), -1);
	CHECK_EQ(zcd_ring_format(&r, area, bytes, RX_SIZE, 0, 1), -1);
	CHECK_EQ(zcd_ring_format(&r, area, bytes - 1, RX_SIZE, RET_SIZE, 1), -1);
	CHECK_EQ(zcd_ring_format(&r, area, bytes, RX_SIZE * 1024, RET_SIZE, 1), -1);
	free(area);
}

/* Format a good ring, let corrupt() damage its header, expect attach to refuse
 * (area_bytes 0 = the whole area). */
static void check_attach_refuses(void (*corrupt)(struct zcd_ring_hdr *), size_t area_bytes,
				 const char *what)
{
	size_t bytes = zcd_ring_area_bytes(RX_SIZE, RET_SIZE);
	void *area = aligned_alloc(ZCD_PAGE_SIZE, bytes);
	struct zcd_ring backend, guest;
	int rc;

	if (area == NULL || zcd_ring_format(&backend, area, bytes, RX_SIZE, RET_SIZE, 1) != 0) {
		CHECK(!"setup");
		free(area);
		return;
	}
	if (corrupt != NULL)
		corrupt(area);
	rc = zcd_ring_attach(&guest, area, area_bytes ? area_bytes : bytes);
	if (rc != -1)
		fprintf(stderr, "attach accepted: %s\n", what);
	CHECK_EQ(rc, -1);
	free(area);
}

static void bad_magic(struct zcd_ring_hdr *h) { h->magic ^= 1; }
static void bad_version(struct zcd_ring_hdr *h) { h->version = ZCD_RING_VERSION + 1; }
static void rx_size_not_pow2(struct zcd_ring_hdr *h) { h->rx_size = 6; }
static void ret_size_zero(struct zcd_ring_hdr *h) { h->ret_size = 0; }
static void regions_overlap(struct zcd_ring_hdr *h) { h->ret_offset = h->rx_offset + 32; }
static void rx_inside_header(struct zcd_ring_hdr *h) { h->rx_offset = 64; }
static void rx_misaligned(struct zcd_ring_hdr *h) { h->rx_offset += 16; }
static void rx_past_area(struct zcd_ring_hdr *h) { h->rx_size = 1U << 30; }
static void ret_past_area(struct zcd_ring_hdr *h) { h->ret_offset = 0xfffffff0U; }

static void test_attach_rejects(void)
{
	check_attach_refuses(NULL, sizeof(struct zcd_ring_hdr) - 1, "area smaller than a header");
	check_attach_refuses(NULL, ZCD_PAGE_SIZE, "rings outside a one-page area");
	check_attach_refuses(bad_magic, 0, "bad magic");
	check_attach_refuses(bad_version, 0, "bad version");
	check_attach_refuses(rx_size_not_pow2, 0, "rx size 6");
	check_attach_refuses(ret_size_zero, 0, "ret size 0");
	check_attach_refuses(regions_overlap, 0, "overlapping rx and ret");
	check_attach_refuses(rx_inside_header, 0, "rx inside the header");
	check_attach_refuses(rx_misaligned, 0, "misaligned rx");
	check_attach_refuses(rx_past_area, 0, "rx past the area");
	check_attach_refuses(ret_past_area, 0, "ret past the area");
}

/* Push 3*RX_SIZE descriptors through in uneven batches, starting near UINT32_MAX. */
static void test_rx_wraparound(void)
{
	const uint32_t start = UINT32_MAX - 5;
	const uint32_t total = 3 * RX_SIZE;
	struct ring_pair p;
	uint32_t sent = 0, seen = 0;
	bool broken = false;

	if (pair_open(&p) != 0) {
		CHECK(!"pair_open");
		return;
	}
	pair_set_indices(&p, start);
	CHECK_EQ(zcd_rx_space(&p.backend, &broken), RX_SIZE);
	while (seen < total) {
		uint32_t space = zcd_rx_space(&p.backend, &broken);
		uint32_t ready;

		for (uint32_t i = 0; i < space && i < 5 && sent < total; i++) {
			struct zcd_rx_desc d = rx_desc(sent++);

			zcd_rx_put(&p.backend, &d);
		}
		CHECK_EQ(zcd_rx_ready(&p.guest, &broken), p.backend.rx_published - p.guest.rx_cons);
		zcd_rx_publish(&p.backend);
		ready = zcd_rx_ready(&p.guest, &broken);
		CHECK(ready <= RX_SIZE);
		for (uint32_t i = 0; i < ready && i < 3; i++) {
			struct zcd_rx_desc d;

			zcd_rx_take(&p.guest, &d);
			CHECK_EQ(d.buf_id, seen);
			CHECK_EQ(d.generation, seen * 3 + 1);
			CHECK_EQ(d.offset, (uint16_t)seen);
			seen++;
		}
		zcd_rx_consumed(&p.guest);
		CHECK_EQ(zcd_rx_unconsumed(&p.backend), p.backend.rx_published - p.guest.rx_cons);
	}
	CHECK(!broken);
	CHECK_EQ(p.backend.rx_prod, start + total);
	CHECK(p.backend.rx_prod < start); /* the index did wrap */
	CHECK_EQ(zcd_rx_unconsumed(&p.backend), 0);
	CHECK_EQ(zcd_rx_space(&p.backend, &broken), RX_SIZE);
	free(p.area);
}

static void test_ret_wraparound(void)
{
	const uint32_t start = UINT32_MAX - 2;
	struct ring_pair p;
	uint32_t next_id = 0, seen = 0;
	bool broken = false;

	if (pair_open(&p) != 0) {
		CHECK(!"pair_open");
		return;
	}
	pair_set_indices(&p, start);
	CHECK_EQ(zcd_ret_space(&p.guest), RET_SIZE);
	/* Fill the ring completely, then drain and refill across the wrap. */
	for (int round = 0; round < 3; round++) {
		uint32_t space = zcd_ret_space(&p.guest);
		uint32_t ready;

		CHECK_EQ(space, RET_SIZE);
		for (uint32_t i = 0; i < space; i++) {
			struct zcd_ret_desc d = { .buf_id = next_id, .generation = ~next_id };

			zcd_ret_put(&p.guest, &d);
			next_id++;
		}
		CHECK_EQ(zcd_ret_space(&p.guest), 0);
		zcd_ret_publish(&p.guest);
		ready = zcd_ret_ready(&p.backend, &broken);
		CHECK_EQ(ready, RET_SIZE);
		for (uint32_t i = 0; i < ready; i++) {
			struct zcd_ret_desc d;

			zcd_ret_take(&p.backend, &d);
			CHECK_EQ(d.buf_id, seen);
			CHECK_EQ(d.generation, ~seen);
			seen++;
		}
		zcd_ret_consumed(&p.backend);
	}
	CHECK(!broken);
	CHECK_EQ(seen, 3 * RET_SIZE);
	CHECK(p.backend.ret_cons < start);
	free(p.area);
}

static void test_need_event(void)
{
	struct ring_pair p;
	struct zcd_rx_desc d = rx_desc(1);
	bool broken = false;

	/* Xen's rule on raw values, including across the wrap. */
	CHECK(zcd_ring_need_event(1, 1, 0));
	CHECK(zcd_ring_need_event(3, 5, 2));
	CHECK(!zcd_ring_need_event(6, 5, 2));
	CHECK(!zcd_ring_need_event(2, 5, 2)); /* event at old_prod: already past */
	CHECK(zcd_ring_need_event(0, 2, UINT32_MAX - 1));
	CHECK(!zcd_ring_need_event(UINT32_MAX - 3, 2, UINT32_MAX - 1));

	if (pair_open(&p) != 0) {
		CHECK(!"pair_open");
		return;
	}
	/* A fresh ring waits for the first frame. */
	zcd_rx_put(&p.backend, &d);
	CHECK(zcd_rx_publish(&p.backend));
	CHECK(!zcd_rx_publish(&p.backend)); /* nothing new: no event */
	/* The guest has not re-armed: more frames bring no event. */
	zcd_rx_put(&p.backend, &d);
	CHECK(!zcd_rx_publish(&p.backend));
	zcd_rx_put(&p.backend, &d);
	zcd_rx_put(&p.backend, &d);
	CHECK(!zcd_rx_publish(&p.backend));

	/* Arming with frames pending says "do not sleep". */
	CHECK(zcd_rx_arm_event(&p.guest));
	for (uint32_t n = zcd_rx_ready(&p.guest, &broken); n > 0; n--)
		zcd_rx_take(&p.guest, &d);
	zcd_rx_consumed(&p.guest);
	CHECK(!zcd_rx_arm_event(&p.guest));

	/* Armed and empty: exactly one event for the next batch. */
	zcd_rx_put(&p.backend, &d);
	zcd_rx_put(&p.backend, &d);
	CHECK(zcd_rx_publish(&p.backend));
	zcd_rx_put(&p.backend, &d);
	CHECK(!zcd_rx_publish(&p.backend));

	/* The return ring: ret_event 0 means a polling backend, no events. */
	{
		struct zcd_ret_desc r = { .buf_id = 1 };

		zcd_ret_put(&p.guest, &r);
		CHECK(!zcd_ret_publish(&p.guest));
		p.backend.hdr->ret_event = p.guest.ret_prod + 1;
		zcd_ret_put(&p.guest, &r);
		CHECK(zcd_ret_publish(&p.guest));
	}
	CHECK(!broken);
	free(p.area);
}

static void test_hostile_indices(void)
{
	struct ring_pair p;
	struct zcd_ring_hdr *h;
	struct zcd_rx_desc d = rx_desc(7);
	bool broken;

	if (pair_open(&p) != 0) {
		CHECK(!"pair_open");
		return;
	}
	h = p.backend.hdr;
	zcd_rx_put(&p.backend, &d);
	zcd_rx_publish(&p.backend);

	/* Guest claims to have consumed more than was produced. */
	broken = false;
	h->rx_cons = p.backend.rx_prod + 1;
	CHECK_EQ(zcd_rx_space(&p.backend, &broken), 0);
	CHECK(broken);
	CHECK_EQ(zcd_rx_unconsumed(&p.backend), 0);
	/* ... or to lag by more than the ring holds. */
	broken = false;
	h->rx_cons = p.backend.rx_prod - RX_SIZE - 1;
	CHECK_EQ(zcd_rx_space(&p.backend, &broken), 0);
	CHECK(broken);
	/* Exactly full is not broken. */
	broken = false;
	h->rx_cons = p.backend.rx_prod - RX_SIZE;
	CHECK_EQ(zcd_rx_space(&p.backend, &broken), 0);
	CHECK(!broken);
	h->rx_cons = 0;

	/* Backend claims more descriptors than the ring holds. */
	broken = false;
	h->rx_prod = p.guest.rx_cons + RX_SIZE + 1;
	CHECK_EQ(zcd_rx_ready(&p.guest, &broken), 0);
	CHECK(broken);
	broken = false;
	h->rx_prod = p.guest.rx_cons - 1;
	CHECK_EQ(zcd_rx_ready(&p.guest, &broken), 0);
	CHECK(broken);
	CHECK(zcd_rx_arm_event(&p.guest)); /* broken counts as "look again" */

	/* Guest claims more returns than the ring holds. */
	broken = false;
	h->ret_prod = p.backend.ret_cons + RET_SIZE + 1;
	CHECK_EQ(zcd_ret_ready(&p.backend, &broken), 0);
	CHECK(broken);
	broken = false;
	h->ret_prod = 0xdeadbeefU;
	CHECK_EQ(zcd_ret_ready(&p.backend, &broken), 0);
	CHECK(broken);
	/* Backend moves its return consumer past what the guest produced. */
	h->ret_cons = p.guest.ret_prod + 5;
	CHECK_EQ(zcd_ret_space(&p.guest), 0);

	/* Garbage in the header's sizes does not change either side's view. */
	h->rx_size = 1U << 31;
	h->ret_size = 3;
	h->rx_prod = 1;
	h->rx_cons = 0;
	p.guest.rx_cons = 0;
	broken = false;
	CHECK_EQ(zcd_rx_ready(&p.guest, &broken), 1);
	zcd_rx_take(&p.guest, &d); /* within the area: ASan would tell otherwise */
	CHECK_EQ(d.buf_id, 7);
	CHECK(!broken);
	free(p.area);
}

/* Credit announcements: each read once, whole; one half written is not news yet. */
static void test_credit_news(void)
{
	struct ring_pair p;
	uint32_t limit = 0, give_back = 0;

	if (pair_open(&p) != 0) {
		CHECK(!"pair_open");
		return;
	}
	CHECK(!zcd_ring_credit_news(&p.guest, &limit, &give_back));
	zcd_ring_announce_credits(&p.backend, 2, 1);
	CHECK(zcd_ring_credit_news(&p.guest, &limit, &give_back));
	CHECK_EQ(limit, 2);
	CHECK_EQ(give_back, 1);
	CHECK(!zcd_ring_credit_news(&p.guest, &limit, &give_back));

	/* The backend in the middle of writing: odd sequence. */
	p.backend.hdr->credit_seq++;
	p.backend.hdr->credit_limit = 3;
	CHECK(!zcd_ring_credit_news(&p.guest, &limit, &give_back));
	p.backend.hdr->give_back = 0;
	p.backend.hdr->credit_seq++;
	p.backend.credit_seq += 2;
	CHECK(zcd_ring_credit_news(&p.guest, &limit, &give_back));
	CHECK_EQ(limit, 3);
	CHECK_EQ(give_back, 0);

	/* Two announcements between reads: the guest sees the last one. */
	zcd_ring_announce_credits(&p.backend, 4, 0);
	zcd_ring_announce_credits(&p.backend, 1, 3);
	CHECK(zcd_ring_credit_news(&p.guest, &limit, &give_back));
	CHECK_EQ(limit, 1);
	CHECK_EQ(give_back, 3);

	/* A guest attaching later starts from the current sequence. */
	CHECK_EQ(zcd_ring_attach(&p.guest, p.area, p.bytes), 0);
	CHECK(!zcd_ring_credit_news(&p.guest, &limit, &give_back));
	free(p.area);
}

/*
 * A new backend takes over a ring the guest has been using, across the
 * index wrap: it goes on from the published indices; a header that is not
 * the layout it formatted, or claims more than a ring holds, is refused.
 */
static void test_resume(void)
{
	struct ring_pair p;
	struct zcd_ring next;
	struct zcd_rx_desc d;
	struct zcd_ret_desc r;
	bool broken = false;

	if (pair_open(&p) != 0) {
		CHECK(!"pair_open");
		return;
	}
	pair_set_indices(&p, UINT32_MAX - 2);
	for (uint32_t i = 0; i < 5; i++)
		zcd_rx_put(&p.backend, &(struct zcd_rx_desc){.buf_id = i});
	zcd_rx_publish(&p.backend);
	zcd_rx_take(&p.guest, &d);
	zcd_rx_take(&p.guest, &d);
	zcd_rx_consumed(&p.guest);
	zcd_ret_put(&p.guest, &(struct zcd_ret_desc){.buf_id = 0});
	zcd_ret_put(&p.guest, &(struct zcd_ret_desc){.buf_id = 1});
	zcd_ret_publish(&p.guest);
	zcd_ring_announce_credits(&p.backend, 3, 1);

	CHECK_EQ(zcd_ring_resume(&next, p.area, p.bytes, RX_SIZE, RET_SIZE), 0);
	CHECK_EQ(next.rx_prod, UINT32_MAX - 2 + 5);
	CHECK_EQ(next.rx_published, next.rx_prod);
	CHECK_EQ(next.ret_cons, UINT32_MAX - 2);
	CHECK_EQ(next.credit_seq, 2);
	CHECK_EQ(zcd_rx_unconsumed(&next), 3);
	CHECK_EQ(zcd_rx_space(&next, &broken), RX_SIZE - 3);
	CHECK(!broken);
	CHECK_EQ(zcd_ret_ready(&next, &broken), 2);
	zcd_ret_take(&next, &r);
	CHECK_EQ(r.buf_id, 0);
	/* Its next descriptor lands where the guest reads next. */
	zcd_rx_put(&next, &(struct zcd_rx_desc){.buf_id = 5});
	zcd_rx_publish(&next);
	for (uint32_t i = 2; i < 6; i++) {
		zcd_rx_take(&p.guest, &d);
		CHECK_EQ(d.buf_id, i);
	}

	CHECK_EQ(zcd_ring_resume(&next, p.area, p.bytes, RX_SIZE * 2, RET_SIZE), -1);
	CHECK_EQ(zcd_ring_resume(&next, p.area, p.bytes, RX_SIZE, RET_SIZE / 2), -1);
	p.backend.hdr->rx_cons = p.backend.hdr->rx_prod - RX_SIZE - 1;
	CHECK_EQ(zcd_ring_resume(&next, p.area, p.bytes, RX_SIZE, RET_SIZE), -1);
	p.backend.hdr->rx_cons = p.backend.hdr->rx_prod;
	p.backend.hdr->ret_prod = p.backend.hdr->ret_cons + RET_SIZE + 1;
	CHECK_EQ(zcd_ring_resume(&next, p.area, p.bytes, RX_SIZE, RET_SIZE), -1);
	p.backend.hdr->magic = 0;
	CHECK_EQ(zcd_ring_resume(&next, p.area, p.bytes, RX_SIZE, RET_SIZE), -1);
	free(p.area);
}

int main(void)
{
	test_sizes();
	test_format_attach_round_trip();
	test_format_rejects();
	test_attach_rejects();
	test_rx_wraparound();
	test_ret_wraparound();
	test_need_event();
	test_hostile_indices();
	test_credit_news();
	test_resume();
	return check_report("test_ring");
}
