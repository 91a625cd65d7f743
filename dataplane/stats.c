/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reporting: the stats JSON written at exit, the end-of-run summary, the
 * periodic log line and the DPDK telemetry commands.  Counters are written
 * by the dataplane thread only; readers here take relaxed loads.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_telemetry.h>

#include "dataplane.h"

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

struct zcd_port_driver_counters zcd_port_driver_counters(const struct zcd_port_state *port)
{
	struct zcd_port_driver_counters c = port->at_close;
	struct rte_eth_stats st;

	if (port->started && rte_eth_stats_get(port->port_id, &st) == 0) {
		c.rx_missed = st.imissed;
		c.rx_nombuf = st.rx_nombuf;
	}
	return c;
}

/* Frames the drivers could not receive for want of a free buffer. */
struct zcd_port_counters zcd_port_counters(const struct zcd_dataplane *dp, unsigned port)
{
	struct zcd_port_counters sum = {0};

	for (unsigned i = 0; i < dp->nb_workers; i++) {
		sum.rx_packets += LOAD(dp->workers[i].port_c[port].rx_packets);
		sum.rx_bytes += LOAD(dp->workers[i].port_c[port].rx_bytes);
	}
	return sum;
}

uint64_t zcd_drops(const struct zcd_dataplane *dp, enum zcd_drop_reason reason)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < dp->nb_workers; i++)
		sum += LOAD(dp->workers[i].drops[reason]);
	return sum;
}

uint64_t zcd_scrubbed_bytes(const struct zcd_dataplane *dp)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < dp->nb_workers; i++)
		sum += LOAD(dp->workers[i].scrubbed_bytes);
	return sum;
}

static uint64_t pool_empty_drops(const struct zcd_dataplane *dp)
{
	uint64_t total = 0;

	for (unsigned p = 0; p < dp->nb_ports; p++)
		total += zcd_port_driver_counters(&dp->ports[p]).rx_nombuf;
	return total;
}

/* Slots with a VM (serving, or being removed); reloads free and fill slots. */
static bool vm_listed(const struct zcd_dataplane *dp, unsigned v)
{
	return __atomic_load_n(&dp->vms[v].slot, __ATOMIC_ACQUIRE) != ZCD_VM_FREE;
}

static const char *vm_slot_name(const struct zcd_dataplane *dp, unsigned v)
{
	return __atomic_load_n(&dp->vms[v].slot, __ATOMIC_RELAXED) == ZCD_VM_REMOVING ? "removing"
										       : "serving";
}

/* Per-VM numbers as reported: the dataplane's counters and the guest's. */
struct vm_report {
	const char *name;
	struct zcd_vm_counters c;
	uint32_t credits;
	struct zcd_hv_vm_stats hv;
};

static void vm_report(const struct zcd_dataplane *dp, unsigned v, struct vm_report *r)
{
	const struct zcd_vm_counters *c = &dp->vms[v].c;

	r->name = dp->cfg->vms[v].name;
	r->c.rx_packets = LOAD(c->rx_packets);
	r->c.rx_bytes = LOAD(c->rx_bytes);
	r->c.remapped = LOAD(c->remapped);
	r->c.copied = LOAD(c->copied);
	r->c.dropped_no_credit = LOAD(c->dropped_no_credit);
	r->c.dropped_disconnected = LOAD(c->dropped_disconnected);
	r->c.returned = LOAD(c->returned);
	r->c.bad_returns = LOAD(c->bad_returns);
	r->c.forged_returns = LOAD(c->forged_returns);
	r->c.stale_returns = LOAD(c->stale_returns);
	r->c.duplicate_returns = LOAD(c->duplicate_returns);
	r->c.reclaimed = LOAD(c->reclaimed);
	r->c.credit_timeouts = LOAD(c->credit_timeouts);
	r->credits = LOAD(dp->vms[v].credits);
	dp->hv_ops->vm_stats(dp->hv, v, &r->hv);
}

