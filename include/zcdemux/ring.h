/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared-ring wire format between the zcdemux dataplane (backend) and a guest.
 *
 * One shared area per VM, laid out as
 *
 *     offset 0                 struct zcd_ring_hdr   (one 4 KiB page)
 *     hdr.rx_offset            rx_size  x struct zcd_rx_desc   backend -> guest
 *     hdr.ret_offset           ret_size x struct zcd_ret_desc  guest -> backend
 *
 * Every field is fixed-width little-endian; there are no pointers, so the
 * same bytes mean the same thing in the dataplane, in the simulated guest
 * and in a Xen guest that maps the area through grants.
 *
 * Indices are free-running uint32_t counters; a slot is index & (size - 1).
 * Each index lives on its own cache line so that producer and consumer never
 * write the same line.  Event suppression follows Xen's io/ring.h: the
 * consumer stores in *_event the index whose arrival should wake it; the
 * producer notifies only when its new producer index passes that value, so a
 * consumer that keeps polling (and does not move *_event) gets no events.
 *
 * Both sides treat everything the other side can write as hostile: entries
 * are copied out once before they are checked, and indices are bounded
 * against private copies of the sizes, never re-read from the header.
 *
 * Credits: the guest may hold hdr.credits frames at once (delivered and not
 * yet returned); the backend enforces it.  To change that while running,
 * the backend writes credit_limit and give_back, then bumps credit_seq (and
 * notifies, unless the guest polls).  give_back is how many of the frames
 * the guest holds it must return without waiting for new ones, so that it
 * ends up within the new limit.  A guest that has not done so within the
 * backend's time limit gets no more frames, and what it holds is taken back
 * as it lets go of it.  A guest that reads news reads it whole: sequence,
 * fields, sequence again.
 */
#ifndef ZCDEMUX_RING_H
#define ZCDEMUX_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ZCD_RING_MAGIC 0x4d44435aU /* "ZCDM" little-endian */
#define ZCD_RING_VERSION 1U
#define ZCD_PAGE_SIZE 4096U
#define ZCD_CACHE_LINE 64U

/* rx descriptor flags */
#define ZCD_RXF_COPY 0x0001U /* frame was copied into a guest-owned copy page */
#define ZCD_RXF_READONLY 0x0002U /* the guest may only read the page(s) */

/* return descriptor flags */
#define ZCD_RETF_COPY 0x0001U /* returns a copy page, not a pool buffer */

/* Backend -> guest: one received frame. */
struct zcd_rx_desc {
	uint32_t buf_id; /* pool buffer id, or copy page index with ZCD_RXF_COPY */
	uint32_t generation; /* echo it in the return; a stale value is rejected */
	uint32_t handle; /* backend reference of the first page: sim guest frame
			  * number, Xen grant reference; nr_pages consecutive */
	uint16_t nr_pages; /* pages in the buffer */
	uint16_t offset; /* frame start, bytes from the start of the first page */
	uint16_t length; /* frame length in bytes, tags included, no FCS */
	uint16_t flags; /* ZCD_RXF_* */
	uint16_t vlan; /* VID the frame was demultiplexed under, 0 = untagged */
	uint16_t reserved0;
	uint64_t reserved1;
};
_Static_assert(sizeof(struct zcd_rx_desc) == 32, "rx descriptor is 32 bytes");

/* Guest -> backend: a buffer given back. */
struct zcd_ret_desc {
	uint32_t buf_id;
	uint32_t generation;
	uint16_t flags; /* ZCD_RETF_* */
	uint16_t reserved0;
	uint32_t reserved1;
};
_Static_assert(sizeof(struct zcd_ret_desc) == 16, "return descriptor is 16 bytes");

struct zcd_ring_hdr {
	/* Written once by the backend at setup; read-only by convention. */
	uint32_t magic;
	uint32_t version;
	uint32_t rx_size; /* entries, power of two */
	uint32_t ret_size; /* entries, power of two */
	uint32_t rx_offset; /* bytes from the start of the area */
	uint32_t ret_offset;
	uint32_t area_bytes; /* whole shared area */
	uint32_t credits; /* frames the guest may hold at once, at setup */
	uint8_t pad0[ZCD_CACHE_LINE - 8 * sizeof(uint32_t)];

