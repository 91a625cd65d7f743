/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to the sim hypervisor backend (sim.c).  The guest side is a
 * program of its own (guest/zcdemux-sim-guest.c); what both see is in
 * shared.h.
 *
 * Ownership: fields marked "dataplane" are touched only by the thread that
 * calls the ops for this VM; atomics are shared with poll_events.
 */
#ifndef ZCDEMUX_HV_SIM_H
#define ZCDEMUX_HV_SIM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "zcdemux/config.h"
#include "zcdemux/hv.h"
#include "zcdemux/ring.h"

#include "../copy_slots.h"
#include "shared.h"

#define SIM_RING_MIN_SIZE 64U
#define SIM_GUEST_START_MS 5000 /* longest wait for a new guest to attach */
#define SIM_GUEST_STOP_MS 5000 /* longest wait for a stopped guest to exit */
#define SIM_GUEST_PROGRAM "zcdemux-sim-guest"
#define SIM_GUEST_ENV "ZCDEMUX_SIM_GUEST" /* overrides where the program is looked for */

struct sim_vm {
	bool in_use; /* a VM of the configuration has this slot */
	unsigned index; /* in cfg->vms, for messages */
	char name[ZCD_NAME_MAX];
	struct zcd_vm_sim_config sim; /* as added: a reload may rewrite the configuration */
	uint32_t credits; /* grant slots and copy pages, each: the most it may hold */
	uint32_t pages_per_buf;
	uint32_t credit_limit; /* dataplane: announced to the guest; at most credits */
	bool poll_mode; /* notify: poll: no events; the guest polls its ring */

	bool connected; /* dataplane: handoff delivers only while set */
	bool up_to_report; /* dataplane: connected, not yet told by poll_events */
	atomic_bool ring_broken; /* the guest wrote impossible indices: cut it off */
	atomic_bool down_to_report; /* ring_broken or cut off, not yet told by poll_events */
	bool left_reported; /* the guest's "left" was told by poll_events */
	bool was_connected; /* dataplane: resources below exist */

	/* The VM file, mapped (see shared.h), and the backend's views of it. */
	int file_fd;
	struct sim_vm_file *file;
	struct sim_guest_status *status;
	uint32_t *grants; /* slot -> pool buffer */
	void *area; /* the ring area */
	size_t area_bytes;
	uint32_t ring_size;
	struct zcd_ring ring;

	/* Grant slots (dataplane): which pool buffer each maps (kept when the
	 * guest's mappings are torn down, for the revokes), and the free ones. */
	uint32_t *slot_buf;
	uint32_t *free_slots; /* stack */
	uint32_t nb_free_slots;

	/* Copy pages: the guest's memory, filled by the dataplane (dataplane). */
	struct zcd_copy_slots copies;

	/* The guest: a process, or none with sim.instant_return. */
	pid_t guest_pid;
	int sink_fd; /* the VM's pcap sink, handed to each guest; -1 = none */
	struct zcd_ring echo_ring; /* instant_return: the guest's view, used in handoff */

	/* Counters (struct zcd_hv_vm_stats); the guest's are in its status page. */
	_Atomic uint64_t notifications;
	_Atomic uint64_t grant_batches;
	_Atomic uint64_t connects;
	_Atomic uint64_t ring_errors;
};

struct zcd_hv {
	struct zcd_buf_region pool;
	uint32_t *slot_of_buf; /* grant slot holding each pool buffer, or SIM_NO_SLOT */
	struct sim_vm *vms; /* ZCD_MAX_VMS slots, by VM index */
	unsigned nb_vms; /* slots */
	char guest_program[ZCD_FILE_PATH_MAX];
};

#endif /* ZCDEMUX_HV_SIM_H */
