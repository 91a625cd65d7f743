/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to the sim hypervisor backend: sim.c (the ops), vmfile.c (the
 * files shared with guests), process.c (the guests' processes).  The guest
 * side is a program of its own (guest/zcdemux-sim-guest.c); what both see
 * is in shared.h.
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
	bool left_reported; /* the guest left or died, and poll_events told */
	bool died; /* its process exited without leaving (killed, crashed) */
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
	pid_t guest_pid; /* 0 if none */
	int guest_pidfd; /* readable once it exited; -1: none, or no pidfds here */
	bool reattached; /* it was an earlier zcdemux's guest and ran on */
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
	char keep[ZCD_FILE_PATH_MAX]; /* VM files are "<keep>.sim.<name>"; "" = memfds */
	uint64_t file_align; /* their parts start at multiples of this: the file system's page */
	char guest_program[ZCD_FILE_PATH_MAX];
};

/* ---- vmfile.c: control path; these do not log unless said ---- */

/*
 * A new VM file for vm (an earlier one of the same name retired first),
 * with a formatted ring and nothing granted.  0, or -1 with errno.
 */
int sim_vmfile_create(struct zcd_hv *hv, struct sim_vm *vm);

/*
 * Take over the file an earlier zcdemux left for vm, if its guest ran on
 * with the same settings: 0, and vm serves it from where it was
 * (vm->reattached).  Otherwise -1, and the file is retired: its guest, if
 * any, is stopped (logged) and the file removed.
 */
int sim_vmfile_resume(struct zcd_hv *hv, struct sim_vm *vm);

/* Unmap and close vm's file, removing it if it was under hv->keep. */
void sim_vmfile_release(struct zcd_hv *hv, struct sim_vm *vm);

/* Retire every file under hv->keep of a VM that cfg does not have (logged). */
void sim_vmfile_retire_others(struct zcd_hv *hv, const struct zcd_config *cfg);

/* Wake the guest; false if it could not be woken. */
bool sim_notify_guest(const struct sim_vm *vm);

/* ---- process.c ---- */

/*
 * Start vm's guest on its file and wait until it attached to the ring.
 * 0, or -1 with a message in err (the guest is gone again).
 */
int sim_guest_start(struct zcd_hv *hv, struct sim_vm *vm, char *err, size_t errlen);

/*
 * Watch process pid as vm's guest, if it is one: it has the VM file at
 * file_path open as the guest's.  0, or -1 (no such guest).
 */
int sim_guest_adopt(struct sim_vm *vm, pid_t pid, const char *file_path);

/*
 * Ask vm's guest to stop and wait for it to exit, killing it if it does
 * not in SIM_GUEST_STOP_MS.  Logs an exit that was not clean.  Returns its
 * wait status, or -1 if unknown (not this process's child, or no guest).
 */
int sim_guest_stop(struct sim_vm *vm);

/* Has vm's guest exited?  Does not wait, and leaves it to sim_guest_stop to reap. */
bool sim_guest_exited(const struct sim_vm *vm);

/* No longer watch vm's guest (it exited, or is left to run). */
void sim_guest_forget(struct sim_vm *vm);

#endif /* ZCDEMUX_HV_SIM_H */
