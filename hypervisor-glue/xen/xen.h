/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to the xen hypervisor backend.
 *
 *   xen.c      the ops table and the hot path (handoff, returns, revoke)
 *   control.c  the control thread: finds domains, runs the xenstore
 *              handshake (include/zcdemux/xenbus.h), notices guests leaving
 *   grant.c    the dom0 grant helper (/dev/zcdemux_grant, kernel module)
 *   vmfile.c   each connection's file: its ring, and what a later zcdemux
 *              needs to take the connection over (re-attach)
 *   domain.c   domain liveness through libxenctrl (whose headers need GNU C)
 *
 * A VM's connection moves through phases.  The control thread and the
 * dataplane thread hand it to each other with release/acquire stores of
 * `phase`; whoever owns a phase owns the fields it uses:
 *
 *   IDLE ----> RESET --> HANDSHAKE --> UP ==> CONNECTED ==> DRAINING ==> RELEASED --> IDLE
 *   (control)  (control)  (control)  (control)  (dataplane)   (dataplane)   (control)
 *
 * UP -> CONNECTED and DOWN_REQUESTED -> DRAINING happen in poll_events on the
 * dataplane thread (reported as VM_UP / VM_DOWN); the control thread moves
 * UP or CONNECTED to DOWN_REQUESTED when the guest leaves; the dataplane moves
 * DRAINING to RELEASED in vm_release, once it revoked all the guest held.
 */
#ifndef ZCDEMUX_HV_XEN_H
#define ZCDEMUX_HV_XEN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>

#include "zcdemux/config.h"
#include "zcdemux/hv.h"
#include "zcdemux/ring.h"
#include "zcdemux/xenbus.h"

#include "../copy_slots.h"

#define XEN_RING_MIN_SIZE 64U
#define XEN_RING_PAGES_MAX 256U /* a ring for ZCD_CREDITS_MAX needs 193 */
#define XEN_MAX_PAGES_PER_BUF 8 /* one bit each in pages_pending */
#define XEN_RESET_WAIT_MS 3000 /* how long a stale guest gets to let go */
#define XEN_SHUTDOWN_WAIT_MS 3000 /* how long a guest gets to close at exit */
#define XEN_CONTROL_TICK_MS 100
#define XEN_REMOVE_WAIT_MS 2000 /* vm_add waits this long for a slot being removed */

#define XEN_VM_FILE_MAGIC 0x6e78637aU /* "zcxn" */
#define XEN_VM_FILE_VERSION 1

/* A buffer handed to the guest, as a later zcdemux needs to know it. */
struct xen_grant_record {
	uint32_t generation;
	uint32_t ring_pos; /* rx ring index of its descriptor */
};

/*
 * Page 0 of a connection's file: with the grant helper, a connection's
 * ring lives in a file (a memfd, or "<keep>.xen.<VM name>" next to the
 * state file), granted writable to the guest through the helper, so that a
 * later process maps the very pages the guest still maps.  The guest sees
 * only the ring pages.  Parts start at multiples of the file system's page.
 */
struct xen_vm_file {
	uint32_t magic; /* written last */
	uint32_t version;
	char name[ZCD_NAME_MAX];
	uint32_t domid;
	uint32_t ring_size;
	uint32_t ring_pages;
	uint32_t credits;
	uint32_t pages_per_buf;
	uint32_t nb_bufs;
	uint32_t poll_mode; /* the guest learnt it at the handshake: it cannot change */
	_Atomic uint32_t copy_slots; /* the guest's, once it connected */
	_Atomic uint32_t connected; /* 1 from our Connected on */
	uint64_t bytes;
	uint64_t ring_off;
	uint64_t copy_state_off; /* credits struct zcd_copy_slot_state */
	uint64_t grants_off; /* nb_bufs struct xen_grant_record, by buffer id */
};

/* A region of pages registered with the grant helper (one open file each). */
struct xen_grant_region {
	int fd; /* -1: none */
	uint32_t first_ref; /* page i is granted through first_ref + i */
	uint32_t nr_pages;
	uint32_t taken_over; /* pages still granted when it was adopted */
};

