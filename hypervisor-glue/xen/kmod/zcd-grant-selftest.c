// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * zcd-grant-selftest: exercises /dev/zcdemux_grant in dom0 without a guest.
 *
 *   zcd-grant-selftest DOMID [PAGES]
 *
 * DOMID is a running domU; nothing maps the grants, so every END must end
 * at once.  Checks every ioctl, the invalid cases (each must fail with the
 * documented errno and change nothing) and that closing a file with grants
 * outstanding leaks nothing (the module's counters in
 * /sys/module/zcdemux_grant/parameters/ return to where they were).  No
 * zombie can arise without a guest that maps, so ADOPT is checked only
 * where there is none to take over.
 * Run it alone: other users of the module move those counters.
 *
 * Prints "zcd-grant-selftest: PASS", or "FAIL" with the line and the
 * reason, and exits non-zero.
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS, memfd_create */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <zcdemux/xen_grant.h>

#define PG 4096UL
#define DOMID_FIRST_RESERVED 0x7FF0U /* xen/include/public/xen.h */
#define PARAMS "/sys/module/zcdemux_grant/parameters/"

static const char *prog = "zcd-grant-selftest";

static void report(int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: FAIL (line %d): ", prog, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

#define EXPECT(cond, ...)                                                     \
	do {                                                                  \
		if (!(cond)) {                                                \
			report(__LINE__, __VA_ARGS__);                        \
			return -1;                                            \
		}                                                             \
	} while (0)

/* expr returns 0 or -errno; err is the errno expected (0: success). */
#define EXPECT_RC(expr, err, what)                                            \
	do {                                                                  \
		int rc_ = (expr);                                             \
		if (rc_ != -(err)) {                                          \
			report(__LINE__, "%s: expected %s, got %s", (what),   \
			       (err) ? strerror(err) : "success",             \
			       rc_ ? strerror(-rc_) : "success");             \
			return -1;                                            \
		}                                                             \
	} while (0)

#define EXPECT_STATUS(fd, nr, gr, first)                                      \
	do {                                                                  \
		struct zcd_grant_status st_;                                  \
		EXPECT_RC(do_status((fd), &st_), 0, "STATUS");                \
		EXPECT(st_.nr_pages == (nr) && st_.granted == (gr) &&         \
			       st_.first_ref == (first),                      \
		       "STATUS: expected nr_pages %u granted %u first_ref %u, " \
		       "got %u %u %u",                                        \
		       (unsigned int)(nr), (unsigned int)(gr),                \
		       (unsigned int)(first),                                 \
		       st_.nr_pages, st_.granted, st_.first_ref);             \
	} while (0)

static int do_register(int fd, void *addr, uint64_t len, struct zcd_grant_register *out)
{
	struct zcd_grant_register r = { .addr = (uintptr_t)addr, .len = len };

	if (ioctl(fd, ZCD_GRANT_IOC_REGISTER, &r) < 0)
		return -errno;
	if (out)
		*out = r;
	return 0;
}

static int do_batch(int fd, unsigned long cmd, struct zcd_grant_batch *b)
{
	return ioctl(fd, cmd, b) < 0 ? -errno : 0;
}

static int do_grant(int fd, const uint32_t *pages, uint32_t count, uint16_t domid,
		    uint8_t readonly, uint32_t *done)
{
	struct zcd_grant_batch b = {
		.pages = (uintptr_t)pages,
		.count = count,
		.domid = domid,
		.readonly = readonly,
		.done = 0xdeadbeef,
	};
	int rc = do_batch(fd, ZCD_GRANT_IOC_GRANT, &b);

	if (done)
		*done = b.done;
	return rc;
}

static int do_end(int fd, const uint32_t *pages, uint32_t count, uint8_t *results,
		  uint32_t *done)
{
	struct zcd_grant_batch b = {
		.pages = (uintptr_t)pages,
		.results = (uintptr_t)results,
		.count = count,
		.done = 0xdeadbeef,
	};
	int rc = do_batch(fd, ZCD_GRANT_IOC_END, &b);

	if (done)
		*done = b.done;
	return rc;
}

static int do_status(int fd, struct zcd_grant_status *st)
{
	memset(st, 0xff, sizeof(*st));
	return ioctl(fd, ZCD_GRANT_IOC_STATUS, st) < 0 ? -errno : 0;
}

static int do_adopt(int fd, void *addr, uint64_t len, uint32_t pad, struct zcd_grant_adopt *out)
{
	struct zcd_grant_adopt a = {
		.addr = (uintptr_t)addr,
		.len = len,
		.first_ref = 0xdeadbeef,
		.nr_pages = 0xdeadbeef,
		.granted = 0xdeadbeef,
		.pad = pad,
	};

	if (ioctl(fd, ZCD_GRANT_IOC_ADOPT, &a) < 0)
		return -errno;
	if (out)
		*out = a;
	return 0;
}

static int do_query(int fd, uint16_t *domids, uint32_t count, uint32_t pad)
{
	struct zcd_grant_query q = { .domids = (uintptr_t)domids, .count = count, .pad = pad };

	return ioctl(fd, ZCD_GRANT_IOC_QUERY, &q) < 0 ? -errno : 0;
}

struct counters {
	long pinned, granted, regions, zombies;
};

static int read_counter(const char *name, long *v)
{
	char path[128];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), PARAMS "%s", name);
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "%s: FAIL: cannot open %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	ok = fscanf(f, "%ld", v) == 1;
	fclose(f);
	if (!ok)
		fprintf(stderr, "%s: FAIL: cannot parse %s\n", prog, path);
	return ok ? 0 : -1;
}

