/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * xen backend: each connection's file (struct xen_vm_file in xen.h).  Its
 * ring pages are registered with the grant helper on a file of their own
 * and granted writable to the guest.  A later zcdemux with the same keep
 * prefix maps the same file, so the helper hands it the grants the dead
 * process left (ADOPT) and the guest's ring, references and mapping stay
 * what they were.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../keep_file.h"
#include "xen.h"

#define VM_FILE_INFIX ".xen."

static void vm_file_path(const struct zcd_hv *hv, const char *name, char *path, size_t len)
{
	snprintf(path, len, "%s" VM_FILE_INFIX "%s", hv->keep, name);
}

/* The layout of vm's file, in the zeroed page 0 f. */
static void file_layout(const struct zcd_hv *hv, const struct xen_vm *vm, struct xen_vm_file *f)
{
	f->version = XEN_VM_FILE_VERSION;
	snprintf(f->name, sizeof(f->name), "%s", vm->name);
	f->ring_size = vm->ring_size;
	f->ring_pages = (uint32_t)(zcd_ring_area_bytes(vm->ring_size, vm->ring_size) / ZCD_PAGE_SIZE);
	f->credits = vm->credits;
	f->pages_per_buf = hv->pool.pages_per_buf;
	f->nb_bufs = hv->pool.nb_bufs;
	f->poll_mode = vm->poll_mode;
	f->ring_off = zcd_round_up(sizeof(*f), hv->file_align);
	f->copy_state_off = zcd_round_up(f->ring_off + (uint64_t)f->ring_pages * ZCD_PAGE_SIZE,
					 hv->file_align);
	f->grants_off = f->copy_state_off + (uint64_t)f->credits * sizeof(struct zcd_copy_slot_state);
	f->bytes = zcd_round_up(f->grants_off + (uint64_t)f->nb_bufs * sizeof(struct xen_grant_record),
				hv->file_align);
}

static bool same_layout(const struct xen_vm_file *a, const struct xen_vm_file *b)
{
	return a->magic == XEN_VM_FILE_MAGIC && a->version == b->version &&
	       strncmp(a->name, b->name, sizeof(a->name)) == 0 && a->ring_size == b->ring_size &&
	       a->ring_pages == b->ring_pages && a->credits == b->credits &&
	       a->pages_per_buf == b->pages_per_buf && a->nb_bufs == b->nb_bufs &&
	       a->poll_mode == b->poll_mode &&
	       a->bytes == b->bytes && a->ring_off == b->ring_off &&
	       a->copy_state_off == b->copy_state_off && a->grants_off == b->grants_off;
}

/* The views into a mapped file whose page 0 is filled in. */
static void set_views(struct xen_vm *vm)
{
	vm->ring_area = (uint8_t *)vm->file + vm->file->ring_off;
	vm->ring_pages = vm->file->ring_pages;
	vm->grant_records = (struct xen_grant_record *)((uint8_t *)vm->file + vm->file->grants_off);
}

static struct zcd_copy_slot_state *copy_states(const struct xen_vm *vm)
{
	return (struct zcd_copy_slot_state *)((uint8_t *)vm->file + vm->file->copy_state_off);
}

