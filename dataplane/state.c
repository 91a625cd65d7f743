/* SPDX-License-Identifier: BSD-3-Clause */
/* The persistent state file; see state.h for the layout and the recovery rules. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include "dataplane.h"
#include "state.h"

#define STATE_PAGE 4096U

/* Changes whenever a structure kept raw in the file changes size. */
static uint32_t state_layout(void)
{
	return (uint32_t)(sizeof(struct zcd_vm_state) * 31 + sizeof(struct zcd_worker) * 7 +
			  sizeof(struct zcd_vm_counters) * 3 + sizeof(struct zcd_ledger_entry) +
			  sizeof(struct zcd_state_hdr));
}

static uint64_t round_up(uint64_t v, uint64_t to)
{
	return (v + to - 1) / to * to;
}

struct zcd_state *zcd_state_lock(const char *path, bool wait, char *err, size_t errlen)
{
	struct zcd_state *st = calloc(1, sizeof(*st));
	struct zcd_state_hdr hdr;

	if (st == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	snprintf(st->path, sizeof(st->path), "%s", path);
	st->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (st->fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		free(st);
		return NULL;
	}
	if (flock(st->fd, LOCK_EX | LOCK_NB) != 0) {
		int why = errno;
		int pid = pread(st->fd, &hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) ? hdr.pid : 0;

		if (why != EWOULDBLOCK) {
			snprintf(err, errlen, "%s: cannot lock: %s", path, strerror(why));
			goto fail;
		}
		if (!wait) {
			snprintf(err, errlen,
				 "%s: in use by zcdemux pid %d; --standby waits to take over from it",
				 path, pid);
			goto fail;
		}
		fprintf(stderr, "zcdemux: standby: waiting to take over %s from pid %d\n", path,
			pid);
		while (flock(st->fd, LOCK_EX) != 0) {
			if (errno != EINTR) {
				snprintf(err, errlen, "%s: cannot lock: %s", path, strerror(errno));
				goto fail;
			}
		}
	}
	return st;
fail:
	close(st->fd);
	free(st);
	return NULL;
}

/* What the previous run left, read before the file is laid out again. */
struct previous {
	bool valid;
	bool counters_valid; /* same build layout: its raw structures can be read */
	struct zcd_state_hdr hdr;
	uint32_t *generations; /* by buffer id, if its pool had as many buffers */
	uint32_t max_generation;
	uint32_t states[ZCD_BUF_STATE_COUNT];
	uint32_t granted_by_slot[ZCD_MAX_VMS];
	struct zcd_vm_counters vm_counters[ZCD_MAX_VMS];
	struct zcd_port_counters port_c[ZCD_MAX_PORTS];
	uint64_t scrubbed_bytes;
};

static void read_previous(struct zcd_state *st, uint32_t nb_bufs, uint32_t buf_size,
			  struct previous *prev)
{
	const struct zcd_state_hdr *h;
	const struct zcd_ledger_entry *ledger;
	struct stat sb;
	void *map;

