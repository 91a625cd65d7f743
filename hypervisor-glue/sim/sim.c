/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sim hypervisor backend: a model of a hypervisor, so that the whole system
 * runs and is tested without Xen.  Each VM's guest is a process of its own
 * (zcdemux-sim-guest) that shares a file with the backend (shared.h) and
 * maps the pool read-only, reading only what its grant table maps.  No
 * DPDK here: plain C11, files, processes and one futex per VM.
 *
 * Control path: create, vm_connect, vm_disconnect, destroy (these may log).
 * Hot path: handoff, poll_returns, revoke (no allocation, no logging, at
 * most one futex wake per handoff).
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../backends.h"
#include "../keep_file.h"
#include "../pcap_sink.h"
#include "sim.h"

static void sim_destroy(struct zcd_hv *hv);

/* Take VM slot vm_index into use with vc's settings; -1 with a message in err. */
static int sim_vm_init(struct zcd_hv *hv, unsigned vm_index, const struct zcd_vm_config *vc,
		       char *err, size_t errlen)
{
	struct sim_vm *vm = &hv->vms[vm_index];

	/* With ppb <= UINT16_MAX this keeps 2 * credits * ppb gfns in 32 bits. */
	if (vc->credits < ZCD_CREDITS_MIN || vc->credits > ZCD_CREDITS_MAX) {
		snprintf(err, errlen, "vms[%u].credits: %u is not in %u..%u", vm_index, vc->credits,
			 ZCD_CREDITS_MIN, ZCD_CREDITS_MAX);
		return -1;
	}
	memset(vm, 0, sizeof(*vm));
	vm->index = vm_index;
	snprintf(vm->name, sizeof(vm->name), "%s", vc->name);
	vm->sim = vc->sim;
	vm->credits = vc->credits;
	vm->pages_per_buf = hv->pool.pages_per_buf;
	vm->credit_limit = vc->credits;
	vm->poll_mode = vc->notify == ZCD_NOTIFY_POLL;
	vm->file_fd = -1;
	vm->sink_fd = -1;
	vm->guest_pidfd = -1;
	vm->in_use = true; /* from here on destroy cleans this VM up */
	return 0;
}

static struct zcd_hv *sim_create(const struct zcd_config *cfg, const struct zcd_buf_region *pool,
				 const char *keep, char *err, size_t errlen)
{
	uint32_t ppb = pool->pages_per_buf;
	struct zcd_hv *hv;

	if (pool->base == NULL || pool->fd < 0 || (uintptr_t)pool->base % ZCD_PAGE_SIZE != 0 ||
	    pool->nb_bufs == 0 || ppb == 0 || ppb > UINT16_MAX ||
	    pool->buf_size != ppb * ZCD_PAGE_SIZE ||
	    pool->bytes < (size_t)pool->nb_bufs * pool->buf_size) {
		snprintf(err, errlen,
			 "unusable buffer pool (%u buffers of %u pages, %zu bytes%s)",
			 pool->nb_bufs, ppb, pool->bytes,
			 pool->fd < 0 ? ", not in a file the guests can map" : "");
		return NULL;
	}
	if (cfg->nb_vms > ZCD_MAX_VMS) {
		snprintf(err, errlen, "%u VMs, at most %u", cfg->nb_vms,
			 ZCD_MAX_VMS);
		return NULL;
	}

	hv = calloc(1, sizeof(*hv));
	if (hv == NULL)
		goto no_memory;
	hv->pool = *pool;
	hv->slot_of_buf = malloc(pool->nb_bufs * sizeof(*hv->slot_of_buf));
	/* Every slot up front: VMs added while running take free ones. */
	hv->vms = calloc(ZCD_MAX_VMS, sizeof(*hv->vms));
	if (hv->slot_of_buf == NULL || hv->vms == NULL)
		goto no_memory;
	hv->nb_vms = ZCD_MAX_VMS;
	for (uint32_t b = 0; b < pool->nb_bufs; b++)
		hv->slot_of_buf[b] = SIM_NO_SLOT;
	if (zcd_keep_place(keep, hv->keep, sizeof(hv->keep), &hv->file_align) != 0) {
		snprintf(err, errlen, "%s: cannot keep the guests' files there: %s", keep,
			 strerror(errno));
		sim_destroy(hv);
		return NULL;
	}
	/* Guests of VMs this configuration does not have must not read the pool. */
	sim_vmfile_retire_others(hv, cfg);

	for (unsigned i = 0; i < cfg->nb_vms; i++) {
		if (sim_vm_init(hv, i, &cfg->vms[i], err, errlen) != 0) {
			sim_destroy(hv);
			return NULL;
		}
	}
	return hv;

no_memory:
	snprintf(err, errlen, "%s", strerror(errno ? errno : ENOMEM));
	sim_destroy(hv);
	return NULL;
}