enum xen_phase {
	XEN_IDLE, /* no guest bound */
	XEN_RESET, /* an earlier backend's nodes are there: asked the guest to close */
	XEN_HANDSHAKE, /* nodes written, waiting for the guest's Initialised */
	XEN_UP, /* connected; the dataplane has not been told yet */
	XEN_CONNECTED, /* the dataplane delivers */
	XEN_DOWN_REQUESTED, /* the guest left; the dataplane has not been told yet */
	XEN_DRAINING, /* the dataplane is revoking what the guest held */
	XEN_RELEASED, /* the dataplane is done; tear down */
};

struct xen_vm {
	/* Set by the dataplane (create, vm_add) once the fields below are;
	 * cleared by the control thread once a removal asked for is done. */
	atomic_bool in_use;
	atomic_bool remove_requested; /* vm_remove: tear down, then free the slot */
	unsigned index; /* in cfg->vms */
	/* From its configuration, copied: a reload may rewrite that entry. */
	char name[ZCD_NAME_MAX];
	uint32_t wanted_domid; /* xen.domid, 0 = the domain called name */
	bool poll_mode; /* notify: poll */
	uint32_t credits; /* copy slots offered: the most it may ever hold */
	_Atomic uint32_t credit_limit; /* what it may hold now (dataplane sets it) */
	uint32_t ring_size; /* rx and return entries */
	_Atomic int phase; /* enum xen_phase */

	/* Control thread (and destroy). */
	uint32_t domid; /* the bound guest, 0 = none */
	char be_path[ZCD_XS_PATH_MAX];
	char fe_path[ZCD_XS_PATH_MAX];
	char fe_state_path[ZCD_XS_PATH_MAX + sizeof("/" ZCD_XS_STATE)];
	bool watching;
	bool asked_to_close; /* cut off: the guest was asked to close */
	uint64_t reset_deadline_ms;
	void *ring_area; /* shared with the guest: in file, or gntshr */
	uint32_t ring_pages;
	struct xen_vm_file *file; /* NULL without the grant helper */
	int file_fd;
	struct xen_grant_region ring_grants; /* the ring pages of file */
	uint32_t previous_domid; /* the domain an earlier zcdemux served as this VM */
	evtchn_port_t port; /* our end of the event channel */
	bool port_bound;
	uint8_t *copy_area; /* the guest's copy pages, mapped once */
	uint32_t copy_pages;

	/* Dataplane while CONNECTED and DRAINING (set up by control before UP). */
	struct zcd_ring ring;
	uint32_t ring_limit; /* the credit limit the guest was last told */
	bool reported_up;
	struct zcd_copy_slots copies; /* over copy_area */
	struct xen_grant_record *grant_records; /* in file; NULL without it */
	bool reattached; /* taken over from an earlier zcdemux at start */

	_Atomic uint64_t notifications;
	_Atomic uint64_t grant_batches;
	_Atomic uint64_t connects;
	_Atomic uint64_t ring_errors;
};

struct zcd_hv {
	struct zcd_buf_region pool;
	uint32_t self_domid; /* the domain zcdemux runs in */

	/* Grant helper: fd -1 when the module is not loaded (copy only). */
	struct xen_grant_region pool_grants;
	uint16_t *pool_domids; /* per page, granted to whom when taken over; or NULL */
	uint8_t *pages_pending; /* per buffer: bit i = page i still granted */
	uint32_t *page_scratch; /* page indices of one batch */
	uint8_t *result_scratch;

	struct xc_interface_core *xc; /* libxenctrl, only used in domain.c */
	struct xs_handle *xs;
	xengnttab_handle *xgt; /* maps the guests' copy pages */
	xengntshr_handle *xgs; /* shares ring areas without the grant helper */
	xenevtchn_handle *xce;

	pthread_t control;
	bool control_running;
	atomic_bool stop;

	struct xen_vm *vms; /* ZCD_MAX_VMS slots, by VM index */
	unsigned nb_vms; /* slots */

