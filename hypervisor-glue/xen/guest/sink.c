/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Frame sinks of the guest tool.  pcap layout: tcpdump.org "pcap savefile"
 * (libpcap sf-pcap); TAP: Linux Documentation/networking/tuntap.rst.
 */
#include "sink.h"
#include "../../pcap_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TUN_DEVICE "/dev/net/tun"

enum sink_kind { SINK_PCAP, SINK_TAP };

struct zcd_guest_sink {
	enum sink_kind kind;
	struct zcd_pcap_sink *pcap; /* SINK_PCAP */
	int tap_fd; /* SINK_TAP */
	char name[256]; /* the spec, for messages */
	int first_error; /* errno of the first failed write, 0 if none */
	uint64_t lost;
};

static int pcap_open(struct zcd_guest_sink *sink, const char *path, char *err, size_t errlen)
{
	sink->pcap = zcd_pcap_sink_open(path);
	if (sink->pcap == NULL) {
		snprintf(err, errlen, "cannot create pcap file %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Set IFF_UP on ifname; -1 with errno (no CAP_NET_ADMIN, say). */
static int tap_bring_up(const char *ifname)
{
	struct ifreq ifr;
	int saved_errno;
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (sock < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(sock, SIOCGIFFLAGS, &ifr) != 0)
		goto fail;
	if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(sock, SIOCSIFFLAGS, &ifr) != 0)
			goto fail;
	}
	close(sock);
	return 0;

fail:
	saved_errno = errno;
	close(sock);
	errno = saved_errno;
	return -1;
}

static int tap_open(struct zcd_guest_sink *sink, const char *ifname, char *err, size_t errlen,
		    char *warning, size_t warnlen)
{
	struct ifreq ifr;

	if (strlen(ifname) == 0 || strlen(ifname) >= IFNAMSIZ) {
		snprintf(err, errlen, "tap interface name \"%s\" must have 1 to %d characters",
			 ifname, IFNAMSIZ - 1);
		return -1;
	}
	sink->tap_fd = open(TUN_DEVICE, O_RDWR | O_CLOEXEC);
	if (sink->tap_fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s (is the tun module loaded?)", TUN_DEVICE,
			 strerror(errno));
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	/* No packet-information header: each write is exactly one Ethernet frame. */
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(sink->tap_fd, TUNSETIFF, &ifr) != 0) {
		snprintf(err, errlen, "cannot attach TAP interface %s: %s", ifname,
			 strerror(errno));
		close(sink->tap_fd);
		return -1;
	}
	if (tap_bring_up(ifr.ifr_name) != 0 && warning != NULL)
		snprintf(warning, warnlen, "TAP interface %s is not up (%s); bring it up by hand",
			 ifr.ifr_name, strerror(errno));
	return 0;
}

struct zcd_guest_sink *zcd_guest_sink_open(const char *spec, char *err, size_t errlen,
					   char *warning, size_t warnlen)
{
	struct zcd_guest_sink *sink;
	int rc;

	if (warning != NULL && warnlen > 0)
		warning[0] = '\0';
	sink = calloc(1, sizeof(*sink));
	if (sink == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(sink->name, sizeof(sink->name), "%s", spec);
	sink->tap_fd = -1;
	if (strncmp(spec, "pcap:", 5) == 0 && spec[5] != '\0') {
		sink->kind = SINK_PCAP;
		rc = pcap_open(sink, spec + 5, err, errlen);
	} else if (strncmp(spec, "tap:", 4) == 0) {
		sink->kind = SINK_TAP;
		rc = tap_open(sink, spec + 4, err, errlen, warning, warnlen);
	} else {
		snprintf(err, errlen, "unknown sink \"%s\" (expected pcap:FILE, tap:IFNAME or none)",
			 spec);
		rc = -1;
	}
	if (rc != 0) {
		free(sink);
		return NULL;
	}
	return sink;
}

static void sink_failed(struct zcd_guest_sink *sink, int error)
{
	if (sink->first_error == 0)
		sink->first_error = error;
	sink->lost++;
}

static void pcap_write(struct zcd_guest_sink *sink, const uint8_t *frame, uint16_t length)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	if (zcd_pcap_sink_write(sink->pcap, &now, frame, length) != 0)
		sink_failed(sink, errno);
}

/* A down interface or a full queue loses the frame, as a NIC would. */
static void tap_write(struct zcd_guest_sink *sink, const uint8_t *frame, uint16_t length)
{
	ssize_t written = write(sink->tap_fd, frame, length);

	if (written != (ssize_t)length)
		sink_failed(sink, written < 0 ? errno : EIO);
}

void zcd_guest_sink_write(struct zcd_guest_sink *sink, const uint8_t *frame, uint16_t length)
{
	if (sink->kind == SINK_PCAP)
		pcap_write(sink, frame, length);
	else
		tap_write(sink, frame, length);
}

uint64_t zcd_guest_sink_lost(const struct zcd_guest_sink *sink)
{
	return sink->lost;
}

int zcd_guest_sink_close(struct zcd_guest_sink *sink, char *err, size_t errlen)
{
	int error = sink->first_error;
	int rc = 0;

	if (sink->kind == SINK_PCAP) {
		if (zcd_pcap_sink_close(sink->pcap) != 0 && error == 0)
			error = errno;
	} else {
		close(sink->tap_fd);
	}
	if (error != 0) {
		if (sink->lost != 0)
			snprintf(err, errlen, "sink %s: %llu frame(s) not written, first error: %s",
				 sink->name, (unsigned long long)sink->lost, strerror(error));
		else
			snprintf(err, errlen, "sink %s: flushing failed: %s", sink->name,
				 strerror(error));
		rc = -1;
	}
	free(sink);
	return rc;
}
