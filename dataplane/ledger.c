/* SPDX-License-Identifier: BSD-3-Clause */
/* The buffer ownership ledger; see ledger.h for the state machine. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

int zcd_ledger_init(struct zcd_ledger *l, uint32_t nb_bufs, struct zcd_ledger_entry *storage)
{
	*l = (struct zcd_ledger){0};
	if (nb_bufs == 0) {
		errno = EINVAL;
		return -1;
	}
	l->own_entries = storage == NULL;
	l->entries = storage != NULL ? storage : calloc(nb_bufs, sizeof(*l->entries));
	if (l->entries == NULL)
		return -1;
	for (uint32_t i = 0; i < nb_bufs; i++) {
		l->entries[i].owner = ZCD_OWNER_NONE;
		l->entries[i].last_owner = ZCD_OWNER_NONE;
		l->entries[i].state = ZCD_BUF_FREE;
	}
	l->nb_bufs = nb_bufs;
	return 0;
}

void zcd_ledger_fini(struct zcd_ledger *l)
{
	if (l->own_entries)
		free(l->entries);
	*l = (struct zcd_ledger){0};
}

/* Move id from state from to state to, or count a violation. */
static int move(struct zcd_ledger *l, uint32_t id, enum zcd_buf_state from, enum zcd_buf_state to)
{
	if (id >= l->nb_bufs || l->entries[id].state != from) {
		zcd_ledger_violation(l);
		return -1;
	}
	l->entries[id].state = (uint8_t)to;
	return 0;
}

int zcd_ledger_post(struct zcd_ledger *l, uint32_t id)
{
	return move(l, id, ZCD_BUF_FREE, ZCD_BUF_POSTED);
}

int zcd_ledger_unpost(struct zcd_ledger *l, uint32_t id)
{
	return move(l, id, ZCD_BUF_POSTED, ZCD_BUF_FREE);
}

int zcd_ledger_receive(struct zcd_ledger *l, uint32_t id)
{
	return move(l, id, ZCD_BUF_POSTED, ZCD_BUF_HELD);
}

int zcd_ledger_release(struct zcd_ledger *l, uint32_t id)
{
	return move(l, id, ZCD_BUF_HELD, ZCD_BUF_FREE);
}

int zcd_ledger_grant(struct zcd_ledger *l, uint32_t id, uint16_t vm)
{
	if (vm == ZCD_OWNER_NONE) {
		zcd_ledger_violation(l);
		return -1;
	}
	if (id >= l->nb_bufs || l->entries[id].state != ZCD_BUF_HELD) {
		zcd_ledger_violation(l);
		return -1;
	}
	/* Owner and generation first: an entry read after a kill (state file)
	 * that says GRANTED names whom to and at what generation. */
	l->entries[id].generation++;
	l->entries[id].owner = vm;
	l->entries[id].last_owner = vm;
	__atomic_store_n(&l->entries[id].state, (uint8_t)ZCD_BUF_GRANTED, __ATOMIC_RELEASE);
	return 0;
}

enum zcd_return_verdict zcd_ledger_accept_return(struct zcd_ledger *l, uint16_t vm, uint32_t id,
						 uint32_t generation)
{
	const struct zcd_ledger_entry *e;
	int32_t age;

	if (id >= l->nb_bufs)
		return ZCD_RETURN_FORGED;
	e = &l->entries[id];
	/* Serial-number comparison: generations wrap after 2^32 grants. */
	age = (int32_t)(e->generation - generation);
	if (age < 0)
		return ZCD_RETURN_FORGED; /* a generation not issued yet */
	if (age > 0)
		return ZCD_RETURN_STALE;
	if (e->last_owner != vm)
		return ZCD_RETURN_FORGED;
	if (e->state != ZCD_BUF_GRANTED || e->owner != vm)
		return ZCD_RETURN_DUPLICATE;
	move(l, id, ZCD_BUF_GRANTED, ZCD_BUF_REVOKING);
	return ZCD_RETURN_OK;
}

int zcd_ledger_abandon(struct zcd_ledger *l, uint32_t id, uint16_t vm)
{
	if (id >= l->nb_bufs || vm == ZCD_OWNER_NONE || l->entries[id].owner != vm) {
		zcd_ledger_violation(l);
		return -1;
	}
	return move(l, id, ZCD_BUF_GRANTED, ZCD_BUF_REVOKING);
}

int zcd_ledger_revoked(struct zcd_ledger *l, uint32_t id)
{
	if (move(l, id, ZCD_BUF_REVOKING, ZCD_BUF_RECLAIMED) != 0)
		return -1;
	l->entries[id].owner = ZCD_OWNER_NONE;
	return 0;
}

int zcd_ledger_scrubbed(struct zcd_ledger *l, uint32_t id)
{
	return move(l, id, ZCD_BUF_RECLAIMED, ZCD_BUF_SCRUBBED);
}

int zcd_ledger_recycle(struct zcd_ledger *l, uint32_t id)
{
	return move(l, id, ZCD_BUF_SCRUBBED, ZCD_BUF_FREE);
}

void zcd_ledger_tally(const struct zcd_ledger *l, uint32_t count[ZCD_BUF_STATE_COUNT])
{
	memset(count, 0, ZCD_BUF_STATE_COUNT * sizeof(count[0]));
	for (uint32_t id = 0; id < l->nb_bufs; id++)
		count[l->entries[id].state]++;
}

const char *zcd_buf_state_name(enum zcd_buf_state s)
{
	static const char *const names[ZCD_BUF_STATE_COUNT] = {
		[ZCD_BUF_FREE] = "free",
		[ZCD_BUF_POSTED] = "posted",
		[ZCD_BUF_HELD] = "held",
		[ZCD_BUF_GRANTED] = "granted",
		[ZCD_BUF_REVOKING] = "revoking",
		[ZCD_BUF_RECLAIMED] = "reclaimed",
		[ZCD_BUF_SCRUBBED] = "scrubbed",
	};

	return (unsigned)s < ZCD_BUF_STATE_COUNT ? names[s] : "invalid";
}
