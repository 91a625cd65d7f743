/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Hypervisor glue: how a pool buffer reaches a VM and comes back.
 *
 * The dataplane owns the buffer ledger; a backend owns everything that is
 * hypervisor-specific: the per-VM shared ring, the mapping of pages into the
 * guest (sim: a modelled guest-physical map; xen: grants), notifications,
 * and the guest-owned pages that copied frames go into.  The dataplane calls
 * a backend only through struct zcd_hv_ops; backends never see the ledger.
 *
 * Threading: every op on one VM is called from one dataplane thread at a
 * time.  With several polling lcores, handoff runs on any of them; a
 * backend that sets ZCD_HV_F_PARALLEL_VMS lets ops on different VMs (and
 * poll_events) run at the same time, otherwise the dataplane calls it from
 * one thread at a time altogether.  Hot-path ops (handoff, poll_returns,
 * revoke) take batches, do no allocation, no logging and at most one
 * notification per call.
 */
#ifndef ZCDEMUX_HV_H
#define ZCDEMUX_HV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zcdemux/config.h"

/*
 * The buffer pool as a backend sees it: nb_bufs buffers of buf_size bytes,
 * the first bytes of a file mapped shared, so that another process (a
 * simulated guest) can map the same pages.
 */
struct zcd_buf_region {
	uint8_t *base; /* page-aligned */
	size_t bytes;
	int fd; /* the file, -1 if the memory is not in one */
	uint32_t nb_bufs;
	uint32_t buf_size; /* pages_per_buf * ZCD_PAGE_SIZE */
	uint32_t pages_per_buf;
};

static inline uint8_t *zcd_buf_addr(const struct zcd_buf_region *r, uint32_t buf_id)
{
	return r->base + (size_t)buf_id * r->buf_size;
}

enum zcd_handoff_kind {
	ZCD_HANDOFF_REMAP, /* give the pool buffer itself to the VM */
	ZCD_HANDOFF_COPY, /* copy the frame into one of the VM's own pages */
};

/* One frame for one VM. */
struct zcd_handoff {
	const uint8_t *data; /* first byte of the frame */
	uint32_t buf_id; /* REMAP: pool buffer holding the frame */
	uint32_t generation; /* REMAP: generation the ledger records on success */
	uint16_t offset; /* REMAP: frame start within the buffer */
	uint16_t length;
	uint16_t vlan; /* VID demultiplexed under, 0 = untagged */
	uint8_t kind; /* enum zcd_handoff_kind */
	uint8_t reserved;
};

/* A pool-buffer return, copied out of the guest's ring (not yet validated). */
struct zcd_hv_return {
	uint32_t buf_id;
	uint32_t generation;
};

/* What poll_returns did besides surfacing pool-buffer returns. */
struct zcd_hv_return_tally {
	uint32_t copies_released; /* valid copy-page returns (credit back) */
	uint32_t copies_rejected; /* forged, stale or duplicate copy-page returns */
};

/* Counters kept by the backend and, where the backend can see it, the guest. */
struct zcd_hv_vm_stats {
	uint64_t notifications; /* events sent to the guest */
	uint64_t grant_batches; /* calls that mapped remapped buffers into the guest */
	uint64_t connects; /* times a guest connected */
	uint64_t ring_errors; /* impossible indices seen in the guest's ring */
	uint64_t guest_rx_packets; /* frames the guest consumed */
	uint64_t guest_rx_bytes;
	uint64_t guest_residue_bytes; /* non-zero bytes outside a frame, seen by the guest */
	uint64_t guest_bad_descs; /* descriptors the guest rejected */
	uint64_t guest_faults; /* pages the guest found unmapped */
};

/* Backend features (zcd_hv_ops.features). */
#define ZCD_HV_F_REMAP 0x1u /* can hand pool buffers over; without it: copy only */
#define ZCD_HV_F_PARALLEL_VMS 0x2u /* ops on different VMs share no state */

enum zcd_hv_event_kind {
	ZCD_HV_VM_UP, /* a guest connected: deliver from now on, with a full credit */
	ZCD_HV_VM_DOWN, /* the guest is gone, going, or broke its ring: stop, take back all it held */
};

struct zcd_hv_event {
	uint16_t vm;
	uint8_t kind; /* enum zcd_hv_event_kind */
};

struct zcd_hv;

struct zcd_hv_ops {
	const char *name;

	/*
	 * Set up the backend for cfg's VMs over the given pool.  keep, if not
	 * NULL, is a path prefix under which the backend may keep files that
	 * outlive the process (the state file's name), so that a later
	 * process created with the same prefix finds its guests again (see
	 * vm_reattach).  Returns NULL with a message in err on failure.  May
	 * log.
	 */
	struct zcd_hv *(*create)(const struct zcd_config *cfg, const struct zcd_buf_region *pool,
				 const char *keep, char *err, size_t errlen);

	/* ZCD_HV_F_* */
	uint32_t (*features)(const struct zcd_hv *hv);

	/*
	 * Start serving VM vm (its index in cfg->vms): set up what the guest
	 * needs and connect it now or when it appears.  Either way the
	 * dataplane delivers only after poll_events reported ZCD_HV_VM_UP.
	 */
	int (*vm_connect)(struct zcd_hv *hv, unsigned vm, char *err, size_t errlen);

