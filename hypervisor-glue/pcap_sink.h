/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Classic pcap writer for the frames a guest receives (the simulated guest,
 * and zcdemux-guest's pcap sink): magic 0xa1b2c3d4 in host byte order,
 * version 2.4, snaplen 65535, Ethernet (linktype 1), microsecond timestamps.
 * Plain C, no DPDK: it is linked into the domU tool too.
 *
 * Records are buffered and reach the file whole: a writer killed at any
 * moment leaves a file of whole records (those still buffered are lost),
 * which another writer can append to.
 */
#ifndef ZCDEMUX_HV_PCAP_SINK_H
#define ZCDEMUX_HV_PCAP_SINK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct zcd_pcap_sink;

/* Create (truncate) path and write the file header.  NULL with errno set. */
struct zcd_pcap_sink *zcd_pcap_sink_open(const char *path);

/*
 * The same, as a descriptor (close-on-exec) for another process to adopt:
 * the header is written already.  With append, an existing file is kept
 * and written on (the header goes into an empty one).  -1 with errno set.
 */
int zcd_pcap_sink_create(const char *path, bool append);

/* Append records to fd, made by zcd_pcap_sink_create; takes fd.  NULL with errno set. */
struct zcd_pcap_sink *zcd_pcap_sink_adopt(int fd);

/*
 * Append one record received at ts (CLOCK_REALTIME); caplen = origlen =
 * length.  0, or -1 with errno if it was not written; the first failure is
 * remembered, reported again by close, and every later write fails too.
 */
int zcd_pcap_sink_write(struct zcd_pcap_sink *sink, const struct timespec *ts,
			const uint8_t *frame, uint16_t length);

/* Flush and close.  0, or -1 with errno if any write or the flush failed. */
int zcd_pcap_sink_close(struct zcd_pcap_sink *sink);

#endif /* ZCDEMUX_HV_PCAP_SINK_H */
