/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the sim backend and a simulated guest share: one file per VM (a
 * memfd, or a file next to the state file so that it outlives zcdemux),
 * and the pool's file, which the guest maps read-only and reads only
 * through the VM's grant table, as a real guest reads only granted pages.
 *
 * The guest runs as a process of its own (zcdemux-sim-guest), like a VM
 * beside dom0: a guest that crashes takes nothing else down, and with a
 * file that outlives zcdemux, a guest outlives a zcdemux that is killed:
 * it waits (SIM_GUEST_ORPHAN_MS) for another to re-attach, which finds in
 * the hyp part everything the backend needs to serve it on.
 *
 * Layout of a VM file (the parts page-aligned):
 *
 *     hyp page     struct sim_vm_file: settings and control, written by
 *                  the backend; the guest maps it read-only
 *     grant table  credits x uint32_t: the pool buffer each grant slot
 *                  maps, or SIM_NO_SLOT (the "hypervisor's" p2m)
 *     generations  credits x uint32_t: the generation each slot's buffer
 *                  was handed over with
 *     positions    credits x uint32_t: the rx ring index of the descriptor
 *                  that handed it over (not published yet if at or past
 *                  the ring's producer index)
 *     copy slots   credits x struct zcd_copy_slot_state
 *     ---- guest memory from here: the guest maps it read-write ----
 *     status page  struct sim_guest_status: the guest's counters and state
 *     ring area    the shared ring (include/zcdemux/ring.h)
 *     copy pages   credits x pages_per_buf pages that copies go into
 *
 * Gfns of a VM: [0, credits*ppb) is the grant window, slot s at s*ppb;
 * [copy_base, copy_base + credits*ppb) are its copy pages.
 */
#ifndef ZCDEMUX_HV_SIM_SHARED_H
#define ZCDEMUX_HV_SIM_SHARED_H

#include <stdatomic.h>
#include <stdint.h>

#include "zcdemux/config.h"
#include "zcdemux/ring.h"

#include "../copy_slots.h"

#define SIM_VM_FILE_MAGIC 0x4d56474d4953445aULL /* "ZDSIMGVM" little-endian */
#define SIM_VM_FILE_VERSION 2U
#define SIM_NO_SLOT UINT32_MAX
#define SIM_HOSTILE_GROUP 4U /* a hostile guest's entries per return */
#define SIM_GUEST_WAIT_MS 20 /* longest sleep of an idle guest between checks */
#define SIM_GUEST_POLL_US 50 /* notify: poll: the guest looks at its ring this often when idle */
#define SIM_GUEST_ORPHAN_MS 10000 /* how long a guest waits for a new zcdemux */

/* The fds a guest process is started with. */
#define SIM_GUEST_VM_FD 3
#define SIM_GUEST_POOL_FD 4
#define SIM_GUEST_SINK_FD 5

/* Counter with one writer and any number of readers: no locked add needed. */
static inline void sim_count(_Atomic uint64_t *counter, uint64_t n)
{
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* The hyp page: written by the backend before the guest starts, except where marked. */
struct sim_vm_file {
	uint64_t magic;
	uint32_t version;
	uint32_t credits; /* grant slots and copy pages, each */
	uint32_t pages_per_buf;
	uint32_t ring_size; /* rx and return entries */
	uint32_t copy_base; /* first gfn of the copy pages */
	uint32_t nb_bufs; /* pool buffers the pool file holds */
	uint64_t bytes; /* the whole file */
	uint64_t grants_off;
	uint64_t grant_gens_off;
	uint64_t grant_pos_off;
	uint64_t copy_state_off;
	uint64_t guest_off; /* first byte the guest may write: the status page */
	uint64_t ring_off;
	uint64_t ring_bytes;
	uint64_t copy_off;
	char name[ZCD_NAME_MAX];
	/* How the guest behaves (vms[].sim and notify). */
	uint32_t stall;
	uint32_t hostile;
	uint32_t scribble_after;
	uint32_t reboot_every;
	uint32_t hold;
	uint32_t poll_mode;
	uint32_t persistent; /* the file outlives zcdemux: wait for the next one */
	/* Control, changed while the guest runs. */
	_Atomic int32_t backend_pid; /* the zcdemux serving it */
	_Atomic uint32_t stop; /* consume what is on the ring, give everything back, exit */
};

/* The guest's own page: written by the guest, read by the backend. */
struct sim_guest_status {
	_Atomic uint32_t wake; /* futex word: bumped by the backend to wake the guest */
	_Atomic uint32_t attached; /* SIM_ATTACH_* */
	_Atomic uint32_t left; /* reboot_every: it went away, everything given back */
	_Atomic int32_t pid;
	_Atomic uint64_t rx_packets;
	_Atomic uint64_t rx_bytes;
	_Atomic uint64_t residue_bytes; /* non-zero bytes outside a frame */
	_Atomic uint64_t bad_descs;
	_Atomic uint64_t faults; /* pages found unmapped */
};

enum sim_attach {
	SIM_ATTACH_PENDING,
	SIM_ATTACH_OK,
	SIM_ATTACH_REJECTED, /* the ring header did not check out */
};

static inline uint32_t *sim_grants(const struct sim_vm_file *f)
{
	return (uint32_t *)((uint8_t *)f + f->grants_off);
}

static inline uint32_t *sim_grant_generations(const struct sim_vm_file *f)
{
	return (uint32_t *)((uint8_t *)f + f->grant_gens_off);
}

static inline uint32_t *sim_grant_positions(const struct sim_vm_file *f)
{
	return (uint32_t *)((uint8_t *)f + f->grant_pos_off);
}

static inline struct zcd_copy_slot_state *sim_copy_states(const struct sim_vm_file *f)
{
	return (struct zcd_copy_slot_state *)((uint8_t *)f + f->copy_state_off);
}

static inline struct sim_guest_status *sim_status(const struct sim_vm_file *f)
{
	return (struct sim_guest_status *)((uint8_t *)f + f->guest_off);
}

/*
 * The page behind gfn, as the guest sees it: a pool page its grant slot
 * maps, one of its copy pages, or NULL (unmapped).  gfn must be in the
 * grant window or among the copy pages.
 */
static inline const uint8_t *sim_gfn_page(const struct sim_vm_file *f, const uint8_t *pool,
					  uint32_t gfn)
{
	uint32_t ppb = f->pages_per_buf, buf;

	if (gfn >= f->copy_base)
		return (const uint8_t *)f + f->copy_off + (size_t)(gfn - f->copy_base) * ZCD_PAGE_SIZE;
	buf = atomic_load_explicit((_Atomic uint32_t *)&sim_grants(f)[gfn / ppb],
				   memory_order_acquire);
	if (buf >= f->nb_bufs)
		return NULL;
	return pool + ((size_t)buf * ppb + gfn % ppb) * ZCD_PAGE_SIZE;
}

#endif /* ZCDEMUX_HV_SIM_SHARED_H */