	/* Backend produces rx descriptors. */
	uint32_t rx_prod;
	uint8_t pad1[ZCD_CACHE_LINE - sizeof(uint32_t)];

	/* Guest consumes rx descriptors and asks to be woken. */
	uint32_t rx_cons;
	uint32_t rx_event;
	uint8_t pad2[ZCD_CACHE_LINE - 2 * sizeof(uint32_t)];

	/* Guest produces returns. */
	uint32_t ret_prod;
	uint8_t pad3[ZCD_CACHE_LINE - sizeof(uint32_t)];

	/* Backend consumes returns; ret_event is for a backend that sleeps. */
	uint32_t ret_cons;
	uint32_t ret_event;
	uint8_t pad4[ZCD_CACHE_LINE - 2 * sizeof(uint32_t)];

	/* Backend announces credit changes (see "Credits" above). */
	uint32_t credit_seq; /* bumped after credit_limit and give_back are written */
	uint32_t credit_limit; /* frames the guest may hold from now on */
	uint32_t give_back; /* frames to return now, of those it holds */
	uint8_t pad5[ZCD_CACHE_LINE - 3 * sizeof(uint32_t)];
};
_Static_assert(sizeof(struct zcd_ring_hdr) == 6 * ZCD_CACHE_LINE, "ring header layout");
_Static_assert(offsetof(struct zcd_ring_hdr, rx_prod) == 1 * ZCD_CACHE_LINE, "rx_prod line");
_Static_assert(offsetof(struct zcd_ring_hdr, rx_cons) == 2 * ZCD_CACHE_LINE, "rx_cons line");
_Static_assert(offsetof(struct zcd_ring_hdr, ret_prod) == 3 * ZCD_CACHE_LINE, "ret_prod line");
_Static_assert(offsetof(struct zcd_ring_hdr, ret_cons) == 4 * ZCD_CACHE_LINE, "ret_cons line");
_Static_assert(offsetof(struct zcd_ring_hdr, credit_seq) == 5 * ZCD_CACHE_LINE, "credit line");
_Static_assert(sizeof(struct zcd_ring_hdr) <= ZCD_PAGE_SIZE, "the header fits its page");

/* Bytes of shared area needed for the given ring sizes, rounded to pages. */
static inline size_t zcd_ring_area_bytes(uint32_t rx_size, uint32_t ret_size)
{
	size_t bytes = ZCD_PAGE_SIZE + (size_t)rx_size * sizeof(struct zcd_rx_desc) +
		       (size_t)ret_size * sizeof(struct zcd_ret_desc);

	return (bytes + ZCD_PAGE_SIZE - 1) & ~(size_t)(ZCD_PAGE_SIZE - 1);
}

/*
 * One side's private view of a shared area.  Sizes, masks and the side's own
 * index live here, so a peer scribbling on the header cannot make this side
 * index outside the area.
 */
struct zcd_ring {
	struct zcd_ring_hdr *hdr;
	struct zcd_rx_desc *rx;
	struct zcd_ret_desc *ret;
	uint32_t rx_mask;
	uint32_t ret_mask;
	uint32_t rx_prod; /* backend: next rx slot to fill */
	uint32_t rx_published; /* backend: value last stored in hdr->rx_prod */
	uint32_t rx_cons; /* guest: next rx slot to read */
	uint32_t ret_prod; /* guest: next return slot to fill */
	uint32_t ret_published; /* guest: value last stored in hdr->ret_prod */
	uint32_t ret_cons; /* backend: next return slot to read */
	uint32_t credit_seq; /* backend: last announcement; guest: last one read */
};