int zcd_stats_write_json(const struct zcd_dataplane *dp, const char *path)
{
	const struct zcd_pool *pool = dp->pool;
	uint32_t ppb = pool->region.pages_per_buf;
	struct zcd_iommu_stats mmu;
	char tmp[ZCD_FILE_PATH_MAX + 8];
	FILE *f;
	int rc;

	/* Readers polling the file while the daemon runs see whole versions. */
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "{\"ports\": [");
	for (unsigned p = 0; p < dp->nb_ports; p++)
		fprintf(f,
			"%s\n  {\"name\": \"%s\", \"rx_packets\": %" PRIu64 ", \"rx_bytes\": %" PRIu64
			", \"rx_missed\": %" PRIu64 "}",
			p ? "," : "", dp->cfg->ports[p].name, zcd_port_counters(dp, p).rx_packets,
			zcd_port_counters(dp, p).rx_bytes,
			zcd_port_driver_counters(&dp->ports[p]).rx_missed);
	fprintf(f, "],\n \"lcores\": [");
	for (unsigned i = 0; i < dp->nb_workers; i++) {
		uint64_t rx = 0;

		for (unsigned p = 0; p < dp->nb_ports; p++)
			rx += LOAD(dp->workers[i].port_c[p].rx_packets);
		fprintf(f, "%s\n  {\"lcore\": %u, \"rx_queue\": %u, \"rx_packets\": %" PRIu64 "}",
			i ? "," : "", dp->workers[i].lcore_id, dp->workers[i].index, rx);
	}
	fprintf(f, "],\n \"vms\": [");
	for (unsigned v = 0, listed = 0; v < dp->nb_vms; v++) {
		struct vm_report r;

		if (!vm_listed(dp, v))
			continue;
		vm_report(dp, v, &r);
		fprintf(f,
			"%s\n  {\"name\": \"%s\", \"state\": \"%s\", \"rx_packets\": %" PRIu64 ", \"rx_bytes\": %" PRIu64
			", \"remapped\": %" PRIu64 ", \"copied\": %" PRIu64
			", \"dropped_no_credit\": %" PRIu64 ", \"dropped_disconnected\": %" PRIu64
			", \"returned\": %" PRIu64
			", \"bad_returns\": %" PRIu64 ", \"residue_bytes\": %" PRIu64
			", \"forged_returns\": %" PRIu64 ", \"stale_returns\": %" PRIu64
			", \"duplicate_returns\": %" PRIu64 ", \"reclaimed\": %" PRIu64
			", \"credits\": %" PRIu32 ", \"credit_timeouts\": %" PRIu64
			", \"notifications\": %" PRIu64 ", \"grant_batches\": %" PRIu64
			", \"connects\": %" PRIu64 ", \"ring_errors\": %" PRIu64
			", \"guest_rx_packets\": %" PRIu64 ", \"guest_bad_descs\": %" PRIu64
			", \"guest_faults\": %" PRIu64 "}",
			listed++ ? "," : "", r.name, vm_slot_name(dp, v), r.c.rx_packets, r.c.rx_bytes,
			r.c.remapped, r.c.copied,
			r.c.dropped_no_credit, r.c.dropped_disconnected, r.c.returned, r.c.bad_returns,
			r.hv.guest_residue_bytes, r.c.forged_returns, r.c.stale_returns,
			r.c.duplicate_returns, r.c.reclaimed, r.credits, r.c.credit_timeouts,
			r.hv.notifications, r.hv.grant_batches,
			r.hv.connects, r.hv.ring_errors,
			r.hv.guest_rx_packets, r.hv.guest_bad_descs, r.hv.guest_faults);
	}
	fprintf(f,
		"],\n \"removed_vms\": {\"count\": %u, \"rx_packets\": %" PRIu64
		", \"rx_bytes\": %" PRIu64 ", \"remapped\": %" PRIu64 ", \"copied\": %" PRIu64
		", \"dropped_no_credit\": %" PRIu64
		", \"dropped_disconnected\": %" PRIu64 ", \"returned\": %" PRIu64
		", \"bad_returns\": %" PRIu64 ", \"reclaimed\": %" PRIu64
		", \"credit_timeouts\": %" PRIu64 "},\n"
		" \"reloads\": {\"applied\": %" PRIu64 ", \"rejected\": %" PRIu64 "}",
		dp->nb_removed, dp->removed.rx_packets, dp->removed.rx_bytes, dp->removed.remapped,
		dp->removed.copied, dp->removed.dropped_no_credit, dp->removed.dropped_disconnected, dp->removed.returned,
		dp->removed.bad_returns, dp->removed.reclaimed, dp->removed.credit_timeouts,
		dp->reload.reloads,
		dp->reload.failures);
	if (dp->state != NULL) {
		const struct zcd_state *st = dp->state;
		const struct zcd_state_totals *t = &st->hdr->totals;

		fprintf(f,
			",\n \"state\": {\"file\": \"%s\", \"run\": %" PRIu64
			", \"previous\": \"%s\", \"restarts\": %" PRIu64 ", \"unclean\": %" PRIu64
			", \"lost_in_restart\": %" PRIu64 ", \"taken_back\": %" PRIu64
			", \"revoking\": %" PRIu64 ", \"posted_at_exit\": %" PRIu64
			", \"kept\": %" PRIu64 "}",
			st->path, st->hdr->incarnation,
			!st->found_previous ? "none" : st->previous_unclean ? "unclean" : "clean",
			t->restarts, t->unclean, t->lost_in_restart, t->taken_back, t->revoking,
			t->posted_at_exit, t->kept);
	}
	fprintf(f, ",\n \"drops\": {");
	for (unsigned d = 0; d < ZCD_DROP_REASON_COUNT; d++)
		fprintf(f, "\"%s\": %" PRIu64 ", ", zcd_drop_reason_name(d), zcd_drops(dp, d));
	fprintf(f, "\"pool_empty\": %" PRIu64 "},\n", pool_empty_drops(dp));
	fprintf(f,
		" \"pool\": {\"buffers\": %u, \"pages_per_buffer\": %u, \"pages\": %" PRIu64
		", \"free\": %" PRIu64 ", \"scrubbed_bytes\": %" PRIu64
		", \"ledger_violations\": %" PRIu64 "},\n",
		pool->region.nb_bufs, ppb, (uint64_t)pool->region.nb_bufs * ppb,
		(uint64_t)zcd_pool_free_count(pool) * ppb, zcd_scrubbed_bytes(dp),
		LOAD(pool->ledger.violations));
	dp->dma.ops->stats(dp->dma.mmu, &mmu);
	fprintf(f,
		" \"iommu\": {\"backend\": \"%s\", \"mode\": \"%s\", \"map_calls\": %" PRIu64
		", \"unmap_calls\": %" PRIu64 ", \"pages_mapped\": %" PRIu64
		", \"pages_unmapped\": %" PRIu64 ", \"pages_per_map_call\": %.2f"
		", \"pages_per_unmap_call\": %.2f, \"invalidations\": %" PRIu64
		", \"deferred_buffers\": %" PRIu64 ", \"deferred_flushes_by_count\": %" PRIu64
		", \"deferred_flushes_by_time\": %" PRIu64 ", \"max_exposure_us\": %" PRIu64
		", \"errors\": %" PRIu64 ", \"failures\": %" PRIu64 ", \"checks\": %" PRIu64
		", \"mismatches\": %" PRIu64 "}",
		dp->dma.ops->name, dp->dma.mode == ZCD_IOMMU_DEFERRED ? "deferred" : "strict",
		mmu.map_calls, mmu.unmap_calls, mmu.pages_mapped, mmu.pages_unmapped,
		mmu.map_calls ? (double)mmu.pages_mapped / (double)mmu.map_calls : 0.0,
		mmu.unmap_calls ? (double)mmu.pages_unmapped / (double)mmu.unmap_calls : 0.0,
		mmu.unmap_calls, dp->dma.st.deferred_buffers, dp->dma.st.flushes_by_count,
		dp->dma.st.flushes_by_time, dp->dma.st.max_exposure_us, mmu.errors,
		dp->dma.st.failures, dp->dma.st.checks, dp->dma.st.mismatches);
	if (pool->fault.armed)
		fprintf(f,
			",\n \"fault_injection\": {\"victim\": %d, \"victim_iova\": \"0x%" PRIx64
			"\", \"posted\": %s, \"frames_dropped\": %" PRIu64
			", \"victim_checked\": %s, \"victim_changed\": %s}",
			pool->fault.has_victim ? (int)pool->fault.victim : -1,
			(uint64_t)pool->fault.victim_iova, pool->fault.done ? "true" : "false",
			pool->fault.frames_dropped, pool->fault.victim_checked ? "true" : "false",
			pool->fault.victim_changed ? "true" : "false");
	fprintf(f, "}\n");
	rc = ferror(f) ? -1 : 0;
	if (fclose(f) != 0)
		rc = -1;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -1;
	if (rc != 0)
		unlink(tmp);
	return rc;
}

