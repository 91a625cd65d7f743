/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sim backend: the VM files (layout in shared.h).  A VM file is a memfd,
 * or with a keep prefix the file "<prefix>.sim.<VM name>", which outlives
 * the process: a later zcdemux takes it over if the guest ran on, or
 * retires it (stops its guest, removes it) if it cannot.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../keep_file.h"
#include "sim.h"

#define VM_FILE_INFIX ".sim."

/* Smallest power of two >= max(credits, SIM_RING_MIN_SIZE): a guest holding
 * every credit can still have each buffer's return on the ring. */
static uint32_t ring_size_for(uint32_t credits)
{
	uint32_t size = SIM_RING_MIN_SIZE;

	while (size < credits)
		size <<= 1;
	return size;
}

bool sim_notify_guest(const struct sim_vm *vm)
{
	atomic_fetch_add_explicit(&vm->status->wake, 1, memory_order_release);
	return syscall(SYS_futex, &vm->status->wake, FUTEX_WAKE, 1, NULL, NULL, 0) >= 0;
}

static void vm_file_path(const struct zcd_hv *hv, const char *name, char *path, size_t len)
{
	snprintf(path, len, "%s" VM_FILE_INFIX "%s", hv->keep, name);
}

/* The layout and settings a VM file of vm has (shared.h), in the zeroed hyp page f. */
static void file_layout(const struct zcd_hv *hv, const struct sim_vm *vm, struct sim_vm_file *f)
{
	uint64_t window = (uint64_t)vm->credits * vm->pages_per_buf;
	uint64_t slot_words = (uint64_t)vm->credits * sizeof(uint32_t);

	f->version = SIM_VM_FILE_VERSION;
	f->credits = vm->credits;
	f->pages_per_buf = vm->pages_per_buf;
	f->ring_size = ring_size_for(vm->credits);
	f->copy_base = (uint32_t)window;
	f->nb_bufs = hv->pool.nb_bufs;
	f->grants_off = ZCD_PAGE_SIZE;
	f->grant_gens_off = f->grants_off + slot_words;
	f->grant_pos_off = f->grant_gens_off + slot_words;
	f->copy_state_off = f->grant_pos_off + slot_words;
	f->guest_off = zcd_round_up(f->copy_state_off +
					(uint64_t)vm->credits * sizeof(struct zcd_copy_slot_state),
				hv->file_align);
	f->ring_off = f->guest_off + ZCD_PAGE_SIZE;
	f->ring_bytes = zcd_ring_area_bytes(f->ring_size, f->ring_size);
	f->copy_off = f->ring_off + f->ring_bytes;
	f->bytes = zcd_round_up(f->copy_off + window * ZCD_PAGE_SIZE, hv->file_align);
	snprintf(f->name, sizeof(f->name), "%s", vm->name);
	f->stall = vm->sim.stall;
	f->hostile = vm->sim.hostile;
	f->scribble_after = vm->sim.scribble_after;
	f->reboot_every = vm->sim.reboot_every;
	f->hold = vm->sim.hold;
	f->poll_mode = vm->poll_mode;
	f->persistent = hv->keep[0] != '\0';
	atomic_store(&f->backend_pid, (int32_t)getpid());
}

/* Same geometry and guest settings: a guest of a file laid out as a can be served as b. */
static bool same_layout(const struct sim_vm_file *a, const struct sim_vm_file *b)
{
	return a->magic == SIM_VM_FILE_MAGIC && a->version == b->version &&
	       a->credits == b->credits && a->pages_per_buf == b->pages_per_buf &&
	       a->ring_size == b->ring_size && a->copy_base == b->copy_base &&
	       a->nb_bufs == b->nb_bufs && a->bytes == b->bytes &&
	       a->grants_off == b->grants_off && a->grant_gens_off == b->grant_gens_off &&
	       a->grant_pos_off == b->grant_pos_off && a->copy_state_off == b->copy_state_off &&
	       a->guest_off == b->guest_off &&
	       a->ring_off == b->ring_off && a->ring_bytes == b->ring_bytes &&
	       a->copy_off == b->copy_off && strncmp(a->name, b->name, sizeof(a->name)) == 0 &&
	       a->stall == b->stall && a->hostile == b->hostile &&
	       a->scribble_after == b->scribble_after && a->reboot_every == b->reboot_every &&
	       a->hold == b->hold && a->poll_mode == b->poll_mode &&
	       a->persistent == b->persistent;
}

