/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Where the guest tool puts the frames it receives:
 *
 *   pcap:FILE    classic pcap (magic 0xa1b2c3d4 in host byte order, version
 *                2.4, snaplen 65535, linktype 1 = Ethernet, microsecond
 *                timestamps), caplen = origlen = frame length;
 *   tap:IFNAME   a TAP interface (/dev/net/tun, IFF_TAP | IFF_NO_PI) brought
 *                up, so that the guest's own network stack receives each
 *                frame as if it had arrived on IFNAME.
 *
 * Writing never fails loudly on the receive path: the first error is kept
 * and reported by close, and further frames are counted as lost.
 */
#ifndef ZCDEMUX_GUEST_SINK_H
#define ZCDEMUX_GUEST_SINK_H

#include <stddef.h>
#include <stdint.h>

struct zcd_guest_sink;

/*
 * Open a sink from its specification ("pcap:FILE" or "tap:IFNAME").  NULL
 * with a message in err on failure.  Does not log.  A TAP interface that
 * cannot be brought up is still used; *warning (may be NULL) gets a message.
 */
struct zcd_guest_sink *zcd_guest_sink_open(const char *spec, char *err, size_t errlen,
					   char *warning, size_t warnlen);

/* Write one frame. */
void zcd_guest_sink_write(struct zcd_guest_sink *sink, const uint8_t *frame, uint16_t length);

/* Frames that could not be written since open. */
uint64_t zcd_guest_sink_lost(const struct zcd_guest_sink *sink);

/*
 * Flush and close.  0, or -1 with a message in err naming the sink and the
 * first write error.  The sink is freed either way.
 */
int zcd_guest_sink_close(struct zcd_guest_sink *sink, char *err, size_t errlen);

#endif /* ZCDEMUX_GUEST_SINK_H */