/*
 * Set up the VM's file and ring, start its guest and wait until it
 * attached.  On failure everything but the sink is released, and err
 * says why.
 */
static int sim_vm_start(struct zcd_hv *hv, struct sim_vm *vm, char *err, size_t errlen)
{
	vm->was_connected = true;
	if (sim_vmfile_create(hv, vm) != 0) {
		snprintf(err, errlen, "%s: cannot set up the simulated guest: %s", vm->name,
			 strerror(errno));
		goto fail;
	}
	if (vm->sim.instant_return) {
		if (zcd_ring_attach(&vm->echo_ring, vm->area, vm->area_bytes) != 0) {
			snprintf(err, errlen, "%s: the simulated guest rejected its ring", vm->name);
			goto fail;
		}
	} else if (sim_guest_start(hv, vm, err, errlen) != 0) {
		goto fail;
	}
	vm->connected = true;
	vm->up_to_report = true;
	sim_count(&vm->connects, 1);
	return 0;

fail:
	sim_vmfile_release(hv, vm);
	return -1;
}

/*
 * A guest an earlier zcdemux served and that ran on is taken over as it
 * is (it writes on into the sink it has); otherwise a new one starts.
 */
static int sim_vm_connect(struct zcd_hv *hv, unsigned vm_index, char *err, size_t errlen)
{
	struct sim_vm *vm;

	if (vm_index >= hv->nb_vms || !hv->vms[vm_index].in_use) {
		snprintf(err, errlen, "vms[%u]: no such VM", vm_index);
		return -1;
	}
	vm = &hv->vms[vm_index];
	if (vm->was_connected) {
		/* Its grant slots may still hold buffers the dataplane has to revoke. */
		snprintf(err, errlen, "vms[%u]: already connected once; sim reconnects only "
			 "a guest that left by itself (reboot_every)", vm_index);
		return -1;
	}
	vm->reattached = sim_vmfile_resume(hv, vm) == 0;
	if (vm->sim.sink[0] != '\0') {
		/* A guest that ran on wrote into the sink already: keep what is there. */
		vm->sink_fd = zcd_pcap_sink_create(vm->sim.sink, vm->reattached);
		if (vm->sink_fd < 0) {
			snprintf(err, errlen, "vms[%u].sim.sink: cannot open %s: %s", vm_index,
				 vm->sim.sink, strerror(errno));
			return -1;
		}
	}
	if (vm->reattached) {
		vm->was_connected = true;
		vm->connected = true;
		vm->up_to_report = true;
		return 0;
	}
	if (sim_vm_start(hv, vm, err, errlen) == 0)
		return 0;
	if (vm->sink_fd >= 0)
		close(vm->sink_fd);
	vm->sink_fd = -1;
	return -1;
}

/* The buffers and copy pages the guest took over from an earlier zcdemux still holds. */
static unsigned sim_vm_reattach(struct zcd_hv *hv, unsigned vm_index, struct zcd_hv_return *held,
				unsigned max, uint32_t *copies, bool *served_on)
{
	const struct sim_vm *vm;
	const uint32_t *generations;
	unsigned n = 0;

	*copies = 0;
	/* A guest that cannot be served on is stopped: it reaches nothing. */
	*served_on = true;
	if (vm_index >= hv->nb_vms || !hv->vms[vm_index].reattached)
		return 0;
	vm = &hv->vms[vm_index];
	generations = sim_grant_generations(vm->file);
	for (uint32_t slot = 0; slot < vm->credits && n < max; slot++)
		if (vm->slot_buf[slot] != SIM_NO_SLOT)
			held[n++] = (struct zcd_hv_return){.buf_id = vm->slot_buf[slot],
							   .generation = generations[slot]};
	for (uint32_t slot = 0; slot < vm->copies.nb_slots; slot++)
		*copies += vm->copies.slot[slot].outstanding != 0;
	return n;
}

