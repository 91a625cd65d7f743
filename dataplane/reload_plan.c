/* SPDX-License-Identifier: BSD-3-Clause */
/* Comparing a new configuration with the running one; see reload.h. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "reload.h"

#define RESTART "cannot change while running; restart zcdemux"

/* A setting that only a restart can change: the pool, the ports, the backends. */
static int fixed_u32(const char *path, const char *key, uint32_t was, uint32_t now, char *err,
		     size_t errlen)
{
	if (was == now)
		return 0;
	snprintf(err, errlen, "%s: %s: %" PRIu32 " -> %" PRIu32 ": " RESTART, path, key, was, now);
	return -1;
}

static int fixed_str(const char *path, const char *key, const char *was, const char *now,
		     char *err, size_t errlen)
{
	if (strcmp(was, now) == 0)
		return 0;
	snprintf(err, errlen, "%s: %s: \"%s\" -> \"%s\": " RESTART, path, key, was, now);
	return -1;
}

static int check_fixed(const struct zcd_config *run, const struct zcd_config *next, char *err,
		       size_t errlen)
{
	const char *path = next->path;

	if (next->nb_ports != run->nb_ports) {
		snprintf(err, errlen, "%s: ports: %u -> %u ports: " RESTART, path, run->nb_ports,
			 next->nb_ports);
		return -1;
	}
	for (unsigned p = 0; p < next->nb_ports; p++) {
		if (strcmp(next->ports[p].name, run->ports[p].name) != 0 ||
		    strcmp(next->ports[p].devargs, run->ports[p].devargs) != 0) {
			snprintf(err, errlen, "%s:%u: ports[%u]: " RESTART, path, next->ports[p].line,
				 p);
			return -1;
		}
	}
	if (fixed_str(path, "hypervisor.backend", run->hv_backend, next->hv_backend, err, errlen) ||
	    fixed_str(path, "iommu.backend", run->iommu_backend, next->iommu_backend, err, errlen) ||
	    fixed_u32(path, "iommu.mode", run->iommu_mode, next->iommu_mode, err, errlen) ||
	    fixed_u32(path, "iommu.deferred_batch", run->iommu_deferred_batch,
		      next->iommu_deferred_batch, err, errlen) ||
	    fixed_u32(path, "iommu.deferred_max_us", run->iommu_deferred_us,
		      next->iommu_deferred_us, err, errlen) ||
	    fixed_u32(path, "iommu.check", run->iommu_check, next->iommu_check, err, errlen) ||
	    fixed_u32(path, "dataplane.mtu", run->mtu, next->mtu, err, errlen) ||
	    fixed_u32(path, "dataplane.rx_descriptors", run->rx_descriptors, next->rx_descriptors,
		      err, errlen) ||
	    fixed_u32(path, "dataplane.burst", run->burst, next->burst, err, errlen) ||
	    fixed_u32(path, "dataplane.buffers", run->buffers, next->buffers, err, errlen))
		return -1;
	return 0;
}

/* How the guest is reached: only a new connection can change it. */
static const char *connection_key_changed(const struct zcd_vm_config *was,
					  const struct zcd_vm_config *now)
{
	if (was->notify != now->notify)
		return "notify";
	if (memcmp(&was->xen, &now->xen, sizeof(was->xen)) != 0)
		return "xen.domid";
	if (strcmp(was->sim.sink, now->sim.sink) != 0 || was->sim.stall != now->sim.stall ||
	    was->sim.instant_return != now->sim.instant_return ||
	    was->sim.hostile != now->sim.hostile ||
	    was->sim.scribble_after != now->sim.scribble_after ||
	    was->sim.reboot_every != now->sim.reboot_every || was->sim.hold != now->sim.hold)
		return "sim";
	return NULL;
}

static bool same_address(const struct zcd_vm_config *a, const struct zcd_vm_config *b)
{
	return a->vlan == b->vlan && a->nb_macs == b->nb_macs &&
	       memcmp(a->macs, b->macs, a->nb_macs * sizeof(a->macs[0])) == 0;
}

/* The running VM slot named name (FREE if none), and which one. */
static enum zcd_vm_slot find_slot(const struct zcd_config *run,
				  const struct zcd_running_slot *slots, const char *name,
				  unsigned *slot)
{
	for (unsigned k = 0; k < run->nb_vms; k++) {
		if (slots[k].state != ZCD_VM_FREE && strcmp(run->vms[k].name, name) == 0) {
			*slot = k;
			return slots[k].state;
		}
	}
	return ZCD_VM_FREE;
}

