/* SPDX-License-Identifier: BSD-3-Clause */
/* struct zcd_front_io_ops over libxenstore, libxengnttab and libxenevtchn; see xen_io.h. */
#include "xen_io.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>

#define XEN_IO_WATCH_TOKEN "zcdemux-guest"
/*
 * Grants one gntdev handle may map at once.  Linux pvops kernels have no
 * per-handle limit (the library ignores their ENOTTY) and cap one request
 * at the gntdev module's "limit" (64 Ki pages); older kernels default to
 * 128, less than one batch of 256 multi-page buffers plus a withheld few.
 */
#define XEN_IO_MAX_GRANTS 65536U
/* gntalloc's module parameter; its default when sysfs does not say. */
#define GNTALLOC_LIMIT_PATH "/sys/module/xen_gntalloc/parameters/limit"
#define GNTALLOC_LIMIT_DEFAULT 1024U

struct zcd_xen_io {
	struct xs_handle *xs;
	int xs_fd;
	xengnttab_handle *gnttab;
	xengntshr_handle *gntshr;
	xenevtchn_handle *evtchn;
	int evtchn_fd;
	int wake_fd;
	evtchn_port_t local_port;
	bool bound;
	uint32_t share_limit;
};

static uint32_t read_gntalloc_limit(void)
{
	FILE *f = fopen(GNTALLOC_LIMIT_PATH, "r");
	unsigned long limit = GNTALLOC_LIMIT_DEFAULT;

	if (f != NULL) {
		if (fscanf(f, "%lu", &limit) != 1 || limit > UINT32_MAX)
			limit = GNTALLOC_LIMIT_DEFAULT;
		fclose(f);
	}
	return (uint32_t)limit;
}

struct zcd_xen_io *zcd_xen_io_open(int wake_fd, char *err, size_t errlen)
{
	struct zcd_xen_io *io = calloc(1, sizeof(*io));

