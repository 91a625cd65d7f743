/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the sim hypervisor backend, driven through its ops table.
 * Where a test plays a hostile guest or backend it reaches into the shared
 * ring through the backend's private header (white-box).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "zcdemux/config.h"
#include "zcdemux/hv.h"
#include "zcdemux/ring.h"

#include "../../hypervisor-glue/sim/sim.h"

#define PAGE ZCD_PAGE_SIZE
#define WAIT_LIMIT_MS 5000
#define MAX_FRAMES 64
#define FRAME_MAX (3 * PAGE)

struct fixture {
	const struct zcd_hv_ops *ops;
	struct zcd_config *cfg;
	struct zcd_buf_region pool;
	struct zcd_hv *hv;
	char dir[64];
};

/* Frames as the test expects to find them in a VM's sink, in order. */
struct expected_frames {
	uint8_t data[MAX_FRAMES][FRAME_MAX];
	uint16_t length[MAX_FRAMES];
	unsigned count;
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void sink_path(const struct fixture *f, unsigned vm, char *path, size_t len)
{
	snprintf(path, len, "%s/vm%u.pcap", f->dir, vm);
}

/*
 * Config with nb_vms VMs of `credits` each; bit i of stall_mask stalls VM i;
 * with_sinks gives every VM a pcap sink in a fresh directory.  The pool has
 * nb_bufs zeroed buffers of ppb pages.  Connects every VM when connect is set.
 */
static int fixture_open(struct fixture *f, unsigned nb_vms, uint32_t credits, uint32_t nb_bufs,
			uint32_t ppb, unsigned stall_mask, bool with_sinks, bool connect)
{
	char err[256] = "";

	memset(f, 0, sizeof(*f));
	f->pool.fd = -1;
	f->ops = zcd_hv_find("sim");
	f->cfg = calloc(1, sizeof(*f->cfg));
	snprintf(f->dir, sizeof(f->dir), "/tmp/zcd-test-sim-XXXXXX");
	if (f->ops == NULL || f->cfg == NULL || mkdtemp(f->dir) == NULL) {
		fprintf(stderr, "fixture: setup failed\n");
		return -1;
	}
	snprintf(f->cfg->hv_backend, sizeof(f->cfg->hv_backend), "sim");
	f->cfg->nb_vms = nb_vms;
	for (unsigned i = 0; i < nb_vms; i++) {
		struct zcd_vm_config *vm = &f->cfg->vms[i];

		snprintf(vm->name, sizeof(vm->name), "vm%u", i);
		vm->credits = credits;
		vm->sim.stall = (stall_mask >> i) & 1;
		if (with_sinks)
			sink_path(f, i, vm->sim.sink, sizeof(vm->sim.sink));
	}
	f->pool.nb_bufs = nb_bufs;
	f->pool.pages_per_buf = ppb;
	f->pool.buf_size = ppb * PAGE;
	f->pool.bytes = (size_t)nb_bufs * ppb * PAGE;
	/* In a file, as the dataplane's pool is: the guests map it. */
	f->pool.fd = memfd_create("test-sim-pool", MFD_CLOEXEC);
	if (f->pool.fd < 0 || ftruncate(f->pool.fd, (off_t)f->pool.bytes) != 0)
		return -1;
	f->pool.base = mmap(NULL, f->pool.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, f->pool.fd, 0);
	if (f->pool.base == MAP_FAILED) {
		f->pool.base = NULL;
		return -1;
	}
	f->hv = f->ops->create(f->cfg, &f->pool, NULL, err, sizeof(err));
	if (f->hv == NULL) {
		fprintf(stderr, "fixture: create: %s\n", err);
		return -1;
	}
	for (unsigned i = 0; connect && i < nb_vms; i++)
		if (f->ops->vm_connect(f->hv, i, err, sizeof(err)) != 0) {
			fprintf(stderr, "fixture: connect: %s\n", err);
			return -1;
		}
	return 0;
}

static void fixture_close(struct fixture *f)
{
	char path[128];

	if (f->hv != NULL)
		f->ops->destroy(f->hv);
	for (unsigned i = 0; f->cfg != NULL && i < f->cfg->nb_vms; i++) {
		sink_path(f, i, path, sizeof(path));
		unlink(path);
	}
	rmdir(f->dir);
	if (f->pool.base != NULL)
		munmap(f->pool.base, f->pool.bytes);
	if (f->pool.fd >= 0)
		close(f->pool.fd);
	free(f->cfg);
}

static struct sim_vm *sim_vm_of(const struct fixture *f, unsigned vm)
{
	return &f->hv->vms[vm];
}

static struct zcd_hv_vm_stats vm_stats(const struct fixture *f, unsigned vm)
{
	struct zcd_hv_vm_stats stats;

	f->ops->vm_stats(f->hv, vm, &stats);
	return stats;
}

/* Deterministic frame bytes, never zero so that residue checks are exact. */
static void make_frame(uint8_t *dst, uint16_t length, unsigned seed)
{
	for (unsigned i = 0; i < length; i++)
		dst[i] = (uint8_t)(1 + (seed * 31 + i * 7) % 255);
}

/* A REMAP item: the frame is written into the pool buffer at offset. */
static struct zcd_handoff remap_item(struct fixture *f, struct expected_frames *exp,
				     uint32_t buf_id, uint32_t generation, uint16_t offset,
				     uint16_t length)
{
	uint8_t *frame = zcd_buf_addr(&f->pool, buf_id) + offset;

	make_frame(frame, length, buf_id * 1000 + generation);
	if (exp != NULL) {
		memcpy(exp->data[exp->count], frame, length);
		exp->length[exp->count++] = length;
	}
	return (struct zcd_handoff){ .data = frame, .buf_id = buf_id, .generation = generation,
				     .offset = offset, .length = length,
				     .kind = ZCD_HANDOFF_REMAP };
}

/* A COPY item whose bytes live in exp (which must outlive the handoff). */
static struct zcd_handoff copy_item(struct expected_frames *exp, uint16_t length, unsigned seed)
{
	uint8_t *frame = exp->data[exp->count];

