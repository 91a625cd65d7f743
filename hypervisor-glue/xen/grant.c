/* SPDX-License-Identifier: BSD-3-Clause */
/* The dom0 grant helper: one ioctl per batch (include/zcdemux/xen_grant.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xen.h"
#include "zcdemux/xen_grant.h"

/* How long ADOPT waits for a dead owner's file to be closed (its exit may still run). */
#define XEN_ADOPT_WAIT_MS 3000
#define XEN_ADOPT_RETRY_MS 20

/* ADOPT, retried while the region's earlier owner is still being torn down. */
static int adopt(int fd, struct zcd_grant_adopt *arg)
{
	struct timespec gap = {.tv_nsec = XEN_ADOPT_RETRY_MS * 1000000L};

	for (unsigned waited = 0;; waited += XEN_ADOPT_RETRY_MS) {
		if (ioctl(fd, ZCD_GRANT_IOC_ADOPT, arg) == 0)
			return 0;
		if (errno != EBUSY || waited >= XEN_ADOPT_WAIT_MS)
			return -1;
		nanosleep(&gap, NULL);
	}
}

int xen_grant_region_open(struct xen_grant_region *g, void *base, size_t bytes, bool take_over,
			  char *why, size_t whylen)
{
	struct zcd_grant_adopt arg = {.addr = (uintptr_t)base, .len = bytes};
	int rc;

	*g = (struct xen_grant_region){.fd = -1};
	g->fd = open(ZCD_GRANT_DEVICE, O_RDWR | O_CLOEXEC);
	if (g->fd < 0) {
		snprintf(why, whylen, "%s: %s (load zcdemux_grant.ko)", ZCD_GRANT_DEVICE,
			 strerror(errno));
		return -1;
	}
	if (take_over) {
		rc = adopt(g->fd, &arg);
	} else {
		struct zcd_grant_register reg = {.addr = arg.addr, .len = arg.len};

		rc = ioctl(g->fd, ZCD_GRANT_IOC_REGISTER, &reg);
		arg.first_ref = reg.first_ref;
		arg.nr_pages = reg.nr_pages;
	}
	if (rc != 0) {
		snprintf(why, whylen, "%s: cannot register %zu bytes%s: %s", ZCD_GRANT_DEVICE,
			 bytes, errno == EBUSY ? " (another process still has them)" : "",
			 strerror(errno));
		xen_grant_region_close(g);
		return -1;
	}
	g->first_ref = arg.first_ref;
	g->nr_pages = arg.nr_pages;
	g->taken_over = arg.granted;
	return 0;
}

void xen_grant_region_close(struct xen_grant_region *g)
{
	/* The module ends what it can and keeps pages a guest still maps. */
	if (g->fd >= 0)
		close(g->fd);
	g->fd = -1;
}

int xen_grant_pages(const struct xen_grant_region *g, const uint32_t *pages, unsigned n,
		    uint32_t domid, bool readonly)
{
	struct zcd_grant_batch batch = {
		.pages = (uintptr_t)pages,
		.count = n,
		.domid = (uint16_t)domid,
		.readonly = readonly,
	};

	return ioctl(g->fd, ZCD_GRANT_IOC_GRANT, &batch);
}

int xen_grant_end(const struct xen_grant_region *g, const uint32_t *pages, unsigned n,
		  uint8_t *results)
{
	struct zcd_grant_batch batch = {
		.pages = (uintptr_t)pages,
		.results = (uintptr_t)results,
		.count = n,
	};

	return ioctl(g->fd, ZCD_GRANT_IOC_END, &batch);
}

int xen_grant_query(const struct xen_grant_region *g, uint16_t *domids)
{
	struct zcd_grant_query query = {.domids = (uintptr_t)domids, .count = g->nr_pages};

	return ioctl(g->fd, ZCD_GRANT_IOC_QUERY, &query);
}