int zcd_reload_plan(const struct zcd_config *run, const struct zcd_running_slot *slots,
		    const struct zcd_config *next, uint64_t credit_room,
		    struct zcd_reload_plan *plan, char *err, size_t errlen)
{
	bool taken[ZCD_MAX_VMS] = {false}; /* by slot, after the reload */
	uint64_t credits_before = 0, credits_after = 0;
	unsigned free_slot = 0;

	memset(plan, 0, sizeof(*plan));
	if (check_fixed(run, next, err, errlen) != 0)
		return -1;
	for (unsigned k = 0; k < run->nb_vms; k++) {
		if (slots[k].state == ZCD_VM_FREE)
			continue;
		credits_before += run->vms[k].credits;
		taken[k] = true; /* until a removed one's buffers are back */
		if (slots[k].state == ZCD_VM_SERVING)
			plan->removed[k] = true; /* unless next names it */
		else
			credits_after += run->vms[k].credits;
	}
	for (unsigned j = 0; j < next->nb_vms; j++) {
		const struct zcd_vm_config *vc = &next->vms[j];
		const char *key;
		unsigned k;

		switch (find_slot(run, slots, vc->name, &k)) {
		case ZCD_VM_REMOVING:
			snprintf(err, errlen, "%s:%u: vms[%u]: %s is still being removed (its "
				 "buffers are coming back); reload again once it is gone",
				 next->path, vc->line, j, vc->name);
			return -1;
		case ZCD_VM_SERVING:
			key = connection_key_changed(&run->vms[k], vc);
			if (key != NULL) {
				snprintf(err, errlen, "%s:%u: vms[%u].%s: cannot change for a running "
					 "VM (%s); remove it in one reload and add it back in the next",
					 next->path, vc->line, j, key, vc->name);
				return -1;
			}
			if (vc->credits > slots[k].credit_cap) {
				snprintf(err, errlen, "%s:%u: vms[%u].credits: %u is more than the %u "
					 "%s was connected with; remove it in one reload and add it "
					 "back in the next", next->path, vc->line, j, vc->credits,
					 slots[k].credit_cap, vc->name);
				return -1;
			}
			plan->removed[k] = false;
			plan->readdressed[k] = !same_address(&run->vms[k], vc);
			plan->credits_changed[k] = run->vms[k].credits != vc->credits;
			break;
		case ZCD_VM_FREE:
			while (free_slot < ZCD_MAX_VMS && taken[free_slot])
				free_slot++;
			if (free_slot == ZCD_MAX_VMS) {
				snprintf(err, errlen, "%s:%u: vms[%u]: no room for %s while removed VMs "
					 "are still giving buffers back; reload again later",
					 next->path, vc->line, j, vc->name);
				return -1;
			}
			k = free_slot;
			taken[k] = true;
			plan->added[k] = true;
			break;
		}
		plan->slot_of[j] = (uint16_t)k;
		credits_after += vc->credits;
	}
	for (unsigned k = 0; k < ZCD_MAX_VMS; k++) {
		if (plan->removed[k])
			credits_after += run->vms[k].credits; /* until its buffers are back */
		plan->nb_added += plan->added[k];
		plan->nb_removed += plan->removed[k];
		plan->nb_readdressed += plan->readdressed[k];
		plan->nb_credits_changed += plan->credits_changed[k];
	}
	/* A VM that never returns may only starve itself: that holds while
	 * the pool has a page for every credit. */
	if (credits_after > credit_room && credits_after > credits_before) {
		snprintf(err, errlen, "%s: vms: the credits would add up to %" PRIu64 " (VMs still "
			 "being removed included), but the pool has room for %" PRIu64 "; raise "
			 "dataplane.buffers (takes a restart) or give fewer credits",
			 next->path, credits_after, credit_room);
		return -1;
	}
	plan->unknown_unicast_slot = next->unknown_unicast_vm >= 0
					     ? plan->slot_of[next->unknown_unicast_vm]
					     : ZCD_UNKNOWN_UNICAST_DROP;
	plan->unknown_unicast_changed = plan->unknown_unicast_slot != run->unknown_unicast_vm;
	plan->copy_threshold_changed = next->copy_threshold != run->copy_threshold;
	plan->credit_timeout_changed = next->credit_timeout_ms != run->credit_timeout_ms;
	return 0;
}

bool zcd_reload_plan_changes(const struct zcd_reload_plan *plan)
{
	return plan->nb_added != 0 || plan->nb_removed != 0 || plan->nb_readdressed != 0 ||
	       plan->nb_credits_changed != 0 || plan->copy_threshold_changed ||
	       plan->credit_timeout_changed || plan->unknown_unicast_changed;
}