/* REMAP: put the pool buffer into a free grant slot of the guest. */
static int sim_map_buffer(struct zcd_hv *hv, struct sim_vm *vm, const struct zcd_handoff *item,
			  struct zcd_rx_desc *desc)
{
	uint32_t ppb = vm->pages_per_buf;
	uint32_t slot;

	/* Refuse what would show one buffer to two guests or run past it. */
	if (item->buf_id >= hv->pool.nb_bufs || hv->slot_of_buf[item->buf_id] != SIM_NO_SLOT ||
	    item->length == 0 || (uint32_t)item->offset + item->length > hv->pool.buf_size ||
	    vm->nb_free_slots == 0)
		return -1;
	slot = vm->free_slots[--vm->nb_free_slots];
	vm->slot_buf[slot] = item->buf_id;
	hv->slot_of_buf[item->buf_id] = slot;
	/* These first: a later zcdemux reads them with the slot from the file. */
	sim_grant_generations(vm->file)[slot] = item->generation;
	sim_grant_positions(vm->file)[slot] = vm->ring.rx_prod;
	atomic_store_explicit((_Atomic uint32_t *)&vm->grants[slot], item->buf_id,
			      memory_order_release);
	*desc = (struct zcd_rx_desc){
		.buf_id = item->buf_id,
		.generation = item->generation,
		.handle = slot * ppb,
		.nr_pages = (uint16_t)ppb,
		.offset = item->offset,
		.length = item->length,
		.flags = ZCD_RXF_READONLY,
		.vlan = item->vlan,
	};
	return 0;
}

/* COPY: write the frame into one of the guest's free copy pages. */
static int sim_copy_frame(struct sim_vm *vm, const struct zcd_handoff *item,
			  struct zcd_rx_desc *desc)
{
	uint32_t ppb = vm->pages_per_buf;

	if (item->length == 0 || item->length > ppb * ZCD_PAGE_SIZE || vm->copies.nb_free == 0)
		return -1;
	zcd_copy_slots_fill(&vm->copies, item, desc);
	vm->copies.slot[desc->buf_id].ring_pos = vm->ring.rx_prod;
	desc->handle = vm->file->copy_base + desc->buf_id * ppb;
	desc->nr_pages = (uint16_t)ppb;
	return 0;
}

/*
 * The guest broke its ring: count it and, the first time, have poll_events
 * report the guest gone, so that the dataplane takes back what it holds and
 * feeds it no more (as netback's fatal error disables one interface).
 */
static void sim_ring_broken(struct sim_vm *vm)
{
	sim_count(&vm->ring_errors, 1);
	if (!atomic_exchange(&vm->ring_broken, true))
		atomic_store(&vm->down_to_report, true);
}

/*
 * sim.instant_return: no guest process; after each handoff everything
 * delivered goes back at once, unread, through the guest's side of the ring.
 */
static void sim_guest_echo(struct sim_vm *vm)
{
	struct zcd_ring *ring = &vm->echo_ring;
	bool broken = false;
	uint32_t ready = zcd_rx_ready(ring, &broken);
	uint32_t space = zcd_ret_space(ring);
	uint64_t bytes = 0;

	if (broken) {
		sim_count(&vm->status->bad_descs, 1);
		return;
	}
	/* What does not fit now goes back after the next handoff. */
	if (ready > space)
		ready = space;
	for (uint32_t i = 0; i < ready; i++) {
		struct zcd_rx_desc desc;

		zcd_rx_take(ring, &desc);
		zcd_ret_put(ring, &(struct zcd_ret_desc){
					  .buf_id = desc.buf_id,
					  .generation = desc.generation,
					  .flags = (desc.flags & ZCD_RXF_COPY) ? ZCD_RETF_COPY : 0,
				  });
		bytes += desc.length;
	}
	zcd_rx_consumed(ring);
	zcd_ret_publish(ring);
	sim_count(&vm->status->rx_packets, ready);
	sim_count(&vm->status->rx_bytes, bytes);
}