void zcd_stats_print_summary(const struct zcd_dataplane *dp)
{
	const struct zcd_pool *pool = dp->pool;
	uint32_t ppb = pool->region.pages_per_buf;
	uint64_t rx = 0;
	double secs = (double)(dp->stopped_tsc - dp->started_tsc) / (double)rte_get_tsc_hz();

	for (unsigned p = 0; p < dp->nb_ports; p++)
		rx += zcd_port_counters(dp, p).rx_packets;
	printf("\nzcdemux: %" PRIu64 " frames received on %u port(s) in %.2f s\n", rx,
	       dp->nb_ports, secs);
	printf("%-12s %10s %12s %9s %8s %10s %9s %8s %8s %10s\n", "vm", "rx_packets", "rx_bytes",
	       "remapped", "copied", "no_credit", "returned", "bad_ret", "residue", "reclaimed");
	for (unsigned v = 0; v < dp->nb_vms; v++) {
		struct vm_report r;

		if (!vm_listed(dp, v))
			continue;
		vm_report(dp, v, &r);
		printf("%-12s %10" PRIu64 " %12" PRIu64 " %9" PRIu64 " %8" PRIu64 " %10" PRIu64
		       " %9" PRIu64 " %8" PRIu64 " %8" PRIu64 " %10" PRIu64 "\n",
		       r.name, r.c.rx_packets, r.c.rx_bytes, r.c.remapped, r.c.copied,
		       r.c.dropped_no_credit, r.c.returned, r.c.bad_returns,
		       r.hv.guest_residue_bytes, r.c.reclaimed);
	}
	if (dp->nb_removed != 0)
		printf("%u VM(s) removed while running: %" PRIu64 " frames delivered, %" PRIu64
		       " returned, %" PRIu64 " taken back\n", dp->nb_removed, dp->removed.rx_packets,
		       dp->removed.returned, dp->removed.reclaimed);
	printf("drops: ");
	for (unsigned d = 0; d < ZCD_DROP_REASON_COUNT; d++)
		printf("%s %" PRIu64 ", ", zcd_drop_reason_name(d), zcd_drops(dp, d));
	printf("pool_empty %" PRIu64 "\n", pool_empty_drops(dp));
	printf("pool: %" PRIu64 " of %" PRIu64 " pages free (%u buffers of %u page%s)\n",
	       (uint64_t)zcd_pool_free_count(pool) * ppb, (uint64_t)pool->region.nb_bufs * ppb,
	       pool->region.nb_bufs, ppb, ppb == 1 ? "" : "s");
	fflush(stdout);
}

