/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The xen backend's control thread: it finds each configured VM's domain
 * (by domid or by name), runs the xenstore handshake of
 * include/zcdemux/xenbus.h with the guest, notices the guest or its domain
 * going away, and tears a connection down once the dataplane has taken back
 * everything the guest held.  Nothing here is on the hot path; it logs.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <xen/io/xenbus.h>

#include "xen.h"

#define LOG(...) fprintf(stderr, "zcdemux: xen: " __VA_ARGS__)

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* ---- xenstore helpers ---- */

__attribute__((format(printf, 4, 5))) static bool xs_printf(struct xs_handle *xs, const char *dir,
							    const char *key, const char *fmt, ...)
{
	char path[ZCD_XS_PATH_MAX], value[64];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	if (snprintf(path, sizeof(path), "%s/%s", dir, key) >= (int)sizeof(path))
		return false;
	return xs_write(xs, XBT_NULL, path, value, (unsigned)len);
}

/* Unsigned decimal value of dir/key; -1 if absent or not a number. */
static long long xs_read_number(struct xs_handle *xs, const char *dir, const char *key)
{
	char path[ZCD_XS_PATH_MAX], *value, *end;
	unsigned int len;
	long long n = -1;

	if (snprintf(path, sizeof(path), "%s/%s", dir, key) >= (int)sizeof(path))
		return -1;
	value = xs_read(xs, XBT_NULL, path, &len);
	if (value == NULL)
		return -1;
	errno = 0;
	if (len > 0 && value[0] >= '0' && value[0] <= '9') {
		n = strtoll(value, &end, 10);
		if (errno != 0 || *end != '\0')
			n = -1;
	}
	free(value);
	return n;
}

static bool xs_set_owner(struct xs_handle *xs, const char *path, uint32_t owner,
			 uint32_t reader)
{
	struct xs_permissions perms[2] = {
		{.id = owner, .perms = XS_PERM_NONE},
		{.id = reader, .perms = XS_PERM_READ},
	};

	return xs_set_permissions(xs, XBT_NULL, path, perms, owner == reader ? 1 : 2);
}

/* ---- domains ---- */

/* The live domain this VM is: its configured domid, or the one with its name; 0 = none. */
static uint32_t find_domain(struct zcd_hv *hv, const struct xen_vm *vm)
{
	unsigned int nb = 0;
	char **ids;
	uint32_t found = 0;

	if (vm->wanted_domid != 0)
		return xen_domain_alive(hv, vm->wanted_domid) ? vm->wanted_domid : 0;
	ids = xs_directory(hv->xs, XBT_NULL, "/local/domain", &nb);
	for (unsigned i = 0; ids != NULL && i < nb && found == 0; i++) {
		char path[ZCD_XS_PATH_MAX], *name;
		unsigned long domid = strtoul(ids[i], NULL, 10);
		unsigned int len;

		if (domid == hv->self_domid || domid > ZCD_DOMID_MAX)
			continue;
		snprintf(path, sizeof(path), "/local/domain/%lu/name", domid);
		name = xs_read(hv->xs, XBT_NULL, path, &len);
		if (name != NULL && strcmp(name, vm->name) == 0 &&
		    xen_domain_alive(hv, (uint32_t)domid))
			found = (uint32_t)domid;
		free(name);
	}
	free(ids);
	return found;
}

/* ---- one connection ---- */

static void set_phase(struct xen_vm *vm, enum xen_phase phase)
{
	atomic_store_explicit(&vm->phase, phase, memory_order_release);
}

static long long frontend_state(struct zcd_hv *hv, const struct xen_vm *vm)
{
	return xs_read_number(hv->xs, vm->fe_path, ZCD_XS_STATE);
}

