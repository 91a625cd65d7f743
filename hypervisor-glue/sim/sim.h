/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to the sim hypervisor backend (sim.c: control path and hot path,
 * guest.c: the simulated guest thread).
 *
 * Per VM the model has a shared ring area, a guest-physical map (p2m) from
 * guest frame number to host page, and a guest thread that sees frames only
 * through that map.  Gfn layout of one VM, with S = credits slots of ppb
 * pages each (ppb = pool pages per buffer):
 *
 *     [0, S*ppb)                  grant window: pool buffers mapped by handoff
 *     [copy_base, copy_base+S*ppb) the guest's own copy pages (always mapped)
 *
 * Ownership by thread: fields marked "dataplane" are touched only by the
 * thread that calls the ops for this VM; "guest" fields only by the guest
 * thread; atomics are shared.  The ring area and the p2m are shared memory.
 */
#ifndef ZCDEMUX_HV_SIM_H
#define ZCDEMUX_HV_SIM_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "zcdemux/config.h"
#include "zcdemux/hv.h"
#include "zcdemux/ring.h"

#include "../copy_slots.h"
#include "../pcap_sink.h"

#define SIM_NO_SLOT UINT32_MAX
#define SIM_RING_MIN_SIZE 64U
#define SIM_HOSTILE_GROUP 4U /* a hostile guest's entries per return */
#define SIM_GUEST_WAIT_MS 20 /* longest sleep of an idle guest between checks */
#define SIM_GUEST_POLL_US 50 /* notify: poll: the guest looks at its ring this often when idle */

/* Counter with one writer and any number of readers: no locked add needed. */
static inline void sim_count(_Atomic uint64_t *counter, uint64_t n)
{
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* What the simulated guest keeps for itself; only the guest thread uses it. */
struct sim_guest {
	struct zcd_ring ring; /* its own view, built with zcd_ring_attach */
	uint8_t *scratch; /* one buffer's pages, gathered through the p2m */
	struct zcd_ret_desc *returns; /* returns of the batch being processed, in groups */
	uint32_t nb_returns;
	struct zcd_pcap_sink *sink; /* NULL = discard */
	uint32_t frames_read; /* counts up to scribble_after */
	/* sim.hold: buffers read and kept, oldest first (a ring of ring_size). */
	struct zcd_ret_desc *held;
	uint32_t held_first;
	uint32_t nb_held;
	uint32_t keep; /* how many it keeps: min(hold, credit limit / 2) */
};

struct sim_vm {
	bool in_use; /* a VM of the configuration has this slot */
	unsigned index; /* in cfg->vms, for messages */
	uint32_t credits; /* grant slots and copy pages, each: the most it may hold */
	uint32_t pages_per_buf;
	bool stall;
	bool instant_return; /* no guest thread: handoff returns everything unread */
	bool hostile; /* each return comes with a duplicate, a stale and a forged one */
	uint32_t scribble_after; /* the guest breaks its ring after this many frames */
	uint32_t reboot_every; /* the guest goes away after this many frames, then a new one comes */
	uint32_t hold; /* the guest keeps this many buffers it read (sim.hold) */
	uint32_t credit_limit; /* dataplane: announced to the guest; at most credits */
	bool poll_mode; /* notify: poll: no events; the guest polls its ring */
	char sink_path[ZCD_FILE_PATH_MAX];

	bool connected; /* dataplane: handoff delivers only while set */
	bool up_to_report; /* dataplane: connected, not yet told by poll_events */
	atomic_bool ring_broken; /* the guest wrote impossible indices: cut it off */
	atomic_bool down_to_report; /* ring_broken or left, not yet told by poll_events */
	atomic_bool left; /* reboot_every: the guest went away */
	bool was_connected; /* dataplane: resources below exist */

	/* Shared ring area and the backend's private view of it (dataplane). */
	void *area;
	size_t area_bytes;
	uint32_t ring_size; /* rx and return entries */
	struct zcd_ring ring;

	/* Guest-physical map: written by the dataplane, read by the guest. */
	_Atomic(const uint8_t *) *p2m;
	uint32_t copy_base; /* first gfn of the copy pages */

	/* Grant slots (dataplane): which pool buffer each slot maps. */
	uint32_t *slot_buf;
	uint32_t *free_slots; /* stack */
	uint32_t nb_free_slots;

	/* Copy pages: the guest's memory, filled by the dataplane (dataplane). */
	uint8_t *copy_mem;
	struct zcd_copy_slots copies;

	/* Notification channel and the guest thread. */
	int event_fd;
	pthread_t guest_thread;
	sem_t guest_attached; /* posted once the guest tried to attach */
	bool guest_attach_ok; /* written before that post, read after the wait */
	atomic_bool stop; /* set by vm_disconnect */
	struct sim_guest guest;

	/* Counters (struct zcd_hv_vm_stats). */
	_Atomic uint64_t notifications;
	_Atomic uint64_t grant_batches;
	_Atomic uint64_t connects;
	_Atomic uint64_t ring_errors;
	_Atomic uint64_t guest_rx_packets;
	_Atomic uint64_t guest_rx_bytes;
	_Atomic uint64_t guest_residue_bytes;
	_Atomic uint64_t guest_bad_descs;
	_Atomic uint64_t guest_faults;
};

struct zcd_hv {
	struct zcd_buf_region pool;
	uint32_t *slot_of_buf; /* grant slot holding each pool buffer, or SIM_NO_SLOT */
	struct sim_vm *vms; /* ZCD_MAX_VMS slots, by VM index */
	unsigned nb_vms; /* slots */
};

/* Guest thread body; arg is the struct sim_vm.  Returns NULL. */
void *zcd_hv_sim_guest_run(void *arg);

/* The instant_return guest, run by the backend in the dataplane's thread
 * after each handoff: everything delivered goes back at once, unread. */
void zcd_hv_sim_guest_echo(struct sim_vm *vm);

#endif /* ZCDEMUX_HV_SIM_H */
