/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Live reconfiguration: what a new version of the configuration file
 * changes against the running one, and whether it may be applied without a
 * restart.
 *
 * The running configuration keeps a VM at a fixed index (its slot) for as
 * long as it exists: the demux table, the backends and the ledger name VMs
 * by that index.  A reload matches the new file's VMs to slots by name;
 * new VMs take free slots, and a removed VM keeps its slot until every
 * buffer it held is back.
 *
 * Pure C, no DPDK: the plan is computed, and tested, apart from applying it.
 */
#ifndef ZCDEMUX_RELOAD_H
#define ZCDEMUX_RELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zcdemux/config.h"

/* What the running dataplane has in each VM slot. */
enum zcd_vm_slot {
	ZCD_VM_FREE, /* no VM */
	ZCD_VM_SERVING,
	ZCD_VM_REMOVING, /* removed by a reload; its buffers are still coming back */
};

/* A running VM slot as the plan needs it. */
struct zcd_running_slot {
	enum zcd_vm_slot state;
	uint32_t credit_cap; /* the most credits its connection was set up for */
};

struct zcd_reload_plan {
	uint16_t slot_of[ZCD_MAX_VMS]; /* the new file's VM j runs in slot slot_of[j] */
	bool added[ZCD_MAX_VMS]; /* by slot */
	bool removed[ZCD_MAX_VMS]; /* by slot */
	bool readdressed[ZCD_MAX_VMS]; /* by slot: MACs or VLAN change */
	bool credits_changed[ZCD_MAX_VMS]; /* by slot */
	unsigned nb_added, nb_removed, nb_readdressed, nb_credits_changed;
	bool copy_threshold_changed;
	bool credit_timeout_changed;
	bool unknown_unicast_changed;
	int unknown_unicast_slot; /* or ZCD_UNKNOWN_UNICAST_DROP */
};

/*
 * Compare next (just read from running->path) with the running config,
 * whose VM slot k holds a VM when slots[k].state is not ZCD_VM_FREE; a
 * running VM's credits may change up to slots[k].credit_cap.
 * credit_room is how many buffers the pool can promise to VMs altogether:
 * a reload may not make the VMs' credits add up to more than that, unless
 * it does not raise their sum.
 *
 * Returns 0 with the plan (possibly a plan to change nothing), or -1 with
 * a one-line message in err, "<file>[:<line>]: <key>: <why>", when next
 * cannot be applied while running.  Does not log.
 */
int zcd_reload_plan(const struct zcd_config *running, const struct zcd_running_slot *slots,
		    const struct zcd_config *next, uint64_t credit_room,
		    struct zcd_reload_plan *plan, char *err, size_t errlen);

/* True if the plan changes anything. */
bool zcd_reload_plan_changes(const struct zcd_reload_plan *plan);

#endif /* ZCDEMUX_RELOAD_H */
