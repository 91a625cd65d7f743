/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * xen hypervisor backend: pool buffers reach a guest as read-only grants
 * made by the dom0 grant helper, frames are announced on the shared ring
 * (include/zcdemux/ring.h) and the guest is woken through an event channel.
 *
 * Hot path (dataplane thread): handoff = one grant ioctl for the batch's
 * remapped buffers + one descriptor per frame + at most one event; copies go
 * into the guest's own pages, mapped once at connect time, so the copy path
 * has no map call or hypercall at all.  revoke = one end-access ioctl.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../backends.h"
#include "../keep_file.h"
#include "xen.h"
#include "zcdemux/xen_grant.h"

#define XEN_BATCH_BUFS 64 /* buffers per grant or end ioctl */

static struct xen_vm *vm_of(struct zcd_hv *hv, unsigned index)
{
	return index < hv->nb_vms && atomic_load_explicit(&hv->vms[index].in_use,
							   memory_order_acquire)
		       ? &hv->vms[index]
		       : NULL;
}

/* Slot index takes VM vc; the control thread looks for its domain from now on. */
static void vm_slot_fill(struct zcd_hv *hv, unsigned index, const struct zcd_vm_config *vc)
{
	struct xen_vm *vm = &hv->vms[index];
	uint32_t size = XEN_RING_MIN_SIZE;

	/* A guest holding every credit can still have every return on the ring. */
	while (size < vc->credits)
		size <<= 1;
	/* The control thread may be reading in_use: leave it to the store below. */
	memset(&vm->index, 0, sizeof(*vm) - offsetof(struct xen_vm, index));
	atomic_store_explicit(&vm->remove_requested, false, memory_order_relaxed);
	vm->index = index;
	snprintf(vm->name, sizeof(vm->name), "%s", vc->name);
	vm->wanted_domid = vc->xen.domid;
	vm->poll_mode = vc->notify == ZCD_NOTIFY_POLL;
	vm->credits = vc->credits;
	atomic_init(&vm->credit_limit, vm->credits);
	vm->ring_size = size;
	vm->file_fd = -1;
	vm->ring_grants.fd = -1;
	atomic_init(&vm->phase, XEN_IDLE);
	atomic_store_explicit(&vm->in_use, true, memory_order_release);
}

static int phase_of(struct xen_vm *vm)
{
	return atomic_load_explicit(&vm->phase, memory_order_acquire);
}

static void xen_destroy(struct zcd_hv *hv);
static unsigned revoke_chunk(struct zcd_hv *hv, const uint32_t *ids, unsigned n, bool *revoked);

/*
 * The pool's grants a dead zcdemux left (the pool is the same file): which
 * pages are still granted, and to whom.  0, or -1 if that cannot be known.
 */
static int take_over_pool_grants(struct zcd_hv *hv)
{
	uint32_t ppb = hv->pool.pages_per_buf;
	uint32_t pages = hv->pool.nb_bufs * ppb;

	if (hv->pool_grants.taken_over == 0)
		return 0;
	hv->pool_domids = calloc(pages, sizeof(*hv->pool_domids));
	if (hv->pool_domids == NULL || xen_grant_query(&hv->pool_grants, hv->pool_domids) != 0)
		return -1;
	for (uint32_t p = 0; p < pages; p++)
		if (hv->pool_domids[p] != 0)
			hv->pages_pending[p / ppb] |= (uint8_t)(1u << (p % ppb));
	return 0;
}

/* The domain a pool buffer is still granted to (taken over at start), 0 if none. */
static uint32_t granted_domain(const struct zcd_hv *hv, uint32_t buf)
{
	uint32_t ppb = hv->pool.pages_per_buf;

	if (hv->pool_domids == NULL || hv->pages_pending[buf] == 0)
		return 0;
	for (uint32_t p = 0; p < ppb; p++)
		if (hv->pool_domids[buf * ppb + p] != 0)
			return hv->pool_domids[buf * ppb + p];
	return 0;
}

/* Is domid the domain of one of our VMs, now or in the run before? */
static bool domain_of_a_vm(const struct zcd_hv *hv, uint32_t domid)
{
	for (unsigned i = 0; i < hv->nb_vms; i++)
		if (atomic_load(&hv->vms[i].in_use) && hv->vms[i].previous_domid == domid)
			return true;
	return false;
}