static int read_counters(struct counters *c)
{
	if (read_counter("pinned_pages", &c->pinned) || read_counter("granted_pages", &c->granted) ||
	    read_counter("regions", &c->regions) || read_counter("zombie_regions", &c->zombies))
		return -1;
	return 0;
}

#define EXPECT_COUNTERS(want)                                                 \
	do {                                                                  \
		struct counters c_;                                           \
		EXPECT(read_counters(&c_) == 0, "reading counters");          \
		EXPECT(c_.pinned == (want).pinned && c_.granted == (want).granted && \
			       c_.regions == (want).regions &&                \
			       c_.zombies == (want).zombies,                  \
		       "counters pinned/granted/regions/zombies: expected "  \
		       "%ld/%ld/%ld/%ld, got %ld/%ld/%ld/%ld",                \
		       (want).pinned, (want).granted, (want).regions,         \
		       (want).zombies, c_.pinned, c_.granted, c_.regions,     \
		       c_.zombies);                                           \
	} while (0)

static void *map_pages(size_t n)
{
	void *p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static uint8_t pattern(size_t page, size_t off)
{
	return (uint8_t)(page * 131 + off * 7 + 1);
}

static void fill(uint8_t *base, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < PG; j++)
			base[i * PG + j] = pattern(i, j);
}

static int intact(const uint8_t *base, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < PG; j++)
			if (base[i * PG + j] != pattern(i, j))
				return 0;
	return 1;
}

static void ok(const char *what)
{
	printf("%s: ok - %s\n", prog, what);
}

/* Everything on an unregistered file fails without side effects. */
static int test_unregistered(int fd)
{
	uint32_t idx[1] = { 0 };
	uint16_t dom[1];
	uint8_t res[1];

	EXPECT_STATUS(fd, 0, 0, 0);
	EXPECT_RC(do_grant(fd, idx, 1, 1, 1, NULL), EINVAL, "GRANT before REGISTER");
	EXPECT_RC(do_end(fd, idx, 1, res, NULL), EINVAL, "END before REGISTER");
	EXPECT_RC(do_query(fd, dom, 1, 0), EINVAL, "QUERY before REGISTER");
	EXPECT_RC(ioctl(fd, _IO(ZCD_GRANT_IOC_MAGIC, 99)) < 0 ? -errno : 0, ENOTTY,
		  "unknown ioctl");
	ok("unregistered file");
	return 0;
}