/* What vm's connection holds in this process; xenstore is left as it is. */
static void release_local(struct zcd_hv *hv, struct xen_vm *vm)
{
	if (vm->watching)
		xs_unwatch(hv->xs, vm->fe_state_path, vm->fe_state_path);
	vm->watching = false;
	if (vm->copy_area != NULL)
		xengnttab_unmap(hv->xgt, vm->copy_area, vm->copy_pages);
	vm->copy_area = NULL;
	vm->copy_pages = 0;
	if (vm->port_bound)
		xenevtchn_unbind(hv->xce, vm->port);
	vm->port_bound = false;
	/* The helper, and gntalloc, keep a page a guest still maps until it lets go. */
	if (vm->file != NULL || vm->ring_grants.fd >= 0)
		xen_vmfile_release(hv, vm);
	else if (vm->ring_area != NULL)
		xengntshr_unshare(hv->xgs, vm->ring_area, vm->ring_pages);
	vm->ring_area = NULL;
	zcd_copy_slots_fini(&vm->copies);
	vm->reattached = false;
	vm->asked_to_close = false;
}

void xen_control_teardown(struct zcd_hv *hv, struct xen_vm *vm)
{
	release_local(hv, vm);
	if (vm->domid != 0) {
		/* As a toolstack removes a device: the guest sees its dir go. */
		xs_rm(hv->xs, XBT_NULL, vm->be_path);
		if (xen_domain_alive(hv, vm->domid))
			xs_rm(hv->xs, XBT_NULL, vm->fe_path);
	}
	vm->domid = 0;
	set_phase(vm, XEN_IDLE);
}