static unsigned sim_handoff(struct zcd_hv *hv, unsigned vm_index, const struct zcd_handoff *items,
			    unsigned n)
{
	struct sim_vm *vm;
	bool broken = false;
	uint32_t space;
	unsigned done, remapped = 0;

	if (vm_index >= hv->nb_vms || !hv->vms[vm_index].connected)
		return 0;
	vm = &hv->vms[vm_index];
	space = zcd_rx_space(&vm->ring, &broken);
	if (broken) {
		sim_ring_broken(vm);
		return 0;
	}
	if (n > space)
		n = space;
	for (done = 0; done < n; done++) {
		const struct zcd_handoff *item = &items[done];
		struct zcd_rx_desc desc;
		int rc;

		if (item->kind == ZCD_HANDOFF_REMAP) {
			rc = sim_map_buffer(hv, vm, item, &desc);
			remapped += rc == 0;
		}
		else if (item->kind == ZCD_HANDOFF_COPY)
			rc = sim_copy_frame(vm, item, &desc);
		else
			rc = -1;
		if (rc != 0)
			break;
		zcd_rx_put(&vm->ring, &desc);
	}
	if (remapped != 0)
		sim_count(&vm->grant_batches, 1);
	if (vm->sim.instant_return) {
		zcd_rx_publish(&vm->ring);
		sim_guest_echo(vm);
		return done;
	}
	if (zcd_rx_publish(&vm->ring) && !vm->poll_mode && sim_notify_guest(vm))
		sim_count(&vm->notifications, 1);
	return done;
}

static unsigned sim_poll_returns(struct zcd_hv *hv, unsigned vm_index, struct zcd_hv_return *out,
				 unsigned max, struct zcd_hv_return_tally *tally)
{
	struct sim_vm *vm;
	bool broken = false;
	unsigned taken;

	*tally = (struct zcd_hv_return_tally){ 0 };
	if (vm_index >= hv->nb_vms || hv->vms[vm_index].file == NULL)
		return 0;
	vm = &hv->vms[vm_index];
	taken = zcd_copy_slots_take_returns(&vm->copies, &vm->ring, out, max, tally, &broken);
	if (broken)
		sim_ring_broken(vm);
	return taken;
}

/* Unmap buf_id from vm's grant window; false if vm does not hold it. */
static bool sim_unmap_buffer(struct zcd_hv *hv, struct sim_vm *vm, uint32_t buf_id)
{
	uint32_t slot;

	if (vm->slot_buf == NULL || buf_id >= hv->pool.nb_bufs)
		return false;
	slot = hv->slot_of_buf[buf_id];
	if (slot >= vm->credits || vm->slot_buf[slot] != buf_id)
		return false;
	atomic_store_explicit((_Atomic uint32_t *)&vm->grants[slot], SIM_NO_SLOT,
			      memory_order_release);
	vm->slot_buf[slot] = SIM_NO_SLOT;
	hv->slot_of_buf[buf_id] = SIM_NO_SLOT;
	vm->free_slots[vm->nb_free_slots++] = slot;
	return true;
}

static unsigned sim_revoke(struct zcd_hv *hv, unsigned vm_index, const uint32_t *buf_ids,
			   unsigned n, bool *revoked)
{
	unsigned count = 0;

	for (unsigned i = 0; i < n; i++) {
		revoked[i] = vm_index < hv->nb_vms &&
			     sim_unmap_buffer(hv, &hv->vms[vm_index], buf_ids[i]);
		count += revoked[i];
	}
	return count;
}

static bool sim_vm_drained(struct zcd_hv *hv, unsigned vm_index)
{
	const struct sim_vm *vm;

	if (vm_index >= hv->nb_vms)
		return true;
	vm = &hv->vms[vm_index];
	return vm->file == NULL || zcd_rx_unconsumed(&vm->ring) == 0;
}

/* Logs if the guest did not exit cleanly. */
static void sim_vm_disconnect(struct zcd_hv *hv, unsigned vm_index)
{
	struct sim_vm *vm;

	if (vm_index >= hv->nb_vms || !hv->vms[vm_index].connected)
		return;
	vm = &hv->vms[vm_index];
	vm->connected = false;
	sim_guest_stop(vm);
	if (vm->sink_fd >= 0)
		close(vm->sink_fd);
	vm->sink_fd = -1;

	/* The guest's mappings of pool buffers went with it; the slots stay
	 * recorded so that the dataplane's revokes still succeed. */
	for (uint32_t slot = 0; slot < vm->credits; slot++)
		atomic_store_explicit((_Atomic uint32_t *)&vm->grants[slot], SIM_NO_SLOT,
				      memory_order_release);
}