/* Bad REGISTERs fail, leave the file unregistered and pin nothing. */
static int test_bad_register(int fd, uint8_t *region, const struct counters *base)
{
	uint8_t *hole, *ro;

	EXPECT_RC(do_register(fd, region + 1, PG, NULL), EINVAL, "REGISTER unaligned addr");
	EXPECT_RC(do_register(fd, region, 0, NULL), EINVAL, "REGISTER len 0");
	EXPECT_RC(do_register(fd, region, PG + 100, NULL), EINVAL, "REGISTER len not a page multiple");
	EXPECT_RC(do_register(fd, region, (1ULL << 32) + PG, NULL), EINVAL, "REGISTER len > 4 GiB");
	EXPECT_RC(do_register(fd, (void *)(uintptr_t)-PG, 2 * PG, NULL), EINVAL,
		  "REGISTER wrapping range");

	/* Partly mapped: the first pages pin, the rest fault; all must unpin. */
	hole = map_pages(4);
	EXPECT(hole, "mmap: %s", strerror(errno));
	fill(hole, 4);
	EXPECT(munmap(hole + 2 * PG, 2 * PG) == 0, "munmap: %s", strerror(errno));
	EXPECT_RC(do_register(fd, hole, 4 * PG, NULL), EFAULT, "REGISTER partly unmapped range");
	munmap(hole, 2 * PG);

	/* Read-only memory cannot be pinned for write. */
	ro = mmap(NULL, 2 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	EXPECT(ro != MAP_FAILED, "mmap: %s", strerror(errno));
	EXPECT_RC(do_register(fd, ro, 2 * PG, NULL), EFAULT, "REGISTER read-only memory");
	munmap(ro, 2 * PG);

	EXPECT_STATUS(fd, 0, 0, 0);
	EXPECT_COUNTERS(*base);
	ok("invalid REGISTER rejected, nothing pinned");
	return 0;
}

static int test_main(int fd, uint8_t *region, uint32_t n, uint16_t domid, struct counters *c)
{
	struct zcd_grant_register reg;
	uint32_t idx[ZCD_GRANT_MAX_BATCH + 1] = { 0 }, half = n / 2, done, first, i;
	uint8_t res[ZCD_GRANT_MAX_BATCH];
	uint32_t bad[4];

	/* REGISTER */
	EXPECT_RC(do_register(fd, region, (uint64_t)n * PG, &reg), 0, "REGISTER");
	EXPECT(reg.nr_pages == n, "REGISTER: nr_pages %u, expected %u", reg.nr_pages, n);
	first = reg.first_ref;
	/* References 0..7 are reserved for the toolstack (NR_RESERVED_ENTRIES). */
	EXPECT(first >= 8, "REGISTER: first_ref %u is a reserved reference", first);
	printf("%s: registered %u pages, grant refs %u..%u\n", prog, n, first, first + n - 1);
	c->pinned += n;
	c->regions++;
	EXPECT_COUNTERS(*c);
	EXPECT_RC(do_register(fd, region, (uint64_t)n * PG, NULL), EBUSY, "second REGISTER");
	EXPECT_STATUS(fd, n, 0, first);
	ok("REGISTER, second REGISTER is EBUSY, STATUS");

	/* GRANT the even pages read-only */
	for (i = 0; i < half; i++)
		idx[i] = 2 * i;
	EXPECT_RC(do_grant(fd, idx, half, domid, 1, &done), 0, "GRANT even pages");
	EXPECT(done == half, "GRANT: done %u, expected %u", done, half);
	EXPECT_STATUS(fd, n, half, first);
	c->granted += half;
	EXPECT_COUNTERS(*c);
	ok("GRANT a batch, STATUS shows it");

	/* Invalid GRANTs: each fails and changes nothing (odd pages stay free). */
	bad[0] = 1;
	bad[1] = n;
	EXPECT_RC(do_grant(fd, bad, 2, domid, 1, NULL), EINVAL, "GRANT index out of range");
	bad[0] = 1;
	bad[1] = 3;
	bad[2] = 1;
	EXPECT_RC(do_grant(fd, bad, 3, domid, 1, NULL), EINVAL, "GRANT duplicate in batch");
	bad[0] = 1;
	bad[1] = 0;
	EXPECT_RC(do_grant(fd, bad, 2, domid, 1, NULL), EBUSY, "GRANT of a granted page");
	bad[0] = 1;
	EXPECT_RC(do_grant(fd, bad, 1, 0, 1, NULL), EINVAL, "GRANT to domid 0");
	EXPECT_RC(do_grant(fd, bad, 1, DOMID_FIRST_RESERVED, 1, NULL), EINVAL,
		  "GRANT to DOMID_FIRST_RESERVED");
	EXPECT_RC(do_grant(fd, bad, 1, 0xffff, 1, NULL), EINVAL, "GRANT to 0xffff");
	EXPECT_RC(do_grant(fd, bad, 0, domid, 1, NULL), EINVAL, "GRANT count 0");
	EXPECT_RC(do_grant(fd, idx, ZCD_GRANT_MAX_BATCH + 1, domid, 1, NULL), EINVAL,
		  "GRANT count > ZCD_GRANT_MAX_BATCH");
	EXPECT_RC(do_grant(fd, bad, 1, domid, 2, NULL), EINVAL, "GRANT readonly 2");
	EXPECT_RC(do_grant(fd, NULL, 1, domid, 1, NULL), EFAULT, "GRANT pages NULL");
	{
		struct zcd_grant_batch b = { .pages = (uintptr_t)bad, .count = 1, .domid = domid,
					     .pad = 1 };

		EXPECT_RC(do_batch(fd, ZCD_GRANT_IOC_GRANT, &b), EINVAL, "GRANT pad != 0");
		b.pad = 0;
		b.pad2 = 1;
		EXPECT_RC(do_batch(fd, ZCD_GRANT_IOC_GRANT, &b), EINVAL, "GRANT pad2 != 0");
	}
	EXPECT_STATUS(fd, n, half, first);
	bad[0] = 1;
	EXPECT_RC(do_end(fd, bad, 1, res, NULL), EINVAL, "END page 1 (a failed GRANT granted it)");
	bad[0] = 3;
	EXPECT_RC(do_end(fd, bad, 1, res, NULL), EINVAL, "END page 3 (a failed GRANT granted it)");
	EXPECT_COUNTERS(*c);
	ok("invalid GRANTs rejected, nothing changed");

	/* Invalid ENDs: each fails and changes nothing (even pages stay granted). */
	bad[0] = 0;
	bad[1] = 0;
	EXPECT_RC(do_end(fd, bad, 2, res, NULL), EINVAL, "END duplicate in batch");
	bad[0] = 0;
	bad[1] = n;
	EXPECT_RC(do_end(fd, bad, 2, res, NULL), EINVAL, "END index out of range");
	bad[0] = 0;
	bad[1] = 1;
	EXPECT_RC(do_end(fd, bad, 2, res, NULL), EINVAL, "END of a page not granted");
	EXPECT_RC(do_end(fd, bad, 1, NULL, NULL), EINVAL, "END results NULL");
	EXPECT_RC(do_end(fd, bad, 0, res, NULL), EINVAL, "END count 0");
	EXPECT_STATUS(fd, n, half, first);
	EXPECT_COUNTERS(*c);
	ok("invalid ENDs rejected, nothing changed");

	/* END the even pages in reverse order: no guest maps them, all end. */
	for (i = 0; i < half; i++)
		idx[i] = 2 * (half - 1 - i);
	memset(res, 0xaa, sizeof(res));
	EXPECT_RC(do_end(fd, idx, half, res, &done), 0, "END even pages");
	EXPECT(done == half, "END: done %u, expected %u", done, half);
	for (i = 0; i < half; i++)
		EXPECT(res[i] == ZCD_GRANT_ENDED, "END: result[%u] (page %u) = %u, expected ENDED",
		       i, idx[i], res[i]);
	EXPECT_STATUS(fd, n, 0, first);
	c->granted -= half;
	EXPECT_COUNTERS(*c);
	bad[0] = 0;
	EXPECT_RC(do_end(fd, bad, 1, res, NULL), EINVAL, "END of an ended page");
	ok("END a batch: all ENDED, STATUS shows none granted");

	/* The whole region in one batch, writable, to a page granted before. */
	for (i = 0; i < n; i++)
		idx[i] = n - 1 - i;
	EXPECT_RC(do_grant(fd, idx, n, domid, 0, &done), 0, "GRANT every page writable");
	EXPECT(done == n, "GRANT: done %u, expected %u", done, n);
	EXPECT_STATUS(fd, n, n, first);
	c->granted += n;
	EXPECT_COUNTERS(*c);
	memset(res, 0xaa, sizeof(res));
	EXPECT_RC(do_end(fd, idx, n, res, &done), 0, "END every page");
	EXPECT(done == n, "END: done %u, expected %u", done, n);
	for (i = 0; i < n; i++)
		EXPECT(res[i] == ZCD_GRANT_ENDED, "END: result[%u] = %u, expected ENDED", i, res[i]);
	EXPECT_STATUS(fd, n, 0, first);
	c->granted -= n;
	EXPECT_COUNTERS(*c);
	EXPECT(intact(region, n), "region contents changed");
	ok("GRANT and END the whole region again, contents intact");
	return 0;
}

/* Closing a file with grants outstanding (a daemon killed) leaks nothing. */
static int test_close_with_grants(uint16_t domid, int unmap_first, const struct counters *c)
{
	enum { M = 16 };
	struct zcd_grant_register reg;
	struct counters want = *c;
	uint32_t idx[M / 2], done, i;
	uint8_t *mem = map_pages(M);
	int fd;

	EXPECT(mem, "mmap: %s", strerror(errno));
	fill(mem, M);
	fd = open(ZCD_GRANT_DEVICE, O_RDWR | O_CLOEXEC);
	EXPECT(fd >= 0, "open %s: %s", ZCD_GRANT_DEVICE, strerror(errno));
	EXPECT_RC(do_register(fd, mem, M * PG, &reg), 0, "REGISTER (second file)");
	for (i = 0; i < M / 2; i++)
		idx[i] = 2 * i + 1;
	EXPECT_RC(do_grant(fd, idx, M / 2, domid, 0, &done), 0, "GRANT (second file)");
	EXPECT(done == M / 2, "GRANT: done %u, expected %u", done, M / 2);
	want.pinned += M;
	want.granted += M / 2;
	want.regions++;
	EXPECT_COUNTERS(want);
	/* The pins, not the mapping, keep the pages: unmapping first is legal. */
	if (unmap_first)
		EXPECT(munmap(mem, M * PG) == 0, "munmap: %s", strerror(errno));
	EXPECT(close(fd) == 0, "close: %s", strerror(errno));
	EXPECT_COUNTERS(*c);
	if (!unmap_first) {
		EXPECT(intact(mem, M), "second region contents changed");
		munmap(mem, M * PG);
	}

	fd = open(ZCD_GRANT_DEVICE, O_RDWR | O_CLOEXEC);
	EXPECT(fd >= 0, "open %s: %s", ZCD_GRANT_DEVICE, strerror(errno));
	EXPECT_STATUS(fd, 0, 0, 0);
	close(fd);
	ok(unmap_first ? "close with grants outstanding after munmap: nothing leaked"
		       : "close with grants outstanding: nothing leaked");
	return 0;
}

/*
 * QUERY of a region of @m pages: odd pages must be granted to @odd, even
 * ones to @even (0: not granted); nothing may be written past @m entries.
 */
static int check_query(int line, int fd, uint32_t m, uint16_t odd, uint16_t even)
{
	uint16_t d[ZCD_GRANT_MAX_BATCH + 1];
	uint32_t i;
	int rc;

	for (i = 0; i <= m; i++)
		d[i] = 0xaaaa;
	rc = do_query(fd, d, m, 0);
	if (rc) {
		report(line, "QUERY: %s", strerror(-rc));
		return -1;
	}
	for (i = 0; i < m; i++) {
		if (d[i] != (i % 2 ? odd : even)) {
			report(line, "QUERY: page %u domid %u, expected %u", i, d[i],
			       i % 2 ? odd : even);
			return -1;
		}
	}
	if (d[m] != 0xaaaa) {
		report(line, "QUERY wrote past count");
		return -1;
	}
	return 0;
}

#define EXPECT_QUERY(fd, m, odd, even)                                        \
	do {                                                                  \
		if (check_query(__LINE__, (fd), (m), (odd), (even)))          \
			return -1;                                            \
	} while (0)

/*
 * ADOPT with no zombie to take over is a REGISTER; while that file is open,
 * an ADOPT of the same file pages is EBUSY.  QUERY follows GRANT and END.
 */
static int test_adopt_query(uint16_t domid, const struct counters *c)
{
	enum { M = 16 };
	struct counters want = *c;
	struct zcd_grant_adopt ad;
	uint32_t idx[M / 2], done, i;
	uint16_t doms[M + 1];
	uint8_t res[M / 2], *mem, *mem2;
	int mfd, fd, fd2;

	/* A pool that outlives its process: a file, mapped shared (twice here). */
	mfd = memfd_create("zcd-grant-selftest", MFD_CLOEXEC);
	EXPECT(mfd >= 0, "memfd_create: %s", strerror(errno));
	EXPECT(ftruncate(mfd, M * PG) == 0, "ftruncate: %s", strerror(errno));
	mem = mmap(NULL, M * PG, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	EXPECT(mem != MAP_FAILED, "mmap: %s", strerror(errno));
	mem2 = mmap(NULL, M * PG, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	EXPECT(mem2 != MAP_FAILED, "mmap: %s", strerror(errno));
	close(mfd);
	fill(mem, M);
	fd = open(ZCD_GRANT_DEVICE, O_RDWR | O_CLOEXEC);
	EXPECT(fd >= 0, "open %s: %s", ZCD_GRANT_DEVICE, strerror(errno));
	fd2 = open(ZCD_GRANT_DEVICE, O_RDWR | O_CLOEXEC);
	EXPECT(fd2 >= 0, "open %s: %s", ZCD_GRANT_DEVICE, strerror(errno));

	EXPECT_RC(do_adopt(fd, mem, M * PG, 1, NULL), EINVAL, "ADOPT pad != 0");
	EXPECT_RC(do_adopt(fd, mem + 1, M * PG, 0, NULL), EINVAL, "ADOPT unaligned addr");
	EXPECT_STATUS(fd, 0, 0, 0);
	EXPECT_COUNTERS(want);
	EXPECT_RC(do_adopt(fd, mem, M * PG, 0, &ad), 0, "ADOPT with no zombie");
	EXPECT(ad.nr_pages == M && ad.granted == 0 && ad.first_ref >= 8,
	       "ADOPT: nr_pages %u granted %u first_ref %u, expected %u, 0, >= 8",
	       ad.nr_pages, ad.granted, ad.first_ref, M);
	want.pinned += M;
	want.regions++;
	EXPECT_COUNTERS(want);
	EXPECT_STATUS(fd, M, 0, ad.first_ref);
	EXPECT_RC(do_adopt(fd, mem, M * PG, 0, NULL), EBUSY, "second ADOPT");
	EXPECT_RC(do_register(fd, mem, M * PG, NULL), EBUSY, "REGISTER after ADOPT");
	ok("ADOPT with no zombie registers afresh, granted 0");

	/* The same file pages, through another mapping, while fd is open. */
	EXPECT_RC(do_adopt(fd2, mem2, M * PG, 0, NULL), EBUSY,
		  "ADOPT of pages an open file's region pins");
	EXPECT_STATUS(fd2, 0, 0, 0);
	EXPECT_STATUS(fd, M, 0, ad.first_ref);
	EXPECT_COUNTERS(want);
	ok("ADOPT of the pages of an open file's region is EBUSY, nothing changed");

	EXPECT_QUERY(fd, M, 0, 0);
	for (i = 0; i < M / 2; i++)
		idx[i] = 2 * i + 1;
	EXPECT_RC(do_grant(fd, idx, M / 2, domid, 0, &done), 0, "GRANT odd pages");
	EXPECT(done == M / 2, "GRANT: done %u, expected %u", done, M / 2);
	want.granted += M / 2;
	EXPECT_COUNTERS(want);
	EXPECT_QUERY(fd, M, domid, 0);
	EXPECT_RC(do_query(fd, doms, M - 1, 0), EINVAL, "QUERY count < nr_pages");
	EXPECT_RC(do_query(fd, doms, M + 1, 0), EINVAL, "QUERY count > nr_pages");
	EXPECT_RC(do_query(fd, doms, M, 1), EINVAL, "QUERY pad != 0");
	EXPECT_RC(do_query(fd, NULL, M, 0), EFAULT, "QUERY domids NULL");
	EXPECT_RC(do_end(fd, idx, M / 2, res, &done), 0, "END odd pages");
	EXPECT(done == M / 2, "END: done %u, expected %u", done, M / 2);
	want.granted -= M / 2;
	EXPECT_COUNTERS(want);
	EXPECT_QUERY(fd, M, 0, 0);
	EXPECT(intact(mem2, M), "adopted region contents changed");
	ok("QUERY follows GRANT and END, bad QUERYs are EINVAL");

	/* Closed with nothing mapped by a guest: no zombie, the pages are free. */
	EXPECT(close(fd) == 0, "close: %s", strerror(errno));
	EXPECT_COUNTERS(*c);
	EXPECT_RC(do_adopt(fd2, mem2, M * PG, 0, &ad), 0, "ADOPT once the first file closed");
	EXPECT(ad.nr_pages == M && ad.granted == 0, "ADOPT: nr_pages %u granted %u, expected %u, 0",
	       ad.nr_pages, ad.granted, M);
	EXPECT(close(fd2) == 0, "close: %s", strerror(errno));
	EXPECT_COUNTERS(*c);
	munmap(mem, M * PG);
	munmap(mem2, M * PG);
	ok("ADOPT once the first file closed, counters back");
	return 0;
}

static int run(uint16_t domid, uint32_t n)
{
	struct counters base, c;
	uint8_t *region;
	int fd, rc = -1;

	if (read_counters(&base))
		return -1;
	if (base.zombies || base.granted)
		printf("%s: note: module already has %ld zombie regions, %ld granted pages\n",
		       prog, base.zombies, base.granted);
	c = base;

	region = map_pages(n);
	if (!region) {
		fprintf(stderr, "%s: FAIL: mmap %u pages: %s\n", prog, n, strerror(errno));
		return -1;
	}
	fill(region, n);
	fd = open(ZCD_GRANT_DEVICE, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "%s: FAIL: open %s: %s\n", prog, ZCD_GRANT_DEVICE, strerror(errno));
		munmap(region, n * PG);
		return -1;
	}

	if (test_unregistered(fd) || test_bad_register(fd, region, &base) ||
	    test_main(fd, region, n, domid, &c) || test_close_with_grants(domid, 0, &c) ||
	    test_close_with_grants(domid, 1, &c) || test_adopt_query(domid, &c))
		goto out;
	close(fd);
	fd = -1;
	if (read_counters(&c))
		goto out;
	if (c.pinned != base.pinned || c.granted != base.granted || c.regions != base.regions ||
	    c.zombies != base.zombies) {
		fprintf(stderr, "%s: FAIL: after close, counters pinned/granted/regions/zombies "
			"%ld/%ld/%ld/%ld, expected %ld/%ld/%ld/%ld\n", prog, c.pinned, c.granted,
			c.regions, c.zombies, base.pinned, base.granted, base.regions, base.zombies);
		goto out;
	}
	ok("close of the first file: counters back to the start");
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	munmap(region, n * PG);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned long domid, n = 64;
	char *end;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s DOMID [PAGES]\n"
			"  DOMID: a running domU (1..%u); PAGES: 8..%u, default 64\n",
			prog, DOMID_FIRST_RESERVED - 1, ZCD_GRANT_MAX_BATCH);
		return 2;
	}
	errno = 0;
	domid = strtoul(argv[1], &end, 0);
	if (errno || *end || domid == 0 || domid >= DOMID_FIRST_RESERVED) {
		fprintf(stderr, "%s: bad DOMID '%s'\n", prog, argv[1]);
		return 2;
	}
	if (argc == 3) {
		n = strtoul(argv[2], &end, 0);
		if (*end || n < 8 || n > ZCD_GRANT_MAX_BATCH) {
			fprintf(stderr, "%s: bad PAGES '%s'\n", prog, argv[2]);
			return 2;
		}
	}
	if (run((uint16_t)domid, (uint32_t)n)) {
		fprintf(stderr, "%s: FAIL\n", prog);
		return 1;
	}
	printf("%s: PASS\n", prog);
	return 0;
}