	make_frame(frame, length, seed);
	exp->length[exp->count++] = length;
	return (struct zcd_handoff){ .data = frame, .length = length, .kind = ZCD_HANDOFF_COPY };
}

static bool wait_rx_packets(const struct fixture *f, unsigned vm, uint64_t want)
{
	for (unsigned ms = 0; ms < WAIT_LIMIT_MS; ms++) {
		if (vm_stats(f, vm).guest_rx_packets >= want && f->ops->vm_drained(f->hv, vm))
			return true;
		sleep_ms(1);
	}
	return false;
}

/* Poll until want pool returns and want_copies copy releases arrived (or time out). */
static unsigned collect_returns(const struct fixture *f, unsigned vm, struct zcd_hv_return *out,
				unsigned want, unsigned want_copies, uint32_t *copies_released)
{
	unsigned got = 0, copies_rejected = 0;

	*copies_released = 0;
	for (unsigned ms = 0; ms < WAIT_LIMIT_MS; ms++) {
		struct zcd_hv_return_tally tally;

		got += f->ops->poll_returns(f->hv, vm, out + got, MAX_FRAMES - got, &tally);
		*copies_released += tally.copies_released;
		copies_rejected += tally.copies_rejected;
		if (got >= want && *copies_released >= want_copies)
			break;
		sleep_ms(1);
	}
	/* Checked once, so that the number of checks does not depend on timing. */
	CHECK_EQ(copies_rejected, 0);
	return got;
}

/* Whole records in a pcap file, -1 if it cannot be read. */
static int pcap_records(const char *path)
{
	FILE *file = fopen(path, "rb");
	uint32_t record[4];
	int count = 0;

	if (file == NULL)
		return -1;
	if (fseek(file, 24, SEEK_SET) != 0)
		count = -1;
	while (count >= 0 && fread(record, sizeof(record), 1, file) == 1 &&
	       fseek(file, record[2], SEEK_CUR) == 0)
		count++;
	fclose(file);
	return count;
}

/* The sink must hold exactly exp's frames, in order, as classic pcap. */
static void check_pcap(const char *path, const struct expected_frames *exp)
{
	FILE *file = fopen(path, "rb");
	uint8_t *bytes = malloc(24 + MAX_FRAMES * (16 + FRAME_MAX) + 1);
	size_t size, pos = 24, want = 24;
	uint32_t word[5];
	uint16_t version[2];

	if (file == NULL || bytes == NULL) {
		CHECK(!"cannot read the sink");
		if (file != NULL)
			fclose(file);
		free(bytes);
		return;
	}
	size = fread(bytes, 1, 24 + MAX_FRAMES * (16 + FRAME_MAX) + 1, file);
	fclose(file);
	for (unsigned i = 0; i < exp->count; i++)
		want += 16 + exp->length[i];
	CHECK_EQ(size, want);
	if (size < 24 || size != want) {
		free(bytes);
		return;
	}
	memcpy(&word[0], bytes, 4);
	memcpy(version, bytes + 4, 4);
	memcpy(&word[1], bytes + 8, 16);
	CHECK_EQ(word[0], 0xa1b2c3d4U);
	CHECK_EQ(version[0], 2);
	CHECK_EQ(version[1], 4);
	CHECK_EQ(word[1], 0); /* thiszone */
	CHECK_EQ(word[2], 0); /* sigfigs */
	CHECK_EQ(word[3], 65535);
	CHECK_EQ(word[4], 1); /* Ethernet */
	for (unsigned i = 0; i < exp->count; i++) {
		uint32_t rec[4];

		memcpy(rec, bytes + pos, sizeof(rec));
		CHECK(rec[0] > 1600000000U); /* CLOCK_REALTIME, not a monotonic clock */
		CHECK(rec[1] < 1000000U);
		CHECK_EQ(rec[2], exp->length[i]);
		CHECK_EQ(rec[3], exp->length[i]);
		CHECK(memcmp(bytes + pos + 16, exp->data[i], exp->length[i]) == 0);
		pos += 16 + exp->length[i];
	}
	free(bytes);
}

static void check_clean_stats(const struct fixture *f, unsigned vm)
{
	struct zcd_hv_vm_stats stats = vm_stats(f, vm);

	CHECK_EQ(stats.ring_errors, 0);
	CHECK_EQ(stats.guest_residue_bytes, 0);
	CHECK_EQ(stats.guest_bad_descs, 0);
	CHECK_EQ(stats.guest_faults, 0);
}

static void test_two_vms_remap_and_copy(void)
{
	static struct expected_frames exp0, exp1;
	struct zcd_handoff items0[5], items1[3];
	struct zcd_hv_return rets[MAX_FRAMES];
	struct zcd_hv_vm_stats stats;
	struct fixture f;
	char path[128];
	uint32_t copies;
	bool revoked[3];
	uint32_t ids[3];

	exp0.count = exp1.count = 0;
	if (fixture_open(&f, 2, 16, 64, 1, 0, true, true) != 0) {
		CHECK(!"fixture");
		fixture_close(&f);
		return;
	}
	items0[0] = remap_item(&f, &exp0, 0, 5, 0, 60);
	items0[1] = copy_item(&exp0, 42, 1);
	items0[2] = remap_item(&f, &exp0, 1, 6, 128, 1514);
	items0[3] = remap_item(&f, &exp0, 2, 7, PAGE - 60, 60); /* ends at the page end */
	items0[4] = copy_item(&exp0, 1514, 2);
	items0[4].vlan = 10;
	items1[0] = remap_item(&f, &exp1, 3, 1, 64, 100);
	items1[1] = copy_item(&exp1, 60, 3);
	items1[2] = remap_item(&f, &exp1, 4, 2, 0, PAGE); /* the whole page */

	CHECK_EQ(f.ops->handoff(f.hv, 0, items0, 5), 5);
	CHECK_EQ(f.ops->handoff(f.hv, 1, items1, 3), 3);
	/* The descriptors as the backend wrote them. */
	{
		const struct zcd_rx_desc *rx = sim_vm_of(&f, 0)->ring.rx;

		CHECK_EQ(rx[0].buf_id, 0);
		CHECK_EQ(rx[0].generation, 5);
		CHECK_EQ(rx[0].flags, ZCD_RXF_READONLY);
		CHECK_EQ(rx[0].nr_pages, 1);
		CHECK_EQ(rx[1].flags, ZCD_RXF_COPY);
		CHECK_EQ(rx[1].offset, 0);
		CHECK_EQ(rx[1].handle, sim_vm_of(&f, 0)->file->copy_base + rx[1].buf_id);
		CHECK_EQ(rx[2].offset, 128);
		CHECK_EQ(rx[4].vlan, 10);
	}

	CHECK_EQ(collect_returns(&f, 0, rets, 3, 2, &copies), 3);
	CHECK_EQ(copies, 2);
	CHECK_EQ(rets[0].buf_id, 0);
	CHECK_EQ(rets[0].generation, 5);
	CHECK_EQ(rets[1].buf_id, 1);
	CHECK_EQ(rets[1].generation, 6);
	CHECK_EQ(rets[2].buf_id, 2);
	CHECK_EQ(rets[2].generation, 7);
	CHECK_EQ(collect_returns(&f, 1, rets, 2, 1, &copies), 2);
	CHECK_EQ(copies, 1);
	CHECK_EQ(rets[0].buf_id, 3);
	CHECK_EQ(rets[0].generation, 1);
	CHECK_EQ(rets[1].buf_id, 4);
	CHECK_EQ(rets[1].generation, 2);

	stats = vm_stats(&f, 0);
	CHECK_EQ(stats.guest_rx_packets, 5);
	CHECK_EQ(stats.guest_rx_bytes, 60 + 42 + 1514 + 60 + 1514);
	CHECK_EQ(stats.notifications, 1); /* one batch, one event */
	check_clean_stats(&f, 0);
	stats = vm_stats(&f, 1);
	CHECK_EQ(stats.guest_rx_packets, 3);
	CHECK_EQ(stats.guest_rx_bytes, 100 + 60 + PAGE);
	check_clean_stats(&f, 1);
	CHECK(f.ops->vm_drained(f.hv, 0));
	CHECK(f.ops->vm_drained(f.hv, 1));

	/* Returned buffers are revoked by the VM that holds them, and only by it. */
	ids[0] = 3;
	CHECK_EQ(f.ops->revoke(f.hv, 0, ids, 1, revoked), 0);
	CHECK(!revoked[0]);
	ids[0] = 0;
	ids[1] = 1;
	ids[2] = 2;
	CHECK_EQ(f.ops->revoke(f.hv, 0, ids, 3, revoked), 3);
	CHECK(revoked[0] && revoked[1] && revoked[2]);
	for (uint32_t gfn = 0; gfn < 16; gfn++)
		CHECK(sim_gfn_page(sim_vm_of(&f, 0)->file, f.pool.base, gfn) == NULL);
	CHECK_EQ(f.ops->revoke(f.hv, 0, ids, 3, revoked), 0); /* not held any more */
	ids[0] = 3;
	ids[1] = 4;
	CHECK_EQ(f.ops->revoke(f.hv, 1, ids, 2, revoked), 2);

	f.ops->vm_disconnect(f.hv, 0);
	f.ops->vm_disconnect(f.hv, 1);
	sink_path(&f, 0, path, sizeof(path));
	check_pcap(path, &exp0);
	sink_path(&f, 1, path, sizeof(path));
	check_pcap(path, &exp1);
	fixture_close(&f);
}

/* Buffers of three pages: frames across page boundaries, copy-page reuse. */
static void test_multi_page_buffers(void)
{
	static struct expected_frames exp;
	struct zcd_hv_return rets[MAX_FRAMES];
	struct zcd_handoff item;
	struct fixture f;
	struct sim_vm *vm;
	char path[128];
	uint32_t copies, id;
	bool revoked;

	exp.count = 0;
	if (fixture_open(&f, 1, 1, 16, 3, 0, true, true) != 0) {
		CHECK(!"fixture");
		fixture_close(&f);
		return;
	}
	vm = sim_vm_of(&f, 0);

	item = remap_item(&f, &exp, 5, 9, 3000, 9000);
	CHECK_EQ(f.ops->handoff(f.hv, 0, &item, 1), 1);
	for (uint32_t i = 0; i < 3; i++)
		CHECK(sim_gfn_page(vm->file, f.pool.base, i) == zcd_buf_addr(&f.pool, 5) + i * PAGE);
	CHECK_EQ(collect_returns(&f, 0, rets, 1, 0, &copies), 1);
	CHECK_EQ(rets[0].buf_id, 5);
	CHECK_EQ(rets[0].generation, 9);
	id = 5;
	CHECK_EQ(f.ops->revoke(f.hv, 0, &id, 1, &revoked), 1);

	/* One copy page: the short frame reuses it and must not see the long one. */
	item = copy_item(&exp, 9000, 1);
	CHECK_EQ(f.ops->handoff(f.hv, 0, &item, 1), 1);
	CHECK_EQ(collect_returns(&f, 0, rets, 0, 1, &copies), 0);
	CHECK_EQ(copies, 1);
	item = copy_item(&exp, 100, 2);
	CHECK_EQ(f.ops->handoff(f.hv, 0, &item, 1), 1);
	CHECK_EQ(collect_returns(&f, 0, rets, 0, 1, &copies), 0);
	CHECK_EQ(copies, 1);

	item = remap_item(&f, &exp, 6, 1, 0, 3 * PAGE);
	CHECK_EQ(f.ops->handoff(f.hv, 0, &item, 1), 1);
	CHECK_EQ(collect_returns(&f, 0, rets, 1, 0, &copies), 1);
	CHECK_EQ(rets[0].buf_id, 6);

	CHECK_EQ(vm_stats(&f, 0).guest_rx_packets, 4);
	CHECK_EQ(vm_stats(&f, 0).guest_rx_bytes, 9000 + 9000 + 100 + 3 * PAGE);
	check_clean_stats(&f, 0);
	f.ops->vm_disconnect(f.hv, 0);
	sink_path(&f, 0, path, sizeof(path));
	check_pcap(path, &exp);
	fixture_close(&f);
}

/* A stray byte outside the frame in a pool page is seen by the guest. */
static void test_residue_detected(void)
{
	struct zcd_hv_return rets[MAX_FRAMES];
	struct zcd_handoff items[2];
	struct fixture f;
	uint32_t copies;
	uint8_t *page;

	if (fixture_open(&f, 1, 8, 16, 1, 0, false, true) != 0) {
		CHECK(!"fixture");
		fixture_close(&f);
		return;
	}
	items[0] = remap_item(&f, NULL, 5, 1, 100, 200);
	page = zcd_buf_addr(&f.pool, 5);
	page[50] = 0xee; /* before the frame */
	page[PAGE - 1] = 0x01; /* after it */
	items[1] = remap_item(&f, NULL, 6, 1, 0, 60); /* clean */
	CHECK_EQ(f.ops->handoff(f.hv, 0, items, 2), 2);
	CHECK_EQ(collect_returns(&f, 0, rets, 2, 0, &copies), 2);
	CHECK_EQ(vm_stats(&f, 0).guest_residue_bytes, 2);
	CHECK_EQ(vm_stats(&f, 0).guest_rx_packets, 2);
	fixture_close(&f);
}

/* A stalled guest sinks frames but never returns; disconnect still frees. */
static void test_stall(void)
{
	static struct expected_frames exp;
	struct zcd_hv_return rets[MAX_FRAMES];
	struct zcd_hv_return_tally tally;
	struct zcd_handoff items[5];
	uint32_t ids[4] = { 0, 1, 2, 3 };
	struct fixture f;
	char path[128];
	bool revoked[4];

	exp.count = 0;
	if (fixture_open(&f, 1, 8, 16, 1, 1, true, true) != 0) {
		CHECK(!"fixture");
		fixture_close(&f);
		return;
	}
	for (uint32_t i = 0; i < 4; i++)
		items[i] = remap_item(&f, &exp, i, 1, (uint16_t)(i * 10), 64);
	items[4] = copy_item(&exp, 80, 9);
	CHECK_EQ(f.ops->handoff(f.hv, 0, items, 5), 5);
	CHECK(wait_rx_packets(&f, 0, 5));
	sleep_ms(30);
	CHECK_EQ(f.ops->poll_returns(f.hv, 0, rets, MAX_FRAMES, &tally), 0);
	CHECK_EQ(tally.copies_released, 0);
	CHECK_EQ(tally.copies_rejected, 0);
	check_clean_stats(&f, 0);

	f.ops->vm_disconnect(f.hv, 0);
	f.ops->vm_disconnect(f.hv, 0); /* idempotent */
	sink_path(&f, 0, path, sizeof(path));
	check_pcap(path, &exp);
	/* The hypervisor dropped the guest's mappings: revokes succeed. */
	for (uint32_t gfn = 0; gfn < 8; gfn++)
		CHECK(sim_gfn_page(sim_vm_of(&f, 0)->file, f.pool.base, gfn) == NULL);
	CHECK_EQ(f.ops->revoke(f.hv, 0, ids, 4, revoked), 4);
	CHECK(revoked[0] && revoked[1] && revoked[2] && revoked[3]);
	/* Nothing is delivered after disconnect. */
	items[0] = remap_item(&f, NULL, 9, 2, 0, 64);
	CHECK_EQ(f.ops->handoff(f.hv, 0, items, 1), 0);
	fixture_close(&f);
}

/* Grant slots, copy pages and ring space each cut a handoff short. */
static void test_exhaustion(void)
{
	static struct expected_frames scratch;
	struct zcd_handoff items[128];
	struct zcd_hv_return rets[MAX_FRAMES];
	struct zcd_hv_return_tally tally;
	struct fixture f;
	struct sim_vm *vm;
	uint32_t id;
	bool revoked;

	if (fixture_open(&f, 2, 2, 128, 1, 0x3, false, true) != 0) {
		CHECK(!"fixture");
		fixture_close(&f);
		return;
	}
	/* Two credits: two grant slots and two copy pages. */
	for (uint32_t i = 0; i < 3; i++)
		items[i] = remap_item(&f, NULL, i, 1, 0, 60);
	CHECK_EQ(f.ops->handoff(f.hv, 0, items, 3), 2);
	CHECK_EQ(f.ops->handoff(f.hv, 0, &items[2], 1), 0);
	scratch.count = 0;
	for (uint32_t i = 0; i < 3; i++)
		items[i] = copy_item(&scratch, 60, i);
	CHECK_EQ(f.ops->handoff(f.hv, 0, items, 3), 2);
	id = 0;
	CHECK_EQ(f.ops->revoke(f.hv, 0, &id, 1, &revoked), 1);
	items[0] = remap_item(&f, NULL, 2, 1, 0, 60);
	CHECK_EQ(f.ops->handoff(f.hv, 0, items, 1), 1);

	/* A buffer another VM holds, and items that do not fit, are refused. */
	items[0] = remap_item(&f, NULL, 1, 2, 0, 60);
	CHECK_EQ(f.ops->handoff(f.hv, 1, items, 1), 0);
	items[0] = remap_item(&f, NULL, 10, 1, 0, 60);
	items[0].buf_id = 128;
	CHECK_EQ(f.ops->handoff(f.hv, 1, items, 1), 0);
	items[0].buf_id = 10;
	items[0].offset = PAGE - 10;
	CHECK_EQ(f.ops->handoff(f.hv, 1, items, 1), 0);
	items[0].offset = 0;
	items[0].length = 0;
	CHECK_EQ(f.ops->handoff(f.hv, 1, items, 1), 0);
	scratch.count = 0;
	items[0] = copy_item(&scratch, 60, 1);
	items[0].length = PAGE + 1;
	CHECK_EQ(f.ops->handoff(f.hv, 1, items, 1), 0);
	items[0].kind = 7;
	CHECK_EQ(f.ops->handoff(f.hv, 1, items, 1), 0);
	CHECK_EQ(f.ops->handoff(f.hv, 5, items, 1), 0); /* no such VM */

	/* A hostile rx consumer index: counted, nothing delivered. */
	CHECK(wait_rx_packets(&f, 0, 5));
	vm = sim_vm_of(&f, 0);
	__atomic_store_n(&vm->ring.hdr->rx_cons, vm->ring.rx_prod + 100, __ATOMIC_RELEASE);
	items[0] = remap_item(&f, NULL, 20, 1, 0, 60);
	CHECK_EQ(f.ops->handoff(f.hv, 0, items, 1), 0);
	CHECK_EQ(vm_stats(&f, 0).ring_errors, 1);
	__atomic_store_n(&vm->ring.hdr->rx_cons, vm->ring.rx_prod, __ATOMIC_RELEASE);
	/* A hostile return producer index: counted, nothing taken. */
	__atomic_store_n(&vm->ring.hdr->ret_prod, vm->ring.ret_cons + 1000, __ATOMIC_RELEASE);
	CHECK_EQ(f.ops->poll_returns(f.hv, 0, rets, MAX_FRAMES, &tally), 0);
	CHECK_EQ(vm_stats(&f, 0).ring_errors, 2);
	__atomic_store_n(&vm->ring.hdr->ret_prod, vm->ring.ret_cons, __ATOMIC_RELEASE);
	fixture_close(&f);

	/* Ring space: 64 credits, ring of 64, 128 items offered at once. */
	if (fixture_open(&f, 1, 64, 128, 1, 1, false, true) != 0) {
		CHECK(!"fixture");
		fixture_close(&f);
		return;
	}
	scratch.count = 0;
	for (uint32_t i = 0; i < 64; i++) {
		items[2 * i] = remap_item(&f, NULL, i, 1, 0, 60);
		items[2 * i + 1] = copy_item(&scratch, 60, i);
	}
	CHECK_EQ(sim_vm_of(&f, 0)->ring_size, 64);
	CHECK_EQ(f.ops->handoff(f.hv, 0, items, 128), 64);
	/* Destroy with a connected, stalled VM holding buffers. */
	fixture_close(&f);
}

/* Copy-page returns are checked; forged, stale and duplicate ones free nothing. */
static void test_hostile_copy_returns(void)
{
	static struct expected_frames scratch;
	struct zcd_handoff items[3];
	struct zcd_hv_return rets[MAX_FRAMES];
	struct zcd_hv_return_tally tally;
	struct zcd_rx_desc copy0, copy1, copy2;
	struct zcd_ring hostile;
	struct fixture f;
	struct sim_vm *vm;

	scratch.count = 0;
	if (fixture_open(&f, 1, 4, 16, 1, 1, false, true) != 0) {
		CHECK(!"fixture");
		fixture_close(&f);
		return;
	}
	vm = sim_vm_of(&f, 0);
	items[0] = copy_item(&scratch, 60, 1);
	items[1] = copy_item(&scratch, 70, 2);
	items[2] = remap_item(&f, NULL, 7, 3, 0, 60);
	CHECK_EQ(f.ops->handoff(f.hv, 0, items, 3), 3);
	CHECK(wait_rx_packets(&f, 0, 3));
	copy0 = vm->ring.rx[0];
	copy1 = vm->ring.rx[1];
	CHECK(copy0.buf_id != copy1.buf_id);

	/* The stalled guest never writes returns; the test does, with its own view. */
	CHECK_EQ(zcd_ring_attach(&hostile, vm->area, vm->area_bytes), 0);
	{
		const struct zcd_ret_desc forged[] = {
			{ .buf_id = 99, .generation = 1, .flags = ZCD_RETF_COPY },
			{ .buf_id = 4, .generation = 0, .flags = ZCD_RETF_COPY },
			{ .buf_id = copy0.buf_id, .generation = copy0.generation + 1,
			  .flags = ZCD_RETF_COPY },
			{ .buf_id = copy0.buf_id, .generation = copy0.generation,
			  .flags = ZCD_RETF_COPY },
			{ .buf_id = copy0.buf_id, .generation = copy0.generation,
			  .flags = ZCD_RETF_COPY },
			{ .buf_id = 7, .generation = 3 },
			{ .buf_id = copy1.buf_id, .generation = copy1.generation,
			  .flags = ZCD_RETF_COPY },
		};

		for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++)
			zcd_ret_put(&hostile, &forged[i]);
		zcd_ret_publish(&hostile);
	}
	CHECK_EQ(f.ops->poll_returns(f.hv, 0, rets, MAX_FRAMES, &tally), 1);
	CHECK_EQ(rets[0].buf_id, 7);
	CHECK_EQ(rets[0].generation, 3);
	CHECK_EQ(tally.copies_released, 2);
	CHECK_EQ(tally.copies_rejected, 4);

