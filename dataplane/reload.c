/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Applying a new configuration while running (SIGHUP, /zcdemux/reload).
 *
 * Order, so that traffic to unchanged VMs flows throughout:
 *   1. new VMs get their slot, their state and a backend connection;
 *   2. the new demux table is built beside the running one;
 *   3. with the remote workers held between bursts, the table, the VMs'
 *      addresses and credits and the removed VMs' slots are switched over;
 *   4. removed VMs are disconnected and their buffers taken back; their
 *      slots are freed once the last one is revoked (zcd_dataplane_forget_vm).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_malloc.h>

#include "dataplane.h"

/* Record the outcome for telemetry and log it. */
static int reload_done(struct zcd_dataplane *dp, uint32_t serving, bool ok, const char *message)
{
	struct zcd_reload_status *st = &dp->reload;

	if (ok) {
		st->reloads++;
		ZCD_LOG(INFO, "%s\n", message);
	} else {
		st->failures++;
		ZCD_LOG(ERR, "reload rejected, the running configuration stays: %s\n", message);
	}
	rte_spinlock_lock(&st->lock);
	st->ok = ok;
	snprintf(st->message, sizeof(st->message), "%s", message);
	rte_spinlock_unlock(&st->lock);
	__atomic_store_n(&st->done, serving, __ATOMIC_RELEASE);
	return ok ? 0 : -1;
}

/* Slot k, taken by a VM that could not be added, is free again. */
static void slot_clear(struct zcd_dataplane *dp, uint16_t k)
{
	rte_free(dp->vms[k].pending_revoke);
	memset(&dp->vms[k], 0, sizeof(dp->vms[k]));
	memset(&dp->cfg->vms[k], 0, sizeof(dp->cfg->vms[k]));
	zcd_state_name_vm(dp->state, k, "");
}

/* Undo step 1 for the VMs added so far. */
static void unadd(struct zcd_dataplane *dp, const bool *added, unsigned upto)
{
	for (uint16_t k = 0; k < upto; k++) {
		if (!added[k])
			continue;
		zcd_dataplane_hv_lock(dp);
		dp->hv_ops->vm_disconnect(dp->hv, k);
		dp->hv_ops->vm_remove(dp->hv, k);
		zcd_dataplane_hv_unlock(dp);
		slot_clear(dp, k);
	}
}

/* Step 1: VM next->vms[j] into its new slot k, connected as at start. */
static int add_vm(struct zcd_dataplane *dp, uint16_t k, const struct zcd_vm_config *vc,
		  char *err, size_t errlen)
{
	int rc;

	/* Nobody reads a free slot; the backend keeps a pointer to it. */
	dp->cfg->vms[k] = *vc;
	if (zcd_dataplane_vm_init(dp, k) != 0) {
		snprintf(err, errlen, "%s: %s: out of DPDK memory", dp->cfg->path, vc->name);
		slot_clear(dp, k);
		return -1;
	}
	/* The slot stays FREE until switch_over: only the main lcore knows of it. */
	zcd_dataplane_hv_lock(dp);
	rc = dp->hv_ops->vm_add(dp->hv, k, &dp->cfg->vms[k], err, errlen);
	if (rc == 0) {
		rc = dp->hv_ops->vm_connect(dp->hv, k, err, errlen);
		if (rc != 0)
			dp->hv_ops->vm_remove(dp->hv, k);
	}
	zcd_dataplane_hv_unlock(dp);
	if (rc != 0)
		slot_clear(dp, k);
	return rc;
}

/* Append "; <what> vm4, vm5" for the VMs of slots k with which[k]. */
static size_t name_list(const struct zcd_dataplane *dp, const char *what, const bool *which,
			char *out, size_t at, size_t len)
{
	bool first = true;

	for (unsigned k = 0; k < ZCD_MAX_VMS && at < len; k++) {
		if (!which[k])
			continue;
		at += (size_t)snprintf(out + at, len - at, "%s%s", first ? what : ", ",
				       dp->cfg->vms[k].name);
		first = false;
	}
	return at;
}

/* "reloaded FILE; added vm4; removed vm2; new MACs or VLAN vm3" */
static void summary(const struct zcd_dataplane *dp, const struct zcd_reload_plan *plan, char *out,
		    size_t len)
{
	size_t at = (size_t)snprintf(out, len, "reloaded %s", dp->cfg->path);

	at = name_list(dp, "; added ", plan->added, out, at, len);
	at = name_list(dp, "; removed ", plan->removed, out, at, len);
	at = name_list(dp, "; new MACs or VLAN for ", plan->readdressed, out, at, len);
	at = name_list(dp, "; new credits for ", plan->credits_changed, out, at, len);
	if (at < len && plan->credit_timeout_changed)
		at += (size_t)snprintf(out + at, len - at, "; credit_timeout_ms %u",
				       dp->cfg->credit_timeout_ms);
	if (at < len && plan->copy_threshold_changed)
		at += (size_t)snprintf(out + at, len - at, "; copy_threshold %u",
				       dp->cfg->copy_threshold);
	if (at < len && plan->unknown_unicast_changed)
		snprintf(out + at, len - at, "; unknown_unicast %s",
			 dp->cfg->unknown_unicast_vm >= 0
				 ? dp->cfg->vms[dp->cfg->unknown_unicast_vm].name
				 : "drop");
}

