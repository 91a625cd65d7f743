/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zcd-replay: send the frames of a classic pcap file out of a network
 * interface, as they are, in order, at a bounded rate.  Tests use it to feed
 * zcdemux through a veth pair (zcdemux reads the peer with net_af_packet).
 *
 *   zcd-replay [--rate PPS] IFACE FILE
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PCAP_MAGIC_USEC 0xa1b2c3d4U
#define PCAP_MAGIC_NSEC 0xa1b23c4dU
#define MAX_FRAME 65535

struct pcap_header {
	uint32_t magic;
	uint16_t major, minor;
	int32_t thiszone;
	uint32_t sigfigs, snaplen, linktype;
};

struct pcap_record {
	uint32_t ts_sec, ts_frac, caplen, origlen;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: zcd-replay [--rate PPS] IFACE FILE\n"
		"\n"
		"Send every frame of the classic pcap FILE (Ethernet, either byte order)\n"
		"out of IFACE with a raw packet socket, in order, unchanged.  The frames\n"
		"bypass the interface's queueing discipline (a fair queue such as fq_codel\n"
		"would reorder frames of different flows); a frame the driver cannot take\n"
		"yet is sent again.\n"
		"\n"
		"  -r, --rate PPS   at most PPS frames per second (default 1000; 0 = as fast\n"
		"                   as the socket takes them)\n"
		"  -h, --help       this text\n"
		"\n"
		"Prints the number of frames and bytes sent.  Exit status 0 if every frame\n"
		"was sent, 1 otherwise.\n");
}

static uint32_t swap32(uint32_t v, int swapped)
{
	return swapped ? __builtin_bswap32(v) : v;
}

/* With the qdisc bypassed, a busy driver queue drops the frame and send()
 * says ENOBUFS: wait a little and send it again. */
static int send_frame(int fd, const uint8_t *frame, uint32_t len)
{
	const struct timespec busy_wait = {.tv_nsec = 100000};

	for (;;) {
		ssize_t n = send(fd, frame, len, 0);

		if (n == (ssize_t)len)
			return 0;
		if (n >= 0 || (errno != ENOBUFS && errno != EAGAIN && errno != EINTR))
			return -1;
		nanosleep(&busy_wait, NULL);
	}
}

static void pace(uint64_t rate, uint64_t sent, const struct timespec *start)
{
	struct timespec now, wait;
	uint64_t due_ns, elapsed_ns;

	if (rate == 0)
		return;
	due_ns = sent * 1000000000ULL / rate;
	clock_gettime(CLOCK_MONOTONIC, &now);
	elapsed_ns = (uint64_t)(now.tv_sec - start->tv_sec) * 1000000000ULL +
		     (uint64_t)(now.tv_nsec - start->tv_nsec);
	if (elapsed_ns >= due_ns)
		return;
	wait.tv_sec = (time_t)((due_ns - elapsed_ns) / 1000000000ULL);
	wait.tv_nsec = (long)((due_ns - elapsed_ns) % 1000000000ULL);
	nanosleep(&wait, NULL);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"rate", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct sockaddr_ll addr = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL)};
	static uint8_t frame[MAX_FRAME];
	struct pcap_header hdr;
	struct pcap_record rec;
	struct timespec start;
	uint64_t rate = 1000, sent = 0, bytes = 0;
	int c, fd, swapped, one = 1;
	FILE *in;

	while ((c = getopt_long(argc, argv, "r:h", longopts, NULL)) != -1) {
		char *end;

		switch (c) {
		case 'r':
			rate = strtoull(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0') {
				fprintf(stderr, "zcd-replay: --rate: \"%s\" is not a number\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	addr.sll_ifindex = (int)if_nametoindex(argv[optind]);
	if (addr.sll_ifindex == 0) {
		fprintf(stderr, "zcd-replay: %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	in = fopen(argv[optind + 1], "rb");
	if (in == NULL || fread(&hdr, sizeof(hdr), 1, in) != 1) {
		fprintf(stderr, "zcd-replay: %s: cannot read a pcap header\n", argv[optind + 1]);
		return 1;
	}
	swapped = hdr.magic == __builtin_bswap32(PCAP_MAGIC_USEC) ||
		  hdr.magic == __builtin_bswap32(PCAP_MAGIC_NSEC);
	if (!swapped && hdr.magic != PCAP_MAGIC_USEC && hdr.magic != PCAP_MAGIC_NSEC) {
		fprintf(stderr, "zcd-replay: %s: not a classic pcap file\n", argv[optind + 1]);
		return 1;
	}
	if (swap32(hdr.linktype, swapped) != 1) {
		fprintf(stderr, "zcd-replay: %s: link type %u is not Ethernet\n", argv[optind + 1],
			swap32(hdr.linktype, swapped));
		return 1;
	}
	fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) != 0) {
		fprintf(stderr, "zcd-replay: raw socket on %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (fread(&rec, sizeof(rec), 1, in) == 1) {
		uint32_t len = swap32(rec.caplen, swapped);

		if (len > MAX_FRAME || fread(frame, 1, len, in) != len) {
			fprintf(stderr, "zcd-replay: %s: truncated at frame %llu\n",
				argv[optind + 1], (unsigned long long)sent);
			return 1;
		}
		pace(rate, sent, &start);
		if (send_frame(fd, frame, len) != 0) {
			fprintf(stderr, "zcd-replay: frame %llu (%u bytes): %s\n",
				(unsigned long long)sent, len, strerror(errno));
			return 1;
		}
		sent++;
		bytes += len;
	}
	printf("zcd-replay: sent %llu frames, %llu bytes on %s\n", (unsigned long long)sent,
	       (unsigned long long)bytes, argv[optind]);
	fclose(in);
	close(fd);
	return 0;
}