	/* A released page comes back with a new generation; the old one is stale. */
	items[0] = copy_item(&scratch, 80, 3);
	CHECK_EQ(f.ops->handoff(f.hv, 0, items, 1), 1);
	copy2 = vm->ring.rx[3];
	CHECK(copy2.buf_id == copy0.buf_id || copy2.buf_id == copy1.buf_id);
	CHECK(copy2.generation > 1);
	{
		const struct zcd_ret_desc stale = { .buf_id = copy2.buf_id,
						    .generation = copy2.generation - 1,
						    .flags = ZCD_RETF_COPY };
		const struct zcd_ret_desc fresh = { .buf_id = copy2.buf_id,
						    .generation = copy2.generation,
						    .flags = ZCD_RETF_COPY };

		zcd_ret_put(&hostile, &stale);
		zcd_ret_put(&hostile, &fresh);
		zcd_ret_publish(&hostile);
	}
	CHECK_EQ(f.ops->poll_returns(f.hv, 0, rets, MAX_FRAMES, &tally), 0);
	CHECK_EQ(tally.copies_released, 1);
	CHECK_EQ(tally.copies_rejected, 1);

	/* A full out array leaves the rest on the ring: nothing is lost. */
	for (uint32_t i = 0; i < 3; i++) {
		const struct zcd_ret_desc ret = { .buf_id = 10 + i, .generation = 1 };

		zcd_ret_put(&hostile, &ret);
	}
	zcd_ret_publish(&hostile);
	CHECK_EQ(f.ops->poll_returns(f.hv, 0, rets, 2, &tally), 2);
	CHECK_EQ(rets[0].buf_id, 10);
	CHECK_EQ(rets[1].buf_id, 11);
	CHECK_EQ(f.ops->poll_returns(f.hv, 0, rets, 2, &tally), 1);
	CHECK_EQ(rets[0].buf_id, 12);
	CHECK_EQ(vm_stats(&f, 0).ring_errors, 0);
	fixture_close(&f);
}