void zcd_stats_log_line(const struct zcd_dataplane *dp)
{
	uint64_t rx = 0, delivered = 0, no_credit = 0, dropped = 0;

	for (unsigned p = 0; p < dp->nb_ports; p++)
		rx += zcd_port_counters(dp, p).rx_packets;
	for (unsigned v = 0; v < dp->nb_vms; v++) {
		delivered += dp->vms[v].c.rx_packets;
		no_credit += dp->vms[v].c.dropped_no_credit;
	}
	delivered += dp->removed.rx_packets;
	no_credit += dp->removed.dropped_no_credit;
	for (unsigned d = 0; d < ZCD_DROP_REASON_COUNT; d++)
		dropped += zcd_drops(dp, d);
	ZCD_LOG(INFO,
		"stats: rx %" PRIu64 ", delivered %" PRIu64 ", no credit %" PRIu64
		", dropped %" PRIu64 ", pool free %u/%u\n",
		rx, delivered, no_credit, dropped, zcd_pool_free_count(dp->pool),
		dp->pool->region.nb_bufs);
}

/* ---- telemetry: /zcdemux/ports, /zcdemux/vms, /zcdemux/drops, /zcdemux/pool ---- */

/*
 * Telemetry callbacks run in DPDK's telemetry thread, which outlives the
 * dataplane: the lock keeps a callback from reading a dataplane being torn
 * down.  The dataplane thread never takes it.
 */
static pthread_mutex_t telemetry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct zcd_dataplane *telemetry_dp; /* guarded by telemetry_lock */

