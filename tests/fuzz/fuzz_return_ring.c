/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: a hostile guest against the backend's side of the
 * shared ring, its copy slots and the buffer ledger.
 *
 * The input is a script: the indices' starting value, then steps.  Each
 * step is one of: the backend hands the guest
 * a pool buffer or a copied frame; the guest writes any 32-bit value
 * anywhere in the shared header (indices and event fields included); the
 * guest writes any return descriptor into any return slot; the backend
 * takes returns and judges each one against the ledger, as the dataplane
 * does.  Whatever the guest writes:
 *   - the backend never reads or writes outside the shared area;
 *   - no return frees a buffer that was not handed to this guest at that
 *     generation, and none frees one twice (the ledger never sees a
 *     violation, which would be the backend's bug);
 *   - every buffer and copy slot is accounted for after every step.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copy_slots.h"
#include "ledger.h"

#define RX_SIZE 16
#define RET_SIZE 16
#define NB_BUFS 24
#define NB_COPY_SLOTS 6
#define SLOT_BYTES 64
#define VM 3

enum step { HANDOFF_BUFFER, HANDOFF_COPY, SCRIBBLE_HEADER, WRITE_RETURN, TAKE_RETURNS, NB_STEPS };

struct world {
	uint8_t *area; /* allocated alone, so that ASan sees any access past it */
	size_t area_bytes;
	uint8_t *copy_mem;
	struct zcd_ring ring;
	struct zcd_copy_slots copies;
	struct zcd_ledger ledger;
	unsigned granted; /* buffers GRANTED or REVOKING, by the ledger's own count */
};

static void expect(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_return_ring: %s\n", what);
		abort();
	}
}

static uint32_t take32(const uint8_t **data, size_t *size)
{
	uint32_t v = 0;

	for (int i = 0; i < 4 && *size != 0; i++, (*data)++, (*size)--)
		v |= (uint32_t)**data << (8 * i);
	return v;
}

/* Free-running indices start anywhere: as if the ring had run for a while
 * (and so that they wrap at 2^32 within a script). */
static void start_at(struct world *w, uint32_t base)
{
	struct zcd_ring_hdr *h = w->ring.hdr;

	w->ring.rx_prod = w->ring.rx_published = w->ring.ret_cons = base;
	h->rx_prod = h->rx_cons = h->ret_prod = h->ret_cons = base;
	h->rx_event = base + 1;
}

/* The backend grants the lowest FREE buffer, as the dataplane would. */
static void handoff_buffer(struct world *w)
{
	bool broken = false;
	struct zcd_rx_desc d;
	uint32_t id;

	if (zcd_rx_space(&w->ring, &broken) == 0)
		return;
	for (id = 0; id < NB_BUFS && zcd_ledger_state(&w->ledger, id) != ZCD_BUF_FREE; id++)
		;
	if (id == NB_BUFS)
		return;
	expect(zcd_ledger_post(&w->ledger, id) == 0 && zcd_ledger_receive(&w->ledger, id) == 0 &&
		       zcd_ledger_grant(&w->ledger, id, VM) == 0,
	       "a free buffer could not be granted");
	d = (struct zcd_rx_desc){.buf_id = id, .generation = w->ledger.entries[id].generation,
				 .length = 60};
	zcd_rx_put(&w->ring, &d);
	zcd_rx_publish(&w->ring);
	w->granted++;
}

static void handoff_copy(struct world *w)
{
	static const uint8_t frame[60] = {0x02};
	struct zcd_handoff item = {.data = frame, .length = sizeof(frame), .kind = ZCD_HANDOFF_COPY};
	bool broken = false;
	struct zcd_rx_desc d;

	if (w->copies.nb_free == 0 || zcd_rx_space(&w->ring, &broken) == 0)
		return;
	zcd_copy_slots_fill(&w->copies, &item, &d);
	zcd_rx_put(&w->ring, &d);
	zcd_rx_publish(&w->ring);
}

