/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sim hypervisor backend: an in-process model of a hypervisor, so that the
 * whole system runs and is tested without Xen.  No DPDK here: plain C11,
 * pthreads and one eventfd per VM.
 *
 * Control path: create, vm_connect, vm_disconnect, destroy (these may log).
 * Hot path: handoff, poll_returns, revoke (no allocation, no logging, at
 * most one eventfd write per handoff).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../backends.h"
#include "sim.h"

/* Smallest power of two >= max(credits, SIM_RING_MIN_SIZE): a guest holding
 * every credit can still have each buffer's return on the ring. */
static uint32_t sim_ring_size(uint32_t credits)
{
	uint32_t size = SIM_RING_MIN_SIZE;

	while (size < credits)
		size <<= 1;
	return size;
}

static size_t sim_window_pages(const struct sim_vm *vm)
{
	return (size_t)vm->credits * vm->pages_per_buf;
}

/* Wake the guest; false if the eventfd write failed. */
static bool sim_notify_guest(const struct sim_vm *vm)
{
	const uint64_t one = 1;

	return write(vm->event_fd, &one, sizeof(one)) == (ssize_t)sizeof(one);
}

/* Free what vm_connect allocated; the VM can be connected again afterwards. */
static void sim_vm_release(struct sim_vm *vm)
{
	if (vm->guest.sink != NULL)
		zcd_pcap_sink_close(vm->guest.sink);
	if (vm->event_fd >= 0)
		close(vm->event_fd);
	free(vm->area);
	free((void *)vm->p2m);
	free(vm->slot_buf);
	free(vm->free_slots);
	free(vm->copy_mem);
	zcd_copy_slots_fini(&vm->copies);
	free(vm->guest.scratch);
	free(vm->guest.returns);
	free(vm->guest.held);
	memset(&vm->guest, 0, sizeof(vm->guest));
	vm->area = NULL;
	vm->p2m = NULL;
	vm->slot_buf = NULL;
	vm->free_slots = NULL;
	vm->copy_mem = NULL;
	vm->event_fd = -1;
	vm->was_connected = false;
}

/* Ring, p2m, grant slots, copy pages and the guest's buffers; -1 with errno. */
static int sim_vm_alloc(struct sim_vm *vm)
{
	size_t window = sim_window_pages(vm);

	vm->ring_size = sim_ring_size(vm->credits);
	vm->area_bytes = zcd_ring_area_bytes(vm->ring_size, vm->ring_size);
	vm->area = aligned_alloc(ZCD_PAGE_SIZE, vm->area_bytes);
	vm->p2m = malloc(2 * window * sizeof(*vm->p2m));
	vm->slot_buf = malloc(vm->credits * sizeof(*vm->slot_buf));
	vm->free_slots = malloc(vm->credits * sizeof(*vm->free_slots));
	vm->copy_mem = aligned_alloc(ZCD_PAGE_SIZE, window * ZCD_PAGE_SIZE);
	vm->guest.scratch = malloc((size_t)vm->pages_per_buf * ZCD_PAGE_SIZE);
	vm->guest.returns = malloc(SIM_HOSTILE_GROUP * vm->ring_size * sizeof(*vm->guest.returns));
	vm->guest.held = malloc(vm->ring_size * sizeof(*vm->guest.held));
	if (vm->area == NULL || vm->p2m == NULL || vm->slot_buf == NULL || vm->free_slots == NULL ||
	    vm->copy_mem == NULL || vm->guest.scratch == NULL || vm->guest.returns == NULL ||
	    vm->guest.held == NULL ||
	    zcd_copy_slots_init(&vm->copies, vm->credits, vm->pages_per_buf * ZCD_PAGE_SIZE,
				vm->copy_mem) != 0) {
		errno = ENOMEM;
		return -1;
	}
	if (zcd_ring_format(&vm->ring, vm->area, vm->area_bytes, vm->ring_size, vm->ring_size,
			    vm->credit_limit) != 0) {
		errno = EINVAL;
		return -1;
	}

	/* Guest memory starts zeroed, like any page a guest allocates. */
	memset(vm->copy_mem, 0, window * ZCD_PAGE_SIZE);
	vm->copy_base = (uint32_t)window;
	for (size_t gfn = 0; gfn < window; gfn++) {
		atomic_init(&vm->p2m[gfn], NULL);
		atomic_init(&vm->p2m[window + gfn], vm->copy_mem + gfn * ZCD_PAGE_SIZE);
	}

	/* Stacks hold the highest index at the bottom so that 0 is used first. */
	for (uint32_t i = 0; i < vm->credits; i++) {
		vm->slot_buf[i] = SIM_NO_SLOT;
		vm->free_slots[i] = vm->credits - 1 - i;
	}
	vm->nb_free_slots = vm->credits;

	vm->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return vm->event_fd < 0 ? -1 : 0;
}

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
	vm->credits = vc->credits;
	vm->pages_per_buf = hv->pool.pages_per_buf;
	vm->stall = vc->sim.stall;
	vm->instant_return = vc->sim.instant_return;
	vm->hostile = vc->sim.hostile;
	vm->scribble_after = vc->sim.scribble_after;
	vm->reboot_every = vc->sim.reboot_every;
	vm->hold = vc->sim.hold;
	vm->credit_limit = vc->credits;
	vm->poll_mode = vc->notify == ZCD_NOTIFY_POLL;
	snprintf(vm->sink_path, sizeof(vm->sink_path), "%s", vc->sim.sink);
	vm->event_fd = -1;
	if (sem_init(&vm->guest_attached, 0, 0) != 0) {
		snprintf(err, errlen, "vms[%u]: %s", vm_index, strerror(errno));
		return -1;
	}
	vm->in_use = true; /* from here on destroy cleans this VM up */
	return 0;
}