/* The guest rejects descriptors it cannot trust and faults on unmapped pages. */
static void test_guest_checks_descriptors(void)
{
	struct zcd_hv_return rets[MAX_FRAMES];
	struct zcd_hv_return_tally tally;
	struct fixture f;
	struct sim_vm *vm;
	struct zcd_handoff item;
	uint32_t ids[2];
	bool revoked[2];
	const struct zcd_rx_desc good = { .buf_id = 1, .generation = 1, .handle = 3,
					  .nr_pages = 1, .length = 60,
					  .flags = ZCD_RXF_READONLY };
	struct zcd_rx_desc bad[6];

	if (fixture_open(&f, 1, 4, 16, 1, 0, false, true) != 0) {
		CHECK(!"fixture");
		fixture_close(&f);
		return;
	}
	vm = sim_vm_of(&f, 0);
	for (unsigned i = 0; i < 6; i++)
		bad[i] = good;
	bad[0].nr_pages = 2;
	bad[1].offset = PAGE - 59; /* runs past the page */
	bad[2].length = 0;
	bad[3].handle = 4; /* past the 4-slot grant window */
	bad[4].flags = ZCD_RXF_COPY; /* copy flag on a grant-window handle */
	bad[5].handle = vm->file->copy_base + 4; /* past the copy pages */
	bad[5].flags = ZCD_RXF_COPY;

	/* Act as a broken backend: write descriptors straight into the rx ring;
	 * slot 3 maps nothing, so the good-looking one faults. */
	for (unsigned i = 0; i < 6; i++)
		zcd_rx_put(&vm->ring, &bad[i]);
	zcd_rx_put(&vm->ring, &good);
	zcd_rx_publish(&vm->ring);
	CHECK(wait_rx_packets(&f, 0, 0));
	CHECK_EQ(vm_stats(&f, 0).guest_bad_descs, 6);
	CHECK_EQ(vm_stats(&f, 0).guest_faults, 1);
	CHECK_EQ(vm_stats(&f, 0).guest_rx_packets, 0);
	CHECK_EQ(f.ops->poll_returns(f.hv, 0, rets, MAX_FRAMES, &tally), 0);

	/* Revoke: only a buffer this VM holds; afterwards its slot maps nothing. */
	item = remap_item(&f, NULL, 9, 4, 0, 60);
	CHECK_EQ(f.ops->handoff(f.hv, 0, &item, 1), 1);
	CHECK(sim_gfn_page(vm->file, f.pool.base, 0) == zcd_buf_addr(&f.pool, 9));
	ids[0] = 9;
	ids[1] = 16; /* not a pool buffer */
	CHECK_EQ(f.ops->revoke(f.hv, 0, ids, 2, revoked), 1);
	CHECK(revoked[0]);
	CHECK(!revoked[1]);
	CHECK(sim_gfn_page(vm->file, f.pool.base, 0) == NULL);
	CHECK_EQ(f.ops->revoke(f.hv, 0, ids, 1, revoked), 0);
	fixture_close(&f);
}

