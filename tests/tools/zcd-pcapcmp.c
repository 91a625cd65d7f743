/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zcd-pcapcmp: do two classic pcap files hold the same frames, byte for
 * byte, in the same order?  Timestamps and file headers are not compared.
 * For tests that run where Python is not (a VM's initramfs).
 *
 *   zcd-pcapcmp EXPECTED ACTUAL
 *
 * Prints "same N frames" and exits 0, or says where they differ (and where
 * in EXPECTED the differing frame of ACTUAL is, if anywhere) and exits 1;
 * exit 2 if a file cannot be read as classic pcap.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCAP_MAGIC_USEC 0xa1b2c3d4U
#define PCAP_MAGIC_NSEC 0xa1b23c4dU
#define MAX_FRAME 65535

struct pcap_in {
	const char *path;
	FILE *f;
	int swapped;
	uint8_t frame[MAX_FRAME];
};

static uint32_t get32(const struct pcap_in *in, uint32_t v)
{
	return in->swapped ? __builtin_bswap32(v) : v;
}

static int pcap_open(struct pcap_in *in, const char *path)
{
	uint32_t hdr[6];

	in->path = path;
	in->f = fopen(path, "rb");
	if (in->f == NULL || fread(hdr, sizeof(hdr), 1, in->f) != 1) {
		fprintf(stderr, "zcd-pcapcmp: %s: cannot read a pcap header\n", path);
		return -1;
	}
	in->swapped = hdr[0] == __builtin_bswap32(PCAP_MAGIC_USEC) ||
		      hdr[0] == __builtin_bswap32(PCAP_MAGIC_NSEC);
	if (!in->swapped && hdr[0] != PCAP_MAGIC_USEC && hdr[0] != PCAP_MAGIC_NSEC) {
		fprintf(stderr, "zcd-pcapcmp: %s: not a classic pcap file\n", path);
		return -1;
	}
	return 0;
}

/* Next frame's length, 0 at the end, -1 on a broken file. */
static long pcap_next(struct pcap_in *in)
{
	uint32_t rec[4];
	uint32_t len;

	if (fread(rec, sizeof(rec), 1, in->f) != 1)
		return feof(in->f) ? 0 : -1;
	len = get32(in, rec[2]);
	if (len > MAX_FRAME || len != get32(in, rec[3]) || fread(in->frame, 1, len, in->f) != len) {
		fprintf(stderr, "zcd-pcapcmp: %s: broken record\n", in->path);
		return -1;
	}
	return len;
}

/* Index of the first frame of the pcap at path equal to frame[0..len), or -1. */
static long find_frame(const char *path, const uint8_t *frame, long len)
{
	static struct pcap_in in;
	long n = 0, l;

	if (pcap_open(&in, path) != 0)
		return -1;
	while ((l = pcap_next(&in)) > 0) {
		if (l == len && memcmp(in.frame, frame, (size_t)len) == 0)
			break;
		n++;
	}
	fclose(in.f);
	return l > 0 ? n : -1;
}

int main(int argc, char **argv)
{
	static struct pcap_in a, b;
	unsigned long n = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: zcd-pcapcmp EXPECTED ACTUAL\n");
		return 2;
	}
	if (pcap_open(&a, argv[1]) != 0 || pcap_open(&b, argv[2]) != 0)
		return 2;
	for (;; n++) {
		long la = pcap_next(&a), lb = pcap_next(&b);

		if (la < 0 || lb < 0)
			return 2;
		if (la == 0 && lb == 0)
			break;
		if (la == 0 || lb == 0) {
			printf("differ: %s has %lu frames, %s more\n", la == 0 ? argv[1] : argv[2], n,
			       la == 0 ? argv[2] : argv[1]);
			return 1;
		}
		if (la != lb || memcmp(a.frame, b.frame, (size_t)la) != 0) {
			size_t at = 0;

			while (at < (size_t)la && at < (size_t)lb && a.frame[at] == b.frame[at])
				at++;
			printf("differ: frame %lu (%ld vs %ld bytes), first difference at byte %zu; "
			       "the actual frame is expected frame %ld\n",
			       n, la, lb, at, find_frame(argv[1], b.frame, lb));
			return 1;
		}
	}
	printf("same %lu frames\n", n);
	return 0;
}