typedef int (*tel_fill_fn)(const struct zcd_dataplane *dp, struct rte_tel_data *d);

static int tel_serve(tel_fill_fn fill, struct rte_tel_data *d)
{
	int rc = -EAGAIN;

	pthread_mutex_lock(&telemetry_lock);
	if (telemetry_dp != NULL) {
		rte_tel_data_start_dict(d);
		rc = fill(telemetry_dp, d);
	}
	pthread_mutex_unlock(&telemetry_lock);
	return rc;
}

static int fill_ports(const struct zcd_dataplane *dp, struct rte_tel_data *d)
{
	for (unsigned p = 0; p < dp->nb_ports; p++) {
		struct rte_tel_data *port = rte_tel_data_alloc();

		if (port == NULL)
			return -ENOMEM;
		rte_tel_data_start_dict(port);
		rte_tel_data_add_dict_u64(port, "rx_packets", zcd_port_counters(dp, p).rx_packets);
		rte_tel_data_add_dict_u64(port, "rx_bytes", zcd_port_counters(dp, p).rx_bytes);
		rte_tel_data_add_dict_u64(port, "rx_missed",
					  zcd_port_driver_counters(&dp->ports[p]).rx_missed);
		rte_tel_data_add_dict_container(d, dp->cfg->ports[p].name, port, 0);
	}
	return 0;
}

static int fill_vms(const struct zcd_dataplane *dp, struct rte_tel_data *d)
{
	for (unsigned v = 0; v < dp->nb_vms; v++) {
		struct rte_tel_data *vm;
		struct vm_report r;

		if (!vm_listed(dp, v))
			continue;
		vm = rte_tel_data_alloc();
		if (vm == NULL)
			return -ENOMEM;
		vm_report(dp, v, &r);
		rte_tel_data_start_dict(vm);
		rte_tel_data_add_dict_string(vm, "state", vm_slot_name(dp, v));
		rte_tel_data_add_dict_u64(vm, "rx_packets", r.c.rx_packets);
		rte_tel_data_add_dict_u64(vm, "rx_bytes", r.c.rx_bytes);
		rte_tel_data_add_dict_u64(vm, "remapped", r.c.remapped);
		rte_tel_data_add_dict_u64(vm, "copied", r.c.copied);
		rte_tel_data_add_dict_u64(vm, "dropped_no_credit", r.c.dropped_no_credit);
		rte_tel_data_add_dict_u64(vm, "dropped_disconnected", r.c.dropped_disconnected);
		rte_tel_data_add_dict_u64(vm, "returned", r.c.returned);
		rte_tel_data_add_dict_u64(vm, "bad_returns", r.c.bad_returns);
		rte_tel_data_add_dict_u64(vm, "forged_returns", r.c.forged_returns);
		rte_tel_data_add_dict_u64(vm, "stale_returns", r.c.stale_returns);
		rte_tel_data_add_dict_u64(vm, "duplicate_returns", r.c.duplicate_returns);
		rte_tel_data_add_dict_u64(vm, "residue_bytes", r.hv.guest_residue_bytes);
		rte_tel_data_add_dict_u64(vm, "reclaimed", r.c.reclaimed);
		rte_tel_data_add_dict_u64(vm, "credits", r.credits);
		rte_tel_data_add_dict_u64(vm, "credit_timeouts", r.c.credit_timeouts);
		rte_tel_data_add_dict_u64(vm, "outstanding", LOAD(dp->vms[v].outstanding));
		rte_tel_data_add_dict_container(d, r.name, vm, 0);
	}
	return 0;
}

static int fill_drops(const struct zcd_dataplane *dp, struct rte_tel_data *d)
{
	for (unsigned r = 0; r < ZCD_DROP_REASON_COUNT; r++)
		rte_tel_data_add_dict_u64(d, zcd_drop_reason_name(r), zcd_drops(dp, r));
	rte_tel_data_add_dict_u64(d, "pool_empty", pool_empty_drops(dp));
	return 0;
}