	if (io == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	io->wake_fd = wake_fd;
	io->xs = xs_open(0);
	if (io->xs == NULL) {
		snprintf(err, errlen, "cannot connect to xenstore: %s (is this a Xen guest "
			 "with /dev/xen/xenbus or /proc/xen?)", strerror(errno));
		goto fail;
	}
	io->xs_fd = xs_fileno(io->xs);
	if (io->xs_fd < 0) {
		snprintf(err, errlen, "cannot get the xenstore watch descriptor: %s",
			 strerror(errno));
		goto fail;
	}
	io->gnttab = xengnttab_open(NULL, 0);
	if (io->gnttab == NULL) {
		snprintf(err, errlen, "cannot open /dev/xen/gntdev: %s (load xen-gntdev)",
			 strerror(errno));
		goto fail;
	}
	/* Must come right after open (xengnttab.h). */
	if (xengnttab_set_max_grants(io->gnttab, XEN_IO_MAX_GRANTS) != 0) {
		snprintf(err, errlen, "cannot raise the gntdev grant limit to %u: %s",
			 XEN_IO_MAX_GRANTS, strerror(errno));
		goto fail;
	}
	io->gntshr = xengntshr_open(NULL, 0);
	if (io->gntshr == NULL) {
		snprintf(err, errlen, "cannot open /dev/xen/gntalloc: %s (load xen-gntalloc)",
			 strerror(errno));
		goto fail;
	}
	io->evtchn = xenevtchn_open(NULL, 0);
	if (io->evtchn == NULL) {
		snprintf(err, errlen, "cannot open /dev/xen/evtchn: %s (load xen-evtchn)",
			 strerror(errno));
		goto fail;
	}
	io->evtchn_fd = xenevtchn_fd(io->evtchn);
	io->share_limit = read_gntalloc_limit();
	return io;

fail:
	zcd_xen_io_close(io);
	return NULL;
}

void zcd_xen_io_close(struct zcd_xen_io *io)
{
	if (io == NULL)
		return;
	if (io->bound)
		xenevtchn_unbind(io->evtchn, io->local_port);
	if (io->evtchn != NULL)
		xenevtchn_close(io->evtchn);
	if (io->gntshr != NULL)
		xengntshr_close(io->gntshr);
	if (io->gnttab != NULL)
		xengnttab_close(io->gnttab);
	xs_close(io->xs);
	free(io);
}

static char *xen_read(void *ctx, const char *path)
{
	struct zcd_xen_io *io = ctx;
	unsigned int len;

	return xs_read(io->xs, XBT_NULL, path, &len);
}

static int xen_write(void *ctx, const char *path, const char *value)
{
	struct zcd_xen_io *io = ctx;

	return xs_write(io->xs, XBT_NULL, path, value, (unsigned int)strlen(value)) ? 0 : -1;
}

static int xen_watch(void *ctx, const char *path)
{
	struct zcd_xen_io *io = ctx;

	return xs_watch(io->xs, path, XEN_IO_WATCH_TOKEN) ? 0 : -1;
}

/* Consume every queued watch event; the frontend re-reads what it needs. */
static int drain_watches(struct zcd_xen_io *io)
{
	char **event;

	while ((event = xs_check_watch(io->xs)) != NULL)
		free(event);
	return errno == EAGAIN ? 0 : -1;
}

/* Acknowledge the pending port and unmask it, so the next event is delivered. */
static int ack_event(struct zcd_xen_io *io)
{
	xenevtchn_port_or_error_t port = xenevtchn_pending(io->evtchn);

	if (port < 0)
		return -1;
	/* A port left over from an unbound channel needs no unmask. */
	if (io->bound && (evtchn_port_t)port == io->local_port &&
	    xenevtchn_unmask(io->evtchn, io->local_port) != 0)
		return -1;
	return 0;
}

static int xen_wait(void *ctx, int timeout_ms)
{
	struct zcd_xen_io *io = ctx;
	struct pollfd fds[3] = { { .fd = io->xs_fd, .events = POLLIN } };
	nfds_t nb_fds = 1;
	int fired = 0;
	int wake_slot = -1, evtchn_slot = -1;

	if (io->wake_fd >= 0) {
		wake_slot = (int)nb_fds;
		fds[nb_fds++] = (struct pollfd){ .fd = io->wake_fd, .events = POLLIN };
	}
	if (io->bound) {
		evtchn_slot = (int)nb_fds;
		fds[nb_fds++] = (struct pollfd){ .fd = io->evtchn_fd, .events = POLLIN };
	}
	if (poll(fds, nb_fds, timeout_ms) < 0)
		return errno == EINTR ? ZCD_IO_WAKE : -1;
	if (fds[0].revents != 0) {
		if (drain_watches(io) != 0)
			return -1;
		fired |= ZCD_IO_XENSTORE;
	}
	if (wake_slot >= 0 && fds[wake_slot].revents != 0) {
		uint64_t count;

		/* EAGAIN only means someone else read it first. */
		if (read(io->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
			return -1;
		fired |= ZCD_IO_WAKE;
	}
	if (evtchn_slot >= 0 && fds[evtchn_slot].revents != 0) {
		if (ack_event(io) != 0)
			return -1;
		fired |= ZCD_IO_EVENT;
	}
	return fired;
}

static uint64_t xen_now_ms(void *ctx)
{
	struct timespec now;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

static void *xen_map(void *ctx, uint32_t domid, uint32_t count, uint32_t *refs, bool writable)
{
	struct zcd_xen_io *io = ctx;

	return xengnttab_map_domain_grant_refs(io->gnttab, count, domid, refs,
					       writable ? PROT_READ | PROT_WRITE : PROT_READ);
}

static int xen_unmap(void *ctx, void *addr, uint32_t count)
{
	struct zcd_xen_io *io = ctx;

	return xengnttab_unmap(io->gnttab, addr, count);
}

static void *xen_share(void *ctx, uint32_t domid, uint32_t count, uint32_t *refs)
{
	struct zcd_xen_io *io = ctx;

	if (count > INT32_MAX) {
		errno = EINVAL;
		return NULL;
	}
	return xengntshr_share_pages(io->gntshr, domid, (int)count, refs, 1);
}

static int xen_unshare(void *ctx, void *addr, uint32_t count)
{
	struct zcd_xen_io *io = ctx;

	return xengntshr_unshare(io->gntshr, addr, count);
}

static uint32_t xen_share_limit(void *ctx)
{
	struct zcd_xen_io *io = ctx;

	return io->share_limit;
}

static int xen_bind(void *ctx, uint32_t domid, uint32_t remote_port)
{
	struct zcd_xen_io *io = ctx;
	xenevtchn_port_or_error_t port;

	if (io->bound) {
		errno = EBUSY;
		return -1;
	}
	port = xenevtchn_bind_interdomain(io->evtchn, domid, remote_port);
	if (port < 0)
		return -1;
	io->local_port = (evtchn_port_t)port;
	io->bound = true;
	return (int)port;
}

static int xen_unbind(void *ctx)
{
	struct zcd_xen_io *io = ctx;

	io->bound = false;
	return xenevtchn_unbind(io->evtchn, io->local_port);
}

static int xen_notify(void *ctx)
{
	struct zcd_xen_io *io = ctx;

	return xenevtchn_notify(io->evtchn, io->local_port);
}

const struct zcd_front_io_ops zcd_xen_io_ops = {
	.read = xen_read,
	.write = xen_write,
	.watch = xen_watch,
	.wait = xen_wait,
	.now_ms = xen_now_ms,
	.map = xen_map,
	.unmap = xen_unmap,
	.share = xen_share,
	.unshare = xen_unshare,
	.share_limit = xen_share_limit,
	.bind = xen_bind,
	.unbind = xen_unbind,
	.notify = xen_notify,
};
