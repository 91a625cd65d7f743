/* SPDX-License-Identifier: BSD-3-Clause */
/* Copy slots and the return ring, shared by the backends; see copy_slots.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "copy_slots.h"

int zcd_copy_slots_init(struct zcd_copy_slots *cs, uint32_t nb_slots, uint32_t slot_bytes,
			uint8_t *mem)
{
	*cs = (struct zcd_copy_slots){.nb_slots = nb_slots, .slot_bytes = slot_bytes, .mem = mem};
	/* One more than needed, so that zero slots is not a failed allocation. */
	cs->generation = calloc(nb_slots + 1, sizeof(*cs->generation));
	cs->length = calloc(nb_slots + 1, sizeof(*cs->length));
	cs->outstanding = calloc(nb_slots + 1, sizeof(*cs->outstanding));
	cs->free = calloc(nb_slots + 1, sizeof(*cs->free));
	if (cs->generation == NULL || cs->length == NULL || cs->outstanding == NULL ||
	    cs->free == NULL) {
		zcd_copy_slots_fini(cs);
		errno = ENOMEM;
		return -1;
	}
	for (uint32_t i = 0; i < nb_slots; i++)
		cs->free[i] = nb_slots - 1 - i;
	cs->nb_free = nb_slots;
	return 0;
}

void zcd_copy_slots_fini(struct zcd_copy_slots *cs)
{
	free(cs->generation);
	free(cs->length);
	free(cs->outstanding);
	free(cs->free);
	*cs = (struct zcd_copy_slots){0};
}

void zcd_copy_slots_fill(struct zcd_copy_slots *cs, const struct zcd_handoff *item,
			 struct zcd_rx_desc *desc)
{
	uint32_t slot = cs->free[--cs->nb_free];
	uint8_t *dst = cs->mem + (size_t)slot * cs->slot_bytes;

	memcpy(dst, item->data, item->length);
	/* The guest checks its pages for bytes of earlier frames too. */
	if (cs->length[slot] > item->length)
		memset(dst + item->length, 0, cs->length[slot] - item->length);
	cs->length[slot] = item->length;
	cs->outstanding[slot] = true;
	*desc = (struct zcd_rx_desc){
		.buf_id = slot,
		.generation = ++cs->generation[slot],
		.length = item->length,
		.flags = ZCD_RXF_COPY,
		.vlan = item->vlan,
	};
}

/* A slot comes back only if it is out, with its current generation. */
static void settle(struct zcd_copy_slots *cs, const struct zcd_ret_desc *ret,
		   struct zcd_hv_return_tally *tally)
{
	uint32_t slot = ret->buf_id;

	if (slot >= cs->nb_slots || !cs->outstanding[slot] ||
	    cs->generation[slot] != ret->generation) {
		tally->copies_rejected++;
		return;
	}
	cs->outstanding[slot] = false;
	cs->free[cs->nb_free++] = slot;
	tally->copies_released++;
}

unsigned zcd_copy_slots_take_returns(struct zcd_copy_slots *cs, struct zcd_ring *ring,
				     struct zcd_hv_return *out, unsigned max,
				     struct zcd_hv_return_tally *tally, bool *broken)
{
	uint32_t ready = zcd_ret_ready(ring, broken);
	unsigned taken = 0;

	/* Stop once out is full: an entry taken off the ring cannot be put back. */
	for (; ready > 0 && taken < max; ready--) {
		struct zcd_ret_desc ret;

		zcd_ret_take(ring, &ret);
		if (ret.flags & ZCD_RETF_COPY) {
			settle(cs, &ret, tally);
			continue;
		}
		out[taken].buf_id = ret.buf_id;
		out[taken].generation = ret.generation;
		taken++;
	}
	zcd_ret_consumed(ring);
	return taken;
}