/* Share the ring, open the event channel, write both directories. */
static int publish_connection(struct zcd_hv *hv, struct xen_vm *vm)
{
	size_t bytes = zcd_ring_area_bytes(vm->ring_size, vm->ring_size);
	char parent[ZCD_XS_PATH_MAX];
	xenevtchn_port_or_error_t port;
	uint32_t *refs;
	bool ok;

	vm->ring_pages = (uint32_t)(bytes / ZCD_PAGE_SIZE);
	refs = calloc(vm->ring_pages, sizeof(*refs));
	if (refs == NULL)
		return -1;
	if (hv->pool_grants.fd >= 0) {
		char why[256];

		/* Through the helper, from a file: a later zcdemux can take it over. */
		if (xen_vmfile_create(hv, vm, refs, why, sizeof(why)) != 0) {
			LOG("%s: %s\n", vm->name, why);
			free(refs);
			return -1;
		}
	} else {
		vm->ring_area = xengntshr_share_pages(hv->xgs, vm->domid, (int)vm->ring_pages,
						      refs, 1);
		if (vm->ring_area == NULL) {
			LOG("%s: cannot share %u ring pages with domain %u: %s\n", vm->name,
			    vm->ring_pages, vm->domid, strerror(errno));
			free(refs);
			return -1;
		}
	}
	vm->ring_limit = atomic_load(&vm->credit_limit);
	zcd_ring_format(&vm->ring, vm->ring_area, bytes, vm->ring_size, vm->ring_size,
			vm->ring_limit);
	port = xenevtchn_bind_unbound_port(hv->xce, vm->domid);
	if (port < 0) {
		LOG("%s: cannot open an event channel to domain %u: %s\n", vm->name, vm->domid,
		    strerror(errno));
		return -1;
	}
	vm->port = (evtchn_port_t)port;
	vm->port_bound = true;

	xs_rm(hv->xs, XBT_NULL, vm->be_path);
	xs_rm(hv->xs, XBT_NULL, vm->fe_path);
	/* Backend dir: ours, readable by the guest and nobody else. */
	ok = xs_mkdir(hv->xs, XBT_NULL, vm->be_path) &&
	     xs_set_owner(hv->xs, vm->be_path, hv->self_domid, vm->domid);
	for (uint32_t i = 0; ok && i < vm->ring_pages; i++) {
		char key[32];

		snprintf(key, sizeof(key), ZCD_XS_RING_REF_FMT, i);
		ok = xs_printf(hv->xs, vm->be_path, key, "%u", refs[i]);
	}
	free(refs);
	ok = ok && xs_printf(hv->xs, vm->be_path, ZCD_XS_FRONTEND, "%s", vm->fe_path) &&
	     xs_printf(hv->xs, vm->be_path, ZCD_XS_FRONTEND_ID, "%u", vm->domid) &&
	     xs_printf(hv->xs, vm->be_path, ZCD_XS_PROTOCOL, "%u", ZCD_RING_VERSION) &&
	     xs_printf(hv->xs, vm->be_path, ZCD_XS_RING_PAGES, "%u", vm->ring_pages) &&
	     xs_printf(hv->xs, vm->be_path, ZCD_XS_EVENT_CHANNEL, "%u", vm->port) &&
	     xs_printf(hv->xs, vm->be_path, ZCD_XS_BUFFER_PAGES, "%u", hv->pool.pages_per_buf) &&
	     xs_printf(hv->xs, vm->be_path, ZCD_XS_COPY_SLOTS_MAX, "%u", vm->credits) &&
	     xs_printf(hv->xs, vm->be_path, ZCD_XS_NOTIFY_POLL, "%u",
		       vm->poll_mode);
	/* Frontend dir: the guest's, readable by us (as a toolstack sets it up). */
	snprintf(parent, sizeof(parent), "/local/domain/%u/device/%s", vm->domid, ZCD_XS_TYPE);
	ok = ok && xs_mkdir(hv->xs, XBT_NULL, parent) &&
	     xs_set_owner(hv->xs, parent, vm->domid, vm->domid) &&
	     xs_mkdir(hv->xs, XBT_NULL, vm->fe_path) &&
	     xs_set_owner(hv->xs, vm->fe_path, vm->domid, hv->self_domid) &&
	     xs_printf(hv->xs, vm->fe_path, ZCD_XS_BACKEND, "%s", vm->be_path) &&
	     xs_printf(hv->xs, vm->fe_path, ZCD_XS_BACKEND_ID, "%u", hv->self_domid) &&
	     xs_printf(hv->xs, vm->fe_path, ZCD_XS_STATE, "%d", XenbusStateInitialising) &&
	     xs_printf(hv->xs, vm->be_path, ZCD_XS_STATE, "%d", XenbusStateInitWait);
	if (!ok) {
		LOG("%s: cannot write the xenstore handshake for domain %u: %s\n", vm->name,
		    vm->domid, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The grants of the guest's copy pages, from the table it shares (see
 * include/zcdemux/xenbus.h); refs gets copy_pages entries.  The table is
 * copied out once and unmapped: the guest may scribble on it afterwards.
 */
static int read_copy_table(struct zcd_hv *hv, struct xen_vm *vm, uint32_t *refs)
{
	const uint32_t per_page = ZCD_PAGE_SIZE / sizeof(uint32_t);
	long long table_pages = xs_read_number(hv->xs, vm->fe_path, ZCD_XS_COPY_TABLE_PAGES);
	uint32_t table_refs[16];
	const uint32_t *table;

	if (table_pages != (vm->copy_pages + per_page - 1) / per_page ||
	    table_pages > (long long)(sizeof(table_refs) / sizeof(table_refs[0]))) {
		LOG("%s: domain %u: %s is %lld, expected %u for %u copy pages\n", vm->name,
		    vm->domid, ZCD_XS_COPY_TABLE_PAGES, table_pages,
		    (vm->copy_pages + per_page - 1) / per_page, vm->copy_pages);
		return -1;
	}
	for (long long i = 0; i < table_pages; i++) {
		char key[32];
		long long ref;

		snprintf(key, sizeof(key), ZCD_XS_COPY_TABLE_REF_FMT, (unsigned)i);
		ref = xs_read_number(hv->xs, vm->fe_path, key);
		if (ref < 0 || ref > UINT32_MAX) {
			LOG("%s: domain %u: %s/%s is missing or not a grant reference\n",
			    vm->name, vm->domid, vm->fe_path, key);
			return -1;
		}
		table_refs[i] = (uint32_t)ref;
	}
	table = xengnttab_map_domain_grant_refs(hv->xgt, (uint32_t)table_pages, vm->domid,
						 table_refs, PROT_READ);
	if (table == NULL) {
		LOG("%s: cannot map the copy-page table of domain %u: %s\n", vm->name,
		    vm->domid, strerror(errno));
		return -1;
	}
	memcpy(refs, table, vm->copy_pages * sizeof(*refs));
	xengnttab_unmap(hv->xgt, (void *)(uintptr_t)table, (uint32_t)table_pages);
	return 0;
}

/* The number of copy slots the guest shared (0..credits), or -1 (logged). */
static long long copy_slots_offered(struct zcd_hv *hv, struct xen_vm *vm)
{
	long long slots = xs_read_number(hv->xs, vm->fe_path, ZCD_XS_COPY_SLOTS);

	if (slots < 0 || slots > vm->credits) {
		LOG("%s: domain %u offers %lld copy slots (0-%u allowed)\n", vm->name,
		    vm->domid, slots, vm->credits);
		return -1;
	}
	return slots;
}

/* Map the guest's copy pages of slots slots, once for the whole connection: 0 or -1. */
static int map_copy_pages(struct zcd_hv *hv, struct xen_vm *vm, uint32_t slots)
{
	uint32_t *refs;
	int rc = -1;

	vm->copy_pages = slots * hv->pool.pages_per_buf;
	if (vm->copy_pages == 0)
		return 0;
	refs = calloc(vm->copy_pages, sizeof(*refs));
	if (refs != NULL && read_copy_table(hv, vm, refs) == 0) {
		/* The copy path never maps again. */
		vm->copy_area = xengnttab_map_domain_grant_refs(hv->xgt, vm->copy_pages, vm->domid,
								 refs, PROT_READ | PROT_WRITE);
		if (vm->copy_area != NULL)
			rc = 0;
		else
			LOG("%s: cannot map the %u copy pages of domain %u: %s\n", vm->name,
			    vm->copy_pages, vm->domid, strerror(errno));
	}
	free(refs);
	if (rc != 0)
		vm->copy_pages = 0; /* nothing mapped for teardown to unmap */
	return rc;
}

/* Map the copy pages the guest shared and get ready to deliver. */
static int accept_frontend(struct zcd_hv *hv, struct xen_vm *vm)
{
	uint32_t slot_bytes = hv->pool.pages_per_buf * ZCD_PAGE_SIZE;
	long long slots = copy_slots_offered(hv, vm);

	if (slots < 0 || map_copy_pages(hv, vm, (uint32_t)slots) != 0 ||
	    xen_vmfile_init_copies(vm, (uint32_t)slots, slot_bytes) != 0 ||
	    !xs_printf(hv->xs, vm->be_path, ZCD_XS_STATE, "%d", XenbusStateConnected))
		return -1;
	if (vm->file != NULL)
		atomic_store(&vm->file->connected, 1);
	return 0;
}

static void backend_path(const struct zcd_hv *hv, uint32_t domid, char *path, size_t len)
{
	snprintf(path, len, "/local/domain/%u/backend/%s/%u/%d", hv->self_domid, ZCD_XS_TYPE,
		 domid, ZCD_XS_DEVID);
}

/* vm serves domain domid: its xenstore paths, and a watch on the guest's state. */
static void bind_domain(struct zcd_hv *hv, struct xen_vm *vm, uint32_t domid)
{
	vm->domid = domid;
	backend_path(hv, domid, vm->be_path, sizeof(vm->be_path));
	snprintf(vm->fe_path, sizeof(vm->fe_path), "/local/domain/%u/device/%s/%d", domid,
		 ZCD_XS_TYPE, ZCD_XS_DEVID);
	snprintf(vm->fe_state_path, sizeof(vm->fe_state_path), "%s/%s", vm->fe_path,
		 ZCD_XS_STATE);
	vm->watching = xs_watch(hv->xs, vm->fe_state_path, vm->fe_state_path);
}

/* Bind vm to a live domain and start the handshake (or first clear an old one). */
static void start_connection(struct zcd_hv *hv, struct xen_vm *vm)
{
	uint32_t domid = find_domain(hv, vm);
	long long be_state;

	if (domid == 0)
		return;
	bind_domain(hv, vm, domid);

	/* An earlier zcdemux left a connection: let the guest close it first. */
	be_state = xs_read_number(hv->xs, vm->be_path, ZCD_XS_STATE);
	if (be_state >= XenbusStateInitWait && be_state <= XenbusStateConnected) {
		LOG("%s: domain %u has a connection from an earlier run; asking it to close\n",
		    vm->name, domid);
		xs_printf(hv->xs, vm->be_path, ZCD_XS_STATE, "%d", XenbusStateClosing);
		vm->reset_deadline_ms = now_ms() + XEN_RESET_WAIT_MS;
		set_phase(vm, XEN_RESET);
		return;
	}
	if (publish_connection(hv, vm) != 0) {
		xen_control_teardown(hv, vm);
		return;
	}
	set_phase(vm, XEN_HANDSHAKE);
}

/*
 * The connection an earlier zcdemux left: same domain, both sides still
 * Connected, the guest still maps every ring page (the helper hands their
 * grants over) and its event channel takes a new binding.  The copy pages
 * are mapped again from the guest's table, their states from the file.
 */
bool xen_control_resume(struct zcd_hv *hv, struct xen_vm *vm)
{
	uint32_t slot_bytes = hv->pool.pages_per_buf * ZCD_PAGE_SIZE;
	uint32_t domid = find_domain(hv, vm);
	xenevtchn_port_or_error_t port;
	long long guest_port, slots;
	const char *why;

	if (xen_vmfile_open_kept(hv, vm) != 0) {
		vm->previous_domid = domid;
		return false;
	}
	bind_domain(hv, vm, vm->previous_domid);
	why = "its domain is gone";
	if (domid != vm->previous_domid)
		goto fail;
	why = "the connection did not reach Connected";
	if (!atomic_load(&vm->file->connected) ||
	    xs_read_number(hv->xs, vm->be_path, ZCD_XS_STATE) != XenbusStateConnected ||
	    frontend_state(hv, vm) != XenbusStateConnected)
		goto fail;
	guest_port = xs_read_number(hv->xs, vm->fe_path, ZCD_XS_GUEST_EVENT_CHANNEL);
	slots = copy_slots_offered(hv, vm);
	why = "the guest's event channel or copy slots changed";
	if (guest_port < 0 || slots != atomic_load(&vm->file->copy_slots))
		goto fail;
	why = "the guest no longer maps its ring, or the ring is broken";
	if (xen_vmfile_take_ring(hv, vm) != 0)
		goto fail;
	why = "cannot bind to the guest's event channel";
	port = xenevtchn_bind_interdomain(hv->xce, domid, (evtchn_port_t)guest_port);
	if (port < 0)
		goto fail;
	vm->port = (evtchn_port_t)port;
	vm->port_bound = true;
	why = "cannot map the guest's copy pages";
	if (map_copy_pages(hv, vm, (uint32_t)slots) != 0 ||
	    xen_vmfile_resume_copies(vm, (uint32_t)slots, slot_bytes) != 0)
		goto fail;
	/* For the record: the guest bound long ago and does not read it again. */
	xs_printf(hv->xs, vm->be_path, ZCD_XS_EVENT_CHANNEL, "%u", vm->port);
	/* Unknown (the guest can write the ring): poll_events announces it again. */
	vm->ring_limit = UINT32_MAX;
	vm->reattached = true;
	xen_count(&vm->connects, 1);
	LOG("%s: domain %u: took over the connection an earlier zcdemux left (%u ring pages, "
	    "%u copy slots)\n", vm->name, domid, vm->ring_pages, vm->copies.nb_slots);
	set_phase(vm, XEN_UP);
	/* It may be waiting for an event the dead process never sent. */
	xenevtchn_notify(hv->xce, vm->port);
	return true;
fail:
	LOG("%s: domain %u: cannot take over the connection an earlier zcdemux left: %s\n",
	    vm->name, vm->previous_domid, why);
	release_local(hv, vm);
	vm->domid = 0;
	return false;
}

void xen_control_ask_close(struct zcd_hv *hv, uint32_t domid)
{
	char path[ZCD_XS_PATH_MAX];
	long long state;

	backend_path(hv, domid, path, sizeof(path));
	state = xs_read_number(hv->xs, path, ZCD_XS_STATE);
	if (state >= XenbusStateInitWait && state <= XenbusStateConnected)
		xs_printf(hv->xs, path, ZCD_XS_STATE, "%d", XenbusStateClosing);
}

/* The guest's side of the connection is gone or going. */
static bool guest_left(struct zcd_hv *hv, struct xen_vm *vm)
{
	long long st = frontend_state(hv, vm);

	return !xen_domain_alive(hv, vm->domid) || st < XenbusStateInitialising ||
	       st >= XenbusStateClosing;
}

static void step(struct zcd_hv *hv, struct xen_vm *vm)
{
	long long st;
	int phase = atomic_load_explicit(&vm->phase, memory_order_acquire);

	switch (phase) {
	case XEN_IDLE:
		start_connection(hv, vm);
		break;
	case XEN_RESET:
		st = frontend_state(hv, vm);
		if (st < 0 || st == XenbusStateInitialising || st == XenbusStateClosed ||
		    now_ms() >= vm->reset_deadline_ms || !xen_domain_alive(hv, vm->domid)) {
			if (publish_connection(hv, vm) != 0) {
				xen_control_teardown(hv, vm);
				break;
			}
			set_phase(vm, XEN_HANDSHAKE);
		}
		break;
	case XEN_HANDSHAKE:
		st = frontend_state(hv, vm);
		if (!xen_domain_alive(hv, vm->domid) || st >= XenbusStateClosing) {
			xen_control_teardown(hv, vm);
		} else if (st == XenbusStateInitialised || st == XenbusStateConnected) {
			if (accept_frontend(hv, vm) != 0) {
				xen_control_teardown(hv, vm);
				break;
			}
			xen_count(&vm->connects, 1);
			LOG("%s: domain %u connected (%u ring pages, %u copy slots)\n", vm->name,
			    vm->domid, vm->ring_pages, vm->copies.nb_slots);
			set_phase(vm, XEN_UP);
		}
		break;
	case XEN_UP:
	case XEN_CONNECTED:
		if (guest_left(hv, vm)) {
			int expected = phase;

			/* If the dataplane just moved UP to CONNECTED, the first
			 * exchange fails with expected == CONNECTED: try again. */
			if (!atomic_compare_exchange_strong(&vm->phase, &expected,
							    XEN_DOWN_REQUESTED))
				atomic_compare_exchange_strong(&vm->phase, &expected,
							       XEN_DOWN_REQUESTED);
			LOG("%s: domain %u is gone or closing\n", vm->name, vm->domid);
		}
		break;
	case XEN_DOWN_REQUESTED:
	case XEN_DRAINING:
		/* Cut off while connected (broken ring, credits not given
		 * back): a guest that complies unmaps what it holds and closes,
		 * and the dataplane's revokes can then end. */
		if (!vm->asked_to_close && !guest_left(hv, vm)) {
			LOG("%s: asking domain %u to close its cut-off connection\n", vm->name,
			    vm->domid);
			xs_printf(hv->xs, vm->be_path, ZCD_XS_STATE, "%d", XenbusStateClosing);
			vm->asked_to_close = true;
		}
		break;
	case XEN_RELEASED:
		LOG("%s: everything domain %u held is back\n", vm->name, vm->domid);
		xen_control_teardown(hv, vm);
		break;
	default:
		break; /* the dataplane's move */
	}
}

static void *control_main(void *arg)
{
	struct zcd_hv *hv = arg;

	while (!atomic_load_explicit(&hv->stop, memory_order_acquire)) {
		struct pollfd fds[2] = {
			{.fd = xs_fileno(hv->xs), .events = POLLIN},
			{.fd = xenevtchn_fd(hv->xce), .events = POLLIN},
		};
		char **watch;

		poll(fds, 2, XEN_CONTROL_TICK_MS);
		while ((watch = xs_check_watch(hv->xs)) != NULL)
			free(watch);
		/* Guests have no reason to notify us; drop what they send, keep the port masked. */
		if (fds[1].revents & POLLIN)
			xenevtchn_pending(hv->xce);
		for (unsigned i = 0; i < hv->nb_vms; i++) {
			struct xen_vm *vm = &hv->vms[i];

			if (!atomic_load_explicit(&vm->in_use, memory_order_acquire))
				continue;
			if (atomic_load_explicit(&vm->remove_requested, memory_order_acquire)) {
				LOG("%s: removed: connection torn down, slot freed\n", vm->name);
				xen_control_teardown(hv, vm);
				atomic_store_explicit(&vm->in_use, false, memory_order_release);
				continue;
			}
			step(hv, vm);
		}
	}
	return NULL;
}

void xen_control_find_self(struct zcd_hv *hv)
{
	unsigned int len;
	char *self = xs_read(hv->xs, XBT_NULL, "domid", &len);

	/* Our own domain's "domid" node; in dom0 it may be missing: domain 0. */
	hv->self_domid = self != NULL ? (uint32_t)strtoul(self, NULL, 10) : 0;
	free(self);
}

int xen_control_start(struct zcd_hv *hv, char *err, size_t errlen)
{
	int rc;

	if (!xs_watch(hv->xs, "@introduceDomain", "introduce") ||
	    !xs_watch(hv->xs, "@releaseDomain", "release")) {
		snprintf(err, errlen, "cannot watch xenstore for domains: %s",
			 strerror(errno));
		return -1;
	}
	atomic_store(&hv->stop, false);
	rc = pthread_create(&hv->control, NULL, control_main, hv);
	if (rc != 0) {
		snprintf(err, errlen, "cannot start the control thread: %s",
			 strerror(rc));
		return -1;
	}
	hv->control_running = true;
	return 0;
}

void xen_control_stop(struct zcd_hv *hv)
{
	if (!hv->control_running)
		return;
	atomic_store_explicit(&hv->stop, true, memory_order_release);
	pthread_join(hv->control, NULL);
	hv->control_running = false;
}

void xen_control_close_guest(struct zcd_hv *hv, struct xen_vm *vm)
{
	uint64_t deadline = now_ms() + XEN_SHUTDOWN_WAIT_MS;
	long long st;

	xs_printf(hv->xs, vm->be_path, ZCD_XS_STATE, "%d", XenbusStateClosing);
	/* A guest that complies unmaps everything before it says Closed. */
	do {
		st = frontend_state(hv, vm);
		if (st < 0 || st == XenbusStateClosed || !xen_domain_alive(hv, vm->domid))
			return;
		sleep_ms(10);
	} while (now_ms() < deadline);
	LOG("%s: domain %u did not close within %d ms\n", vm->name, vm->domid,
	    XEN_SHUTDOWN_WAIT_MS);
}
