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
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../backends.h"
#include "../pcap_sink.h"
#include "sim.h"

extern char **environ;

/* Smallest power of two >= max(credits, SIM_RING_MIN_SIZE): a guest holding
 * every credit can still have each buffer's return on the ring. */
static uint32_t sim_ring_size(uint32_t credits)
{
	uint32_t size = SIM_RING_MIN_SIZE;

	while (size < credits)
		size <<= 1;
	return size;
}

static uint64_t page_round(uint64_t bytes)
{
	return (bytes + ZCD_PAGE_SIZE - 1) / ZCD_PAGE_SIZE * ZCD_PAGE_SIZE;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Wake the guest; false if it could not be woken. */
static bool sim_notify_guest(const struct sim_vm *vm)
{
	atomic_fetch_add_explicit(&vm->status->wake, 1, memory_order_release);
	return syscall(SYS_futex, &vm->status->wake, FUTEX_WAKE, 1, NULL, NULL, 0) >= 0;
}

/* Free what sim_vm_alloc made; the VM can be connected again afterwards. */
static void sim_vm_release(struct sim_vm *vm)
{
	if (vm->file != NULL)
		munmap(vm->file, vm->file->bytes);
	if (vm->file_fd >= 0)
		close(vm->file_fd);
	free(vm->slot_buf);
	free(vm->free_slots);
	zcd_copy_slots_fini(&vm->copies);
	vm->file = NULL;
	vm->file_fd = -1;
	vm->status = NULL;
	vm->grants = NULL;
	vm->area = NULL;
	vm->slot_buf = NULL;
	vm->free_slots = NULL;
	vm->guest_pid = 0;
	vm->was_connected = false;
}

/* The VM file's layout and settings (shared.h), in the zeroed hyp page f. */
static void sim_file_layout(const struct zcd_hv *hv, const struct sim_vm *vm,
			    struct sim_vm_file *f)
{
	uint64_t window = (uint64_t)vm->credits * vm->pages_per_buf;

	f->version = SIM_VM_FILE_VERSION;
	f->credits = vm->credits;
	f->pages_per_buf = vm->pages_per_buf;
	f->ring_size = vm->ring_size;
	f->copy_base = (uint32_t)window;
	f->nb_bufs = hv->pool.nb_bufs;
	f->grants_off = ZCD_PAGE_SIZE;
	f->guest_off = f->grants_off + page_round((uint64_t)vm->credits * sizeof(uint32_t));
	f->ring_off = f->guest_off + ZCD_PAGE_SIZE;
	f->ring_bytes = zcd_ring_area_bytes(vm->ring_size, vm->ring_size);
	f->copy_off = f->ring_off + f->ring_bytes;
	f->bytes = f->copy_off + window * ZCD_PAGE_SIZE;
	snprintf(f->name, sizeof(f->name), "%s", vm->name);
	f->stall = vm->sim.stall;
	f->hostile = vm->sim.hostile;
	f->scribble_after = vm->sim.scribble_after;
	f->reboot_every = vm->sim.reboot_every;
	f->hold = vm->sim.hold;
	f->poll_mode = vm->poll_mode;
	atomic_store(&f->backend_pid, (int32_t)getpid());
}

/* The VM file (a memfd: guest memory starts zeroed), its ring and slots; -1 with errno. */
static int sim_vm_alloc(struct zcd_hv *hv, struct sim_vm *vm)
{
	struct sim_vm_file layout = { 0 };
	void *map;

	vm->ring_size = sim_ring_size(vm->credits);
	sim_file_layout(hv, vm, &layout);
	vm->file_fd = memfd_create("zcdemux-sim-vm", MFD_CLOEXEC);
	if (vm->file_fd < 0 || ftruncate(vm->file_fd, (off_t)layout.bytes) != 0 ||
	    fallocate(vm->file_fd, 0, 0, (off_t)layout.bytes) != 0)
		return -1;
	map = mmap(NULL, layout.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, vm->file_fd, 0);
	if (map == MAP_FAILED)
		return -1;
	vm->file = map;
	*vm->file = layout;
	vm->status = sim_status(vm->file);
	vm->grants = sim_grants(vm->file);
	vm->area = (uint8_t *)map + layout.ring_off;
	vm->area_bytes = layout.ring_bytes;
	vm->slot_buf = malloc(vm->credits * sizeof(*vm->slot_buf));
	vm->free_slots = malloc(vm->credits * sizeof(*vm->free_slots));
	if (vm->slot_buf == NULL || vm->free_slots == NULL ||
	    zcd_copy_slots_init(&vm->copies, vm->credits, vm->pages_per_buf * ZCD_PAGE_SIZE,
				(uint8_t *)map + layout.copy_off) != 0) {
		errno = ENOMEM;
		return -1;
	}
	if (zcd_ring_format(&vm->ring, vm->area, vm->area_bytes, vm->ring_size, vm->ring_size,
			    vm->credit_limit) != 0) {
		errno = EINVAL;
		return -1;
	}
	/* Stacks hold the highest index at the bottom so that 0 is used first. */
	for (uint32_t i = 0; i < vm->credits; i++) {
		vm->grants[i] = SIM_NO_SLOT;
		vm->slot_buf[i] = SIM_NO_SLOT;
		vm->free_slots[i] = vm->credits - 1 - i;
	}
	vm->nb_free_slots = vm->credits;
	/* Written last: a guest that finds the magic finds the rest. */
	__atomic_store_n(&vm->file->magic, SIM_VM_FILE_MAGIC, __ATOMIC_RELEASE);
	return 0;
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
	snprintf(vm->name, sizeof(vm->name), "%s", vc->name);
	vm->sim = vc->sim;
	vm->credits = vc->credits;
	vm->pages_per_buf = hv->pool.pages_per_buf;
	vm->credit_limit = vc->credits;
	vm->poll_mode = vc->notify == ZCD_NOTIFY_POLL;
	vm->file_fd = -1;
	vm->sink_fd = -1;
	vm->in_use = true; /* from here on destroy cleans this VM up */
	return 0;
}

static struct zcd_hv *sim_create(const struct zcd_config *cfg, const struct zcd_buf_region *pool,
				 char *err, size_t errlen)
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
 * Where the guest program is: $ZCDEMUX_SIM_GUEST, or next to this
 * executable, or in ../lib/zcdemux from it (installed).  0, or -1 with a
 * message in err.
 */
static int sim_find_guest_program(struct zcd_hv *hv, char *err, size_t errlen)
{
	const char *env = getenv(SIM_GUEST_ENV);
	char exe[PATH_MAX];
	ssize_t len;

	if (hv->guest_program[0] != '\0')
		return 0;
	if (env != NULL && env[0] != '\0') {
		snprintf(hv->guest_program, sizeof(hv->guest_program), "%s", env);
		return 0;
	}
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len > 0) {
		const char *candidates[] = { "%s/" SIM_GUEST_PROGRAM,
					     "%s/../lib/zcdemux/" SIM_GUEST_PROGRAM };
		char *dir;

		exe[len] = '\0';
		dir = dirname(exe);
		for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
			snprintf(hv->guest_program, sizeof(hv->guest_program), candidates[i], dir);
			if (access(hv->guest_program, X_OK) == 0)
				return 0;
		}
	}
	hv->guest_program[0] = '\0';
	snprintf(err, errlen, "cannot find the simulated guest's program " SIM_GUEST_PROGRAM
		 " next to this one or in ../lib/zcdemux (set " SIM_GUEST_ENV " to its path)");
	return -1;
}