	char keep[ZCD_FILE_PATH_MAX]; /* "": connection files are memfds */
	uint64_t file_align;
};

/* control.c */
/* hv->self_domid: the domain we run in, as xenstore says. */
void xen_control_find_self(struct zcd_hv *hv);
int xen_control_start(struct zcd_hv *hv, char *err, size_t errlen);
void xen_control_stop(struct zcd_hv *hv);
/* Ask the guest of vm to close and wait (bounded) until it did.  Dataplane thread. */
void xen_control_close_guest(struct zcd_hv *hv, struct xen_vm *vm);
/* Free everything of vm's connection; its phase must belong to the caller. */
void xen_control_teardown(struct zcd_hv *hv, struct xen_vm *vm);
/*
 * Before the control thread starts: take over vm's connection that an
 * earlier zcdemux left, if its guest runs on with it (phase UP).  False
 * if there is none or it cannot be taken over (vm stays IDLE; the control
 * thread then asks the guest to close it).
 */
bool xen_control_resume(struct zcd_hv *hv, struct xen_vm *vm);
/* Ask domain domid to close the connection an earlier zcdemux left it. */
void xen_control_ask_close(struct zcd_hv *hv, uint32_t domid);

/* domain.c */
int xen_domain_open(struct zcd_hv *hv);
void xen_domain_close(struct zcd_hv *hv);
/* True if domid exists and is neither dying nor shut down. */
bool xen_domain_alive(struct zcd_hv *hv, uint32_t domid);

/*
 * grant.c: 0 / -1 with errno; grant, end and query are one ioctl each.
 * take_over: ADOPT, so that the grants a dead process left on these very
 * pages become the region's (g->taken_over); else REGISTER.
 */
int xen_grant_region_open(struct xen_grant_region *g, void *base, size_t bytes, bool take_over,
			  char *why, size_t whylen);
void xen_grant_region_close(struct xen_grant_region *g);
int xen_grant_pages(const struct xen_grant_region *g, const uint32_t *pages, unsigned n,
		    uint32_t domid, bool readonly);
/* results[i] = ZCD_GRANT_ENDED or ZCD_GRANT_STILL_MAPPED. */
int xen_grant_end(const struct xen_grant_region *g, const uint32_t *pages, unsigned n,
		  uint8_t *results);
/* domids[i] (nr_pages of them) = the domain page i is granted to, 0 = none. */
int xen_grant_query(const struct xen_grant_region *g, uint16_t *domids);

/* vmfile.c */
/*
 * A new file for vm's connection to vm->domid: ring_area points into it,
 * its ring pages are granted writable, their references in refs.  0, or
 * -1 with a reason in why.
 */
int xen_vmfile_create(struct zcd_hv *hv, struct xen_vm *vm, uint32_t *refs, char *why,
		      size_t whylen);
/* The file an earlier zcdemux kept for vm, mapped if its layout is vm's; 0 or -1. */
int xen_vmfile_open_kept(struct zcd_hv *hv, struct xen_vm *vm);
/* Take over the ring pages of vm's kept file from the helper, and the ring; 0 or -1. */
int xen_vmfile_take_ring(struct zcd_hv *hv, struct xen_vm *vm);
/* Copy slots over vm->copy_area, in the states the kept file has; 0 or -1. */
int xen_vmfile_resume_copies(struct xen_vm *vm, uint32_t slots, uint32_t slot_bytes);
/* Copy slots over vm->copy_area, their states in vm's file if it has one; 0 or -1. */
int xen_vmfile_init_copies(struct xen_vm *vm, uint32_t slots, uint32_t slot_bytes);
/* Close vm's file (the helper keeps ring pages the guest still maps) and remove it. */
void xen_vmfile_release(struct zcd_hv *hv, struct xen_vm *vm);
/* Files of VMs cfg does not have: ask their guests to close, remove them. */
void xen_vmfile_retire_others(struct zcd_hv *hv, const struct zcd_config *cfg);

static inline void xen_count(_Atomic uint64_t *counter, uint64_t n)
{
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

#endif /* ZCDEMUX_HV_XEN_H */