/* Disconnect lets the guest finish its ring; its returns stay readable. */
static void test_disconnect_drains(void)
{
	static struct expected_frames exp;
	struct zcd_handoff items[8];
	struct zcd_hv_return rets[MAX_FRAMES];
	struct fixture f;
	char path[128];
	uint32_t copies, ids[MAX_FRAMES];
	bool revoked[MAX_FRAMES];
	unsigned sent = 0, got;

	exp.count = 0;
	if (fixture_open(&f, 1, 64, 64, 1, 0, true, true) != 0) {
		CHECK(!"fixture");
		fixture_close(&f);
		return;
	}
	for (uint32_t batch = 0; batch < 6; batch++) {
		for (uint32_t i = 0; i < 8; i++) {
			uint32_t n = batch * 8 + i;

			items[i] = (n % 3 == 2) ? copy_item(&exp, (uint16_t)(60 + n), n)
						: remap_item(&f, &exp, n, 1, 0, (uint16_t)(60 + n));
		}
		sent += f.ops->handoff(f.hv, 0, items, 8);
	}
	CHECK_EQ(sent, 48);
	f.ops->vm_disconnect(f.hv, 0);
	CHECK(f.ops->vm_drained(f.hv, 0));
	CHECK_EQ(vm_stats(&f, 0).guest_rx_packets, 48);
	check_clean_stats(&f, 0);
	sink_path(&f, 0, path, sizeof(path));
	check_pcap(path, &exp);

	got = collect_returns(&f, 0, rets, 32, 16, &copies);
	CHECK_EQ(got, 32);
	CHECK_EQ(copies, 16);
	for (unsigned i = 0; i < got; i++)
		ids[i] = rets[i].buf_id;
	CHECK_EQ(f.ops->revoke(f.hv, 0, ids, got, revoked), 32);
	fixture_close(&f);
}

static void test_control_errors(void)
{
	const struct zcd_hv_ops *ops = zcd_hv_find("sim");
	struct zcd_buf_region bad_pool = { 0 };
	char err[512] = "";
	struct zcd_hv *hv;
	struct fixture f;

	CHECK(ops != NULL);
	if (ops == NULL)
		return;
	CHECK_STR_CONTAINS(zcd_hv_names(), "sim");
	CHECK(zcd_hv_find("nope") == NULL);

	if (fixture_open(&f, 2, 4, 8, 1, 0, false, false) != 0) {
		CHECK(!"fixture");
		fixture_close(&f);
		return;
	}
	CHECK(ops->create(f.cfg, &bad_pool, NULL, err, sizeof(err)) == NULL);
	CHECK_STR_CONTAINS(err, "unusable buffer pool");
	f.cfg->vms[0].credits = 0;
	CHECK(ops->create(f.cfg, &f.pool, NULL, err, sizeof(err)) == NULL);
	CHECK_STR_CONTAINS(err, "vms[0].credits");
	f.cfg->vms[0].credits = 4;

	/* An unwritable sink fails the connect, and the VM can try again. */
	snprintf(f.cfg->vms[1].sim.sink, ZCD_FILE_PATH_MAX, "/nonexistent-zcd/x.pcap");
	hv = ops->create(f.cfg, &f.pool, NULL, err, sizeof(err));
	CHECK(hv != NULL);
	if (hv != NULL) {
		CHECK_EQ(ops->vm_connect(hv, 1, err, sizeof(err)), -1);
		CHECK_STR_CONTAINS(err, "vms[1].sim.sink: cannot open /nonexistent-zcd/x.pcap: "
					"No such file or directory");
		CHECK_EQ(ops->vm_connect(hv, 1, err, sizeof(err)), -1);
		CHECK_EQ(ops->vm_connect(hv, 0, err, sizeof(err)), 0);
		ops->destroy(hv);
	}
	f.cfg->vms[1].sim.sink[0] = '\0';

	CHECK_EQ(ops->vm_connect(f.hv, 2, err, sizeof(err)), -1);
	CHECK_STR_CONTAINS(err, "vms[2]: no such VM");
	/* A connected VM cannot connect again. */
	CHECK_EQ(ops->vm_connect(f.hv, 0, err, sizeof(err)), 0);
	CHECK_EQ(ops->vm_connect(f.hv, 0, err, sizeof(err)), -1);
	CHECK_STR_CONTAINS(err, "already connected");

	/* A VM never connected: nothing to return, drain or revoke. */
	{
		struct zcd_hv_return rets[4];
		struct zcd_hv_return_tally tally;
		uint32_t id = 0;
		bool revoked = true;

		CHECK_EQ(ops->poll_returns(f.hv, 1, rets, 4, &tally), 0);
		CHECK(ops->vm_drained(f.hv, 1));
		CHECK_EQ(ops->revoke(f.hv, 1, &id, 1, &revoked), 0);
		CHECK(!revoked);
		ops->vm_disconnect(f.hv, 1);
	}
	fixture_close(&f);
}

/* Each simulated guest is reported up exactly once, when it connected. */
static void test_events_and_features(void)
{
	struct fixture f;
	struct zcd_hv_event ev[4];
	char err[256];

	if (fixture_open(&f, 3, 8, 16, 1, 0, false, false) != 0) {
		CHECK(false);
		fixture_close(&f);
		return;
	}
	CHECK_EQ(f.ops->features(f.hv), ZCD_HV_F_REMAP | ZCD_HV_F_PARALLEL_VMS);
	CHECK_EQ(f.ops->poll_events(f.hv, ev, 4), 0);
	CHECK_EQ(f.ops->vm_connect(f.hv, 2, err, sizeof(err)), 0);
	CHECK_EQ(f.ops->vm_connect(f.hv, 0, err, sizeof(err)), 0);
	CHECK_EQ(f.ops->poll_events(f.hv, ev, 1), 1);
	CHECK_EQ(ev[0].vm, 0);
	CHECK_EQ(ev[0].kind, ZCD_HV_VM_UP);
	CHECK_EQ(f.ops->poll_events(f.hv, ev, 4), 1);
	CHECK_EQ(ev[0].vm, 2);
	CHECK_EQ(ev[0].kind, ZCD_HV_VM_UP);
	CHECK_EQ(f.ops->poll_events(f.hv, ev, 4), 0);
	CHECK_EQ(vm_stats(&f, 0).connects, 1);
	CHECK_EQ(vm_stats(&f, 1).connects, 0);
	fixture_close(&f);
}

