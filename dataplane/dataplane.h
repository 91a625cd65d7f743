/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The dataplane: ports, pool, demux table, backends and per-VM state, and
 * the poll loop that moves frames from ports to VMs and buffers back.
 *
 * dataplane.c sets it up and tears it down (control path); loop.c is the
 * hot path; stats.c reports.
 */
#ifndef ZCDEMUX_DATAPLANE_H
#define ZCDEMUX_DATAPLANE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_mbuf.h>
#include <rte_spinlock.h>

#include "classify.h"
#include "dma.h"
#include "pool.h"
#include "reload.h"
#include "state.h"
#include "zcdemux/config.h"
#include "zcdemux/hv.h"
#include "zcdemux/iommu.h"

extern int zcd_logtype;
#define ZCD_LOG(level, ...) rte_log(RTE_LOG_##level, zcd_logtype, "zcdemux: " __VA_ARGS__)

#define ZCD_MAX_WORKERS 16 /* lcores polling RX queues, the main one included */
#define ZCD_RETURN_BURST 64
#define ZCD_RECLAIM_BATCH 256 /* revoked buffers recycled together */

struct zcd_port_counters {
	uint64_t rx_packets;
	uint64_t rx_bytes;
};

/* What the driver counted, read from it (rte_eth_stats). */
struct zcd_port_driver_counters {
	uint64_t rx_missed; /* frames the device dropped: its ring was full */
	uint64_t rx_nombuf; /* frames lost for want of a free pool buffer */
};

struct zcd_vm_counters {
	uint64_t rx_packets; /* frames delivered (remapped + copied) */
	uint64_t rx_bytes;
	uint64_t remapped;
	uint64_t copied;
	uint64_t dropped_no_credit;
	uint64_t dropped_disconnected; /* meant for it while no guest was connected */
	uint64_t returned; /* valid returns */
	uint64_t bad_returns; /* forged + stale + duplicate (+ bad copy-page returns) */
	uint64_t forged_returns;
	uint64_t stale_returns;
	uint64_t duplicate_returns;
	uint64_t reclaimed; /* taken back without a return: the guest went away */
	uint64_t credit_timeouts; /* cut off: did not give back in time after a credit cut */
};

/*
 * With several lcores (nb_workers > 1) a VM's state and its backend's state
 * are touched by whoever holds its lock (zcd_dataplane_vm_lock): the lcore
 * handing it a burst, or the main lcore taking returns and acting on
 * events.  With one lcore nothing is locked.
 */
struct zcd_vm_state {
	rte_spinlock_t lock; /* used when the backend runs VMs in parallel */
	enum zcd_vm_slot slot; /* changed by the main lcore, workers paused */
	struct zcd_vm_counters c;
	uint32_t credits;
	uint32_t credit_cap; /* credits it was added with: its backend's resources */
	uint64_t credit_deadline_tsc; /* 0, or when it must be within credits again */
	uint32_t outstanding; /* delivered, not yet returned and revoked */
	bool connected; /* a guest is connected: deliver */
	bool releasing; /* the guest went away: tell the backend once all is revoked */
	uint32_t *pending_revoke; /* returned or abandoned, but the guest still maps them */
	uint32_t nb_pending_revoke; /* pending_revoke holds credit_cap */
	uint64_t revoke_retry_tsc; /* next retry of pending_revoke, TSC */
	uint32_t revoke_retry_ms; /* current gap between retries */
} __rte_cache_aligned;

/* One lcore's frames for one VM in the current burst, in arrival order. */
struct zcd_vm_batch {
	unsigned len;
	struct zcd_handoff items[ZCD_BURST_MAX];
	struct rte_mbuf *mbufs[ZCD_BURST_MAX];
} __rte_cache_aligned;

/*
 * An lcore that receives: worker k polls RX queue k of every port that has
 * one.  Worker 0 is the main lcore, which also takes returns, acts on
 * guest events and reports.  Everything here is written by its own lcore
 * only; reports add the workers up.
 */
struct zcd_worker {
	unsigned index;
	unsigned lcore_id;
	struct zcd_port_counters port_c[ZCD_MAX_PORTS];
	uint64_t drops[ZCD_DROP_REASON_COUNT];
	uint64_t scrubbed_bytes; /* zeroed around frames handed to VMs */
	uint64_t last_rx_tsc; /* atomic: the main lcore reads it for idle-exit */
	/* Scratch for one burst. */
	uint16_t touched[ZCD_MAX_VMS];
	unsigned nb_touched;
	struct zcd_vm_batch *batches; /* by VM */
} __rte_cache_aligned;

struct zcd_port_state {
	uint16_t port_id;
	bool probed; /* configured, to be closed */
	bool started;
	uint16_t nb_rx_queues; /* one per worker, as far as the device has them */
	uint16_t nb_tx_queues; /* unused, for peers that pair queues */
	struct zcd_port_driver_counters at_close; /* the driver's, kept when it closed */
};

