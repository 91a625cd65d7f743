/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zcd-xen-probe: proves that userspace Xen access works in the images built
 * by tests/xen/images.sh — grant sharing (gntalloc) and event channels in
 * dom0, grant mapping (gntdev), event channels and xenstore (/dev/xen/xenbus)
 * in a PV guest — through the same libraries the zcdemux tools use.
 *
 *   dom0:  zcd-xen-probe share DOMID
 *          shares one writable page with DOMID, fills it with a pattern,
 *          binds an unbound event channel for DOMID, publishes both in
 *          /local/domain/DOMID/data/smoke-{gref,port}, then waits (120 s) for
 *          the guest's event and checks the guest's acknowledgement in the page.
 *   guest: zcd-xen-probe map
 *          reads data/smoke-{gref,port} (relative to its own xenstore home),
 *          maps the page, checks the pattern, writes "ok <domid>" at offset 0,
 *          unmaps and notifies dom0.
 *
 * Exit status 0 on success; messages on stdout/stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>

#define PAGE_SIZE 4096
#define HEADER_LEN 64
#define WAIT_SECONDS 120

static const char magic[] = "zcd-xen-probe page for d";

/* The byte at offset i (>= HEADER_LEN) of the page shared with domid. */
static uint8_t pattern(unsigned int domid, size_t i)
{
	return (uint8_t)(i * 7u + domid);
}