/* Is process pid gone (or a zombie of ours, reaped here)? */
static bool process_gone(pid_t pid)
{
	for (unsigned ms = 0; ms < WAIT_LIMIT_MS; ms++) {
		if (kill(pid, 0) != 0 || waitpid(pid, NULL, WNOHANG) == pid)
			return true;
		sleep_ms(1);
	}
	return false;
}

/* Wait for the next event of VM vm, up to WAIT_LIMIT_MS; false if none came. */
static bool wait_event(struct fixture *f, unsigned vm, struct zcd_hv_event *ev)
{
	for (unsigned ms = 0; ms < WAIT_LIMIT_MS; ms++) {
		if (f->ops->poll_events(f->hv, ev, 1) == 1 && ev->vm == vm)
			return true;
		sleep_ms(1);
	}
	return false;
}

/*
 * A guest process killed while it holds buffers is reported gone, once;
 * once they are revoked a new guest starts (the VM reboots), and the
 * other VM's guest is the same process throughout.
 */
static void test_guest_killed(void)
{
	struct zcd_handoff items[3];
	struct zcd_hv_event ev;
	struct fixture f;
	uint32_t ids[3] = {0, 1, 2};
	bool revoked[3];
	pid_t killed, other;

	if (fixture_open(&f, 2, 8, 16, 1, 0x1, false, true) != 0) {
		CHECK(!"fixture");
		fixture_close(&f);
		return;
	}
	CHECK(wait_event(&f, 0, &ev) && ev.kind == ZCD_HV_VM_UP);
	CHECK(wait_event(&f, 1, &ev) && ev.kind == ZCD_HV_VM_UP);
	killed = sim_vm_of(&f, 0)->guest_pid;
	other = sim_vm_of(&f, 1)->guest_pid;
	for (uint32_t i = 0; i < 3; i++)
		items[i] = remap_item(&f, NULL, i, 1, 0, 64);
	CHECK_EQ(f.ops->handoff(f.hv, 0, items, 3), 3);
	CHECK(wait_rx_packets(&f, 0, 3)); /* stalled: it holds all three */
	CHECK_EQ(kill(killed, SIGKILL), 0);
	CHECK(wait_event(&f, 0, &ev) && ev.kind == ZCD_HV_VM_DOWN);
	CHECK_EQ(f.ops->poll_events(f.hv, &ev, 1), 0);
	CHECK_EQ(f.ops->revoke(f.hv, 0, ids, 3, revoked), 3);
	f.ops->vm_release(f.hv, 0);
	CHECK(process_gone(killed));
	CHECK(wait_event(&f, 0, &ev) && ev.kind == ZCD_HV_VM_UP);
	CHECK(sim_vm_of(&f, 0)->guest_pid > 0 && sim_vm_of(&f, 0)->guest_pid != killed);
	CHECK_EQ(vm_stats(&f, 0).connects, 2);
	CHECK_EQ(sim_vm_of(&f, 1)->guest_pid, other);
	CHECK_EQ(vm_stats(&f, 1).connects, 1);
	fixture_close(&f);
}

/*
 * A guest that writes an impossible consumer index gets nothing more, and
 * poll_events reports it gone, once; the other VM is not affected.
 */
static void test_broken_ring_reported_down(void)
{
	static const uint8_t frame[60] = {0x02};
	struct zcd_handoff item = {.data = frame, .length = sizeof(frame), .kind = ZCD_HANDOFF_COPY};
	struct zcd_hv_event ev[4];
	struct fixture f;

	if (fixture_open(&f, 2, 8, 16, 1, 0x3, false, true) != 0) {
		CHECK(false);
		fixture_close(&f);
		return;
	}
	CHECK_EQ(f.ops->poll_events(f.hv, ev, 4), 2); /* both up */
	__atomic_store_n(&sim_vm_of(&f, 1)->ring.hdr->rx_cons, 0x80000000u, __ATOMIC_RELEASE);
	CHECK_EQ(f.ops->handoff(f.hv, 1, &item, 1), 0);
	CHECK_EQ(f.ops->handoff(f.hv, 1, &item, 1), 0);
	CHECK_EQ(vm_stats(&f, 1).ring_errors, 2);
	CHECK_EQ(f.ops->handoff(f.hv, 0, &item, 1), 1);
	CHECK_EQ(f.ops->poll_events(f.hv, ev, 4), 1);
	CHECK_EQ(ev[0].vm, 1);
	CHECK_EQ(ev[0].kind, ZCD_HV_VM_DOWN);
	CHECK_EQ(f.ops->poll_events(f.hv, ev, 4), 0);
	CHECK_EQ(vm_stats(&f, 0).ring_errors, 0);
	fixture_close(&f);
}

/* instant_return: no guest process; everything handed over comes back at once. */
static void test_instant_return(void)
{
	static struct expected_frames exp;
	struct zcd_hv_return rets[MAX_FRAMES];
	struct zcd_hv_return_tally tally;
	struct zcd_handoff items[5];
	struct zcd_hv_vm_stats st;
	uint32_t ids[4] = { 0, 1, 2, 3 };
	struct fixture f;
	char err[256] = "";
	bool revoked[4];

	exp.count = 0;
	if (fixture_open(&f, 1, 8, 16, 1, 0, false, false) != 0) {
		CHECK(!"fixture");
		fixture_close(&f);
		return;
	}
	f.ops->destroy(f.hv);
	f.cfg->vms[0].sim.instant_return = true;
	f.hv = f.ops->create(f.cfg, &f.pool, NULL, err, sizeof(err));
	CHECK(f.hv != NULL);
	if (f.hv == NULL || f.ops->vm_connect(f.hv, 0, err, sizeof(err)) != 0) {
		CHECK(!"instant_return connect");
		fixture_close(&f);
		return;
	}
	for (int round = 0; round < 3; round++) {
		exp.count = 0;
		for (uint32_t i = 0; i < 4; i++)
			items[i] = remap_item(&f, &exp, i, (uint32_t)round + 1, 0, 100);
		items[4] = copy_item(&exp, 80, 7);
		CHECK_EQ(f.ops->handoff(f.hv, 0, items, 5), 5);
		/* Already back, before any other thread could have run. */
		CHECK_EQ(f.ops->poll_returns(f.hv, 0, rets, MAX_FRAMES, &tally), 4);
		CHECK_EQ(tally.copies_released, 1);
		CHECK_EQ(tally.copies_rejected, 0);
		for (uint32_t i = 0; i < 4; i++) {
			CHECK_EQ(rets[i].buf_id, i);
			CHECK_EQ(rets[i].generation, (uint32_t)round + 1);
		}
		CHECK(f.ops->vm_drained(f.hv, 0));
		CHECK_EQ(f.ops->revoke(f.hv, 0, ids, 4, revoked), 4);
	}
	f.ops->vm_stats(f.hv, 0, &st);
	CHECK_EQ(st.guest_rx_packets, 15);
	CHECK_EQ(st.notifications, 0);
	CHECK_EQ(st.guest_bad_descs, 0);
	f.ops->vm_disconnect(f.hv, 0);
	fixture_close(&f);
}

