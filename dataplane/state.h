/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The persistent state file (--state FILE): the buffer ledger and the
 * counters, in a file mapped shared (tmpfs or hugetlbfs), so that they
 * outlive the process, and the lock that says which zcdemux runs on it.
 *
 * The running dataplane keeps its ledger entries, its per-VM state and its
 * per-lcore counters in the mapping itself: every transition and every
 * count is in the file the moment it is made, with no extra write on the
 * hot path.  A ledger entry changes in an order that leaves it meaningful
 * whenever a kill can hit (ledger.c).
 *
 * Layout (offsets in the header; all page-aligned):
 *
 *     header     struct zcd_state_hdr (one page)
 *     vms        ZCD_MAX_VMS x struct zcd_vm_state
 *     workers    ZCD_MAX_WORKERS x struct zcd_worker
 *     ledger     nb_bufs x struct zcd_ledger_entry
 *
 * The lock is flock() on the file: held for the process's lifetime and
 * released by the kernel however it ends, which is what a standby waits on.
 *
 * Recovery (the file was left by a process that did not exit cleanly, or by
 * one that did): the previous run's ledger is read and accounted for, then
 * laid out afresh for this run's pool:
 *   FREE, RECLAIMED, SCRUBBED  nothing to do;
 *   POSTED                     the device's; counted as posted_at_exit;
 *   HELD                       a received frame never delivered: counted in
 *                              lost_in_restart;
 *   GRANTED                    its VM was given the frame (counted then) and
 *                              did not return it: the VM's reclaimed counter;
 *   REVOKING                   returned (counted then), being revoked.
 * Every generation goes on from where it was, plus one, so no return made
 * to an earlier process can ever match a grant of a later one.  VM
 * counters are carried to the VM of the same name, port counters to the
 * port of the same name.
 *
 * Guests that ran on: with a backend that can re-attach to a guest
 * (vm_reattach), the pool lives in "<file>.pool", so that a new process
 * has the very pages the guests still read.  The dataplane then asks the
 * backend which buffers each re-attached guest can still reach, and keeps
 * those the previous ledger gave to the VM of that name at that
 * generation (zcd_state_previously_held): they stay GRANTED at their old
 * generation, out of the free pool and the device's DMA table, and count
 * as kept instead of taken back (or, for a frame being handed over as the
 * process died whose descriptor the guest can see, as delivered instead of
 * lost).  What a guest can reach without the ledger's say-so is revoked
 * before anything starts.
 */
#ifndef ZCDEMUX_STATE_H
#define ZCDEMUX_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ledger.h"
#include "zcdemux/config.h"

#define ZCD_STATE_MAGIC 0x455441545344435aULL /* "ZCDSTATE" little-endian */
#define ZCD_STATE_VERSION 1U

/* What became of the previous run's buffers, added up over every restart. */
struct zcd_state_totals {
	uint64_t restarts; /* runs that found an earlier run's state */
	uint64_t unclean; /* of which the earlier run had not exited cleanly */
	uint64_t lost_in_restart; /* frames received, not delivered (HELD) */
	uint64_t taken_back; /* buffers VMs held (GRANTED) */
	uint64_t revoking; /* buffers returned, not yet revoked (REVOKING) */
	uint64_t posted_at_exit; /* buffers the device had (POSTED) */
	uint64_t kept; /* buffers VMs held (GRANTED) and kept: their guests ran on */
};

struct zcd_state_hdr {
	uint64_t magic; /* written last: a file without it holds nothing */
	uint32_t version;
	uint32_t layout; /* sizes of the raw structures: another build's are not read */
	uint64_t incarnation; /* runs on this file, this one included */
	int32_t pid; /* the process running on it, or the last one */
	uint32_t running; /* 1 until that process exited cleanly */
	uint32_t nb_bufs;
	uint32_t nb_ports;
	uint64_t vms_off;
	uint64_t workers_off;
	uint64_t ledger_off;
	uint64_t bytes;
	struct zcd_state_totals totals;
	char port_names[ZCD_MAX_PORTS][ZCD_NAME_MAX];
	char vm_names[ZCD_MAX_VMS][ZCD_NAME_MAX]; /* by slot; "" = free */
	uint32_t buf_size; /* bytes per pool buffer */
};