/* The views of a mapped file whose hyp page is filled in. */
static int set_views(struct sim_vm *vm)
{
	struct sim_vm_file *f = vm->file;

	vm->status = sim_status(f);
	vm->grants = sim_grants(f);
	vm->ring_size = f->ring_size;
	vm->area = (uint8_t *)f + f->ring_off;
	vm->area_bytes = f->ring_bytes;
	vm->slot_buf = malloc(vm->credits * sizeof(*vm->slot_buf));
	vm->free_slots = malloc(vm->credits * sizeof(*vm->free_slots));
	if (vm->slot_buf == NULL || vm->free_slots == NULL) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

/* Unmap and close vm's file and drop every view of it. */
static void unmap_file(struct sim_vm *vm)
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
}

void sim_vmfile_release(struct zcd_hv *hv, struct sim_vm *vm)
{
	char path[ZCD_FILE_PATH_MAX + ZCD_NAME_MAX + 8];

	sim_guest_forget(vm);
	/* Nothing in it is needed any more: the next run starts afresh. */
	if (vm->file_fd >= 0 && hv->keep[0] != '\0') {
		vm_file_path(hv, vm->name, path, sizeof(path));
		unlink(path);
	}
	unmap_file(vm);
	vm->reattached = false;
	vm->was_connected = false;
}

/* Stop the guest of the VM file at path, if it runs, and remove the file. */
static void retire_file(const char *path)
{
	struct sim_vm old = { .file_fd = -1, .guest_pidfd = -1 };
	struct sim_vm_file hyp;
	int fd = zcd_keep_file_open(path, &hyp, sizeof(hyp));

	if (fd >= 0 && hyp.magic == SIM_VM_FILE_MAGIC && hyp.version == SIM_VM_FILE_VERSION &&
	    hyp.guest_off + sizeof(struct sim_guest_status) <= hyp.bytes &&
	    (old.file = zcd_keep_file_map(fd, hyp.bytes)) != NULL) {
		old.file_fd = fd;
		fd = -1;
		old.status = sim_status(old.file);
		old.index = UINT_MAX;
		snprintf(old.name, sizeof(old.name), "%s", hyp.name);
		if (sim_guest_adopt(&old, atomic_load(&old.status->pid), path) == 0) {
			fprintf(stderr, "zcdemux: %s: stopping the simulated guest an earlier "
				"zcdemux left running (pid %d)\n", path, (int)old.guest_pid);
			sim_guest_stop(&old);
		}
		munmap(old.file, hyp.bytes);
		close(old.file_fd);
	}
	if (fd >= 0)
		close(fd);
	unlink(path);
}