	if (fstat(st->fd, &sb) != 0 || (uint64_t)sb.st_size < sizeof(*h))
		return;
	map = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, st->fd, 0);
	if (map == MAP_FAILED)
		return;
	h = map;
	if (h->magic != ZCD_STATE_MAGIC || h->version != ZCD_STATE_VERSION ||
	    h->bytes > (uint64_t)sb.st_size || h->nb_ports > ZCD_MAX_PORTS ||
	    h->ledger_off + (uint64_t)h->nb_bufs * sizeof(*ledger) > h->bytes)
		goto out;
	prev->valid = true;
	prev->hdr = *h;
	ledger = (const struct zcd_ledger_entry *)((const uint8_t *)map + h->ledger_off);
	if (h->nb_bufs == nb_bufs)
		prev->generations = malloc(nb_bufs * sizeof(*prev->generations));
	/* Guests may have kept buffers of a pool laid out the same way. */
	if (h->running != 0 && h->nb_bufs == nb_bufs && h->buf_size == buf_size) {
		st->previous_ledger = malloc(nb_bufs * sizeof(*st->previous_ledger));
		if (st->previous_ledger != NULL)
			memcpy(st->previous_ledger, ledger, nb_bufs * sizeof(*ledger));
		memcpy(st->previous_vm_names, h->vm_names, sizeof(st->previous_vm_names));
	}
	for (uint32_t id = 0; id < h->nb_bufs; id++) {
		struct zcd_ledger_entry e = ledger[id];

		if (prev->generations != NULL)
			prev->generations[id] = e.generation;
		prev->max_generation = RTE_MAX(prev->max_generation, e.generation);
		/* After a clean exit every buffer was free; tearing the pool
		 * down afterwards moves entries that mean nothing any more. */
		if (h->running == 0 || e.state >= ZCD_BUF_STATE_COUNT)
			continue;
		prev->states[e.state]++;
		if (e.state == ZCD_BUF_GRANTED && e.owner < ZCD_MAX_VMS)
			prev->granted_by_slot[e.owner]++;
	}
	prev->counters_valid = h->layout == state_layout() &&
			       h->vms_off + ZCD_MAX_VMS * sizeof(struct zcd_vm_state) <= h->bytes &&
			       h->workers_off + ZCD_MAX_WORKERS * sizeof(struct zcd_worker) <= h->bytes;
	if (prev->counters_valid) {
		const struct zcd_vm_state *vms =
			(const void *)((const uint8_t *)map + h->vms_off);
		const struct zcd_worker *workers =
			(const void *)((const uint8_t *)map + h->workers_off);

		for (unsigned k = 0; k < ZCD_MAX_VMS; k++)
			prev->vm_counters[k] = vms[k].c;
		for (unsigned w = 0; w < ZCD_MAX_WORKERS; w++) {
			for (unsigned p = 0; p < h->nb_ports; p++) {
				prev->port_c[p].rx_packets += workers[w].port_c[p].rx_packets;
				prev->port_c[p].rx_bytes += workers[w].port_c[p].rx_bytes;
			}
			prev->scrubbed_bytes += workers[w].scrubbed_bytes;
		}
	}
	/* From here on the file holds nothing until it is laid out again. */
	((struct zcd_state_hdr *)map)->magic = 0;
out:
	munmap(map, (size_t)sb.st_size);
}

/* The previous run's counters of the VM called name, its GRANTED buffers included. */
static void carry_vm(const struct previous *prev, const char *name, struct zcd_vm_counters *c)
{
	for (unsigned k = 0; k < ZCD_MAX_VMS; k++) {
		if (prev->hdr.vm_names[k][0] == '\0' ||
		    strncmp(prev->hdr.vm_names[k], name, ZCD_NAME_MAX) != 0)
			continue;
		if (prev->counters_valid)
			*c = prev->vm_counters[k];
		c->reclaimed += prev->granted_by_slot[k];
		return;
	}
}

static void carry_ports(const struct previous *prev, const struct zcd_config *cfg,
			struct zcd_worker *w0)
{
	if (!prev->counters_valid)
		return;
	for (unsigned p = 0; p < cfg->nb_ports; p++)
		for (unsigned q = 0; q < prev->hdr.nb_ports; q++)
			if (strncmp(prev->hdr.port_names[q], cfg->ports[p].name, ZCD_NAME_MAX) == 0)
				w0->port_c[p] = prev->port_c[q];
	w0->scrubbed_bytes = prev->scrubbed_bytes;
}

/* Why bytes of file fd (path) could not be reserved or mapped (errno), for err. */
static void no_space_error(int fd, const char *path, uint64_t bytes, const char *what,
			   char *err, size_t errlen)
{
	int saved_errno = errno;
	struct statfs fs;

	if ((saved_errno == ENOSPC || saved_errno == ENOMEM) && fstatfs(fd, &fs) == 0 &&
	    fs.f_type == HUGETLBFS_MAGIC)
		snprintf(err, errlen,
			 "%s: cannot %s %" PRIu64 " bytes: not enough free huge pages of %ld KiB "
			 "(HugePages_Free in /proc/meminfo; reserve more in "
			 "/proc/sys/vm/nr_hugepages)", path, what, bytes, (long)(fs.f_bsize / 1024));
	else
		snprintf(err, errlen, "%s: cannot %s %" PRIu64 " bytes for it: %s", path, what,
			 bytes, strerror(saved_errno));
}

/* Allocate the file's first bytes, keeping what it holds; -1 with a message in err. */
static int reserve(int fd, const char *path, uint64_t bytes, char *err, size_t errlen)
{
	if (fallocate(fd, 0, 0, (off_t)bytes) == 0 || errno == EOPNOTSUPP)
		return 0;
	no_space_error(fd, path, bytes, "reserve", err, errlen);
	return -1;
}