/* Return ids collected until want arrived, in the order the guest gave them. */
static void check_returned_ids(struct fixture *f, unsigned vm, const uint32_t *want, unsigned n)
{
	struct zcd_hv_return rets[MAX_FRAMES];
	uint32_t copies;
	unsigned got = collect_returns(f, vm, rets, n, 0, &copies);

	CHECK_EQ(got, n);
	for (unsigned i = 0; i < n && i < got; i++)
		CHECK_EQ(rets[i].buf_id, want[i]);
}

/*
 * sim.hold: the guest keeps its last buffers; a credit cut announced on the
 * ring makes it give back what was asked for at once and keep fewer.
 */
static void test_hold_and_credit_cut(void)
{
	static const uint32_t first[] = {0, 1, 2, 3}, asked[] = {4, 5, 6, 7}, later[] = {8};
	struct zcd_handoff items[11];
	struct fixture f;
	char err[256];

	if (fixture_open(&f, 1, 16, 32, 1, 0, false, false) != 0) {
		CHECK(!"fixture");
		fixture_close(&f);
		return;
	}
	sim_vm_of(&f, 0)->sim.hold = 6; /* keeps min(6, 16 / 2) */
	CHECK_EQ(f.ops->vm_connect(f.hv, 0, err, sizeof(err)), 0);
	for (uint32_t i = 0; i < 10; i++)
		items[i] = remap_item(&f, NULL, i, 1, 0, 64);
	CHECK_EQ(f.ops->handoff(f.hv, 0, items, 10), 10);
	CHECK(wait_rx_packets(&f, 0, 10));
	check_returned_ids(&f, 0, first, 4);

	/* Limit 4, give back 2 of the 6 held: it keeps min(6, 4 / 2) = 2. */
	f.ops->vm_set_credits(f.hv, 0, 4, 2);
	CHECK_EQ(sim_vm_of(&f, 0)->ring.hdr->credit_limit, 4);
	CHECK_EQ(sim_vm_of(&f, 0)->ring.hdr->give_back, 2);
	CHECK_EQ(sim_vm_of(&f, 0)->ring.hdr->credit_seq, 2);
	check_returned_ids(&f, 0, asked, 4);

	items[10] = remap_item(&f, NULL, 10, 1, 0, 64);
	CHECK_EQ(f.ops->handoff(f.hv, 0, &items[10], 1), 1);
	CHECK(wait_rx_packets(&f, 0, 11));
	check_returned_ids(&f, 0, later, 1);

	/* Never above what the VM was set up with. */
	f.ops->vm_set_credits(f.hv, 0, 100, 0);
	CHECK_EQ(sim_vm_of(&f, 0)->ring.hdr->credit_limit, 16);
	CHECK(f.ops->vm_drained(f.hv, 0));
	fixture_close(&f);
}

/*
 * A backend in a child process that dies without cleaning up, as a zcdemux
 * killed with -9: it connects vm0 (keeping its last 4 frames), hands it 6
 * buffers at generation 7 and a copy, waits until the guest read them and
 * exits.  Writes its guest's pid to fd.
 */
static void die_serving(struct fixture *f, const char *keep, int fd)
{
	struct expected_frames *exp = calloc(1, sizeof(*exp));
	struct zcd_handoff items[7];
	struct zcd_hv *hv;
	char err[256];
	pid_t guest;

	f->cfg->vms[0].sim.hold = 4;
	hv = f->ops->create(f->cfg, &f->pool, keep, err, sizeof(err));
	if (exp == NULL || hv == NULL || f->ops->vm_connect(hv, 0, err, sizeof(err)) != 0)
		_exit(1);
	f->hv = hv;
	for (uint32_t i = 0; i < 6; i++)
		items[i] = remap_item(f, NULL, i, 7, 0, 64);
	items[6] = copy_item(exp, 80, 3);
	if (f->ops->handoff(hv, 0, items, 7) != 7 || !wait_rx_packets(f, 0, 7))
		_exit(1);
	guest = sim_vm_of(f, 0)->guest_pid;
	if (write(fd, &guest, sizeof(guest)) != (ssize_t)sizeof(guest))
		_exit(1);
	_exit(0);
}

/* die_serving in a child; returns its guest's pid, which runs on. */
static pid_t backend_dies(struct fixture *f, const char *keep)
{
	int pipe_fds[2], status = -1;
	pid_t child, guest = 0;

	if (pipe(pipe_fds) != 0) {
		CHECK(!"pipe");
		return 0;
	}
	child = fork();
	if (child == 0)
		die_serving(f, keep, pipe_fds[1]);
	CHECK(child > 0 && waitpid(child, &status, 0) == child);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_EQ(read(pipe_fds[0], &guest, sizeof(guest)), (ssize_t)sizeof(guest));
	close(pipe_fds[0]);
	close(pipe_fds[1]);
	CHECK(guest > 0 && kill(guest, 0) == 0);
	return guest;
}

/*
 * In the VM file at path, make grant slot `slot` and copy slot 0 look
 * handed over by descriptors that were never published (at the ring's
 * producer index).  True if done.
 */
static bool unpublish(const char *path, uint32_t slot)
{
	struct sim_vm_file hyp;
	const struct zcd_ring_hdr *ring;
	uint8_t *map;
	bool done = false;
	int fd = open(path, O_RDWR);

	if (fd < 0 || pread(fd, &hyp, sizeof(hyp), 0) != (ssize_t)sizeof(hyp)) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	map = mmap(NULL, hyp.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map != MAP_FAILED) {
		const struct sim_vm_file *f = (const struct sim_vm_file *)map;

		ring = (const struct zcd_ring_hdr *)(map + f->ring_off);
		sim_grant_positions(f)[slot] = ring->rx_prod;
		sim_copy_states(f)[0].ring_pos = ring->rx_prod + 1;
		done = sim_copy_states(f)[0].outstanding != 0;
		munmap(map, hyp.bytes);
	}
	close(fd);
	return done;
}

/*
 * A guest outlives the backend that served it (a file under a keep
 * prefix) and the next backend on that prefix takes it over with what it
 * holds: the same process, its grant table, the generations, its copy page
 * and the returns it had put on the ring meanwhile.  A guest whose VM
 * changed is stopped and replaced instead.
 */
