/* SPDX-License-Identifier: BSD-3-Clause */
/* Copy slots and the return ring, shared by the backends; see copy_slots.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "copy_slots.h"

int zcd_copy_slots_init_at(struct zcd_copy_slots *cs, uint32_t nb_slots, uint32_t slot_bytes,
			   uint8_t *mem, struct zcd_copy_slot_state *states, bool resume)
{
	*cs = (struct zcd_copy_slots){.nb_slots = nb_slots, .slot_bytes = slot_bytes, .mem = mem,
				      .slot = states};
	/* One more than needed, so that zero slots is not a failed allocation. */
	cs->free = calloc(nb_slots + 1, sizeof(*cs->free));
	if (cs->free == NULL) {
		errno = ENOMEM;
		return -1;
	}
	if (!resume)
		memset(states, 0, nb_slots * sizeof(*states));
	for (uint32_t i = nb_slots; i-- > 0;)
		if (!states[i].outstanding)
			cs->free[cs->nb_free++] = i;
	return 0;
}

int zcd_copy_slots_init(struct zcd_copy_slots *cs, uint32_t nb_slots, uint32_t slot_bytes,
			uint8_t *mem)
{
	struct zcd_copy_slot_state *states = calloc(nb_slots + 1, sizeof(*states));

	if (states == NULL || zcd_copy_slots_init_at(cs, nb_slots, slot_bytes, mem, states, false) != 0) {
		free(states);
		errno = ENOMEM;
		return -1;
	}
	cs->own_slot_states = true;
	return 0;
}

void zcd_copy_slots_drop_unpublished(struct zcd_copy_slot_state *states, uint32_t nb_slots,
				     uint32_t prod)
{
	for (uint32_t s = 0; s < nb_slots; s++)
		if (states[s].outstanding && !zcd_rx_pos_published(states[s].ring_pos, prod))
			states[s].outstanding = 0;
}

void zcd_copy_slots_fini(struct zcd_copy_slots *cs)
{
	if (cs->own_slot_states)
		free(cs->slot);
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
	if (cs->slot[slot].length > item->length)
		memset(dst + item->length, 0, cs->slot[slot].length - item->length);
	cs->slot[slot].length = item->length;
	cs->slot[slot].outstanding = 1;
	*desc = (struct zcd_rx_desc){
		.buf_id = slot,
		.generation = ++cs->slot[slot].generation,
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

	if (slot >= cs->nb_slots || !cs->slot[slot].outstanding ||
	    cs->slot[slot].generation != ret->generation) {
		tally->copies_rejected++;
		return;
	}
	cs->slot[slot].outstanding = 0;
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