/* Remote workers: run, wait while the main lcore changes what they read, or return. */
enum zcd_workers_ctl {
	ZCD_WORKERS_RUN,
	ZCD_WORKERS_PAUSE,
	ZCD_WORKERS_STOP,
};

/* A reload asked for by telemetry, and how the last one ended. */
struct zcd_reload_status {
	uint32_t requested; /* atomic: bumped by each request */
	uint32_t done; /* atomic: the request last served */
	rte_spinlock_t lock; /* guards ok and message against a reader */
	bool ok;
	char message[ZCD_FILE_PATH_MAX + 1024];
	uint64_t reloads; /* applied */
	uint64_t failures; /* rejected: the old configuration kept running */
};

struct zcd_dataplane {
	/* The running configuration: VM k of cfg->vms is in slot k (see
	 * reload.h); cfg->nb_vms == nb_vms.  Reloads change it in place. */
	struct zcd_config *cfg;
	struct zcd_pool *pool;
	struct zcd_demux_table demux;
	const struct zcd_hv_ops *hv_ops;
	struct zcd_hv *hv;
	struct zcd_dma dma; /* the device's DMA table */

	struct zcd_port_state ports[ZCD_MAX_PORTS];
	unsigned nb_ports;
	struct zcd_vm_state *vms; /* ZCD_MAX_VMS slots, in the state file if there is one */
	unsigned nb_vms; /* slots up to the last one in use */
	uint64_t credit_room; /* buffers the pool can promise VMs */
	struct zcd_vm_counters removed; /* what VMs removed by reloads had, added up */
	unsigned nb_removed;
	struct zcd_reload_status reload;
	uint32_t hv_features; /* ZCD_HV_F_* */
	uint32_t copy_threshold; /* unicast frames shorter than this are copied */

	uint64_t started_tsc;
	uint64_t stopped_tsc;

	struct zcd_worker *workers; /* ZCD_MAX_WORKERS, in the state file if there is one */
	unsigned nb_workers;
	struct zcd_state *state; /* --state, or NULL */
	bool vms_in_parallel; /* backend ops on different VMs may run at once */
	rte_spinlock_t hv_lock; /* every VM's lock when they may not */
	int workers_ctl; /* atomic: enum zcd_workers_ctl */
	unsigned workers_held; /* atomic: remote workers waiting in ZCD_WORKERS_PAUSE */

	/* Revoked buffers of this round of returns, all VMs, to recycle. */
	uint32_t reclaimed[ZCD_RECLAIM_BATCH];
	unsigned nb_reclaimed;
};

/* ---- dataplane.c: control path; these log their errors ---- */

/*
 * Everything up to a running dataplane: pool, ports, backends, VMs.  With
 * a state file (locked, see state.h), the ledger and the counters live in
 * it and what an earlier run left is accounted for first.  0 or -1.
 */
int zcd_dataplane_init(struct zcd_dataplane *dp, struct zcd_config *cfg, struct zcd_state *state);

/*
 * Stop receiving, disconnect every VM, take back every buffer (returned or
 * not) and stop the ports.  Returns 0 if the pool is whole and the ledger
 * saw no violation, -1 otherwise.
 */
int zcd_dataplane_shutdown(struct zcd_dataplane *dp);
void zcd_dataplane_fini(struct zcd_dataplane *dp);

/*
 * VM vm's guest is gone or going: every buffer it holds becomes REVOKING
 * without a return and joins its pending revokes.
 */
void zcd_dataplane_abandon_vm(struct zcd_dataplane *dp, uint16_t vm);

/*
 * Set up slot vm's state for cfg->vms[vm] (the backend's part is apart);
 * its counters stay as they are (zero, or carried from an earlier run).
 * The slot stays FREE: the caller says when the VM is serving.  0 or -1.
 */
int zcd_dataplane_vm_init(struct zcd_dataplane *dp, uint16_t vm);

/*
 * A removed VM's buffers are all back: have the backend forget it, keep
 * its counters in dp->removed and free its slot.  Main lcore.
 */
void zcd_dataplane_forget_vm(struct zcd_dataplane *dp, uint16_t vm);

/*
 * VM vm may hold credits frames from now on (at most its credit_cap).  If
 * it holds more, it is asked to give back the difference and has
 * dataplane.credit_timeout_ms to do so.  Main lcore.
 */
void zcd_dataplane_set_credits(struct zcd_dataplane *dp, uint16_t vm, uint32_t credits);

/*
 * Cut off the VMs that did not give back in time what a credit cut asked
 * for: no more frames for them, and what they hold is taken back.  Main
 * lcore.  Returns how many were cut off.
 */
unsigned zcd_dataplane_check_credits(struct zcd_dataplane *dp, uint64_t now_tsc);

/* ---- reload.c ---- */

/*
 * Read the configuration file again and apply what changed, or keep the
 * running configuration if the new one is invalid or needs a restart.
 * Main lcore, between bursts.  Logs the outcome and records it in
 * dp->reload.  0 (applied, or nothing changed) or -1 (rejected).
 */
int zcd_dataplane_reload(struct zcd_dataplane *dp);