struct zcd_state {
	char path[ZCD_FILE_PATH_MAX];
	int fd;
	void *map;
	size_t bytes;
	struct zcd_state_hdr *hdr;
	pid_t previous_pid; /* the process that ran on it before, 0 if none */
	bool previous_unclean;
	bool found_previous;
	/*
	 * The ledger the previous run left, by buffer id, and its VM names by
	 * slot, while the buffers its VMs' guests kept are sorted out; NULL
	 * when there is nothing to sort out (clean exit, another pool size).
	 */
	struct zcd_ledger_entry *previous_ledger;
	char previous_vm_names[ZCD_MAX_VMS][ZCD_NAME_MAX];
};

struct zcd_dataplane;

/*
 * Open (creating it if need be) and lock path.  If another process holds
 * the lock: with wait, block until it is released (standby); without, fail.
 * Returns NULL with a message in err.  Logs "waiting" to stderr when it waits.
 */
struct zcd_state *zcd_state_lock(const char *path, bool wait, char *err, size_t errlen);

/*
 * Lay the file out for this run (nb_bufs pool buffers of buf_size bytes,
 * cfg's ports and VMs in config order), accounting for what the previous
 * run left (see above).  Afterwards the mapping holds the ledger entries
 * (FREE, with their generations), the VM slots and the worker counters.
 * 0, or -1 with a message in err.
 */
int zcd_state_attach(struct zcd_state *st, const struct zcd_config *cfg, uint32_t nb_bufs,
		     uint32_t buf_size, char *err, size_t errlen);

/*
 * The pool's file, "<state file>.pool", of bytes bytes (rounded up to the
 * file system's pages), every page allocated.  *kept is set when it holds
 * the previous run's buffers as they were, which guests may still be
 * reading; else it is a new, zeroed file and previous_ledger is dropped.
 * The descriptor (close-on-exec), or -1 with a message in err.
 */
int zcd_state_pool_file(struct zcd_state *st, uint64_t bytes, bool *kept, char *err,
			size_t errlen);

/*
 * Did the previous run's ledger give buffer id to the VM called name, at
 * generation?  The state it left the buffer in if so: GRANTED, or HELD
 * (being handed over as the process died: the generation bumped or about
 * to be); ZCD_BUF_STATE_COUNT if not, or if there is no previous ledger.
 */
enum zcd_buf_state zcd_state_previously_held(const struct zcd_state *st, uint32_t id,
					     const char *name, uint32_t generation);

/*
 * A buffer the previous run left in state was (GRANTED, or HELD: handed
 * over as the process died) was kept by its VM's guest: count it as kept
 * instead of taken back or lost.
 */
void zcd_state_count_kept(struct zcd_state *st, enum zcd_buf_state was);

/* The buffers guests kept are sorted out: drop previous_ledger. */
void zcd_state_forget_previous(struct zcd_state *st);

void *zcd_state_vms(const struct zcd_state *st);
void *zcd_state_workers(const struct zcd_state *st);
struct zcd_ledger_entry *zcd_state_ledger(const struct zcd_state *st);

/* A VM slot got a VM (name) or lost it (""), for the next run's recovery. */
void zcd_state_name_vm(struct zcd_state *st, unsigned slot, const char *name);

/* The pool was whole at exit: the next run has nothing to recover. */
void zcd_state_mark_clean(struct zcd_state *st);

/* Unmap, unlock, close. */
void zcd_state_close(struct zcd_state *st);

#endif /* ZCDEMUX_STATE_H */