	/*
	 * Guests that connected or went away since the last call, in order.
	 * Cheap enough to call every millisecond from the dataplane thread.
	 */
	unsigned (*poll_events)(struct zcd_hv *hv, struct zcd_hv_event *ev, unsigned max);

	/*
	 * After ZCD_HV_VM_DOWN, the dataplane has taken back (revoked) every
	 * buffer VM vm held: the backend may tear the connection down and
	 * connect the next guest for this VM.
	 */
	void (*vm_release)(struct zcd_hv *hv, unsigned vm);

	/*
	 * Deliver items[0..n) to VM vm in order: map REMAP buffers into the
	 * guest, copy COPY frames into guest-owned pages, write one descriptor
	 * each, publish, notify at most once.  Returns how many leading items
	 * were delivered; the caller still owns the rest.
	 */
	unsigned (*handoff)(struct zcd_hv *hv, unsigned vm, const struct zcd_handoff *items,
			    unsigned n);

	/*
	 * Take up to max pool-buffer returns from VM vm's return ring, copied out
	 * before any check.  Copy-page returns are settled inside the backend
	 * and reported in *tally, which is overwritten with this call's counts.
	 * Returns the number written to out.
	 */
	unsigned (*poll_returns)(struct zcd_hv *hv, unsigned vm, struct zcd_hv_return *out,
				 unsigned max, struct zcd_hv_return_tally *tally);

	/*
	 * End VM vm's access to buffers buf_ids[0..n).  revoked[i] is set true
	 * when the guest can no longer reach buffer i; false means it still maps
	 * the page: the caller must retry later and never reuse it meanwhile.
	 * Returns the number revoked.
	 */
	unsigned (*revoke)(struct zcd_hv *hv, unsigned vm, const uint32_t *buf_ids, unsigned n,
			   bool *revoked);

	/*
	 * Optional (NULL: the VMs are those of create's config, for good).
	 * While running, add VM vm with settings vc at an index no VM uses;
	 * The backend copies what it needs of vc: a reload may rewrite it.
	 * vm_connect follows as at start.
	 * May log.
	 */
	int (*vm_add)(struct zcd_hv *hv, unsigned vm, const struct zcd_vm_config *vc, char *err,
		      size_t errlen);

	/*
	 * Optional, present with vm_add.  Forget VM vm: called after
	 * vm_disconnect, once every buffer it held has been revoked.  Its
	 * index may be given to vm_add again.
	 */
	void (*vm_remove)(struct zcd_hv *hv, unsigned vm);

	/*
	 * Optional (NULL: a VM's credits stay as they were at start).  VM vm
	 * may hold credits frames from now on (at most what it was created
	 * or added with) and is asked to return give_back of those it holds:
	 * announce it on its ring and wake the guest.  A guest not connected
	 * gets the new limit when it connects.  Not the hot path; no logging.
	 */
	void (*vm_set_credits)(struct zcd_hv *hv, unsigned vm, uint32_t credits, uint32_t give_back);

	/*
	 * Optional.  The dataplane gives VM vm nothing more (it kept more than
	 * its credits past the time allowed): end the guest's connection as if
	 * it had broken its ring, so that poll_events reports ZCD_HV_VM_DOWN
	 * and the guest is asked to let go of what it holds.  Without this op
	 * the dataplane only takes back what it can.  No logging.
	 */
	void (*vm_cut_off)(struct zcd_hv *hv, unsigned vm);

	/*
	 * Optional (NULL: a guest never outlives the process that served it).
	 * Called once per VM after vm_connect at start, before any port
	 * starts.  If the guest vm_connect found is one that an earlier
	 * process on the same keep prefix served, and which ran on: the pool
	 * buffers it can still reach, with the generation each was handed
	 * over with (at most max, written to held), and in *copies the copy
	 * pages it holds; only those whose descriptors were published (the
	 * backend ends the others' access).  *served_on: the backend serves
	 * it on from where it was, and the dataplane keeps what its ledger
	 * agrees the VM held and revokes the rest; false: the guest is asked
	 * to start afresh, and every buffer in held is the dataplane's to
	 * revoke (and not reuse while the guest still maps it).  0 and
	 * *copies = 0 for a new guest.
	 */
	unsigned (*vm_reattach)(struct zcd_hv *hv, unsigned vm, struct zcd_hv_return *held,
				unsigned max, uint32_t *copies, bool *served_on);

	/* True when VM vm has consumed every descriptor delivered to it. */
	bool (*vm_drained)(struct zcd_hv *hv, unsigned vm);

	/*
	 * At shutdown, or before vm_remove: disconnect VM vm.  Its guest side stops (after consuming
	 * what is on its ring) and lets go of its mappings, so that revoke of
	 * anything it still held succeeds; a guest that does not comply keeps
	 * those pages (revoke keeps failing for them).  Returns published
	 * before the call stay readable by poll_returns.  May block briefly.
	 */
	void (*vm_disconnect)(struct zcd_hv *hv, unsigned vm);

	void (*vm_stats)(const struct zcd_hv *hv, unsigned vm, struct zcd_hv_vm_stats *out);

	void (*destroy)(struct zcd_hv *hv);
};

/* Backend by name ("sim"); NULL if unknown. */
const struct zcd_hv_ops *zcd_hv_find(const char *name);

/* Comma-separated names of the backends built in, for messages. */
const char *zcd_hv_names(void);

#endif /* ZCDEMUX_HV_H */