int zcd_state_attach(struct zcd_state *st, const struct zcd_config *cfg, uint32_t nb_bufs,
		     uint32_t buf_size, char *err, size_t errlen)
{
	struct previous *prev = calloc(1, sizeof(*prev));
	uint64_t vms_off = STATE_PAGE, workers_off, ledger_off, bytes;
	struct zcd_ledger_entry *ledger;
	struct zcd_state_hdr *h;
	struct stat sb;
	int rc = -1;

	if (prev == NULL) {
		snprintf(err, errlen, "%s: out of memory", st->path);
		return -1;
	}
	workers_off = round_up(vms_off + ZCD_MAX_VMS * sizeof(struct zcd_vm_state), STATE_PAGE);
	ledger_off = round_up(workers_off + ZCD_MAX_WORKERS * sizeof(struct zcd_worker), STATE_PAGE);
	bytes = ledger_off + (uint64_t)nb_bufs * sizeof(*ledger);
	/* hugetlbfs files grow by whole huge pages. */
	if (fstat(st->fd, &sb) == 0 && sb.st_blksize > 0)
		bytes = round_up(bytes, (uint64_t)sb.st_blksize);
	/*
	 * Reserve the space first: a full tmpfs or hugetlbfs would otherwise
	 * kill the process with SIGBUS when it first touches a page, and a
	 * run refused here leaves the previous run's state for the next one.
	 */
	if (reserve(st->fd, st->path, bytes, err, errlen) != 0)
		goto out;
	read_previous(st, nb_bufs, buf_size, prev);
	if (ftruncate(st->fd, 0) != 0 || ftruncate(st->fd, (off_t)bytes) != 0) {
		snprintf(err, errlen, "%s: cannot size it to %" PRIu64 " bytes: %s", st->path, bytes,
			 strerror(errno));
		goto out;
	}
	if (reserve(st->fd, st->path, bytes, err, errlen) != 0)
		goto out;
	st->map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, st->fd, 0);
	if (st->map == MAP_FAILED) {
		st->map = NULL;
		no_space_error(st->fd, st->path, bytes, "map", err, errlen);
		goto out;
	}
	st->bytes = bytes;
	h = st->hdr = st->map;
	h->version = ZCD_STATE_VERSION;
	h->layout = state_layout();
	h->nb_bufs = nb_bufs;
	h->buf_size = buf_size;
	h->nb_ports = cfg->nb_ports;
	h->vms_off = vms_off;
	h->workers_off = workers_off;
	h->ledger_off = ledger_off;
	h->bytes = bytes;
	h->pid = (int32_t)getpid();
	h->running = 1;
	for (unsigned p = 0; p < cfg->nb_ports; p++)
		snprintf(h->port_names[p], ZCD_NAME_MAX, "%s", cfg->ports[p].name);
	for (unsigned v = 0; v < cfg->nb_vms; v++) {
		struct zcd_vm_state *vms = zcd_state_vms(st);

		snprintf(h->vm_names[v], ZCD_NAME_MAX, "%s", cfg->vms[v].name);
		if (prev->valid)
			carry_vm(prev, cfg->vms[v].name, &vms[v].c);
	}
	if (prev->valid) {
		struct zcd_state_totals *t = &h->totals;

		*t = prev->hdr.totals;
		t->restarts++;
		t->unclean += prev->hdr.running != 0;
		t->lost_in_restart += prev->states[ZCD_BUF_HELD];
		t->taken_back += prev->states[ZCD_BUF_GRANTED];
		t->revoking += prev->states[ZCD_BUF_REVOKING];
		t->posted_at_exit += prev->states[ZCD_BUF_POSTED];
		h->incarnation = prev->hdr.incarnation;
		st->found_previous = true;
		st->previous_pid = prev->hdr.pid;
		st->previous_unclean = prev->hdr.running != 0;
		carry_ports(prev, cfg, zcd_state_workers(st));
	}
	h->incarnation++;
	/* Generations go on: no earlier grant's return can match a later one. */
	ledger = zcd_state_ledger(st);
	for (uint32_t id = 0; id < nb_bufs; id++)
		ledger[id].generation = (prev->generations != NULL ? prev->generations[id]
								    : prev->max_generation) + 1;
	__atomic_store_n(&h->magic, ZCD_STATE_MAGIC, __ATOMIC_RELEASE);
	rc = 0;