int sim_vmfile_create(struct zcd_hv *hv, struct sim_vm *vm)
{
	char path[ZCD_FILE_PATH_MAX + ZCD_NAME_MAX + 8], name[ZCD_NAME_MAX + 16];
	struct sim_vm_file layout = { 0 };
	void *map;

	file_layout(hv, vm, &layout);
	if (hv->keep[0] != '\0') {
		vm_file_path(hv, vm->name, path, sizeof(path));
		retire_file(path);
	}
	/* A memfd is named, so that /proc/<guest>/fd/3 says whose it is.
	 * Guest memory starts zeroed, like any page a guest allocates. */
	snprintf(name, sizeof(name), "zcdemux-sim-%s", vm->name);
	vm->file_fd = zcd_keep_file_create(hv->keep[0] != '\0' ? path : NULL, name,
					   layout.bytes, &map);
	if (vm->file_fd < 0)
		return -1;
	vm->file = map;
	*vm->file = layout;
	if (set_views(vm) != 0 ||
	    zcd_copy_slots_init_at(&vm->copies, vm->credits, vm->pages_per_buf * ZCD_PAGE_SIZE,
				   (uint8_t *)vm->file + layout.copy_off,
				   sim_copy_states(vm->file), false) != 0)
		return -1;
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

/*
 * The grant table as the earlier backend left it: the slots it records,
 * the free ones, and which buffer is in which slot.  An entry naming no
 * buffer of this pool, one already in another slot, or one whose
 * descriptor the earlier backend never published (the guest cannot know
 * of it) is cleared.
 */
static void resume_slots(struct zcd_hv *hv, struct sim_vm *vm)
{
	const uint32_t *positions = sim_grant_positions(vm->file);
	uint32_t prod = vm->ring.rx_prod;

	vm->nb_free_slots = 0;
	for (uint32_t slot = vm->credits; slot-- > 0;) {
		uint32_t buf = vm->grants[slot];

		if (buf < hv->pool.nb_bufs && hv->slot_of_buf[buf] == SIM_NO_SLOT &&
		    zcd_rx_pos_published(positions[slot], prod)) {
			vm->slot_buf[slot] = buf;
			hv->slot_of_buf[buf] = slot;
			continue;
		}
		vm->grants[slot] = SIM_NO_SLOT;
		vm->slot_buf[slot] = SIM_NO_SLOT;
		vm->free_slots[vm->nb_free_slots++] = slot;
	}
}

int sim_vmfile_resume(struct zcd_hv *hv, struct sim_vm *vm)
{
	char path[ZCD_FILE_PATH_MAX + ZCD_NAME_MAX + 8];
	struct sim_vm_file want = { 0 }, hyp;
	int fd;

	if (hv->keep[0] == '\0' || vm->sim.instant_return)
		return -1;
	vm_file_path(hv, vm->name, path, sizeof(path));
	fd = zcd_keep_file_open(path, &hyp, sizeof(hyp));
	if (fd < 0)
		goto retire;
	file_layout(hv, vm, &want);
	if (!same_layout(&hyp, &want) || (vm->file = zcd_keep_file_map(fd, want.bytes)) == NULL) {
		close(fd);
		goto retire;
	}
	vm->file_fd = fd;
	if (set_views(vm) != 0 ||
	    atomic_load(&vm->status->attached) != SIM_ATTACH_OK || atomic_load(&vm->status->left) ||
	    sim_guest_adopt(vm, atomic_load(&vm->status->pid), path) != 0 ||
	    zcd_ring_resume(&vm->ring, vm->area, vm->area_bytes, vm->ring_size, vm->ring_size) != 0)
		goto release;
	zcd_copy_slots_drop_unpublished(sim_copy_states(vm->file), vm->credits, vm->ring.rx_prod);
	if (zcd_copy_slots_init_at(&vm->copies, vm->credits, vm->pages_per_buf * ZCD_PAGE_SIZE,
				   (uint8_t *)vm->file + want.copy_off, sim_copy_states(vm->file),
				   true) != 0)
		goto release;
	resume_slots(hv, vm);
	atomic_store(&vm->file->stop, 0);
	atomic_store_explicit(&vm->file->backend_pid, (int32_t)getpid(), memory_order_release);
	sim_notify_guest(vm);
	vm->reattached = true;
	return 0;

release:
	/* Its guest, if it runs, is stopped with the file. */
	sim_guest_forget(vm);
	unmap_file(vm);
retire:
	retire_file(path);
	return -1;
}

static void retire_unconfigured(const char *path, void *ctx)
{
	(void)ctx;
	retire_file(path);
}

void sim_vmfile_retire_others(struct zcd_hv *hv, const struct zcd_config *cfg)
{
	if (hv->keep[0] != '\0')
		zcd_keep_files_unconfigured(hv->keep, VM_FILE_INFIX, cfg, retire_unconfigured, NULL);
}
