/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ownership ledger: one entry per pool buffer, the single source of
 * truth for who may touch it (DESIGN.md, "The life of a buffer").
 *
 *   FREE --post--> POSTED --receive--> HELD --grant(vm)--> GRANTED
 *    ^  <--unpost--'                    | release            | accept_return, or
 *    |<---------------------------------'                    v abandon (VM gone)
 *    |                                                    REVOKING
 *    |                                                       | revoked
 *    +--recycle-- SCRUBBED <--scrubbed-- RECLAIMED <---------+
 *
 * Every transition checks the state it starts from; a transition from any
 * other state changes nothing, counts a violation and returns -1.  A
 * violation means a dataplane bug, never a guest's doing: guest input only
 * reaches the ledger through zcd_ledger_accept_return(), which rejects.
 *
 * Threads: an entry is written only by the thread that owns the buffer
 * at that moment (the lcore whose queue received it until it is granted;
 * the main lcore once its VM returns it; the pool's lock in between).
 * Other threads only read an entry to judge a guest's return, under that
 * VM's lock: a read racing a grant to another VM can only reject.  No
 * counter is shared on the hot path: state counts are tallied on demand.
 */
#ifndef ZCDEMUX_LEDGER_H
#define ZCDEMUX_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

enum zcd_buf_state {
	ZCD_BUF_FREE, /* in the free pool, DMA-able, zeroed */
	ZCD_BUF_POSTED, /* taken by the device driver to receive into */
	ZCD_BUF_HELD, /* holds a received frame; the dataplane owns it */
	ZCD_BUF_GRANTED, /* handed to a VM */
	ZCD_BUF_REVOKING, /* returned by its VM, access not ended yet */
	ZCD_BUF_RECLAIMED, /* the VM can no longer reach it */
	ZCD_BUF_SCRUBBED, /* out of every VM's reach, on its way back to the free pool */
	ZCD_BUF_STATE_COUNT
};

#define ZCD_OWNER_NONE UINT16_MAX

struct zcd_ledger_entry {
	uint32_t generation; /* bumped on every grant; returns must echo it */
	uint16_t owner; /* VM holding it (GRANTED, REVOKING), else ZCD_OWNER_NONE */
	uint16_t last_owner; /* VM of the latest grant, tells duplicates from forgeries */
	uint8_t state; /* enum zcd_buf_state */
};

struct zcd_ledger {
	struct zcd_ledger_entry *entries;
	uint32_t nb_bufs;
	bool own_entries; /* allocated by zcd_ledger_init, not given to it */
	uint64_t violations; /* atomic: any thread may find one */
};

enum zcd_return_verdict {
	ZCD_RETURN_OK, /* GRANTED to this VM at this generation: now REVOKING */
	ZCD_RETURN_FORGED, /* no such buffer, or never handed to this VM at that generation */
	ZCD_RETURN_STALE, /* an older generation: the buffer has moved on */
	ZCD_RETURN_DUPLICATE, /* already returned */
};

/*
 * All buffers FREE.  With storage NULL the entries are allocated and start
 * at generation 0; otherwise they live in storage (the state file) and
 * keep the generations found there.  0, or -1 with errno.
 */
int zcd_ledger_init(struct zcd_ledger *l, uint32_t nb_bufs, struct zcd_ledger_entry *storage);
void zcd_ledger_fini(struct zcd_ledger *l);

int zcd_ledger_post(struct zcd_ledger *l, uint32_t id); /* FREE -> POSTED */
int zcd_ledger_unpost(struct zcd_ledger *l, uint32_t id); /* POSTED -> FREE */
int zcd_ledger_receive(struct zcd_ledger *l, uint32_t id); /* POSTED -> HELD */
int zcd_ledger_release(struct zcd_ledger *l, uint32_t id); /* HELD -> FREE */

/* The generation the next grant of id will carry. */
static inline uint32_t zcd_ledger_next_generation(const struct zcd_ledger *l, uint32_t id)
{
	return l->entries[id].generation + 1;
}

/* HELD -> GRANTED to vm; generation becomes zcd_ledger_next_generation(). */
int zcd_ledger_grant(struct zcd_ledger *l, uint32_t id, uint16_t vm);

/* Judge a return (untrusted input) from vm; only ZCD_RETURN_OK changes state. */
enum zcd_return_verdict zcd_ledger_accept_return(struct zcd_ledger *l, uint16_t vm, uint32_t id,
						 uint32_t generation);

/* GRANTED to vm -> REVOKING without a return: the VM is gone or going. */
int zcd_ledger_abandon(struct zcd_ledger *l, uint32_t id, uint16_t vm);
int zcd_ledger_revoked(struct zcd_ledger *l, uint32_t id); /* REVOKING -> RECLAIMED */
int zcd_ledger_scrubbed(struct zcd_ledger *l, uint32_t id); /* RECLAIMED -> SCRUBBED */
int zcd_ledger_recycle(struct zcd_ledger *l, uint32_t id); /* SCRUBBED -> FREE */

static inline enum zcd_buf_state zcd_ledger_state(const struct zcd_ledger *l, uint32_t id)
{
	return (enum zcd_buf_state)l->entries[id].state;
}

/* Count a dataplane bug; safe from any thread. */
static inline void zcd_ledger_violation(struct zcd_ledger *l)
{
	__atomic_fetch_add(&l->violations, 1, __ATOMIC_RELAXED);
}

/* How many buffers are in each state: a walk of the whole ledger. */
void zcd_ledger_tally(const struct zcd_ledger *l, uint32_t count[ZCD_BUF_STATE_COUNT]);

const char *zcd_buf_state_name(enum zcd_buf_state s);

#endif /* ZCDEMUX_LEDGER_H */
