/* SPDX-License-Identifier: BSD-3-Clause */
/* The ownership ledger: every transition from every state, and return verdicts. */
#include <stdbool.h>

#include "check.h"
#include "ledger.h"

#define VM_A 0
#define VM_B 1

/* Drive buffer id from FREE to state along the only legal path. */
static void drive_to(struct zcd_ledger *l, uint32_t id, enum zcd_buf_state state)
{
	static const enum zcd_buf_state path[] = {
		ZCD_BUF_FREE,	   ZCD_BUF_POSTED,    ZCD_BUF_HELD,	ZCD_BUF_GRANTED,
		ZCD_BUF_REVOKING, ZCD_BUF_RECLAIMED, ZCD_BUF_SCRUBBED,
	};

	for (unsigned step = 1; step < sizeof(path) / sizeof(path[0]) && path[step - 1] != state;
	     step++) {
		switch (path[step]) {
		case ZCD_BUF_POSTED:
			CHECK_EQ(zcd_ledger_post(l, id), 0);
			break;
		case ZCD_BUF_HELD:
			CHECK_EQ(zcd_ledger_receive(l, id), 0);
			break;
		case ZCD_BUF_GRANTED:
			CHECK_EQ(zcd_ledger_grant(l, id, VM_A), 0);
			break;
		case ZCD_BUF_REVOKING:
			CHECK_EQ(zcd_ledger_accept_return(l, VM_A, id, l->entries[id].generation),
				 ZCD_RETURN_OK);
			break;
		case ZCD_BUF_RECLAIMED:
			CHECK_EQ(zcd_ledger_revoked(l, id), 0);
			break;
		case ZCD_BUF_SCRUBBED:
			CHECK_EQ(zcd_ledger_scrubbed(l, id), 0);
			break;
		default:
			break;
		}
	}
	CHECK_EQ(zcd_ledger_state(l, id), state);
}

struct transition {
	const char *name;
	int (*apply)(struct zcd_ledger *l, uint32_t id);
	enum zcd_buf_state from[2];
	unsigned nb_from;
	enum zcd_buf_state to;
};

static int grant_a(struct zcd_ledger *l, uint32_t id)
{
	return zcd_ledger_grant(l, id, VM_A);
}

static int abandon_a(struct zcd_ledger *l, uint32_t id)
{
	return zcd_ledger_abandon(l, id, VM_A);
}

static const struct transition transitions[] = {
	{"post", zcd_ledger_post, {ZCD_BUF_FREE}, 1, ZCD_BUF_POSTED},
	{"unpost", zcd_ledger_unpost, {ZCD_BUF_POSTED}, 1, ZCD_BUF_FREE},
	{"receive", zcd_ledger_receive, {ZCD_BUF_POSTED}, 1, ZCD_BUF_HELD},
	{"release", zcd_ledger_release, {ZCD_BUF_HELD}, 1, ZCD_BUF_FREE},
	{"grant", grant_a, {ZCD_BUF_HELD}, 1, ZCD_BUF_GRANTED},
	{"revoked", zcd_ledger_revoked, {ZCD_BUF_REVOKING}, 1, ZCD_BUF_RECLAIMED},
	{"abandon", abandon_a, {ZCD_BUF_GRANTED}, 1, ZCD_BUF_REVOKING},
	{"scrubbed", zcd_ledger_scrubbed, {ZCD_BUF_RECLAIMED}, 1, ZCD_BUF_SCRUBBED},
	{"recycle", zcd_ledger_recycle, {ZCD_BUF_SCRUBBED}, 1, ZCD_BUF_FREE},
};

static bool starts_from(const struct transition *t, enum zcd_buf_state s)
{
	for (unsigned i = 0; i < t->nb_from; i++)
		if (t->from[i] == s)
			return true;
	return false;
}