static struct zcd_hv *sim_create(const struct zcd_config *cfg, const struct zcd_buf_region *pool,
				 char *err, size_t errlen)
{
	uint32_t ppb = pool->pages_per_buf;
	struct zcd_hv *hv;

	if (pool->base == NULL || (uintptr_t)pool->base % ZCD_PAGE_SIZE != 0 ||
	    pool->nb_bufs == 0 || ppb == 0 || ppb > UINT16_MAX ||
	    pool->buf_size != ppb * ZCD_PAGE_SIZE ||
	    pool->bytes < (size_t)pool->nb_bufs * pool->buf_size) {
		snprintf(err, errlen,
			 "unusable buffer pool (%u buffers of %u pages, %zu bytes)",
			 pool->nb_bufs, ppb, pool->bytes);
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
 * A simulated guest stands for another VM's vCPU: it may run on any CPU.
 * Without this it would inherit the dataplane lcore's pinning and compete
 * with the poll loop for that one core.
 */
static int sim_start_guest(struct sim_vm *vm)
{
	long nb_cpus = sysconf(_SC_NPROCESSORS_CONF);
	pthread_attr_t attr;
	cpu_set_t cpus;
	int rc;

	CPU_ZERO(&cpus);
	for (long cpu = 0; cpu < nb_cpus && cpu < CPU_SETSIZE; cpu++)
		CPU_SET((int)cpu, &cpus);
	rc = pthread_attr_init(&attr);
	if (rc != 0)
		return rc;
	rc = pthread_attr_setaffinity_np(&attr, sizeof(cpus), &cpus);
	if (rc == 0)
		rc = pthread_create(&vm->guest_thread, &attr, zcd_hv_sim_guest_run, vm);
	pthread_attr_destroy(&attr);
	return rc;
}

/*
 * Set up the VM's ring and guest memory, start its guest with the given
 * sink (NULL = discard) and wait until it attached.  On failure everything
 * is released, the sink closed, and err says why.
 */
static int sim_vm_start(struct sim_vm *vm, unsigned vm_index, struct zcd_pcap_sink *sink,
			char *err, size_t errlen)
{
	int rc;

	vm->was_connected = true;
	if (sim_vm_alloc(vm) != 0) {
		snprintf(err, errlen, "vms[%u]: cannot set up the simulated guest: %s", vm_index,
			 strerror(errno));
		vm->guest.sink = sink;
		goto fail;
	}
	vm->guest.sink = sink;
	atomic_store_explicit(&vm->stop, false, memory_order_relaxed);
	if (vm->instant_return) {
		if (zcd_ring_attach(&vm->guest.ring, vm->area, vm->area_bytes) != 0) {
			snprintf(err, errlen, "vms[%u]: the simulated guest rejected its ring",
				 vm_index);
			goto fail;
		}
		goto connected;
	}
	rc = sim_start_guest(vm);
	if (rc != 0) {
		snprintf(err, errlen, "vms[%u]: cannot start the simulated guest: %s", vm_index,
			 strerror(rc));
		goto fail;
	}
	/* Like a frontend reaching "connected": nothing is sent before it attached. */
	while (sem_wait(&vm->guest_attached) != 0 && errno == EINTR)
		;
	if (!vm->guest_attach_ok) {
		pthread_join(vm->guest_thread, NULL);
		snprintf(err, errlen, "vms[%u]: the simulated guest rejected its ring", vm_index);
		goto fail;
	}
connected:
	vm->connected = true;
	vm->up_to_report = true;
	sim_count(&vm->connects, 1);
	return 0;

fail:
	sim_vm_release(vm);
	return -1;
}

static int sim_vm_connect(struct zcd_hv *hv, unsigned vm_index, char *err, size_t errlen)
{
	struct zcd_pcap_sink *sink = NULL;
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
	if (vm->sink_path[0] != '\0') {
		sink = zcd_pcap_sink_open(vm->sink_path);
		if (sink == NULL) {
			snprintf(err, errlen, "vms[%u].sim.sink: cannot open %s: %s", vm_index,
				 vm->sink_path, strerror(errno));
			return -1;
		}
	}
	return sim_vm_start(vm, vm_index, sink, err, errlen);
}

/* REMAP: put the pool buffer into a free grant slot of the guest's p2m. */
static int sim_map_buffer(struct zcd_hv *hv, struct sim_vm *vm, const struct zcd_handoff *item,
			  struct zcd_rx_desc *desc)
{
	uint32_t ppb = vm->pages_per_buf;
	const uint8_t *buf;
	uint32_t slot, gfn;

	/* Refuse what would show one buffer to two guests or run past it. */
	if (item->buf_id >= hv->pool.nb_bufs || hv->slot_of_buf[item->buf_id] != SIM_NO_SLOT ||
	    item->length == 0 || (uint32_t)item->offset + item->length > hv->pool.buf_size ||
	    vm->nb_free_slots == 0)
		return -1;
	slot = vm->free_slots[--vm->nb_free_slots];
	vm->slot_buf[slot] = item->buf_id;
	hv->slot_of_buf[item->buf_id] = slot;
	gfn = slot * ppb;
	buf = zcd_buf_addr(&hv->pool, item->buf_id);
	for (uint32_t i = 0; i < ppb; i++)
		atomic_store_explicit(&vm->p2m[gfn + i], buf + (size_t)i * ZCD_PAGE_SIZE,
				      memory_order_release);
	*desc = (struct zcd_rx_desc){
		.buf_id = item->buf_id,
		.generation = item->generation,
		.handle = gfn,
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
	desc->handle = vm->copy_base + desc->buf_id * ppb;
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
	if (vm->instant_return) {
		zcd_rx_publish(&vm->ring);
		zcd_hv_sim_guest_echo(vm);
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
	if (vm_index >= hv->nb_vms || hv->vms[vm_index].area == NULL)
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
	uint32_t ppb = vm->pages_per_buf;
	uint32_t slot;

	if (vm->slot_buf == NULL || buf_id >= hv->pool.nb_bufs)
		return false;
	slot = hv->slot_of_buf[buf_id];
	if (slot >= vm->credits || vm->slot_buf[slot] != buf_id)
		return false;
	for (uint32_t i = 0; i < ppb; i++)
		atomic_store_explicit(&vm->p2m[slot * ppb + i], NULL, memory_order_release);
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
	return vm->area == NULL || zcd_rx_unconsumed(&vm->ring) == 0;
}

/* Logs if the guest's sink could not be written. */
static void sim_vm_disconnect(struct zcd_hv *hv, unsigned vm_index)
{
	struct sim_vm *vm;

	if (vm_index >= hv->nb_vms || !hv->vms[vm_index].connected)
		return;
	vm = &hv->vms[vm_index];
	vm->connected = false;
	if (!vm->instant_return) {
		atomic_store_explicit(&vm->stop, true, memory_order_release);
		sim_notify_guest(vm); /* a sleeping guest would otherwise notice only at its timeout */
		pthread_join(vm->guest_thread, NULL);
	}

	if (vm->guest.sink != NULL && zcd_pcap_sink_close(vm->guest.sink) != 0)
		fprintf(stderr, "zcdemux: vms[%u].sim.sink: cannot write %s: %s\n", vm_index,
			vm->sink_path, strerror(errno));
	vm->guest.sink = NULL;

	/* The hypervisor tears down the guest's mappings of pool buffers; the
	 * slots stay recorded so that the dataplane's revokes still succeed. */
	for (size_t gfn = 0; gfn < sim_window_pages(vm); gfn++)
		atomic_store_explicit(&vm->p2m[gfn], NULL, memory_order_release);
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
	out->guest_rx_packets = atomic_load_explicit(&vm->guest_rx_packets, memory_order_relaxed);
	out->guest_rx_bytes = atomic_load_explicit(&vm->guest_rx_bytes, memory_order_relaxed);
	out->guest_residue_bytes =
		atomic_load_explicit(&vm->guest_residue_bytes, memory_order_relaxed);
	out->guest_bad_descs = atomic_load_explicit(&vm->guest_bad_descs, memory_order_relaxed);
	out->guest_faults = atomic_load_explicit(&vm->guest_faults, memory_order_relaxed);
}

static uint32_t sim_features(const struct zcd_hv *hv)
{
	(void)hv;
	/* Per-VM state only; a buffer's slot entry belongs to whoever holds
	 * the buffer. */
	return ZCD_HV_F_REMAP | ZCD_HV_F_PARALLEL_VMS;
}

/* A simulated guest connects in vm_connect and leaves by breaking its ring or rebooting. */
static unsigned sim_poll_events(struct zcd_hv *hv, struct zcd_hv_event *ev, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < hv->nb_vms && n < max; i++) {
		if (hv->vms[i].up_to_report) {
			hv->vms[i].up_to_report = false;
			ev[n++] = (struct zcd_hv_event){.vm = (uint16_t)i, .kind = ZCD_HV_VM_UP};
		} else if (atomic_exchange(&hv->vms[i].down_to_report, false)) {
			if (atomic_load(&hv->vms[i].ring_broken))
				fprintf(stderr, "zcdemux: vms[%u]: the guest broke its ring; "
					"cutting it off\n", i);
			ev[n++] = (struct zcd_hv_event){.vm = (uint16_t)i, .kind = ZCD_HV_VM_DOWN};
		}
	}
	return n;
}

/*
 * Everything the VM held is back.  A guest that left (reboot_every) is
 * replaced by a new one on a fresh ring, writing on into the same sink;
 * one that broke its ring runs on, cut off, until shutdown.
 */
static void sim_vm_let_go(struct zcd_hv *hv, unsigned vm_index)
{
	struct sim_vm *vm;
	struct zcd_pcap_sink *sink;
	char err[256];

	if (vm_index >= hv->nb_vms || !atomic_load(&hv->vms[vm_index].left))
		return;
	vm = &hv->vms[vm_index];
	pthread_join(vm->guest_thread, NULL);
	sink = vm->guest.sink;
	vm->guest.sink = NULL;
	vm->connected = false;
	sim_vm_release(vm);
	atomic_store(&vm->left, false);
	atomic_store(&vm->ring_broken, false);
	if (sim_vm_start(vm, vm_index, sink, err, sizeof(err)) != 0)
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
	if (!vm->connected || vm->area == NULL)
		return;
	zcd_ring_announce_credits(&vm->ring, vm->credit_limit, give_back);
	if (!vm->poll_mode && !vm->instant_return && sim_notify_guest(vm))
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
	sim_vm_release(vm);
	sem_destroy(&vm->guest_attached);
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
	.vm_add = sim_vm_add,
	.vm_remove = sim_vm_remove,
	.vm_drained = sim_vm_drained,
	.vm_disconnect = sim_vm_disconnect,
	.vm_stats = sim_vm_stats,
	.destroy = sim_destroy,
};