static void test_reattach(void)
{
	struct zcd_hv_return held[16], rets[MAX_FRAMES];
	char keep[96], path[128], err[256];
	struct zcd_handoff item;
	struct fixture f;
	uint32_t copies = 0, ids[6] = {0, 1, 2, 3, 4, 5};
	bool served_on = false;
	bool revoked[6];
	unsigned n;
	pid_t guest;

	if (fixture_open(&f, 1, 16, 32, 1, 0, true, false) != 0) {
		CHECK(!"fixture");
		fixture_close(&f);
		return;
	}
	snprintf(keep, sizeof(keep), "%s/state", f.dir);
	f.ops->destroy(f.hv);
	f.hv = NULL;
	guest = backend_dies(&f, keep);

	f.cfg->vms[0].sim.hold = 4;
	f.hv = f.ops->create(f.cfg, &f.pool, keep, err, sizeof(err));
	CHECK(f.hv != NULL);
	if (f.hv == NULL)
		goto out;
	CHECK_EQ(f.ops->vm_connect(f.hv, 0, err, sizeof(err)), 0);
	CHECK(sim_vm_of(&f, 0)->reattached);
	CHECK_EQ(sim_vm_of(&f, 0)->guest_pid, guest);
	n = f.ops->vm_reattach(f.hv, 0, held, 16, &copies, &served_on);
	CHECK(served_on);
	CHECK_EQ(n, 6);
	for (unsigned i = 0; i < n; i++) {
		CHECK_EQ(held[i].buf_id, i);
		CHECK_EQ(held[i].generation, 7);
	}
	CHECK_EQ(copies, 1);
	/* It had given back the three oldest: those returns are on the ring. */
	CHECK_EQ(collect_returns(&f, 0, rets, 3, 0, &copies), 3);
	CHECK(rets[0].buf_id == 0 && rets[1].buf_id == 1 && rets[2].buf_id == 2);
	CHECK_EQ(f.ops->revoke(f.hv, 0, ids, 3, revoked), 3);
	/* More frames: it gives back what it kept, the copy page included. */
	for (uint32_t i = 0; i < 4; i++) {
		item = remap_item(&f, NULL, 10 + i, 1, 0, 64);
		CHECK_EQ(f.ops->handoff(f.hv, 0, &item, 1), 1);
	}
	CHECK(wait_rx_packets(&f, 0, 11));
	CHECK_EQ(collect_returns(&f, 0, rets, 3, 1, &copies), 3);
	CHECK(rets[0].buf_id == 3 && rets[1].buf_id == 4 && rets[2].buf_id == 5);
	CHECK_EQ(rets[0].generation, 7);
	CHECK_EQ(copies, 1);
	CHECK_EQ(f.ops->revoke(f.hv, 0, ids + 3, 3, revoked), 3);
	/* Stopped by this backend, and its file gone with it. */
	f.ops->destroy(f.hv);
	f.hv = NULL;
	CHECK(process_gone(guest));
	snprintf(path, sizeof(path), "%s.sim.vm0", keep);
	CHECK(access(path, F_OK) != 0);
	/* One sink across both backends: every frame the guest read. */
	sink_path(&f, 0, path, sizeof(path));
	CHECK_EQ(pcap_records(path), 11);

	/* Another credit count: the old guest cannot be served; a new one starts. */
	guest = backend_dies(&f, keep);
	f.cfg->vms[0].credits = 8;
	f.hv = f.ops->create(f.cfg, &f.pool, keep, err, sizeof(err));
	CHECK(f.hv != NULL);
	if (f.hv == NULL)
		goto out;
	CHECK_EQ(f.ops->vm_connect(f.hv, 0, err, sizeof(err)), 0);
	CHECK(!sim_vm_of(&f, 0)->reattached);
	CHECK(process_gone(guest));
	CHECK(sim_vm_of(&f, 0)->guest_pid != guest);
	CHECK_EQ(f.ops->vm_reattach(f.hv, 0, held, 16, &copies, &served_on), 0);
	CHECK_EQ(copies, 0);

	/*
	 * Killed between writing descriptors and publishing them: a buffer and
	 * a copy page whose descriptors the guest never saw are not its own.
	 * (White-box: the positions in the file say so, as if the earlier
	 * backend had died there.)
	 */
	f.ops->destroy(f.hv);
	f.hv = NULL;
	f.cfg->vms[0].credits = 16;
	guest = backend_dies(&f, keep);
	snprintf(path, sizeof(path), "%s.sim.vm0", keep);
	CHECK(unpublish(path, 2));
	f.hv = f.ops->create(f.cfg, &f.pool, keep, err, sizeof(err));
	CHECK(f.hv != NULL);
	if (f.hv == NULL)
		goto out;
	CHECK_EQ(f.ops->vm_connect(f.hv, 0, err, sizeof(err)), 0);
	CHECK(sim_vm_of(&f, 0)->reattached);
	n = f.ops->vm_reattach(f.hv, 0, held, 16, &copies, &served_on);
	CHECK_EQ(n, 5);
	for (unsigned i = 0; i < n; i++)
		CHECK(held[i].buf_id != 2);
	CHECK_EQ(copies, 0);
	CHECK(sim_gfn_page(sim_vm_of(&f, 0)->file, f.pool.base, 2) == NULL);

	/* A VM the next configuration does not have: its guest is stopped at once. */
	f.ops->destroy(f.hv);
	f.hv = NULL;
	guest = backend_dies(&f, keep);
	snprintf(f.cfg->vms[0].name, sizeof(f.cfg->vms[0].name), "other");
	f.hv = f.ops->create(f.cfg, &f.pool, keep, err, sizeof(err));
	CHECK(f.hv != NULL);
	CHECK(process_gone(guest));
	snprintf(path, sizeof(path), "%s.sim.vm0", keep);
	CHECK(access(path, F_OK) != 0);
out:
	fixture_close(&f);
}

/* VMs taken in and let go while the others run; their slots are reused. */
static void test_add_remove(void)
{
	static struct expected_frames exp;
	struct zcd_vm_config vc = {.name = "added", .credits = 8};
	struct zcd_hv_return rets[MAX_FRAMES];
	struct zcd_handoff item;
	struct fixture f;
	uint32_t copies, id = 3;
	char err[256] = "";
	bool revoked;

	exp.count = 0;
	if (fixture_open(&f, 1, 8, 16, 1, 0, false, true) != 0) {
		CHECK(!"fixture");
		fixture_close(&f);
		return;
	}
	CHECK_EQ(f.ops->vm_add(f.hv, 0, &vc, err, sizeof(err)), -1);
	CHECK_STR_CONTAINS(err, "vms[0]: index in use");
	CHECK_EQ(f.ops->vm_connect(f.hv, 5, err, sizeof(err)), -1);
	CHECK_STR_CONTAINS(err, "vms[5]: no such VM");
	CHECK_EQ(f.ops->vm_add(f.hv, 5, &vc, err, sizeof(err)), 0);
	CHECK_EQ(f.ops->vm_connect(f.hv, 5, err, sizeof(err)), 0);
	item = remap_item(&f, &exp, id, 1, 0, 64);
	CHECK_EQ(f.ops->handoff(f.hv, 5, &item, 1), 1);
	CHECK(wait_rx_packets(&f, 5, 1));
	CHECK_EQ(collect_returns(&f, 5, rets, 1, 0, &copies), 1);
	CHECK_EQ(f.ops->revoke(f.hv, 5, &id, 1, &revoked), 1);

	f.ops->vm_disconnect(f.hv, 5);
	f.ops->vm_remove(f.hv, 5);
	CHECK(!sim_vm_of(&f, 5)->in_use);
	CHECK_EQ(f.ops->handoff(f.hv, 5, &item, 1), 0);
	CHECK_EQ(f.ops->vm_add(f.hv, 5, &vc, err, sizeof(err)), 0);
	CHECK_EQ(f.ops->vm_connect(f.hv, 5, err, sizeof(err)), 0);
	/* VM 0 was not disturbed. */
	item = remap_item(&f, NULL, 4, 1, 0, 64);
	CHECK_EQ(f.ops->handoff(f.hv, 0, &item, 1), 1);
	CHECK(wait_rx_packets(&f, 0, 1));
	fixture_close(&f);
}

/* A VM the dataplane cuts off is reported down once, not as a broken ring. */
static void test_cut_off(void)
{
	struct zcd_hv_event ev[4];
	struct fixture f;

	if (fixture_open(&f, 2, 8, 16, 1, 0, false, true) != 0) {
		CHECK(!"fixture");
		fixture_close(&f);
		return;
	}
	CHECK_EQ(f.ops->poll_events(f.hv, ev, 4), 2); /* both up */
	f.ops->vm_cut_off(f.hv, 1);
	CHECK_EQ(f.ops->poll_events(f.hv, ev, 4), 1);
	CHECK_EQ(ev[0].vm, 1);
	CHECK_EQ(ev[0].kind, ZCD_HV_VM_DOWN);
	CHECK_EQ(f.ops->poll_events(f.hv, ev, 4), 0);
	CHECK_EQ(vm_stats(&f, 1).ring_errors, 0);
	f.ops->vm_cut_off(f.hv, 7); /* no such VM: nothing */
	CHECK_EQ(f.ops->poll_events(f.hv, ev, 4), 0);
	fixture_close(&f);
}

int main(void)
{
	test_control_errors();
	test_events_and_features();
	test_two_vms_remap_and_copy();
	test_multi_page_buffers();
	test_residue_detected();
	test_stall();
	test_exhaustion();
	test_hostile_copy_returns();
	test_guest_checks_descriptors();
	test_disconnect_drains();
	test_guest_killed();
	test_reattach();
	test_instant_return();
	test_broken_ring_reported_down();
	test_hold_and_credit_cut();
	test_add_remove();
	test_cut_off();
	return check_report("test_sim");
}