/*
 * Start the guest's process with the VM file, the pool and the sink on
 * the descriptors it expects, in a process group of its own (a terminal's
 * ^C goes to zcdemux, which then stops its guests in order).  0 or an errno.
 */
static int sim_spawn_guest(struct zcd_hv *hv, struct sim_vm *vm)
{
	char *argv[] = { (char *)SIM_GUEST_PROGRAM, vm->sink_fd >= 0 ? (char *)"--sink" : NULL,
			 NULL };
	int from[] = { vm->file_fd, hv->pool.fd, vm->sink_fd };
	int high[] = { -1, -1, -1 };
	unsigned nb_fds = vm->sink_fd >= 0 ? 3 : 2;
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int rc = 0;

	/* Above the targets first, so that no dup2 overwrites another's source. */
	for (unsigned i = 0; i < nb_fds && rc == 0; i++) {
		high[i] = fcntl(from[i], F_DUPFD_CLOEXEC, SIM_GUEST_SINK_FD + 1);
		if (high[i] < 0)
			rc = errno;
	}
	sigemptyset(&none);
	sigfillset(&all);
	if (rc == 0)
		rc = posix_spawn_file_actions_init(&actions);
	if (rc == 0 && (rc = posix_spawnattr_init(&attr)) != 0)
		posix_spawn_file_actions_destroy(&actions);
	if (rc == 0) {
		for (unsigned i = 0; i < nb_fds && rc == 0; i++)
			rc = posix_spawn_file_actions_adddup2(&actions, high[i],
							      SIM_GUEST_VM_FD + (int)i);
		if (rc == 0)
			rc = posix_spawn_file_actions_addclosefrom_np(&actions,
								      SIM_GUEST_SINK_FD + 1);
		if (rc == 0)
			rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
							     POSIX_SPAWN_SETSIGMASK |
							     POSIX_SPAWN_SETSIGDEF);
		if (rc == 0)
			rc = posix_spawnattr_setsigmask(&attr, &none);
		if (rc == 0)
			rc = posix_spawnattr_setsigdefault(&attr, &all);
		if (rc == 0)
			rc = posix_spawn(&vm->guest_pid, hv->guest_program, &actions, &attr, argv,
					 environ);
		posix_spawnattr_destroy(&attr);
		posix_spawn_file_actions_destroy(&actions);
	}
	for (unsigned i = 0; i < nb_fds; i++)
		if (high[i] >= 0)
			close(high[i]);
	return rc;
}