/* Step 3, workers held: the running configuration becomes next. */
static void switch_over(struct zcd_dataplane *dp, const struct zcd_config *next,
			const struct zcd_reload_plan *plan, struct zcd_demux_table *demux)
{
	struct zcd_demux_table old = dp->demux;

	dp->demux = *demux;
	*demux = old;
	for (unsigned j = 0; j < next->nb_vms; j++) {
		uint16_t k = plan->slot_of[j];
		struct zcd_vm_config *vc = &dp->cfg->vms[k];

		if (plan->credits_changed[k])
			vc->credits = next->vms[j].credits;
		if (plan->readdressed[k]) {
			memcpy(vc->macs, next->vms[j].macs, sizeof(vc->macs));
			vc->nb_macs = next->vms[j].nb_macs;
			vc->vlan = next->vms[j].vlan;
		}
		if (plan->added[k]) {
			__atomic_store_n(&dp->vms[k].slot, ZCD_VM_SERVING, __ATOMIC_RELEASE);
			dp->nb_vms = RTE_MAX(dp->nb_vms, k + 1u);
		}
	}
	for (uint16_t k = 0; k < dp->nb_vms; k++) {
		if (!plan->removed[k])
			continue;
		__atomic_store_n(&dp->vms[k].slot, ZCD_VM_REMOVING, __ATOMIC_RELEASE);
		dp->vms[k].connected = false;
	}
	dp->cfg->nb_vms = dp->nb_vms;
	dp->cfg->copy_threshold = next->copy_threshold;
	dp->cfg->credit_timeout_ms = next->credit_timeout_ms;
	dp->cfg->unknown_unicast_vm = plan->unknown_unicast_slot;
	dp->copy_threshold = next->copy_threshold;
}

int zcd_dataplane_reload(struct zcd_dataplane *dp)
{
	uint32_t serving = __atomic_load_n(&dp->reload.requested, __ATOMIC_ACQUIRE);
	struct zcd_running_slot slots[ZCD_MAX_VMS] = {{0}};
	bool listed[ZCD_MAX_VMS] = {false};
	struct zcd_reload_plan *plan = NULL;
	struct zcd_config *next, *staged = NULL;
	struct zcd_demux_table demux;
	char msg[sizeof(dp->reload.message)];
	int rc = -1;

	ZCD_LOG(INFO, "reloading %s\n", dp->cfg->path);
	next = zcd_config_load(dp->cfg->path, msg, sizeof(msg));
	if (next == NULL)
		return reload_done(dp, serving, false, msg);
	plan = malloc(sizeof(*plan));
	staged = malloc(sizeof(*staged));
	if (plan == NULL || staged == NULL) {
		snprintf(msg, sizeof(msg), "%s: out of memory", dp->cfg->path);
		goto out;
	}
	for (unsigned k = 0; k < dp->nb_vms; k++)
		slots[k] = (struct zcd_running_slot){.state = dp->vms[k].slot,
						     .credit_cap = dp->vms[k].credit_cap};
	if (zcd_reload_plan(dp->cfg, slots, next, dp->credit_room, plan, msg, sizeof(msg)) != 0)
		goto out;
	if (!zcd_reload_plan_changes(plan)) {
		snprintf(msg, sizeof(msg), "reloaded %s: nothing changed", next->path);
		rc = 0;
		goto out;
	}
	if ((plan->nb_added != 0 || plan->nb_removed != 0) && dp->hv_ops->vm_add == NULL) {
		snprintf(msg, sizeof(msg), "%s: vms: the %s backend cannot add or remove VMs while "
			 "running; restart zcdemux", next->path, dp->hv_ops->name);
		goto out;
	}
	if (plan->nb_credits_changed != 0 && dp->hv_ops->vm_set_credits == NULL) {
		snprintf(msg, sizeof(msg), "%s: vms: the %s backend cannot change a running VM's "
			 "credits; restart zcdemux", next->path, dp->hv_ops->name);
		goto out;
	}

	/* 1. */
	for (unsigned j = 0; j < next->nb_vms; j++) {
		uint16_t k = plan->slot_of[j];

		if (plan->added[k] && add_vm(dp, k, &next->vms[j], msg, sizeof(msg)) != 0) {
			unadd(dp, plan->added, k);
			goto out;
		}
	}
	/* 2. The table as it will be: next's VMs in their slots. */
	*staged = *dp->cfg;
	for (unsigned j = 0; j < next->nb_vms; j++) {
		staged->vms[plan->slot_of[j]] = next->vms[j];
		listed[plan->slot_of[j]] = true;
		staged->nb_vms = RTE_MAX(staged->nb_vms, plan->slot_of[j] + 1u);
	}
	staged->unknown_unicast_vm = plan->unknown_unicast_slot;
	if (zcd_demux_build(&demux, staged, listed) != 0) {
		snprintf(msg, sizeof(msg), "%s: out of memory for the demux table", next->path);
		unadd(dp, plan->added, ZCD_MAX_VMS);
		goto out;
	}
	/* 3. */
	zcd_dataplane_pause_workers(dp);
	switch_over(dp, next, plan, &demux);
	zcd_dataplane_resume_workers(dp);
	zcd_demux_free(&demux);
	for (unsigned j = 0; j < next->nb_vms; j++)
		if (plan->credits_changed[plan->slot_of[j]])
			zcd_dataplane_set_credits(dp, plan->slot_of[j], next->vms[j].credits);
	/* 4. */
	for (uint16_t k = 0; k < dp->nb_vms; k++) {
		if (!plan->removed[k])
			continue;
		zcd_dataplane_hv_lock(dp);
		dp->hv_ops->vm_disconnect(dp->hv, k);
		zcd_dataplane_hv_unlock(dp);
		ZCD_LOG(INFO, "%s: removed from the configuration; taking back %u buffers\n",
			dp->cfg->vms[k].name, zcd_dataplane_take_back(dp, k));
	}
	summary(dp, plan, msg, sizeof(msg));
	rc = 0;
out:
	free(staged);
	free(plan);
	zcd_config_free(next);
	return reload_done(dp, serving, rc == 0, msg);
}