/* The dataplane's judgement of each pool-buffer return (loop.c). */
static void take_returns(struct world *w, unsigned max)
{
	struct zcd_hv_return out[RET_SIZE + 1];
	struct zcd_hv_return_tally tally = {0};
	unsigned free_before = w->copies.nb_free, n;
	bool broken = false;

	n = zcd_copy_slots_take_returns(&w->copies, &w->ring, out, max, &tally, &broken);
	expect(n <= max, "more returns than asked for");
	expect(w->copies.nb_free == free_before + tally.copies_released, "copy slot count");
	for (unsigned i = 0; i < n; i++) {
		if (zcd_ledger_accept_return(&w->ledger, VM, out[i].buf_id, out[i].generation) !=
		    ZCD_RETURN_OK)
			continue;
		expect(zcd_ledger_revoked(&w->ledger, out[i].buf_id) == 0 &&
			       zcd_ledger_scrubbed(&w->ledger, out[i].buf_id) == 0 &&
			       zcd_ledger_recycle(&w->ledger, out[i].buf_id) == 0,
		       "an accepted return could not be recycled");
		w->granted--;
	}
}

static void check_accounts(const struct world *w)
{
	uint32_t count[ZCD_BUF_STATE_COUNT];
	unsigned outstanding = 0;

	zcd_ledger_tally(&w->ledger, count);
	expect(w->ledger.violations == 0, "ledger violation");
	expect(count[ZCD_BUF_GRANTED] == w->granted, "granted buffers");
	expect(count[ZCD_BUF_FREE] + w->granted == NB_BUFS, "free + granted = pool");
	for (unsigned s = 0; s < NB_COPY_SLOTS; s++)
		outstanding += w->copies.slot[s].outstanding;
	expect(outstanding + w->copies.nb_free == NB_COPY_SLOTS, "copy slots accounted for");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct world w;

	if (w.area == NULL) {
		w.area_bytes = zcd_ring_area_bytes(RX_SIZE, RET_SIZE);
		w.area = aligned_alloc(ZCD_PAGE_SIZE, w.area_bytes);
		w.copy_mem = malloc(NB_COPY_SLOTS * SLOT_BYTES);
		if (w.area == NULL || w.copy_mem == NULL)
			abort();
	}
	if (zcd_ring_format(&w.ring, w.area, w.area_bytes, RX_SIZE, RET_SIZE, NB_BUFS) != 0 ||
	    zcd_copy_slots_init(&w.copies, NB_COPY_SLOTS, SLOT_BYTES, w.copy_mem) != 0 ||
	    zcd_ledger_init(&w.ledger, NB_BUFS, NULL) != 0)
		abort();
	w.granted = 0;
	start_at(&w, take32(&data, &size));
	while (size != 0) {
		uint8_t op = *data++;

		size--;
		switch (op % NB_STEPS) {
		case HANDOFF_BUFFER:
			handoff_buffer(&w);
			break;
		case HANDOFF_COPY:
			handoff_copy(&w);
			break;
		case SCRIBBLE_HEADER: {
			uint32_t offset = take32(&data, &size) % sizeof(struct zcd_ring_hdr) & ~3u;
			uint32_t value = take32(&data, &size);

			memcpy(w.area + offset, &value, sizeof(value));
			break;
		}
		case WRITE_RETURN: {
			struct zcd_ret_desc d;
			uint32_t slot = take32(&data, &size) % RET_SIZE;

			d.buf_id = take32(&data, &size);
			d.generation = take32(&data, &size);
			d.flags = (uint16_t)take32(&data, &size);
			d.reserved0 = 0;
			d.reserved1 = 0;
			memcpy(&w.ring.ret[slot], &d, sizeof(d));
			break;
		}
		case TAKE_RETURNS:
			take_returns(&w, 1 + op / NB_STEPS % RET_SIZE);
			break;
		}
		check_accounts(&w);
	}
	zcd_copy_slots_fini(&w.copies);
	zcd_ledger_fini(&w.ledger);
	return 0;
}
