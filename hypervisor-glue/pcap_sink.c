/* SPDX-License-Identifier: BSD-3-Clause */
/* Classic pcap writer (format: tcpdump.org "pcap savefile" / libpcap sf-pcap). */
#include "pcap_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PCAP_MAGIC_USEC 0xa1b2c3d4U
#define PCAP_VERSION_MAJOR 2
#define PCAP_VERSION_MINOR 4
#define PCAP_SNAPLEN 65535U
#define PCAP_LINKTYPE_ETHERNET 1U

struct pcap_file_header {
	uint32_t magic;
	uint16_t version_major;
	uint16_t version_minor;
	int32_t thiszone;
	uint32_t sigfigs;
	uint32_t snaplen;
	uint32_t linktype;
};
_Static_assert(sizeof(struct pcap_file_header) == 24, "pcap file header is 24 bytes");

struct pcap_record_header {
	uint32_t ts_sec;
	uint32_t ts_usec;
	uint32_t caplen;
	uint32_t origlen;
};
_Static_assert(sizeof(struct pcap_record_header) == 16, "pcap record header is 16 bytes");

/* Larger than the largest record, so that every record fits whole. */
#define SINK_BUFFER_BYTES (256u * 1024)

struct zcd_pcap_sink {
	int fd;
	uint8_t *buf; /* whole records not written yet */
	size_t used;
	int first_error; /* errno of the first failed write, 0 if none */
};

int zcd_pcap_sink_create(const char *path, bool append)
{
	const struct pcap_file_header header = {
		.magic = PCAP_MAGIC_USEC,
		.version_major = PCAP_VERSION_MAJOR,
		.version_minor = PCAP_VERSION_MINOR,
		.snaplen = PCAP_SNAPLEN,
		.linktype = PCAP_LINKTYPE_ETHERNET,
	};
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
	off_t end;
	ssize_t written;

	if (fd < 0)
		return -1;
	end = lseek(fd, 0, SEEK_END);
	if (end > 0)
		return fd;
	written = write(fd, &header, sizeof(header));
	if (written != (ssize_t)sizeof(header)) {
		int saved_errno = written < 0 ? errno : EIO;

		close(fd);
		errno = saved_errno;
		return -1;
	}
	return fd;
}

struct zcd_pcap_sink *zcd_pcap_sink_adopt(int fd)
{
	struct zcd_pcap_sink *sink = calloc(1, sizeof(*sink));

	if (sink != NULL)
		sink->buf = malloc(SINK_BUFFER_BYTES);
	if (sink == NULL || sink->buf == NULL) {
		free(sink);
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	sink->fd = fd;
	return sink;
}

struct zcd_pcap_sink *zcd_pcap_sink_open(const char *path)
{
	int fd = zcd_pcap_sink_create(path, false);

	return fd < 0 ? NULL : zcd_pcap_sink_adopt(fd);
}

/* Write out what is buffered: whole records only. */
static void flush(struct zcd_pcap_sink *sink)
{
	size_t done = 0;

	while (done < sink->used && sink->first_error == 0) {
		ssize_t n = write(sink->fd, sink->buf + done, sink->used - done);

		if (n > 0)
			done += (size_t)n;
		else if (n == 0)
			sink->first_error = EIO;
		else if (errno != EINTR)
			sink->first_error = errno;
	}
	sink->used = 0;
}

int zcd_pcap_sink_write(struct zcd_pcap_sink *sink, const struct timespec *ts,
			const uint8_t *frame, uint16_t length)
{
	const struct pcap_record_header record = {
		.ts_sec = (uint32_t)ts->tv_sec,
		.ts_usec = (uint32_t)(ts->tv_nsec / 1000),
		.caplen = length,
		.origlen = length,
	};

	if (sink->used + sizeof(record) + length > SINK_BUFFER_BYTES)
		flush(sink);
	if (sink->first_error != 0) {
		errno = sink->first_error;
		return -1;
	}
	memcpy(sink->buf + sink->used, &record, sizeof(record));
	memcpy(sink->buf + sink->used + sizeof(record), frame, length);
	sink->used += sizeof(record) + length;
	return 0;
}

int zcd_pcap_sink_close(struct zcd_pcap_sink *sink)
{
	int error;

	flush(sink);
	error = sink->first_error;
	if (close(sink->fd) != 0 && error == 0)
		error = errno;
	free(sink->buf);
	free(sink);
	if (error != 0) {
		errno = error;
		return -1;
	}
	return 0;
}