int xen_vmfile_create(struct zcd_hv *hv, struct xen_vm *vm, uint32_t *refs, char *why,
		      size_t whylen)
{
	char path[ZCD_FILE_PATH_MAX + ZCD_NAME_MAX + 8], name[ZCD_NAME_MAX + 16];
	struct xen_vm_file layout = {0};
	uint32_t pages[XEN_RING_PAGES_MAX];
	void *map;

	file_layout(hv, vm, &layout);
	layout.domid = vm->domid;
	snprintf(name, sizeof(name), "zcdemux-xen-%s", vm->name);
	if (hv->keep[0] != '\0') {
		vm_file_path(hv, vm->name, path, sizeof(path));
		/* An earlier connection's file: the helper keeps what its guest maps. */
		unlink(path);
	}
	vm->file_fd = zcd_keep_file_create(hv->keep[0] != '\0' ? path : NULL, name, layout.bytes,
					   &map);
	if (vm->file_fd < 0) {
		snprintf(why, whylen, "cannot make the connection's file %s: %s",
			 hv->keep[0] != '\0' ? path : name, strerror(errno));
		return -1;
	}
	vm->file = map;
	*vm->file = layout;
	set_views(vm);
	if (xen_grant_region_open(&vm->ring_grants, vm->ring_area,
				  (size_t)layout.ring_pages * ZCD_PAGE_SIZE, false, why, whylen) != 0)
		return -1;
	for (uint32_t i = 0; i < layout.ring_pages; i++) {
		pages[i] = i;
		refs[i] = vm->ring_grants.first_ref + i;
	}
	if (xen_grant_pages(&vm->ring_grants, pages, layout.ring_pages, vm->domid, false) != 0) {
		snprintf(why, whylen, "cannot grant %u ring pages to domain %u: %s",
			 layout.ring_pages, vm->domid, strerror(errno));
		return -1;
	}
	__atomic_store_n(&vm->file->magic, XEN_VM_FILE_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

int xen_vmfile_open_kept(struct zcd_hv *hv, struct xen_vm *vm)
{
	char path[ZCD_FILE_PATH_MAX + ZCD_NAME_MAX + 8];
	struct xen_vm_file want = {0}, found;
	int fd;

	if (hv->keep[0] == '\0')
		return -1;
	vm_file_path(hv, vm->name, path, sizeof(path));
	fd = zcd_keep_file_open(path, &found, sizeof(found));
	file_layout(hv, vm, &want);
	if (fd < 0 || !same_layout(&found, &want) ||
	    (vm->file = zcd_keep_file_map(fd, want.bytes)) == NULL) {
		if (fd >= 0)
			close(fd);
		unlink(path);
		return -1;
	}
	vm->file_fd = fd;
	set_views(vm);
	vm->previous_domid = found.domid;
	return 0;
}

int xen_vmfile_take_ring(struct zcd_hv *hv, struct xen_vm *vm)
{
	size_t bytes = (size_t)vm->ring_pages * ZCD_PAGE_SIZE;
	uint16_t domids[XEN_RING_PAGES_MAX];
	char why[256];

	if (hv->pool_grants.fd < 0)
		return -1;
	if (xen_grant_region_open(&vm->ring_grants, vm->ring_area, bytes, true, why,
				  sizeof(why)) != 0) {
		fprintf(stderr, "zcdemux: xen: %s: %s\n", vm->name, why);
		return -1;
	}
	/* Only a ring the guest still maps, every page of it, is still its ring. */
	if (vm->ring_grants.taken_over != vm->ring_pages ||
	    xen_grant_query(&vm->ring_grants, domids) != 0)
		return -1;
	for (uint32_t i = 0; i < vm->ring_pages; i++)
		if (domids[i] != vm->domid)
			return -1;
	return zcd_ring_resume(&vm->ring, vm->ring_area, bytes, vm->ring_size, vm->ring_size);
}

int xen_vmfile_resume_copies(struct xen_vm *vm, uint32_t slots, uint32_t slot_bytes)
{
	struct zcd_copy_slot_state *states = copy_states(vm);

	zcd_copy_slots_drop_unpublished(states, slots, vm->ring.rx_prod);
	return zcd_copy_slots_init_at(&vm->copies, slots, slot_bytes, vm->copy_area, states, true);
}

int xen_vmfile_init_copies(struct xen_vm *vm, uint32_t slots, uint32_t slot_bytes)
{
	if (vm->file == NULL)
		return zcd_copy_slots_init(&vm->copies, slots, slot_bytes, vm->copy_area);
	atomic_store(&vm->file->copy_slots, slots);
	return zcd_copy_slots_init_at(&vm->copies, slots, slot_bytes, vm->copy_area,
				      copy_states(vm), false);
}

void xen_vmfile_release(struct zcd_hv *hv, struct xen_vm *vm)
{
	char path[ZCD_FILE_PATH_MAX + ZCD_NAME_MAX + 8];

	xen_grant_region_close(&vm->ring_grants);
	if (vm->file != NULL)
		munmap(vm->file, vm->file->bytes);
	if (vm->file_fd >= 0) {
		close(vm->file_fd);
		if (hv->keep[0] != '\0') {
			vm_file_path(hv, vm->name, path, sizeof(path));
			unlink(path);
		}
	}
	vm->file = NULL;
	vm->file_fd = -1;
	vm->ring_area = NULL;
	vm->grant_records = NULL;
}

/* A file of a VM no longer configured: its guest is asked to close, the file removed. */
static void retire_unconfigured(const char *path, void *ctx)
{
	struct xen_vm_file hdr;
	int fd = zcd_keep_file_open(path, &hdr, sizeof(hdr));

	if (fd >= 0 && hdr.magic == XEN_VM_FILE_MAGIC && hdr.domid != 0)
		xen_control_ask_close(ctx, hdr.domid);
	if (fd >= 0)
		close(fd);
	unlink(path);
}

void xen_vmfile_retire_others(struct zcd_hv *hv, const struct zcd_config *cfg)
{
	if (hv->keep[0] != '\0')
		zcd_keep_files_unconfigured(hv->keep, VM_FILE_INFIX, cfg, retire_unconfigured, hv);
}