/*
 * Pool buffers a dead zcdemux left granted to a domain that is none of our
 * VMs' (its VM is no longer configured): the dataplane would never take
 * them back, so they are ended here, the guest asked to close and given a
 * moment to let go.  0, or -1 with a message if a guest keeps some.
 */
static int end_orphan_grants(struct zcd_hv *hv, char *err, size_t errlen)
{
	uint64_t waited_ms = 0;
	uint32_t ids[XEN_BATCH_BUFS], domid = 0;
	bool revoked[XEN_BATCH_BUFS];
	unsigned n;

	for (;;) {
		n = 0;
		for (uint32_t b = 0; b < hv->pool.nb_bufs && n < XEN_BATCH_BUFS; b++) {
			uint32_t d = granted_domain(hv, b);

			if (d != 0 && !domain_of_a_vm(hv, d)) {
				ids[n++] = b;
				domid = d;
			}
		}
		if (n == 0)
			return 0;
		if (revoke_chunk(hv, ids, n, revoked) != 0)
			continue; /* progress: look for more */
		if (waited_ms >= XEN_RESET_WAIT_MS)
			break;
		if (waited_ms == 0)
			xen_control_ask_close(hv, domid);
		nanosleep(&(struct timespec){.tv_nsec = 50 * 1000000L}, NULL);
		waited_ms += 50;
	}
	snprintf(err, errlen, "domain %u still maps pool buffers an earlier zcdemux granted it, "
		 "and no configured VM is that domain; configure its VM again, or stop the guest",
		 domid);
	return -1;
}

/*
 * With a keep prefix the pool is the file the run before used: take over
 * its grants, then the connections whose guests ran on.
 */
static int take_over(struct zcd_hv *hv, const struct zcd_config *cfg, char *err, size_t errlen)
{
	if (take_over_pool_grants(hv) != 0) {
		snprintf(err, errlen, "cannot read which pool pages are still granted: %s",
			 strerror(errno));
		return -1;
	}
	xen_vmfile_retire_others(hv, cfg);
	for (unsigned i = 0; i < cfg->nb_vms; i++)
		xen_control_resume(hv, &hv->vms[i]);
	return end_orphan_grants(hv, err, errlen);
}

/*
 * keep: the pool is in a file that outlives the process, and so is each
 * connection's: a later process with the same keep takes them over.
 */
