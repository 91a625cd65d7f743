/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to hypervisor-glue: what every backend does with a guest's copy
 * slots (pages the guest owns that copied frames go into) and with the
 * return ring.  A slot is lent to the guest with a fresh generation and
 * comes back only with that generation, once.
 */
#ifndef ZCDEMUX_HV_COPY_SLOTS_H
#define ZCDEMUX_HV_COPY_SLOTS_H

#include <stdbool.h>
#include <stdint.h>

#include "zcdemux/hv.h"
#include "zcdemux/ring.h"

/* What the backend knows of one slot; plain data, so that it can live in a shared file. */
struct zcd_copy_slot_state {
	uint32_t generation;
	uint32_t length; /* bytes of the last frame written to the slot */
	uint32_t outstanding; /* lent to the guest */
	uint32_t ring_pos; /* rx ring index of the descriptor that lent it (set by the backend) */
};

struct zcd_copy_slots {
	uint32_t nb_slots;
	uint32_t slot_bytes; /* pages per slot * ZCD_PAGE_SIZE */
	uint8_t *mem; /* slot s at mem + s * slot_bytes (the guest's pages, mapped) */
	struct zcd_copy_slot_state *slot;
	bool own_slot_states; /* allocated by init, not given to it */
	uint32_t *free; /* stack; slot 0 is used first */
	uint32_t nb_free;
};

/* nb_slots slots of slot_bytes at mem; 0, or -1 with errno (ENOMEM). */
int zcd_copy_slots_init(struct zcd_copy_slots *cs, uint32_t nb_slots, uint32_t slot_bytes,
			uint8_t *mem);

/*
 * The same, with the slots' states in states (nb_slots of them, which the
 * caller keeps): zeroed first, or with resume, taken as an earlier backend
 * left them, its outstanding slots still lent.  0, or -1 with errno.
 */
int zcd_copy_slots_init_at(struct zcd_copy_slots *cs, uint32_t nb_slots, uint32_t slot_bytes,
			   uint8_t *mem, struct zcd_copy_slot_state *states, bool resume);
void zcd_copy_slots_fini(struct zcd_copy_slots *cs);

/* Before a resume: a slot lent by a descriptor never published (rx producer prod) is not lent. */
void zcd_copy_slots_drop_unpublished(struct zcd_copy_slot_state *states, uint32_t nb_slots,
				     uint32_t prod);

/*
 * Copy a frame (length <= slot_bytes) into a free slot (the caller checked
 * nb_free), zeroing what a longer earlier frame left there, and describe it:
 * desc gets buf_id, generation, length, flags and vlan; the caller sets
 * handle and nr_pages, which mean something different per backend.
 */
void zcd_copy_slots_fill(struct zcd_copy_slots *cs, const struct zcd_handoff *item,
			 struct zcd_rx_desc *desc);

/*
 * Take up to max pool-buffer returns off the ring (each copied out before it
 * is looked at); copy-slot returns are settled here and counted in *tally.
 * A bogus guest producer index sets *broken and takes nothing.
 */
unsigned zcd_copy_slots_take_returns(struct zcd_copy_slots *cs, struct zcd_ring *ring,
				     struct zcd_hv_return *out, unsigned max,
				     struct zcd_hv_return_tally *tally, bool *broken);

#endif /* ZCDEMUX_HV_COPY_SLOTS_H */