static int fill_pool(const struct zcd_dataplane *dp, struct rte_tel_data *d)
{
	const struct zcd_pool *pool = dp->pool;
	uint32_t ppb = pool->region.pages_per_buf;
	uint32_t count[ZCD_BUF_STATE_COUNT];

	/* A walk of the ledger while lcores move buffers: a snapshot, not exact. */
	zcd_ledger_tally(&pool->ledger, count);
	rte_tel_data_add_dict_u64(d, "buffers", pool->region.nb_bufs);
	rte_tel_data_add_dict_u64(d, "pages_per_buffer", ppb);
	rte_tel_data_add_dict_u64(d, "pages", (uint64_t)pool->region.nb_bufs * ppb);
	rte_tel_data_add_dict_u64(d, "free", (uint64_t)zcd_pool_free_count(pool) * ppb);
	for (unsigned s = 0; s < ZCD_BUF_STATE_COUNT; s++)
		rte_tel_data_add_dict_u64(d, zcd_buf_state_name(s), count[s]);
	return 0;
}

#define TELEMETRY_CMD(fn)                                                               \
	static int tel_##fn(const char *cmd, const char *params, struct rte_tel_data *d) \
	{                                                                               \
		RTE_SET_USED(cmd);                                                      \
		RTE_SET_USED(params);                                                   \
		return tel_serve(fill_##fn, d);                                         \
	}
TELEMETRY_CMD(ports)
TELEMETRY_CMD(vms)
TELEMETRY_CMD(drops)
TELEMETRY_CMD(pool)

#define RELOAD_WAIT_MS 10000

/*
 * Ask the main lcore to reload and wait for its answer.  The lock is
 * dropped while waiting: the dataplane may stop meanwhile.
 */
static int tel_reload(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct zcd_reload_status *st;
	uint32_t ticket;
	int rc = -EAGAIN;

	RTE_SET_USED(cmd);
	RTE_SET_USED(params);
	pthread_mutex_lock(&telemetry_lock);
	if (telemetry_dp == NULL) {
		pthread_mutex_unlock(&telemetry_lock);
		return rc;
	}
	ticket = __atomic_add_fetch(&telemetry_dp->reload.requested, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&telemetry_lock);
	for (unsigned ms = 0; ms < RELOAD_WAIT_MS; ms++) {
		pthread_mutex_lock(&telemetry_lock);
		if (telemetry_dp == NULL) {
			pthread_mutex_unlock(&telemetry_lock);
			return -EAGAIN;
		}
		st = &telemetry_dp->reload;
		/* Serial-number comparison: tickets wrap. */
		if ((int32_t)(__atomic_load_n(&st->done, __ATOMIC_ACQUIRE) - ticket) >= 0) {
			char answer[sizeof(st->message) + 16];

			/* One string: a dict entry holds at most 127 characters. */
			rte_spinlock_lock(&st->lock);
			snprintf(answer, sizeof(answer), "%s: %s", st->ok ? "applied" : "rejected",
				 st->message);
			rte_spinlock_unlock(&st->lock);
			rc = rte_tel_data_string(d, answer) == 0 ? 0 : -E2BIG;
		}
		pthread_mutex_unlock(&telemetry_lock);
		if (rc != -EAGAIN)
			return rc;
		usleep(1000);
	}
	return -ETIMEDOUT;
}

int zcd_stats_register_telemetry(struct zcd_dataplane *dp)
{
	pthread_mutex_lock(&telemetry_lock);
	telemetry_dp = dp;
	pthread_mutex_unlock(&telemetry_lock);
	if (rte_telemetry_register_cmd("/zcdemux/ports", tel_ports,
				       "Frames and bytes received per port. No parameters") != 0 ||
	    rte_telemetry_register_cmd("/zcdemux/vms", tel_vms,
				       "Per-VM delivery, credit and return counters. No parameters") != 0 ||
	    rte_telemetry_register_cmd("/zcdemux/drops", tel_drops,
				       "Frames dropped, by reason. No parameters") != 0 ||
	    rte_telemetry_register_cmd("/zcdemux/pool", tel_pool,
				       "Buffer pool pages and ledger states. No parameters") != 0 ||
	    rte_telemetry_register_cmd("/zcdemux/reload", tel_reload,
				       "Reload the configuration file, as SIGHUP does; answers "
				       "with the outcome. No parameters") != 0)
		return -1;
	return 0;
}

void zcd_stats_unregister_telemetry(void)
{
	pthread_mutex_lock(&telemetry_lock);
	telemetry_dp = NULL;
	pthread_mutex_unlock(&telemetry_lock);
}