/* Reap the guest if it has exited (wait: up to wait_ms for it); true if it has. */
static bool sim_reap_guest(struct sim_vm *vm, unsigned wait_ms, int *status)
{
	for (unsigned ms = 0;; ms++) {
		pid_t pid = waitpid(vm->guest_pid, status, WNOHANG);

		if (pid == vm->guest_pid || (pid < 0 && errno == ECHILD)) {
			vm->guest_pid = 0;
			return true;
		}
		if (ms >= wait_ms)
			return false;
		sleep_ms(1);
	}
}

/* Ask the guest to stop, wait for it to exit (killing it if it will not); logs how it ended. */
static void sim_stop_guest(struct sim_vm *vm)
{
	int status = 0;

	if (vm->guest_pid <= 0)
		return;
	atomic_store_explicit(&vm->file->stop, 1, memory_order_release);
	sim_notify_guest(vm); /* a sleeping guest would otherwise notice only at its timeout */
	if (!sim_reap_guest(vm, SIM_GUEST_STOP_MS, &status)) {
		fprintf(stderr, "zcdemux: vms[%u]: the simulated guest did not stop in %u ms; "
			"killing it\n", vm->index, SIM_GUEST_STOP_MS);
		kill(vm->guest_pid, SIGKILL);
		sim_reap_guest(vm, SIM_GUEST_STOP_MS, &status);
		return;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		fprintf(stderr, "zcdemux: vms[%u]: the simulated guest exited with status %d\n",
			vm->index, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		fprintf(stderr, "zcdemux: vms[%u]: the simulated guest was killed by signal %d\n",
			vm->index, WTERMSIG(status));
}

/* Wait until the new guest attached to its ring; 0, or -1 with a message in err. */
static int sim_wait_attached(struct sim_vm *vm, unsigned vm_index, char *err, size_t errlen)
{
	int status;

	for (unsigned ms = 0; ms < SIM_GUEST_START_MS; ms++) {
		uint32_t attached = atomic_load_explicit(&vm->status->attached, memory_order_acquire);

		if (attached == SIM_ATTACH_OK)
			return 0;
		if (attached == SIM_ATTACH_REJECTED || sim_reap_guest(vm, 0, &status)) {
			snprintf(err, errlen, "vms[%u]: the simulated guest rejected its ring or "
				 "exited", vm_index);
			return -1;
		}
		sleep_ms(1);
	}
	snprintf(err, errlen, "vms[%u]: the simulated guest did not attach in %u ms", vm_index,
		 SIM_GUEST_START_MS);
	return -1;
}

/*
 * Set up the VM's file and ring, start its guest and wait until it
 * attached.  On failure everything but the sink is released, and err
 * says why.
 */
static int sim_vm_start(struct zcd_hv *hv, struct sim_vm *vm, unsigned vm_index, char *err,
			size_t errlen)
{
	int rc;

	vm->was_connected = true;
	if (sim_vm_alloc(hv, vm) != 0) {
		snprintf(err, errlen, "vms[%u]: cannot set up the simulated guest: %s", vm_index,
			 strerror(errno));
		goto fail;
	}
	if (vm->sim.instant_return) {
		if (zcd_ring_attach(&vm->echo_ring, vm->area, vm->area_bytes) != 0) {
			snprintf(err, errlen, "vms[%u]: the simulated guest rejected its ring",
				 vm_index);
			goto fail;
		}
		goto connected;
	}
	if (sim_find_guest_program(hv, err, errlen) != 0)
		goto fail;
	rc = sim_spawn_guest(hv, vm);
	if (rc != 0) {
		snprintf(err, errlen, "vms[%u]: cannot start the simulated guest %s: %s", vm_index,
			 hv->guest_program, strerror(rc));
		vm->guest_pid = 0;
		goto fail;
	}
	/* Like a frontend reaching "connected": nothing is sent before it attached. */
	if (sim_wait_attached(vm, vm_index, err, errlen) != 0) {
		sim_stop_guest(vm);
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
	if (vm->sim.sink[0] != '\0') {
		vm->sink_fd = zcd_pcap_sink_create(vm->sim.sink);
		if (vm->sink_fd < 0) {
			snprintf(err, errlen, "vms[%u].sim.sink: cannot open %s: %s", vm_index,
				 vm->sim.sink, strerror(errno));
			return -1;
		}
	}
	if (sim_vm_start(hv, vm, vm_index, err, errlen) == 0)
		return 0;
	if (vm->sink_fd >= 0)
		close(vm->sink_fd);
	vm->sink_fd = -1;
	return -1;
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
	sim_stop_guest(vm);
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

/* The guest said it left (reboot_every), and poll_events has not told yet. */
static bool sim_guest_left(struct sim_vm *vm)
{
	if (!vm->connected || vm->left_reported || vm->status == NULL ||
	    !atomic_load_explicit(&vm->status->left, memory_order_acquire))
		return false;
	vm->left_reported = true;
	return true;
}

/* A simulated guest connects in vm_connect and leaves by breaking its ring or rebooting. */
static unsigned sim_poll_events(struct zcd_hv *hv, struct zcd_hv_event *ev, unsigned max)
{
	unsigned n = 0;

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
 * Everything the VM held is back.  A guest that left (reboot_every) is
 * replaced by a new one on a fresh ring, writing on into the same sink;
 * one that broke its ring runs on, cut off, until shutdown.
 */
static void sim_vm_let_go(struct zcd_hv *hv, unsigned vm_index)
{
	struct sim_vm *vm;
	char err[256];

	if (vm_index >= hv->nb_vms || !hv->vms[vm_index].left_reported)
		return;
	vm = &hv->vms[vm_index];
	sim_stop_guest(vm); /* it is exiting by itself */
	vm->connected = false;
	vm->left_reported = false;
	sim_vm_release(vm);
	atomic_store(&vm->ring_broken, false);
	if (sim_vm_start(hv, vm, vm_index, err, sizeof(err)) != 0)
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
	sim_vm_release(vm);
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
	.vm_add = sim_vm_add,
	.vm_remove = sim_vm_remove,
	.vm_drained = sim_vm_drained,
	.vm_disconnect = sim_vm_disconnect,
	.vm_stats = sim_vm_stats,
	.destroy = sim_destroy,
};
