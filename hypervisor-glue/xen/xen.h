/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to the xen hypervisor backend.
 *
 *   xen.c      the ops table and the hot path (handoff, returns, revoke)
 *   control.c  the control thread: finds domains, runs the xenstore
 *              handshake (include/zcdemux/xenbus.h), notices guests leaving
 *   grant.c    the dom0 grant helper (/dev/zcdemux_grant, kernel module)
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
#define XEN_MAX_PAGES_PER_BUF 8 /* one bit each in pages_pending */
#define XEN_RESET_WAIT_MS 3000 /* how long a stale guest gets to let go */
#define XEN_SHUTDOWN_WAIT_MS 3000 /* how long a guest gets to close at exit */
#define XEN_CONTROL_TICK_MS 100
#define XEN_REMOVE_WAIT_MS 2000 /* vm_add waits this long for a slot being removed */

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
	void *ring_area; /* shared with the guest (gntshr) */
	uint32_t ring_pages;
	evtchn_port_t port; /* our end of the event channel */
	bool port_bound;
	uint8_t *copy_area; /* the guest's copy pages, mapped once */
	uint32_t copy_pages;

	/* Dataplane while CONNECTED and DRAINING (set up by control before UP). */
	struct zcd_ring ring;
	uint32_t ring_limit; /* the credit limit the guest was last told */
	bool reported_up;
	struct zcd_copy_slots copies; /* over copy_area */

	_Atomic uint64_t notifications;
	_Atomic uint64_t grant_batches;
	_Atomic uint64_t connects;
	_Atomic uint64_t ring_errors;
};

struct zcd_hv {
	struct zcd_buf_region pool;
	uint32_t self_domid; /* the domain zcdemux runs in */

	/* Grant helper: -1 when the module is not loaded (copy only). */
	int grant_fd;
	uint32_t first_ref;
	uint8_t *pages_pending; /* per buffer: bit i = page i still granted */
	uint32_t *page_scratch; /* page indices of one batch */
	uint8_t *result_scratch;

	struct xc_interface_core *xc; /* libxenctrl, only used in domain.c */
	struct xs_handle *xs;
	xengnttab_handle *xgt; /* maps the guests' copy pages */
	xengntshr_handle *xgs; /* shares ring areas */
	xenevtchn_handle *xce;

	pthread_t control;
	bool control_running;
	atomic_bool stop;

	struct xen_vm *vms; /* ZCD_MAX_VMS slots, by VM index */
	unsigned nb_vms; /* slots */
};

/* control.c */
int xen_control_start(struct zcd_hv *hv, char *err, size_t errlen);
void xen_control_stop(struct zcd_hv *hv);
/* Ask the guest of vm to close and wait (bounded) until it did.  Dataplane thread. */
void xen_control_close_guest(struct zcd_hv *hv, struct xen_vm *vm);
/* Free everything of vm's connection; its phase must belong to the caller. */
void xen_control_teardown(struct zcd_hv *hv, struct xen_vm *vm);

/* domain.c */
int xen_domain_open(struct zcd_hv *hv);
void xen_domain_close(struct zcd_hv *hv);
/* True if domid exists and is neither dying nor shut down. */
bool xen_domain_alive(struct zcd_hv *hv, uint32_t domid);

/* grant.c: 0 / -1 with errno; grant and end are one ioctl each. */
int xen_grant_open(struct zcd_hv *hv, char *why, size_t whylen);
void xen_grant_close(struct zcd_hv *hv);
int xen_grant_pages(struct zcd_hv *hv, const uint32_t *pages, unsigned n, uint32_t domid);
/* results[i] = ZCD_GRANT_ENDED or ZCD_GRANT_STILL_MAPPED. */
int xen_grant_end(struct zcd_hv *hv, const uint32_t *pages, unsigned n, uint8_t *results);

static inline void xen_count(_Atomic uint64_t *counter, uint64_t n)
{
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

#endif /* ZCDEMUX_HV_XEN_H */
