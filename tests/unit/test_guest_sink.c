/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the guest tool's frame sinks (hypervisor-glue/xen/guest/sink.c):
 * the pcap file byte for byte, and the errors of bad specifications.  TAP
 * sinks are not opened here (that would change the host's interfaces).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"

#include "../../hypervisor-glue/xen/guest/sink.h"

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void test_pcap_file(void)
{
	char dir[] = "/tmp/zcd-guest-sink-XXXXXX";
	char path[64], spec[80], err[256], warning[256];
	static const uint16_t lengths[] = { 60, 1514, 9018 };
	uint8_t frame[9018];
	uint8_t *file = NULL;
	struct zcd_guest_sink *sink;
	FILE *f;
	long size;
	size_t at;

	if (mkdtemp(dir) == NULL) {
		CHECK(false);
		return;
	}
	snprintf(path, sizeof(path), "%s/out.pcap", dir);
	snprintf(spec, sizeof(spec), "pcap:%s", path);
	sink = zcd_guest_sink_open(spec, err, sizeof(err), warning, sizeof(warning));
	CHECK(sink != NULL);
	if (sink == NULL)
		goto out;
	CHECK_EQ(warning[0], '\0');
	for (unsigned i = 0; i < 3; i++) {
		for (unsigned b = 0; b < lengths[i]; b++)
			frame[b] = (uint8_t)(i * 7 + b);
		zcd_guest_sink_write(sink, frame, lengths[i]);
	}
	CHECK_EQ(zcd_guest_sink_lost(sink), 0);
	CHECK_EQ(zcd_guest_sink_close(sink, err, sizeof(err)), 0);

	f = fopen(path, "rb");
	CHECK(f != NULL);
	if (f == NULL)
		goto out;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	CHECK_EQ(size, 24 + 3 * 16 + 60 + 1514 + 9018);
	file = malloc((size_t)size);
	if (file != NULL && fread(file, 1, (size_t)size, f) == (size_t)size) {
		CHECK_EQ(le32(file), 0xa1b2c3d4U);
		CHECK_EQ(le16(file + 4), 2);
		CHECK_EQ(le16(file + 6), 4);
		CHECK_EQ(le32(file + 16), 65535);
		CHECK_EQ(le32(file + 20), 1); /* Ethernet */
		at = 24;
		for (unsigned i = 0; i < 3; i++) {
			bool same = true;

			CHECK_EQ(le32(file + at + 8), lengths[i]); /* caplen */
			CHECK_EQ(le32(file + at + 12), lengths[i]); /* origlen */
			at += 16;
			for (unsigned b = 0; b < lengths[i]; b++)
				same = same && file[at + b] == (uint8_t)(i * 7 + b);
			CHECK(same);
			at += lengths[i];
		}
	} else {
		CHECK(false);
	}
	fclose(f);
out:
	free(file);
	unlink(path);
	rmdir(dir);
}

static void test_bad_specs(void)
{
	char err[256];

	CHECK(zcd_guest_sink_open("pcap:", err, sizeof(err), NULL, 0) == NULL);
	CHECK_STR_CONTAINS(err, "unknown sink");
	CHECK(zcd_guest_sink_open("file:x", err, sizeof(err), NULL, 0) == NULL);
	CHECK_STR_CONTAINS(err, "expected pcap:FILE, tap:IFNAME or none");
	CHECK(zcd_guest_sink_open("pcap:/nonexistent-dir/x.pcap", err, sizeof(err), NULL, 0) ==
	      NULL);
	CHECK_STR_CONTAINS(err, "cannot create pcap file /nonexistent-dir/x.pcap");
	CHECK(zcd_guest_sink_open("tap:", err, sizeof(err), NULL, 0) == NULL);
	CHECK_STR_CONTAINS(err, "must have 1 to 15 characters");
	CHECK(zcd_guest_sink_open("tap:a-very-long-interface", err, sizeof(err), NULL, 0) == NULL);
	CHECK_STR_CONTAINS(err, "must have 1 to 15 characters");
}

int main(void)
{
	test_pcap_file();
	test_bad_specs();
	return check_report("test_guest_sink");
}