static inline bool zcd_ring_is_pow2(uint32_t v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

static inline uint32_t zcd_ring_load_acquire(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void zcd_ring_store_release(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/*
 * Backend: lay out a zeroed area of area_bytes (>= zcd_ring_area_bytes()).
 * Returns 0, or -1 if the sizes are not powers of two or do not fit.
 */
static inline int zcd_ring_format(struct zcd_ring *r, void *area, size_t area_bytes,
				  uint32_t rx_size, uint32_t ret_size, uint32_t credits)
{
	struct zcd_ring_hdr *h = area;

	if (!zcd_ring_is_pow2(rx_size) || !zcd_ring_is_pow2(ret_size) ||
	    area_bytes < zcd_ring_area_bytes(rx_size, ret_size) || area_bytes > UINT32_MAX)
		return -1;
	memset(area, 0, area_bytes);
	h->magic = ZCD_RING_MAGIC;
	h->version = ZCD_RING_VERSION;
	h->rx_size = rx_size;
	h->ret_size = ret_size;
	h->rx_offset = ZCD_PAGE_SIZE;
	h->ret_offset = ZCD_PAGE_SIZE + rx_size * (uint32_t)sizeof(struct zcd_rx_desc);
	h->area_bytes = (uint32_t)area_bytes;
	h->credits = credits;
	h->rx_event = 1; /* the guest starts out waiting for the first frame */
	memset(r, 0, sizeof(*r));
	r->hdr = h;
	r->rx = (struct zcd_rx_desc *)((uint8_t *)area + h->rx_offset);
	r->ret = (struct zcd_ret_desc *)((uint8_t *)area + h->ret_offset);
	r->rx_mask = rx_size - 1;
	r->ret_mask = ret_size - 1;
	return 0;
}

/*
 * Guest: check a header written by the backend and build a private view.
 * The header is read once; returns 0, or -1 if it is not a valid ring of
 * this version that fits in area_bytes.
 */
static inline int zcd_ring_attach(struct zcd_ring *r, void *area, size_t area_bytes)
{
	struct zcd_ring_hdr h;
	uint64_t rx_end, ret_end;

	if (area_bytes < sizeof(h))
		return -1;
	memcpy(&h, area, sizeof(h));
	if (h.magic != ZCD_RING_MAGIC || h.version != ZCD_RING_VERSION ||
	    !zcd_ring_is_pow2(h.rx_size) || !zcd_ring_is_pow2(h.ret_size) ||
	    h.rx_offset < sizeof(h) || h.ret_offset < sizeof(h) ||
	    h.rx_offset % sizeof(struct zcd_rx_desc) != 0 ||
	    h.ret_offset % sizeof(struct zcd_ret_desc) != 0)
		return -1;
	rx_end = (uint64_t)h.rx_offset + (uint64_t)h.rx_size * sizeof(struct zcd_rx_desc);
	ret_end = (uint64_t)h.ret_offset + (uint64_t)h.ret_size * sizeof(struct zcd_ret_desc);
	if (rx_end > area_bytes || ret_end > area_bytes ||
	    (h.rx_offset < ret_end && h.ret_offset < rx_end))
		return -1;
	memset(r, 0, sizeof(*r));
	r->hdr = area;
	r->rx = (struct zcd_rx_desc *)((uint8_t *)area + h.rx_offset);
	r->ret = (struct zcd_ret_desc *)((uint8_t *)area + h.ret_offset);
	r->rx_mask = h.rx_size - 1;
	r->ret_mask = h.ret_size - 1;
	r->rx_cons = zcd_ring_load_acquire(&r->hdr->rx_cons);
	r->ret_prod = zcd_ring_load_acquire(&r->hdr->ret_prod);
	r->ret_published = r->ret_prod;
	r->credit_seq = zcd_ring_load_acquire(&r->hdr->credit_seq);
	return 0;
}

/*
 * Backend: take over an area that an earlier backend formatted with these
 * sizes and the guest has been using since, from where the indices are.
 * The header is the guest's to write, so what it says is checked, not
 * trusted: sizes and offsets must be the ones formatted, and each ring may
 * hold at most its size.  Returns 0, or -1 (format it afresh instead).
 */
static inline int zcd_ring_resume(struct zcd_ring *r, void *area, size_t area_bytes,
				  uint32_t rx_size, uint32_t ret_size)
{
	struct zcd_ring_hdr h;

	if (zcd_ring_attach(r, area, area_bytes) != 0)
		return -1;
	memcpy(&h, area, sizeof(h));
	if (h.rx_size != rx_size || h.ret_size != ret_size || h.rx_offset != ZCD_PAGE_SIZE ||
	    h.ret_offset != ZCD_PAGE_SIZE + rx_size * (uint32_t)sizeof(struct zcd_rx_desc) ||
	    h.rx_prod - h.rx_cons > rx_size || h.ret_prod - h.ret_cons > ret_size)
		return -1;
	r->rx_prod = h.rx_prod;
	r->rx_published = h.rx_prod;
	r->ret_cons = h.ret_cons;
	r->credit_seq = h.credit_seq & ~1u; /* an announcement cut short is made again */
	r->rx_cons = 0;
	r->ret_prod = 0;
	r->ret_published = 0;
	return 0;
}

/* ---- credit announcements ---- */

/* Backend: the guest may hold limit frames from now on and must return give_back now. */
static inline void zcd_ring_announce_credits(struct zcd_ring *r, uint32_t limit,
					     uint32_t give_back)
{
	/* Odd while being written, so that a guest reading meanwhile retries. */
	zcd_ring_store_release(&r->hdr->credit_seq, ++r->credit_seq);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&r->hdr->credit_limit, limit, __ATOMIC_RELAXED);
	__atomic_store_n(&r->hdr->give_back, give_back, __ATOMIC_RELAXED);
	zcd_ring_store_release(&r->hdr->credit_seq, ++r->credit_seq);
}

/*
 * Guest: true, with the announcement's fields, if one came since the last
 * call.  A backend in the middle of writing one (odd sequence) is news for
 * the next call.
 */
static inline bool zcd_ring_credit_news(struct zcd_ring *r, uint32_t *limit, uint32_t *give_back)
{
	uint32_t seq = zcd_ring_load_acquire(&r->hdr->credit_seq);

	if (seq == r->credit_seq || (seq & 1) != 0)
		return false;
	*limit = __atomic_load_n(&r->hdr->credit_limit, __ATOMIC_RELAXED);
	*give_back = __atomic_load_n(&r->hdr->give_back, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (__atomic_load_n(&r->hdr->credit_seq, __ATOMIC_RELAXED) != seq)
		return false;
	r->credit_seq = seq;
	return true;
}

/*
 * True when a producer that moved its index from old_prod to new_prod must
 * notify a consumer that asked to be woken at index event (Xen's rule).
 */
static inline bool zcd_ring_need_event(uint32_t event, uint32_t new_prod, uint32_t old_prod)
{
	return (uint32_t)(new_prod - event) < (uint32_t)(new_prod - old_prod);
}

/* ---- backend side of the rx ring ---- */

/*
 * Free rx slots.  The guest's consumer index is hostile: if it claims more
 * than the ring holds, report no space and set *broken.
 */
static inline uint32_t zcd_rx_space(const struct zcd_ring *r, bool *broken)
{
	uint32_t cons = zcd_ring_load_acquire(&r->hdr->rx_cons);
	uint32_t used = r->rx_prod - cons;

	if (used > r->rx_mask + 1) {
		*broken = true;
		return 0;
	}
	return r->rx_mask + 1 - used;
}

/* Write one descriptor into the next slot; not visible until published. */
static inline void zcd_rx_put(struct zcd_ring *r, const struct zcd_rx_desc *d)
{
	r->rx[r->rx_prod & r->rx_mask] = *d;
	r->rx_prod++;
}

/* Make the descriptors put so far visible; true if the guest must be notified. */
static inline bool zcd_rx_publish(struct zcd_ring *r)
{
	uint32_t old_prod = r->rx_published;

	if (old_prod == r->rx_prod)
		return false;
	zcd_ring_store_release(&r->hdr->rx_prod, r->rx_prod);
	r->rx_published = r->rx_prod;
	/* Order the index store before reading the guest's event request. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return zcd_ring_need_event(__atomic_load_n(&r->hdr->rx_event, __ATOMIC_RELAXED),
				   r->rx_prod, old_prod);
}

/* Descriptors the guest has not consumed yet (0 if its index is bogus). */
/* Backend resuming a ring: was the descriptor put at rx index pos published (producer prod)? */
static inline bool zcd_rx_pos_published(uint32_t pos, uint32_t prod)
{
	return (int32_t)(pos - prod) < 0;
}

static inline uint32_t zcd_rx_unconsumed(const struct zcd_ring *r)
{
	uint32_t used = r->rx_published - zcd_ring_load_acquire(&r->hdr->rx_cons);

	return used > r->rx_mask + 1 ? 0 : used;
}

/* ---- guest side of the rx ring ---- */

/* Descriptors ready to read; a bogus producer index sets *broken. */
static inline uint32_t zcd_rx_ready(const struct zcd_ring *r, bool *broken)
{
	uint32_t n = zcd_ring_load_acquire(&r->hdr->rx_prod) - r->rx_cons;

	if (n > r->rx_mask + 1) {
		*broken = true;
		return 0;
	}
	return n;
}

/* Copy the next descriptor out (read once, check the copy) and advance. */
static inline void zcd_rx_take(struct zcd_ring *r, struct zcd_rx_desc *out)
{
	memcpy(out, &r->rx[r->rx_cons & r->rx_mask], sizeof(*out));
	r->rx_cons++;
}

/* Tell the backend which slots may be reused. */
static inline void zcd_rx_consumed(struct zcd_ring *r)
{
	zcd_ring_store_release(&r->hdr->rx_cons, r->rx_cons);
}

/*
 * Ask for an event at the next descriptor, then look again: returns true if
 * descriptors arrived meanwhile (do not sleep), false if it is safe to wait.
 */
static inline bool zcd_rx_arm_event(struct zcd_ring *r)
{
	bool broken = false;

	__atomic_store_n(&r->hdr->rx_event, r->rx_cons + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return zcd_rx_ready(r, &broken) != 0 || broken;
}

/* ---- guest side of the return ring ---- */

/* Free return slots as the guest sees them. */
static inline uint32_t zcd_ret_space(const struct zcd_ring *r)
{
	uint32_t used = r->ret_prod - zcd_ring_load_acquire(&r->hdr->ret_cons);

	return used > r->ret_mask + 1 ? 0 : r->ret_mask + 1 - used;
}

static inline void zcd_ret_put(struct zcd_ring *r, const struct zcd_ret_desc *d)
{
	r->ret[r->ret_prod & r->ret_mask] = *d;
	r->ret_prod++;
}

/* Publish returns; true if the backend asked to be notified. */
static inline bool zcd_ret_publish(struct zcd_ring *r)
{
	uint32_t old_prod = r->ret_published;

	if (old_prod == r->ret_prod)
		return false;
	zcd_ring_store_release(&r->hdr->ret_prod, r->ret_prod);
	r->ret_published = r->ret_prod;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return zcd_ring_need_event(__atomic_load_n(&r->hdr->ret_event, __ATOMIC_RELAXED),
				   r->ret_prod, old_prod);
}

/* ---- backend side of the return ring ---- */

/* Returns ready to read; a bogus guest producer index sets *broken. */
static inline uint32_t zcd_ret_ready(const struct zcd_ring *r, bool *broken)
{
	uint32_t n = zcd_ring_load_acquire(&r->hdr->ret_prod) - r->ret_cons;

	if (n > r->ret_mask + 1) {
		*broken = true;
		return 0;
	}
	return n;
}

/* Copy the next return out before anyone looks at it, and advance. */
static inline void zcd_ret_take(struct zcd_ring *r, struct zcd_ret_desc *out)
{
	memcpy(out, &r->ret[r->ret_cons & r->ret_mask], sizeof(*out));
	r->ret_cons++;
}

static inline void zcd_ret_consumed(struct zcd_ring *r)
{
	zcd_ring_store_release(&r->hdr->ret_cons, r->ret_cons);
}

#endif /* ZCDEMUX_RING_H */