out:
	free(prev->generations);
	free(prev);
	return rc;
}

int zcd_state_pool_file(struct zcd_state *st, uint64_t bytes, bool *kept, char *err,
			size_t errlen)
{
	char path[ZCD_FILE_PATH_MAX + 8];
	struct stat sb;
	int fd;

	snprintf(path, sizeof(path), "%s.pool", st->path);
	/* hugetlbfs files grow by whole huge pages. */
	if (fstat(st->fd, &sb) == 0 && sb.st_blksize > 0)
		bytes = round_up(bytes, (uint64_t)sb.st_blksize);
	fd = open(path, O_RDWR | O_CLOEXEC);
	*kept = fd >= 0 && st->previous_ledger != NULL && fstat(fd, &sb) == 0 &&
		(uint64_t)sb.st_size == bytes;
	if (!*kept) {
		/*
		 * A new file, not the old one truncated: a guest of the previous
		 * run that still maps it must not fault, and it gets none of
		 * these pages.
		 */
		if (fd >= 0)
			close(fd);
		zcd_state_forget_previous(st);
		if (unlink(path) != 0 && errno != ENOENT) {
			snprintf(err, errlen, "%s: cannot replace it: %s", path, strerror(errno));
			return -1;
		}
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)bytes) != 0) {
			snprintf(err, errlen, "%s: cannot make it %" PRIu64 " bytes: %s", path,
				 bytes, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
	}
	/* Every page now: running out of memory later would be a SIGBUS. */
	if (reserve(fd, path, bytes, err, errlen) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

enum zcd_buf_state zcd_state_previously_held(const struct zcd_state *st, uint32_t id,
					     const char *name, uint32_t generation)
{
	const struct zcd_ledger_entry *e;

	if (st->previous_ledger == NULL || id >= st->hdr->nb_bufs)
		return ZCD_BUF_STATE_COUNT;
	e = &st->previous_ledger[id];
	if (e->state == ZCD_BUF_HELD &&
	    (generation == e->generation || generation == e->generation + 1))
		return ZCD_BUF_HELD;
	if (e->state == ZCD_BUF_GRANTED && e->generation == generation &&
	    e->owner < ZCD_MAX_VMS && strncmp(st->previous_vm_names[e->owner], name, ZCD_NAME_MAX) == 0)
		return ZCD_BUF_GRANTED;
	return ZCD_BUF_STATE_COUNT;
}

void zcd_state_count_kept(struct zcd_state *st, enum zcd_buf_state was)
{
	struct zcd_state_totals *t = &st->hdr->totals;

	t->kept++;
	if (was == ZCD_BUF_GRANTED)
		t->taken_back--;
	else if (was == ZCD_BUF_HELD)
		t->lost_in_restart--;
}

void zcd_state_forget_previous(struct zcd_state *st)
{
	free(st->previous_ledger);
	st->previous_ledger = NULL;
}

void *zcd_state_vms(const struct zcd_state *st)
{
	return (uint8_t *)st->map + st->hdr->vms_off;
}

void *zcd_state_workers(const struct zcd_state *st)
{
	return (uint8_t *)st->map + st->hdr->workers_off;
}

struct zcd_ledger_entry *zcd_state_ledger(const struct zcd_state *st)
{
	return (struct zcd_ledger_entry *)((uint8_t *)st->map + st->hdr->ledger_off);
}

void zcd_state_name_vm(struct zcd_state *st, unsigned slot, const char *name)
{
	if (st != NULL && st->hdr != NULL && slot < ZCD_MAX_VMS)
		snprintf(st->hdr->vm_names[slot], ZCD_NAME_MAX, "%s", name);
}

void zcd_state_mark_clean(struct zcd_state *st)
{
	if (st != NULL && st->hdr != NULL)
		__atomic_store_n(&st->hdr->running, 0, __ATOMIC_RELEASE);
}

void zcd_state_close(struct zcd_state *st)
{
	if (st == NULL)
		return;
	if (st->map != NULL)
		munmap(st->map, st->bytes);
	zcd_state_forget_previous(st);
	close(st->fd); /* releases the lock */
	free(st);
}