static void sim_vm_stats(const struct zcd_hv *hv, unsigned vm_index, struct zcd_hv_vm_stats *out)
{
	const struct sim_vm *vm;

	*out = (struct zcd_hv_vm_stats){ 0 };
	if (vm_index >= hv->nb_vms)
		return;
	vm = &hv->vms[vm_index];
	out->notifications = atomic_load_explicit(&vm->notifications, memory_order_relaxed);
	out->grant_batches = atomic_load_explicit(&vm->grant_batches, memory_order_relaxed);
	out->connects = atomic_load_explicit(&vm->connects, memory_order_relaxed);
	out->ring_errors = atomic_load_explicit(&vm->ring_errors, memory_order_relaxed);
	if (vm->status == NULL)
		return;
	out->guest_rx_packets = atomic_load_explicit(&vm->status->rx_packets, memory_order_relaxed);
	out->guest_rx_bytes = atomic_load_explicit(&vm->status->rx_bytes, memory_order_relaxed);
	out->guest_residue_bytes =
		atomic_load_explicit(&vm->status->residue_bytes, memory_order_relaxed);
	out->guest_bad_descs = atomic_load_explicit(&vm->status->bad_descs, memory_order_relaxed);
	out->guest_faults = atomic_load_explicit(&vm->status->faults, memory_order_relaxed);
}

static uint32_t sim_features(const struct zcd_hv *hv)
{
	(void)hv;
	/* Per-VM state only; a buffer's slot entry belongs to whoever holds
	 * the buffer. */
	return ZCD_HV_F_REMAP | ZCD_HV_F_PARALLEL_VMS;
}

/*
 * Guests whose process exited without saying it left (killed, crashed):
 * one poll over the pidfds of every guest that is expected to run (and a
 * look at each one watched by its pid, where there are no pidfds).
 */
static void sim_find_dead_guests(struct zcd_hv *hv)
{
	struct pollfd pfd[ZCD_MAX_VMS];
	unsigned vm_of[ZCD_MAX_VMS], n = 0;

	for (unsigned i = 0; i < hv->nb_vms; i++) {
		struct sim_vm *vm = &hv->vms[i];

		if (!vm->connected || vm->guest_pid <= 0 || vm->left_reported || vm->died)
			continue;
		if (vm->guest_pidfd < 0) {
			vm->died = sim_guest_exited(vm);
			continue;
		}
		pfd[n] = (struct pollfd){.fd = vm->guest_pidfd, .events = POLLIN};
		vm_of[n++] = i;
	}
	if (n == 0 || poll(pfd, n, 0) <= 0)
		return;
	for (unsigned k = 0; k < n; k++)
		hv->vms[vm_of[k]].died = pfd[k].revents != 0;
}

/* The guest left (reboot_every) or died, and poll_events has not told yet. */
static bool sim_guest_left(struct sim_vm *vm)
{
	if (!vm->connected || vm->left_reported || vm->status == NULL ||
	    (!vm->died && !atomic_load_explicit(&vm->status->left, memory_order_acquire)))
		return false;
	vm->left_reported = true;
	return true;
}

/* A simulated guest connects in vm_connect and leaves by breaking its ring or rebooting. */
static unsigned sim_poll_events(struct zcd_hv *hv, struct zcd_hv_event *ev, unsigned max)
{
	unsigned n = 0;

	sim_find_dead_guests(hv);

	for (unsigned i = 0; i < hv->nb_vms && n < max; i++) {
		struct sim_vm *vm = &hv->vms[i];

		if (vm->up_to_report) {
			vm->up_to_report = false;
			ev[n++] = (struct zcd_hv_event){.vm = (uint16_t)i, .kind = ZCD_HV_VM_UP};
		} else if (atomic_exchange(&vm->down_to_report, false)) {
			if (atomic_load(&vm->ring_broken))
				fprintf(stderr, "zcdemux: vms[%u]: the guest broke its ring; "
					"cutting it off\n", i);
			ev[n++] = (struct zcd_hv_event){.vm = (uint16_t)i, .kind = ZCD_HV_VM_DOWN};
		} else if (sim_guest_left(vm)) {
			ev[n++] = (struct zcd_hv_event){.vm = (uint16_t)i, .kind = ZCD_HV_VM_DOWN};
		}
	}
	return n;
}