/* Each transition from each state: legal ones move, the rest change nothing. */
static void test_every_transition_from_every_state(void)
{
	for (unsigned t = 0; t < sizeof(transitions) / sizeof(transitions[0]); t++) {
		for (unsigned s = 0; s < ZCD_BUF_STATE_COUNT; s++) {
			const struct transition *tr = &transitions[t];
			struct zcd_ledger l;
			struct zcd_ledger_entry before;
			uint32_t count[ZCD_BUF_STATE_COUNT];
			int rc;

			CHECK_EQ(zcd_ledger_init(&l, 4, NULL), 0);
			drive_to(&l, 2, (enum zcd_buf_state)s);
			before = l.entries[2];
			rc = tr->apply(&l, 2);
			if (starts_from(tr, (enum zcd_buf_state)s)) {
				if (rc != 0)
					fprintf(stderr, "legal %s from %s refused\n", tr->name,
						zcd_buf_state_name(s));
				CHECK_EQ(rc, 0);
				CHECK_EQ(zcd_ledger_state(&l, 2), tr->to);
				CHECK_EQ(l.violations, 0);
				zcd_ledger_tally(&l, count);
				CHECK_EQ(count[tr->to], tr->to == ZCD_BUF_FREE ? 4 : 1);
			} else {
				if (rc == 0)
					fprintf(stderr, "illegal %s from %s accepted\n", tr->name,
						zcd_buf_state_name(s));
				CHECK_EQ(rc, -1);
				CHECK_EQ(l.violations, 1);
				CHECK_EQ(l.entries[2].state, before.state);
				CHECK_EQ(l.entries[2].owner, before.owner);
				CHECK_EQ(l.entries[2].generation, before.generation);
			}
			/* The other buffers never move. */
			for (uint32_t id = 0; id < 4; id++)
				if (id != 2)
					CHECK_EQ(zcd_ledger_state(&l, id), ZCD_BUF_FREE);
			zcd_ledger_fini(&l);
		}
	}
}

static void test_out_of_range_ids(void)
{
	uint32_t count[ZCD_BUF_STATE_COUNT];
	struct zcd_ledger l;

	CHECK_EQ(zcd_ledger_init(&l, 4, NULL), 0);
	CHECK_EQ(zcd_ledger_post(&l, 4), -1);
	CHECK_EQ(zcd_ledger_post(&l, UINT32_MAX), -1);
	CHECK_EQ(zcd_ledger_abandon(&l, 4, VM_A), -1);
	CHECK_EQ(zcd_ledger_accept_return(&l, VM_A, 4, 0), ZCD_RETURN_FORGED);
	CHECK_EQ(l.violations, 3);
	zcd_ledger_tally(&l, count);
	CHECK_EQ(count[ZCD_BUF_FREE], 4);
	zcd_ledger_fini(&l);
	CHECK_EQ(zcd_ledger_init(&l, 0, NULL), -1);
}

static void test_generation_and_owner(void)
{
	struct zcd_ledger l;

	CHECK_EQ(zcd_ledger_init(&l, 2, NULL), 0);
	CHECK_EQ(zcd_ledger_next_generation(&l, 0), 1);
	drive_to(&l, 0, ZCD_BUF_GRANTED);
	CHECK_EQ(l.entries[0].generation, 1);
	CHECK_EQ(l.entries[0].owner, VM_A);
	CHECK_EQ(zcd_ledger_next_generation(&l, 0), 2);
	/* Only the owner can abandon, and ZCD_OWNER_NONE never owns. */
	CHECK_EQ(zcd_ledger_abandon(&l, 0, VM_B), -1);
	CHECK_EQ(zcd_ledger_grant(&l, 1, ZCD_OWNER_NONE), -1);
	CHECK_EQ(l.violations, 2);
	CHECK_EQ(zcd_ledger_abandon(&l, 0, VM_A), 0);
	CHECK_EQ(l.entries[0].owner, VM_A); /* it still holds it until revoked */
	/* A return for an abandoned buffer is a duplicate: it is on its way back. */
	CHECK_EQ(zcd_ledger_accept_return(&l, VM_A, 0, l.entries[0].generation),
		 ZCD_RETURN_DUPLICATE);
	CHECK_EQ(zcd_ledger_revoked(&l, 0), 0);
	CHECK_EQ(l.entries[0].owner, ZCD_OWNER_NONE);
	CHECK_EQ(l.entries[0].last_owner, VM_A);
	zcd_ledger_fini(&l);
}

