/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The frontend's Xen services (struct zcd_front_io_ops) on real Xen, in a
 * Linux guest's user space: libxenstore over /dev/xen/xenbus, libxengnttab
 * (/dev/xen/gntdev, module xen-gntdev) for the backend's grants,
 * libxengntshr (/dev/xen/gntalloc, module xen-gntalloc) for our copy pages,
 * libxenevtchn (/dev/xen/evtchn, module xen-evtchn).
 */
#ifndef ZCDEMUX_GUEST_XEN_IO_H
#define ZCDEMUX_GUEST_XEN_IO_H

#include <stddef.h>

#include "zcd_front.h"

extern const struct zcd_front_io_ops zcd_xen_io_ops;

struct zcd_xen_io;

/*
 * Open the Xen devices.  wake_fd (-1 for none) is polled with them: when it
 * becomes readable, wait() returns ZCD_IO_WAKE after reading it (an eventfd
 * written from a signal handler, say).  NULL with a message in err.  The
 * Xen libraries themselves may log errors to stderr.
 */
struct zcd_xen_io *zcd_xen_io_open(int wake_fd, char *err, size_t errlen);

void zcd_xen_io_close(struct zcd_xen_io *io);

#endif /* ZCDEMUX_GUEST_XEN_IO_H */