/*
 * Everything the VM held is back.  A guest that left (reboot_every) or
 * died is replaced by a new one on a fresh ring, writing on into the same
 * sink (as a VM that reboots); one that broke its ring runs on, cut off,
 * until shutdown.
 */
static void sim_vm_let_go(struct zcd_hv *hv, unsigned vm_index)
{
	struct sim_vm *vm;
	char err[256];
	int status;

	if (vm_index >= hv->nb_vms || !hv->vms[vm_index].left_reported)
		return;
	vm = &hv->vms[vm_index];
	/* It is exiting by itself, or gone: this logs how it ended. */
	status = sim_guest_stop(vm);
	vm->connected = false;
	vm->left_reported = false;
	sim_vmfile_release(hv, vm);
	atomic_store(&vm->ring_broken, false);
	/* One that failed would fail again: it stays down. */
	if (vm->died && status != -1 && WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		fprintf(stderr, "zcdemux: %s: not starting another simulated guest\n", vm->name);
		return;
	}
	vm->died = false;
	if (sim_vm_start(hv, vm, err, sizeof(err)) != 0)
		fprintf(stderr, "zcdemux: %s\n", err);
}

/* Announced on the ring of a connected guest; a later guest starts with it. */
static void sim_vm_set_credits(struct zcd_hv *hv, unsigned vm_index, uint32_t credits,
			       uint32_t give_back)
{
	struct sim_vm *vm;

	if (vm_index >= hv->nb_vms || !hv->vms[vm_index].in_use)
		return;
	vm = &hv->vms[vm_index];
	vm->credit_limit = credits < vm->credits ? credits : vm->credits;
	if (!vm->connected || vm->file == NULL)
		return;
	zcd_ring_announce_credits(&vm->ring, vm->credit_limit, give_back);
	if (!vm->poll_mode && !vm->sim.instant_return && sim_notify_guest(vm))
		sim_count(&vm->notifications, 1);
}

/* Reported down like a guest that broke its ring; it stays cut off. */
static void sim_vm_cut_off(struct zcd_hv *hv, unsigned vm_index)
{
	if (vm_index < hv->nb_vms && hv->vms[vm_index].connected)
		atomic_store(&hv->vms[vm_index].down_to_report, true);
}

static int sim_vm_add(struct zcd_hv *hv, unsigned vm_index, const struct zcd_vm_config *vc,
		      char *err, size_t errlen)
{
	if (vm_index >= hv->nb_vms || hv->vms[vm_index].in_use) {
		snprintf(err, errlen, "vms[%u]: index in use", vm_index);
		return -1;
	}
	return sim_vm_init(hv, vm_index, vc, err, errlen);
}

/* Stop the guest and free everything of the VM; the slot is unused again. */
static void sim_vm_remove(struct zcd_hv *hv, unsigned vm_index)
{
	struct sim_vm *vm;

	if (vm_index >= hv->nb_vms || !hv->vms[vm_index].in_use)
		return;
	vm = &hv->vms[vm_index];
	sim_vm_disconnect(hv, vm_index);
	sim_vmfile_release(hv, vm);
	if (vm->sink_fd >= 0)
		close(vm->sink_fd);
	memset(vm, 0, sizeof(*vm));
}

static void sim_destroy(struct zcd_hv *hv)
{
	if (hv == NULL)
		return;
	for (unsigned i = 0; hv->vms != NULL && i < hv->nb_vms; i++)
		sim_vm_remove(hv, i);
	free(hv->vms);
	free(hv->slot_of_buf);
	free(hv);
}

const struct zcd_hv_ops zcd_hv_sim_ops = {
	.name = "sim",
	.create = sim_create,
	.features = sim_features,
	.vm_connect = sim_vm_connect,
	.poll_events = sim_poll_events,
	.vm_release = sim_vm_let_go,
	.handoff = sim_handoff,
	.poll_returns = sim_poll_returns,
	.revoke = sim_revoke,
	.vm_set_credits = sim_vm_set_credits,
	.vm_cut_off = sim_vm_cut_off,
	.vm_reattach = sim_vm_reattach,
	.vm_add = sim_vm_add,
	.vm_remove = sim_vm_remove,
	.vm_drained = sim_vm_drained,
	.vm_disconnect = sim_vm_disconnect,
	.vm_stats = sim_vm_stats,
	.destroy = sim_destroy,
};