/* Forged, stale and duplicate returns are told apart and never move a buffer. */
static void test_return_verdicts(void)
{
	struct zcd_ledger l;
	uint32_t gen1, gen2;

	CHECK_EQ(zcd_ledger_init(&l, 3, NULL), 0);
	/* Never handed out: forged. */
	CHECK_EQ(zcd_ledger_accept_return(&l, VM_A, 1, 0), ZCD_RETURN_FORGED);
	CHECK_EQ(zcd_ledger_accept_return(&l, VM_A, 1, 1), ZCD_RETURN_FORGED);
	CHECK_EQ(zcd_ledger_state(&l, 1), ZCD_BUF_FREE);

	drive_to(&l, 0, ZCD_BUF_GRANTED);
	gen1 = l.entries[0].generation;
	/* Another VM naming A's buffer: forged; a generation not issued: forged. */
	CHECK_EQ(zcd_ledger_accept_return(&l, VM_B, 0, gen1), ZCD_RETURN_FORGED);
	CHECK_EQ(zcd_ledger_accept_return(&l, VM_A, 0, gen1 + 1), ZCD_RETURN_FORGED);
	CHECK_EQ(zcd_ledger_state(&l, 0), ZCD_BUF_GRANTED);
	/* The real return, then the same again: duplicate. */
	CHECK_EQ(zcd_ledger_accept_return(&l, VM_A, 0, gen1), ZCD_RETURN_OK);
	CHECK_EQ(zcd_ledger_state(&l, 0), ZCD_BUF_REVOKING);
	CHECK_EQ(zcd_ledger_accept_return(&l, VM_A, 0, gen1), ZCD_RETURN_DUPLICATE);
	CHECK_EQ(zcd_ledger_revoked(&l, 0), 0);
	CHECK_EQ(zcd_ledger_accept_return(&l, VM_A, 0, gen1), ZCD_RETURN_DUPLICATE);
	CHECK_EQ(zcd_ledger_scrubbed(&l, 0), 0);
	CHECK_EQ(zcd_ledger_recycle(&l, 0), 0);
	CHECK_EQ(zcd_ledger_accept_return(&l, VM_A, 0, gen1), ZCD_RETURN_DUPLICATE);
	CHECK_EQ(zcd_ledger_state(&l, 0), ZCD_BUF_FREE);

	/* Reused for VM B: A's old generation is stale, B's is fine. */
	CHECK_EQ(zcd_ledger_post(&l, 0), 0);
	CHECK_EQ(zcd_ledger_receive(&l, 0), 0);
	CHECK_EQ(zcd_ledger_grant(&l, 0, VM_B), 0);
	gen2 = l.entries[0].generation;
	CHECK_EQ(gen2, gen1 + 1);
	CHECK_EQ(zcd_ledger_accept_return(&l, VM_A, 0, gen1), ZCD_RETURN_STALE);
	CHECK_EQ(zcd_ledger_accept_return(&l, VM_A, 0, gen2), ZCD_RETURN_FORGED);
	CHECK_EQ(zcd_ledger_state(&l, 0), ZCD_BUF_GRANTED);
	CHECK_EQ(zcd_ledger_accept_return(&l, VM_B, 0, gen2), ZCD_RETURN_OK);
	CHECK_EQ(l.violations, 0);
	zcd_ledger_fini(&l);
}

/* Generations compare as serial numbers across the 2^32 wrap. */
static void test_generation_wrap(void)
{
	struct zcd_ledger l;

	CHECK_EQ(zcd_ledger_init(&l, 1, NULL), 0);
	l.entries[0].generation = UINT32_MAX - 1;
	drive_to(&l, 0, ZCD_BUF_GRANTED);
	CHECK_EQ(l.entries[0].generation, UINT32_MAX);
	CHECK_EQ(zcd_ledger_accept_return(&l, VM_A, 0, UINT32_MAX - 1), ZCD_RETURN_STALE);
	CHECK_EQ(zcd_ledger_accept_return(&l, VM_A, 0, 0), ZCD_RETURN_FORGED);
	CHECK_EQ(zcd_ledger_abandon(&l, 0, VM_A), 0);
	CHECK_EQ(zcd_ledger_revoked(&l, 0), 0);
	CHECK_EQ(zcd_ledger_scrubbed(&l, 0), 0);
	CHECK_EQ(zcd_ledger_recycle(&l, 0), 0);
	CHECK_EQ(zcd_ledger_post(&l, 0), 0);
	CHECK_EQ(zcd_ledger_receive(&l, 0), 0);
	CHECK_EQ(zcd_ledger_grant(&l, 0, VM_A), 0);
	CHECK_EQ(l.entries[0].generation, 0);
	CHECK_EQ(zcd_ledger_accept_return(&l, VM_A, 0, UINT32_MAX), ZCD_RETURN_STALE);
	CHECK_EQ(zcd_ledger_accept_return(&l, VM_A, 0, 0), ZCD_RETURN_OK);
	zcd_ledger_fini(&l);
}

int main(void)
{
	test_every_transition_from_every_state();
	test_out_of_range_ids();
	test_generation_and_owner();
	test_return_verdicts();
	test_generation_wrap();
	return check_report("test_ledger");
}