static int xs_write_u32(struct xs_handle *xs, unsigned int domid, const char *key,
			uint32_t val)
{
	char path[128], buf[16];

	snprintf(path, sizeof(path), "/local/domain/%u/data/%s", domid, key);
	snprintf(buf, sizeof(buf), "%" PRIu32, val);
	if (!xs_write(xs, XBT_NULL, path, buf, strlen(buf))) {
		fprintf(stderr, "zcd-xen-probe: xs_write %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Read a decimal xenstore value, retrying until it appears or time runs out. */
static int xs_read_u32(struct xs_handle *xs, const char *path, uint32_t *val, int seconds)
{
	for (int i = 0; i < seconds * 10; i++) {
		unsigned int len;
		char *s = xs_read(xs, XBT_NULL, path, &len);

		if (s) {
			char *end;
			unsigned long v = strtoul(s, &end, 10);
			int ok = end != s && *end == '\0' && v <= UINT32_MAX;

			free(s);
			if (!ok) {
				fprintf(stderr, "zcd-xen-probe: bad value in %s\n", path);
				return -1;
			}
			*val = (uint32_t)v;
			return 0;
		}
		usleep(100000);
	}
	fprintf(stderr, "zcd-xen-probe: %s did not appear in xenstore\n", path);
	return -1;
}

static int do_share(unsigned int domid)
{
	xengntshr_handle *gs = NULL;
	xenevtchn_handle *xce = NULL;
	struct xs_handle *xs = NULL;
	uint8_t *page = NULL;
	uint32_t ref;
	xenevtchn_port_or_error_t port;
	char want[32];
	int rc = 1;

	gs = xengntshr_open(NULL, 0);
	xce = xenevtchn_open(NULL, 0);
	xs = xs_open(0);
	if (!gs || !xce || !xs) {
		fprintf(stderr, "zcd-xen-probe: opening gntalloc/evtchn/xenstore: %s\n", strerror(errno));
		goto out;
	}
	page = xengntshr_share_pages(gs, domid, 1, &ref, 1);
	if (!page) {
		fprintf(stderr, "zcd-xen-probe: xengntshr_share_pages: %s\n", strerror(errno));
		goto out;
	}
	memset(page, 0, HEADER_LEN);
	snprintf((char *)page, HEADER_LEN, "%s%u", magic, domid);
	for (size_t i = HEADER_LEN; i < PAGE_SIZE; i++)
		page[i] = pattern(domid, i);
	port = xenevtchn_bind_unbound_port(xce, domid);
	if (port < 0) {
		fprintf(stderr, "zcd-xen-probe: xenevtchn_bind_unbound_port: %s\n", strerror(errno));
		goto out;
	}
	if (xs_write_u32(xs, domid, "smoke-gref", ref) || xs_write_u32(xs, domid, "smoke-port", (uint32_t)port))
		goto out;
	printf("zcd-xen-probe: shared gref %" PRIu32 " and port %d with d%u\n", ref, port, domid);
	fflush(stdout);

	struct pollfd pfd = { .fd = xenevtchn_fd(xce), .events = POLLIN };
	int n = poll(&pfd, 1, WAIT_SECONDS * 1000);

	if (n <= 0) {
		fprintf(stderr, "zcd-xen-probe: no event from d%u within %d s\n", domid, WAIT_SECONDS);
		goto out;
	}
	xenevtchn_port_or_error_t got = xenevtchn_pending(xce);

	if (got != port) {
		fprintf(stderr, "zcd-xen-probe: event on port %d, expected %d\n", got, port);
		goto out;
	}
	xenevtchn_unmask(xce, port);
	snprintf(want, sizeof(want), "ok %u", domid);
	if (strncmp((const char *)page, want, sizeof(want)) != 0) {
		fprintf(stderr, "zcd-xen-probe: no acknowledgement from d%u in the page\n", domid);
		goto out;
	}
	printf("zcd-xen-probe: d%u mapped the page, checked it and acknowledged by event\n", domid);
	rc = 0;
out:
	if (page)
		xengntshr_unshare(gs, page, 1);
	xs_close(xs);
	if (xce)
		xenevtchn_close(xce);
	if (gs)
		xengntshr_close(gs);
	return rc;
}

static int do_map(void)
{
	xengnttab_handle *gt = NULL;
	xenevtchn_handle *xce = NULL;
	struct xs_handle *xs = NULL;
	uint8_t *page = NULL;
	uint32_t domid, ref, port;
	char want[HEADER_LEN];
	int rc = 1;

	gt = xengnttab_open(NULL, 0);
	xce = xenevtchn_open(NULL, 0);
	xs = xs_open(0);
	if (!gt || !xce || !xs) {
		fprintf(stderr, "zcd-xen-probe: opening gntdev/evtchn/xenstore: %s\n", strerror(errno));
		goto out;
	}
	/* Relative paths are resolved against /local/domain/<own id>. */
	if (xs_read_u32(xs, "domid", &domid, 1) || xs_read_u32(xs, "data/smoke-gref", &ref, 60) ||
	    xs_read_u32(xs, "data/smoke-port", &port, 60))
		goto out;
	page = xengnttab_map_grant_ref(gt, 0, ref, PROT_READ | PROT_WRITE);
	if (!page) {
		fprintf(stderr, "zcd-xen-probe: xengnttab_map_grant_ref(%" PRIu32 "): %s\n", ref, strerror(errno));
		goto out;
	}
	snprintf(want, sizeof(want), "%s%" PRIu32, magic, domid);
	if (strncmp((const char *)page, want, sizeof(want)) != 0) {
		fprintf(stderr, "zcd-xen-probe: page header is not '%s'\n", want);
		goto out;
	}
	for (size_t i = HEADER_LEN; i < PAGE_SIZE; i++) {
		if (page[i] != pattern(domid, i)) {
			fprintf(stderr, "zcd-xen-probe: page byte %zu is %u, expected %u\n", i, page[i],
				pattern(domid, i));
			goto out;
		}
	}
	snprintf((char *)page, HEADER_LEN, "ok %" PRIu32, domid);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	xengnttab_unmap(gt, page, 1);
	page = NULL;

	xenevtchn_port_or_error_t local = xenevtchn_bind_interdomain(xce, 0, port);

	if (local < 0 || xenevtchn_notify(xce, (evtchn_port_t)local) < 0) {
		fprintf(stderr, "zcd-xen-probe: event channel to dom0 port %" PRIu32 ": %s\n", port,
			strerror(errno));
		goto out;
	}
	printf("zcd-xen-probe: d%" PRIu32 " mapped gref %" PRIu32 " from dom0, pattern ok, notified port %" PRIu32 "\n",
	       domid, ref, port);
	rc = 0;
out:
	if (page)
		xengnttab_unmap(gt, page, 1);
	xs_close(xs);
	if (xce)
		xenevtchn_close(xce);
	if (gt)
		xengnttab_close(gt);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "share") == 0)
		return do_share((unsigned int)strtoul(argv[2], NULL, 10));
	if (argc == 2 && strcmp(argv[1], "map") == 0)
		return do_map();
	fprintf(stderr, "usage: zcd-xen-probe share DOMID | zcd-xen-probe map\n");
	return 2;
}
