/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Classic pcap writer for the frames a simulated guest receives: magic
 * 0xa1b2c3d4 in host byte order, version 2.4, snaplen 65535, Ethernet
 * (linktype 1), microsecond timestamps.  Private to the sim backend.
 */
#ifndef ZCDEMUX_HV_SIM_PCAP_SINK_H
#define ZCDEMUX_HV_SIM_PCAP_SINK_H

#include <stdint.h>
#include <time.h>

struct zcd_pcap_sink;

/* Create (truncate) path and write the file header.  NULL with errno set. */
struct zcd_pcap_sink *zcd_pcap_sink_open(const char *path);

/*
 * Append one record received at ts (CLOCK_REALTIME); caplen = origlen =
 * length.  A failed write is remembered and reported by close.
 */
void zcd_pcap_sink_write(struct zcd_pcap_sink *sink, const struct timespec *ts,
			 const uint8_t *frame, uint16_t length);

/* Flush and close.  0, or -1 with errno if any write or the flush failed. */
int zcd_pcap_sink_close(struct zcd_pcap_sink *sink);

#endif /* ZCDEMUX_HV_SIM_PCAP_SINK_H */