static struct zcd_hv *xen_create(const struct zcd_config *cfg, const struct zcd_buf_region *pool,
				 const char *keep, char *err, size_t errlen)
{
	uint32_t ppb = pool->pages_per_buf;
	struct zcd_hv *hv;
	char why[256];

	if (ppb == 0 || ppb > XEN_MAX_PAGES_PER_BUF) {
		snprintf(err, errlen, "buffers of %u pages are not supported (1-%d)",
			 ppb, XEN_MAX_PAGES_PER_BUF);
		return NULL;
	}
	hv = calloc(1, sizeof(*hv));
	if (hv == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	hv->pool = *pool;
	hv->pool_grants.fd = -1;
	/* Every slot up front: VMs added while running take free ones. */
	hv->vms = calloc(ZCD_MAX_VMS, sizeof(*hv->vms));
	hv->pages_pending = calloc(pool->nb_bufs, sizeof(*hv->pages_pending));
	hv->page_scratch = malloc(XEN_BATCH_BUFS * ppb * sizeof(*hv->page_scratch));
	hv->result_scratch = malloc(XEN_BATCH_BUFS * ppb);
	if (hv->vms == NULL || hv->pages_pending == NULL || hv->page_scratch == NULL ||
	    hv->result_scratch == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	hv->nb_vms = ZCD_MAX_VMS;
	for (unsigned i = 0; i < cfg->nb_vms; i++)
		vm_slot_fill(hv, i, &cfg->vms[i]);

	xen_domain_open(hv);
	hv->xs = xs_open(0);
	hv->xgt = xengnttab_open(NULL, 0);
	hv->xgs = xengntshr_open(NULL, 0);
	hv->xce = xenevtchn_open(NULL, 0);
	if (hv->xc == NULL || hv->xs == NULL || hv->xgt == NULL || hv->xgs == NULL ||
	    hv->xce == NULL) {
		snprintf(err, errlen,
			 "cannot open %s (is this a Xen dom0 or driver domain with "
			 "xenfs, xen-gntdev, xen-gntalloc and xen-evtchn loaded?)",
			 hv->xc == NULL ? "libxenctrl" : hv->xs == NULL ? "xenstore"
			 : hv->xgt == NULL ? "/dev/xen/gntdev" : hv->xgs == NULL ? "/dev/xen/gntalloc"
			 : "/dev/xen/evtchn");
		goto fail;
	}
	xen_control_find_self(hv);
	if (zcd_keep_place(keep, hv->keep, sizeof(hv->keep), &hv->file_align) != 0) {
		snprintf(err, errlen, "cannot look at the directory of %s: %s", keep,
			 strerror(errno));
		goto fail;
	}
	if (xen_grant_region_open(&hv->pool_grants, pool->base, pool->bytes, keep != NULL, why,
				  sizeof(why)) != 0)
		fprintf(stderr, "zcdemux: xen: %s; every frame will be copied\n", why);
	else if (keep != NULL && take_over(hv, cfg, err, errlen) != 0)
		goto fail;
	if (xen_control_start(hv, err, errlen) != 0)
		goto fail;
	return hv;
fail:
	xen_destroy(hv);
	return NULL;
}

static uint32_t xen_features(const struct zcd_hv *hv)
{
	return hv->pool_grants.fd >= 0 ? ZCD_HV_F_REMAP : 0;
}

/* The control thread finds the domain and connects it when it is there. */
static int xen_vm_connect(struct zcd_hv *hv, unsigned vm_index, char *err, size_t errlen)
{
	if (vm_of(hv, vm_index) == NULL) {
		snprintf(err, errlen, "vms[%u]: no such VM", vm_index);
		return -1;
	}
	return 0;
}

static unsigned xen_poll_events(struct zcd_hv *hv, struct zcd_hv_event *ev, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < hv->nb_vms && n < max; i++) {
		struct xen_vm *vm = vm_of(hv, i);
		int phase = vm != NULL ? phase_of(vm) : XEN_IDLE;

		if (phase == XEN_UP) {
			uint32_t limit = atomic_load(&vm->credit_limit);

			/* Credits changed while the ring was being set up. */
			if (vm->ring_limit != limit) {
				zcd_ring_announce_credits(&vm->ring, limit, 0);
				vm->ring_limit = limit;
			}
			vm->reported_up = true;
			atomic_store_explicit(&vm->phase, XEN_CONNECTED, memory_order_release);
			ev[n++] = (struct zcd_hv_event){.vm = (uint16_t)i, .kind = ZCD_HV_VM_UP};
		} else if (phase == XEN_DOWN_REQUESTED) {
			if (vm->reported_up) {
				vm->reported_up = false;
				atomic_store_explicit(&vm->phase, XEN_DRAINING, memory_order_release);
				ev[n++] = (struct zcd_hv_event){.vm = (uint16_t)i,
								.kind = ZCD_HV_VM_DOWN};
			} else {
				/* It left before the dataplane ever used it. */
				atomic_store_explicit(&vm->phase, XEN_RELEASED, memory_order_release);
			}
		}
	}
	return n;
}

/* Told on the ring of a connected guest; a later guest's ring starts with it. */
static void xen_vm_set_credits(struct zcd_hv *hv, unsigned vm_index, uint32_t credits,
			       uint32_t give_back)
{
	struct xen_vm *vm = vm_of(hv, vm_index);

	if (vm == NULL)
		return;
	if (credits > vm->credits)
		credits = vm->credits;
	atomic_store(&vm->credit_limit, credits);
	if (phase_of(vm) != XEN_CONNECTED)
		return;
	zcd_ring_announce_credits(&vm->ring, credits, give_back);
	vm->ring_limit = credits;
	if (!vm->poll_mode && xenevtchn_notify(hv->xce, vm->port) == 0)
		xen_count(&vm->notifications, 1);
}

/* A slot removed a moment ago is freed by the control thread within a tick. */
static bool slot_free_soon(struct zcd_hv *hv, unsigned vm_index)
{
	struct xen_vm *vm = &hv->vms[vm_index];

	for (unsigned ms = 0; ms < XEN_REMOVE_WAIT_MS; ms += 5) {
		struct timespec gap = {.tv_nsec = 5 * 1000000L};

		if (!atomic_load_explicit(&vm->in_use, memory_order_acquire))
			return true;
		if (!atomic_load_explicit(&vm->remove_requested, memory_order_acquire) ||
		    !hv->control_running)
			return false;
		nanosleep(&gap, NULL);
	}
	return false;
}

static int xen_vm_add(struct zcd_hv *hv, unsigned vm_index, const struct zcd_vm_config *vc,
		      char *err, size_t errlen)
{
	if (vm_index >= hv->nb_vms || !slot_free_soon(hv, vm_index)) {
		snprintf(err, errlen, "vms[%u]: index in use", vm_index);
		return -1;
	}
	vm_slot_fill(hv, vm_index, vc);
	return 0;
}

/*
 * The control thread owns the connection: it tears it down (the guest sees
 * its device go) and frees the slot at its next tick.
 */
static void xen_vm_remove(struct zcd_hv *hv, unsigned vm_index)
{
	struct xen_vm *vm = vm_of(hv, vm_index);

	if (vm != NULL)
		atomic_store_explicit(&vm->remove_requested, true, memory_order_release);
}

static void xen_vm_release(struct zcd_hv *hv, unsigned vm_index)
{
	struct xen_vm *vm = vm_of(hv, vm_index);

	if (vm != NULL && phase_of(vm) == XEN_DRAINING)
		atomic_store_explicit(&vm->phase, XEN_RELEASED, memory_order_release);
}

/* Guests may be fed only while connected or draining (returns still flow). */
static bool ring_usable(struct xen_vm *vm)
{
	int phase = phase_of(vm);

	return phase == XEN_CONNECTED || phase == XEN_DRAINING;
}

/*
 * Treat a connected guest as gone (as netback's fatal error disables one
 * interface): poll_events reports it down, the control thread asks it to
 * close, and once everything it held is back tears the connection down and
 * offers a fresh one.  True if it was connected.
 */
static bool cut_off(struct xen_vm *vm)
{
	int expected = XEN_CONNECTED;

	return atomic_compare_exchange_strong(&vm->phase, &expected, XEN_DOWN_REQUESTED);
}

/* The guest wrote impossible ring indices: count it and cut it off. */
static void ring_broken(struct xen_vm *vm)
{
	xen_count(&vm->ring_errors, 1);
	if (cut_off(vm))
		fprintf(stderr, "zcdemux: xen: %s: domain %u broke its ring; cutting it off\n",
			vm->name, vm->domid);
}

static void xen_vm_cut_off(struct zcd_hv *hv, unsigned vm_index)
{
	struct xen_vm *vm = vm_of(hv, vm_index);

	if (vm != NULL)
		cut_off(vm);
}

static unsigned xen_handoff(struct zcd_hv *hv, unsigned vm_index, const struct zcd_handoff *items,
			    unsigned n)
{
	struct xen_vm *vm = vm_of(hv, vm_index);
	uint32_t ppb = hv->pool.pages_per_buf;
	unsigned take = 0, copies = 0, nb_pages = 0;
	bool broken = false;
	uint32_t space;

	if (vm == NULL || phase_of(vm) != XEN_CONNECTED)
		return 0;
	space = zcd_rx_space(&vm->ring, &broken);
	if (broken) {
		ring_broken(vm);
		return 0;
	}
	n = n < space ? n : space;
	if (n > XEN_BATCH_BUFS)
		n = XEN_BATCH_BUFS;

	/* The longest prefix this guest can take: copy slots, remap ability. */
	for (; take < n; take++) {
		const struct zcd_handoff *item = &items[take];

		if (item->kind == ZCD_HANDOFF_COPY) {
			if (copies == vm->copies.nb_free || item->length > ppb * ZCD_PAGE_SIZE)
				break;
			copies++;
			continue;
		}
		if (hv->pool_grants.fd < 0 || item->buf_id >= hv->pool.nb_bufs ||
		    hv->pages_pending[item->buf_id] != 0)
			break;
		/* Before the grant: a later zcdemux reads what the guest holds here. */
		if (vm->grant_records != NULL)
			vm->grant_records[item->buf_id] = (struct xen_grant_record){
				.generation = item->generation,
				.ring_pos = vm->ring.rx_prod + take,
			};
		for (uint32_t p = 0; p < ppb; p++)
			hv->page_scratch[nb_pages++] = item->buf_id * ppb + p;
	}
	/* One ioctl grants every page of the batch, all or nothing. */
	if (nb_pages != 0 &&
	    xen_grant_pages(&hv->pool_grants, hv->page_scratch, nb_pages, vm->domid, true) != 0) {
		/* Only the copies ahead of the first remapped frame can go. */
		for (take = 0; items[take].kind == ZCD_HANDOFF_COPY; take++)
			;
		nb_pages = 0;
	}
	for (unsigned i = 0; i < take; i++) {
		const struct zcd_handoff *item = &items[i];
		struct zcd_rx_desc desc;

		if (item->kind == ZCD_HANDOFF_COPY) {
			zcd_copy_slots_fill(&vm->copies, item, &desc);
			vm->copies.slot[desc.buf_id].ring_pos = vm->ring.rx_prod;
			desc.handle = desc.buf_id * ppb; /* page index in the guest's copy area */
			desc.nr_pages = (uint16_t)ppb;
		} else {
			hv->pages_pending[item->buf_id] = (uint8_t)((1u << ppb) - 1);
			desc = (struct zcd_rx_desc){
				.buf_id = item->buf_id,
				.generation = item->generation,
				.handle = hv->pool_grants.first_ref + item->buf_id * ppb,
				.nr_pages = (uint16_t)ppb,
				.offset = item->offset,
				.length = item->length,
				.flags = ZCD_RXF_READONLY,
				.vlan = item->vlan,
			};
		}
		zcd_rx_put(&vm->ring, &desc);
	}
	if (nb_pages != 0)
		xen_count(&vm->grant_batches, 1);
	if (zcd_rx_publish(&vm->ring) && !vm->poll_mode &&
	    xenevtchn_notify(hv->xce, vm->port) == 0)
		xen_count(&vm->notifications, 1);
	return take;
}

static unsigned xen_poll_returns(struct zcd_hv *hv, unsigned vm_index, struct zcd_hv_return *out,
				 unsigned max, struct zcd_hv_return_tally *tally)
{
	struct xen_vm *vm = vm_of(hv, vm_index);
	bool broken = false;
	unsigned taken;

	*tally = (struct zcd_hv_return_tally){0};
	if (vm == NULL || !ring_usable(vm))
		return 0;
	taken = zcd_copy_slots_take_returns(&vm->copies, &vm->ring, out, max, tally, &broken);
	if (broken)
		ring_broken(vm);
	return taken;
}

/* End access to up to XEN_BATCH_BUFS buffers with one ioctl. */
static unsigned revoke_chunk(struct zcd_hv *hv, const uint32_t *ids, unsigned n, bool *revoked)
{
	uint32_t ppb = hv->pool.pages_per_buf;
	unsigned nb_pages = 0, done = 0, k = 0;

	for (unsigned i = 0; i < n; i++) {
		uint8_t pending = ids[i] < hv->pool.nb_bufs ? hv->pages_pending[ids[i]] : 0;

		for (uint32_t p = 0; p < ppb; p++)
			if (pending & (1u << p))
				hv->page_scratch[nb_pages++] = ids[i] * ppb + p;
	}
	if (nb_pages != 0 &&
	    xen_grant_end(&hv->pool_grants, hv->page_scratch, nb_pages, hv->result_scratch) != 0) {
		for (unsigned i = 0; i < n; i++)
			revoked[i] = false;
		return 0;
	}
	for (unsigned i = 0; i < n; i++) {
		uint8_t *pending = ids[i] < hv->pool.nb_bufs ? &hv->pages_pending[ids[i]] : NULL;

		for (uint32_t p = 0; pending != NULL && p < ppb; p++) {
			if (!(*pending & (1u << p)))
				continue;
			if (hv->result_scratch[k++] == ZCD_GRANT_ENDED)
				*pending &= (uint8_t)~(1u << p);
		}
		revoked[i] = pending == NULL || *pending == 0;
		done += revoked[i];
	}
	return done;
}

static unsigned xen_revoke(struct zcd_hv *hv, unsigned vm_index, const uint32_t *buf_ids,
			   unsigned n, bool *revoked)
{
	unsigned done = 0;

	(void)vm_index; /* grants are per page; the dataplane's ledger says whose */
	if (hv->pool_grants.fd < 0) {
		for (unsigned i = 0; i < n; i++)
			revoked[i] = true;
		return n;
	}
	for (unsigned i = 0; i < n; i += XEN_BATCH_BUFS) {
		unsigned k = n - i < XEN_BATCH_BUFS ? n - i : XEN_BATCH_BUFS;

		done += revoke_chunk(hv, buf_ids + i, k, revoked + i);
	}
	return done;
}

/*
 * What VM vm's guest can still reach of the pool, as the run before left
 * it: the buffers granted to its domain.  Served on, each with the
 * generation it was handed over with; one whose descriptor was never
 * published is ended here (unless the guest maps it anyway).  Not served
 * on (the control thread asks it to close), they are all the dataplane's
 * to take back.
 */
static unsigned xen_vm_reattach(struct zcd_hv *hv, unsigned vm_index, struct zcd_hv_return *held,
				unsigned max, uint32_t *copies, bool *served_on)
{
	struct xen_vm *vm = vm_of(hv, vm_index);
	unsigned n = 0;

	*copies = 0;
	*served_on = vm != NULL && vm->reattached;
	if (vm == NULL || vm->previous_domid == 0)
		return 0;
	for (uint32_t b = 0; b < hv->pool.nb_bufs && n < max; b++) {
		struct xen_grant_record rec = {0};
		bool ended;

		if (granted_domain(hv, b) != vm->previous_domid)
			continue;
		if (vm->reattached) {
			rec = vm->grant_records[b];
			if (!zcd_rx_pos_published(rec.ring_pos, vm->ring.rx_prod) &&
			    revoke_chunk(hv, &b, 1, &ended) == 1)
				continue;
		}
		held[n++] = (struct zcd_hv_return){.buf_id = b, .generation = rec.generation};
	}
	for (uint32_t s = 0; vm->reattached && s < vm->copies.nb_slots; s++)
		*copies += vm->copies.slot[s].outstanding != 0;
	return n;
}

static bool xen_vm_drained(struct zcd_hv *hv, unsigned vm_index)
{
	struct xen_vm *vm = vm_of(hv, vm_index);

	return vm == NULL || phase_of(vm) != XEN_CONNECTED || zcd_rx_unconsumed(&vm->ring) == 0;
}

static void xen_vm_disconnect(struct zcd_hv *hv, unsigned vm_index)
{
	struct xen_vm *vm = vm_of(hv, vm_index);

	if (vm != NULL && ring_usable(vm))
		xen_control_close_guest(hv, vm);
}

static void xen_vm_stats(const struct zcd_hv *hv, unsigned vm_index, struct zcd_hv_vm_stats *out)
{
	const struct xen_vm *vm = vm_index < hv->nb_vms ? &hv->vms[vm_index] : NULL;

	/* A free slot's counters are zero. */
	*out = (struct zcd_hv_vm_stats){0};
	if (vm == NULL)
		return;
	out->notifications = atomic_load_explicit(&vm->notifications, memory_order_relaxed);
	out->grant_batches = atomic_load_explicit(&vm->grant_batches, memory_order_relaxed);
	out->connects = atomic_load_explicit(&vm->connects, memory_order_relaxed);
	out->ring_errors = atomic_load_explicit(&vm->ring_errors, memory_order_relaxed);
}

static void xen_destroy(struct zcd_hv *hv)
{
	if (hv == NULL)
		return;
	xen_control_stop(hv);
	for (unsigned i = 0; hv->vms != NULL && i < hv->nb_vms; i++)
		if (vm_of(hv, i) != NULL)
			xen_control_teardown(hv, &hv->vms[i]);
	xen_grant_region_close(&hv->pool_grants);
	if (hv->xce != NULL)
		xenevtchn_close(hv->xce);
	if (hv->xgs != NULL)
		xengntshr_close(hv->xgs);
	if (hv->xgt != NULL)
		xengnttab_close(hv->xgt);
	if (hv->xs != NULL)
		xs_close(hv->xs);
	xen_domain_close(hv);
	free(hv->result_scratch);
	free(hv->page_scratch);
	free(hv->pages_pending);
	free(hv->pool_domids);
	free(hv->vms);
	free(hv);
}

const struct zcd_hv_ops zcd_hv_xen_ops = {
	.name = "xen",
	.create = xen_create,
	.features = xen_features,
	.vm_connect = xen_vm_connect,
	.poll_events = xen_poll_events,
	.vm_release = xen_vm_release,
	.vm_set_credits = xen_vm_set_credits,
	.vm_cut_off = xen_vm_cut_off,
	.vm_reattach = xen_vm_reattach,
	.vm_add = xen_vm_add,
	.vm_remove = xen_vm_remove,
	.handoff = xen_handoff,
	.poll_returns = xen_poll_returns,
	.revoke = xen_revoke,
	.vm_drained = xen_vm_drained,
	.vm_disconnect = xen_vm_disconnect,
	.vm_stats = xen_vm_stats,
	.destroy = xen_destroy,
};