/* The lock that guards VM vm's state and its backend state (see zcd_vm_state). */
static inline rte_spinlock_t *zcd_dataplane_vm_lock(struct zcd_dataplane *dp, uint16_t vm)
{
	return dp->vms_in_parallel ? &dp->vms[vm].lock : &dp->hv_lock;
}

/* Backend calls that are not about one VM, beside lcores serving VMs. */
static inline void zcd_dataplane_hv_lock(struct zcd_dataplane *dp)
{
	if (dp->nb_workers > 1 && !dp->vms_in_parallel)
		rte_spinlock_lock(&dp->hv_lock);
}

static inline void zcd_dataplane_hv_unlock(struct zcd_dataplane *dp)
{
	if (dp->nb_workers > 1 && !dp->vms_in_parallel)
		rte_spinlock_unlock(&dp->hv_lock);
}

/* ---- loop.c: hot path ---- */

struct zcd_run_limits {
	uint64_t idle_exit_ms; /* 0 = never */
	uint64_t duration_s; /* 0 = until signalled */
	uint64_t stats_interval_s; /* 0 = no periodic log */
	const char *stats_json; /* rewritten at every stats interval, if set */
};

/*
 * Poll until *quit, a limit is reached, or idle-exit says so: the main
 * lcore as worker 0, the other workers on their lcores until it stops.
 * *reload set (and cleared here), or a telemetry request, reloads.
 * 0, or -1 (logged) if a worker could not be started.
 */
int zcd_dataplane_run(struct zcd_dataplane *dp, const struct zcd_run_limits *limits,
		       volatile sig_atomic_t *quit, volatile sig_atomic_t *reload);

/* Receive and deliver one burst from worker w's queue of a port; returns frames received. */
unsigned zcd_dataplane_rx_burst(struct zcd_dataplane *dp, struct zcd_worker *w, unsigned port);

/*
 * Deliver nb (at most ZCD_BURST_MAX) frames that port's driver received
 * into pool buffers: classify, hand off per VM, free the rest.  Takes every
 * mbuf.  rx_burst's second half, for callers that receive by other means.
 */
void zcd_dataplane_rx_frames(struct zcd_dataplane *dp, struct zcd_worker *w, unsigned port,
			     struct rte_mbuf **pkts, unsigned nb);

/* Take back what VM vm returned and retry pending revokes; returns work done. */
unsigned zcd_dataplane_poll_returns(struct zcd_dataplane *dp, uint16_t vm);

/* The same for every VM that holds buffers, recycling them all together. */
unsigned zcd_dataplane_poll_all_returns(struct zcd_dataplane *dp);

/* Try to end access to VM vm's pending revokes now; returns how many ended. */
unsigned zcd_dataplane_retry_revokes(struct zcd_dataplane *dp, uint16_t vm);

/* Act on guests connecting and going away; returns events handled. */
unsigned zcd_dataplane_poll_events(struct zcd_dataplane *dp);

/*
 * VM vm is to get nothing more: take what it returned, then every buffer
 * it still holds (revoked as soon as it lets go).  Returns how many are
 * still mapped.  Main lcore.
 */
unsigned zcd_dataplane_take_back(struct zcd_dataplane *dp, uint16_t vm);

/*
 * Hold the remote workers between bursts (they read the demux table and
 * VM slots), and let them go on.  Main lcore; no-ops with one worker.
 */
void zcd_dataplane_pause_workers(struct zcd_dataplane *dp);
void zcd_dataplane_resume_workers(struct zcd_dataplane *dp);

/* Put reclaimed buffers back in the device's DMA table and the free pool. */
void zcd_dataplane_recycle(struct zcd_dataplane *dp, const uint32_t *ids, unsigned n);

/* ---- stats.c ---- */

/* The driver's counters of a port, live or as they were when it closed. */
struct zcd_port_driver_counters zcd_port_driver_counters(const struct zcd_port_state *port);

/* A port's frames and bytes, drops for one reason, bytes scrubbed: every worker's added up. */
struct zcd_port_counters zcd_port_counters(const struct zcd_dataplane *dp, unsigned port);
uint64_t zcd_drops(const struct zcd_dataplane *dp, enum zcd_drop_reason reason);
uint64_t zcd_scrubbed_bytes(const struct zcd_dataplane *dp);

/* Write the stats JSON to path.  0, or -1 with errno. */
int zcd_stats_write_json(const struct zcd_dataplane *dp, const char *path);
/* The end-of-run summary table on stdout. */
void zcd_stats_print_summary(const struct zcd_dataplane *dp);
/* One log line with totals, for --stats-interval. */
void zcd_stats_log_line(const struct zcd_dataplane *dp);
/* Register /zcdemux/... telemetry commands serving dp's counters and reloads. */
int zcd_stats_register_telemetry(struct zcd_dataplane *dp);
/* Stop serving dp (the commands stay registered and answer -EAGAIN). */
void zcd_stats_unregister_telemetry(void);

#endif /* ZCDEMUX_DATAPLANE_H */
