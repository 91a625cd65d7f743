/* SPDX-License-Identifier: BSD-3-Clause */
/* The dom0 grant helper: one ioctl per batch (include/zcdemux/xen_grant.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "xen.h"
#include "zcdemux/xen_grant.h"

int xen_grant_open(struct zcd_hv *hv, char *why, size_t whylen)
{
	struct zcd_grant_register reg = {
		.addr = (uintptr_t)hv->pool.base,
		.len = hv->pool.bytes,
	};

	hv->grant_fd = open(ZCD_GRANT_DEVICE, O_RDWR | O_CLOEXEC);
	if (hv->grant_fd < 0) {
		snprintf(why, whylen, "%s: %s (load zcdemux_grant.ko)", ZCD_GRANT_DEVICE,
			 strerror(errno));
		return -1;
	}
	if (ioctl(hv->grant_fd, ZCD_GRANT_IOC_REGISTER, &reg) != 0) {
		snprintf(why, whylen, "%s: cannot register %zu bytes of buffers: %s",
			 ZCD_GRANT_DEVICE, hv->pool.bytes, strerror(errno));
		close(hv->grant_fd);
		hv->grant_fd = -1;
		return -1;
	}
	hv->first_ref = reg.first_ref;
	return 0;
}

void xen_grant_close(struct zcd_hv *hv)
{
	/* The module ends what it can and keeps pages a guest still maps. */
	if (hv->grant_fd >= 0)
		close(hv->grant_fd);
	hv->grant_fd = -1;
}

int xen_grant_pages(struct zcd_hv *hv, const uint32_t *pages, unsigned n, uint32_t domid)
{
	struct zcd_grant_batch batch = {
		.pages = (uintptr_t)pages,
		.count = n,
		.domid = (uint16_t)domid,
		.readonly = 1,
	};

	return ioctl(hv->grant_fd, ZCD_GRANT_IOC_GRANT, &batch);
}

int xen_grant_end(struct zcd_hv *hv, const uint32_t *pages, unsigned n, uint8_t *results)
{
	struct zcd_grant_batch batch = {
		.pages = (uintptr_t)pages,
		.results = (uintptr_t)results,
		.count = n,
	};

	return ioctl(hv->grant_fd, ZCD_GRANT_IOC_END, &batch);
}
