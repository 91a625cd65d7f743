/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the guest frontend (hypervisor-glue/xen/guest/frontend.c)
 * against a fake backend in this process.
 *
 * The fake implements struct zcd_front_io_ops the way Xen behaves where it
 * matters: "grant references" are pages of a memfd; a grant map call maps
 * the named pages contiguously (MAP_SHARED, so the backend's later writes
 * are visible, and PROT_READ for read-only maps, so a stray write faults),
 * fails as a whole if any reference is bad, and an unmap must name exactly
 * one whole mapping.  xenstore is a small table with one watch; the event
 * channel is a flag.  The fake backend formats the ring with the same
 * helpers as the dataplane (zcd_ring_format, zcd_rx_put, zcd_rx_publish,
 * zcd_ret_take) and writes frames into the pages it "grants".
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xen/io/xenbus.h>

#include "check.h"
#include "zcdemux/ring.h"
#include "zcdemux/xenbus.h"

#include "../../hypervisor-glue/xen/guest/sha256.h"
#include "../../hypervisor-glue/xen/guest/zcd_front.h"

#define PAGE ZCD_PAGE_SIZE
#define GUEST_DOMID 7U
#define GUEST_NAME "guest7"
#define BACKEND_DOMID 0U
#define REMOTE_PORT 42U
#define LOCAL_PORT 9

/* Layout of the fake grant space, in pages (= grant references). */
#define FAKE_PAGES 2048U
#define REF_RING 8U /* ring pages; a second offer may use REF_RING2 */
#define REF_RING2 24U
#define REF_POOL 64U /* pool buffer b, page p: REF_POOL + b * buffer_pages + p */
#define REF_SHARE 1024U /* pages the guest shares (copy slots) */

#define FRONT_DIR "device/zcdemux/0"
#define BACKEND_DIR "/local/domain/0/backend/zcdemux/7/0"

#define MAX_NODES 1024
#define MAX_MAPS 256
#define MAX_FRAMES 512
#define MAX_STATES 64

/* ---- the fake Xen ---- */

struct fake_node {
	char path[ZCD_XS_PATH_MAX];
	char value[64];
};

struct fake_mapping {
	uint8_t *addr;
	uint32_t count;
	bool shared; /* from share(), not map() */
};

struct fake {
	int memfd;
	uint8_t *grant_space; /* the backend's view of every page */

	struct fake_node nodes[MAX_NODES];
	unsigned nb_nodes;
	char watched[ZCD_XS_PATH_MAX];
	bool watch_fired;
	int front_states[MAX_STATES]; /* every state the guest wrote, in order */
	unsigned nb_front_states;

	bool bad_ref[FAKE_PAGES];
	struct fake_mapping maps[MAX_MAPS]; /* live */
	unsigned nb_maps;
	unsigned map_calls, writable_map_calls, failed_map_calls, unmap_calls, bad_unmaps;
	unsigned share_calls, unshare_calls;
	uint32_t share_limit;
	uint32_t share_next; /* next grant reference gntalloc hands out */
	unsigned live_shares;

	bool bound;
	unsigned binds, unbinds, notifies;
	uint32_t bind_domid, bind_port;
	bool event_pending;

	uint64_t now_ms;
	bool fail_wait; /* wait() fails, as a broken xenstore connection would */
	bool fail_next_unmap; /* the next buffer unmap fails and leaves the mapping */

	/* The backend's side of the current offer. */
	struct zcd_ring ring;
	uint32_t buffer_pages;
};

static struct fake *fake_of(void *io)
{
	return io;
}

static struct fake_node *fake_find(struct fake *f, const char *path)
{
	for (unsigned i = 0; i < f->nb_nodes; i++)
		if (strcmp(f->nodes[i].path, path) == 0)
			return &f->nodes[i];
	return NULL;
}

static bool fake_is_watched(const struct fake *f, const char *path)
{
	size_t len = strlen(f->watched);

	return len != 0 && strncmp(path, f->watched, len) == 0 &&
	       (path[len] == '\0' || path[len] == '/');
}

static void fake_set(struct fake *f, const char *path, const char *value)
{
	struct fake_node *node = fake_find(f, path);

	if (node == NULL) {
		if (f->nb_nodes == MAX_NODES) {
			CHECK(f->nb_nodes < MAX_NODES);
			return;
		}
		node = &f->nodes[f->nb_nodes++];
		snprintf(node->path, sizeof(node->path), "%s", path);
	}
	snprintf(node->value, sizeof(node->value), "%s", value);
	if (fake_is_watched(f, path))
		f->watch_fired = true;
}

static void fake_set_u32(struct fake *f, const char *dir, const char *key, uint32_t value)
{
	char path[ZCD_XS_PATH_MAX + 32], text[16];

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	snprintf(text, sizeof(text), "%u", value);
	fake_set(f, path, text);
}

/* Remove every node under dir (the backend's directory vanishing). */
static void fake_remove_dir(struct fake *f, const char *dir)
{
	size_t len = strlen(dir);
	unsigned kept = 0;

	for (unsigned i = 0; i < f->nb_nodes; i++)
		if (strncmp(f->nodes[i].path, dir, len) != 0)
			f->nodes[kept++] = f->nodes[i];
	f->nb_nodes = kept;
	if (fake_is_watched(f, dir))
		f->watch_fired = true;
}

/* A node's value as a number, -1 if absent. */
static long fake_get_u32(struct fake *f, const char *path)
{
	struct fake_node *node = fake_find(f, path);

	return node == NULL ? -1 : strtol(node->value, NULL, 10);
}

static char *io_read(void *io, const char *path)
{
	struct fake_node *node = fake_find(fake_of(io), path);
	char *copy;

	if (node == NULL) {
		errno = ENOENT;
		return NULL;
	}
	copy = strdup(node->value);
	if (copy == NULL)
		errno = ENOMEM;
	return copy;
}

static int io_write(void *io, const char *path, const char *value)
{
	struct fake *f = fake_of(io);

	if (strcmp(path, FRONT_DIR "/state") == 0 && f->nb_front_states < MAX_STATES)
		f->front_states[f->nb_front_states++] = atoi(value);
	fake_set(f, path, value);
	return 0;
}

static int io_watch(void *io, const char *path)
{
	struct fake *f = fake_of(io);

	snprintf(f->watched, sizeof(f->watched), "%s", path);
	f->watch_fired = true; /* xenstore fires a new watch once at once */
	return 0;
}

/* Never sleeps: reports what is pending, or lets the fake clock run out the timeout. */
static int io_wait(void *io, int timeout_ms)
{
	struct fake *f = fake_of(io);
	int fired = 0;

	if (f->fail_wait) {
		errno = EIO;
		return -1;
	}
	if (f->watch_fired)
		fired |= ZCD_IO_XENSTORE;
	if (f->bound && f->event_pending)
		fired |= ZCD_IO_EVENT;
	f->watch_fired = false;
	f->event_pending = false;
	if (fired == 0 && timeout_ms > 0)
		f->now_ms += (uint64_t)timeout_ms;
	return fired;
}

static uint64_t io_now_ms(void *io)
{
	return fake_of(io)->now_ms;
}

static uint8_t *fake_page(struct fake *f, uint32_t ref)
{
	return f->grant_space + (size_t)ref * PAGE;
}

/* Grant of copy page i, read as the backend does: from the guest's table. */
static long copy_ref(struct fake *f, uint32_t i)
{
	char path[ZCD_XS_PATH_MAX];
	long table_ref;
	uint32_t ref;

	snprintf(path, sizeof(path), FRONT_DIR "/copy-table-ref%u", i / (PAGE / 4));
	table_ref = fake_get_u32(f, path);
	if (table_ref < 0)
		return -1;
	memcpy(&ref, fake_page(f, (uint32_t)table_ref) + (i % (PAGE / 4)) * 4, sizeof(ref));
	return ref;
}

/* Map the memfd pages named by refs at consecutive addresses. */
static uint8_t *fake_map_pages(struct fake *f, uint32_t count, const uint32_t *refs, int prot)
{
	uint8_t *base = mmap(NULL, (size_t)count * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
			     -1, 0);

	if (base == MAP_FAILED)
		return NULL;
	for (uint32_t i = 0; i < count; i++) {
		if (mmap(base + (size_t)i * PAGE, PAGE, prot, MAP_SHARED | MAP_FIXED, f->memfd,
			 (off_t)refs[i] * PAGE) == MAP_FAILED) {
			munmap(base, (size_t)count * PAGE);
			return NULL;
		}
	}
	return base;
}

static void fake_add_mapping(struct fake *f, uint8_t *addr, uint32_t count, bool shared)
{
	CHECK(f->nb_maps < MAX_MAPS);
	if (f->nb_maps < MAX_MAPS)
		f->maps[f->nb_maps++] = (struct fake_mapping){ addr, count, shared };
}

/* Drop a live mapping that is exactly (addr, count) of the given kind. */
static int fake_remove_mapping(struct fake *f, void *addr, uint32_t count, bool shared)
{
	for (unsigned i = 0; i < f->nb_maps; i++) {
		if (f->maps[i].addr == addr && f->maps[i].count == count &&
		    f->maps[i].shared == shared) {
			munmap(addr, (size_t)count * PAGE);
			f->maps[i] = f->maps[--f->nb_maps];
			return 0;
		}
	}
	f->bad_unmaps++;
	errno = EINVAL;
	return -1;
}

static void *io_map(void *io, uint32_t domid, uint32_t count, uint32_t *refs, bool writable)
{
	struct fake *f = fake_of(io);
	uint8_t *addr;

	f->map_calls++;
	if (writable)
		f->writable_map_calls++;
	CHECK_EQ(domid, BACKEND_DOMID);
	/* All or nothing, like xengnttab_map_domain_grant_refs. */
	for (uint32_t i = 0; i < count; i++) {
		if (refs[i] >= REF_SHARE || f->bad_ref[refs[i]]) {
			f->failed_map_calls++;
			errno = EINVAL;
			return NULL;
		}
	}
	addr = fake_map_pages(f, count, refs, writable ? PROT_READ | PROT_WRITE : PROT_READ);
	if (addr != NULL)
		fake_add_mapping(f, addr, count, false);
	return addr;
}

static int io_unmap(void *io, void *addr, uint32_t count)
{
	struct fake *f = fake_of(io);

	f->unmap_calls++;
	if (f->fail_next_unmap) {
		f->fail_next_unmap = false;
		errno = EIO;
		return -1;
	}
	return fake_remove_mapping(f, addr, count, false);
}

static void *io_share(void *io, uint32_t domid, uint32_t count, uint32_t *refs)
{
	struct fake *f = fake_of(io);
	uint8_t *addr;

	f->share_calls++;
	CHECK_EQ(domid, BACKEND_DOMID);
	if (count > f->share_limit || REF_SHARE + count > FAKE_PAGES) {
		errno = ENOSPC;
		return NULL;
	}
	/* References run on across shares; numbering restarts once none is live. */
	if (f->live_shares == 0)
		f->share_next = REF_SHARE;
	if (f->share_next + count > FAKE_PAGES) {
		errno = ENOSPC;
		return NULL;
	}
	for (uint32_t i = 0; i < count; i++)
		refs[i] = f->share_next + i;
	/* gntalloc hands out zeroed pages. */
	memset(fake_page(f, f->share_next), 0, (size_t)count * PAGE);
	addr = fake_map_pages(f, count, refs, PROT_READ | PROT_WRITE);
	if (addr != NULL) {
		fake_add_mapping(f, addr, count, true);
		f->share_next += count;
		f->live_shares++;
	}
	return addr;
}

static int io_unshare(void *io, void *addr, uint32_t count)
{
	struct fake *f = fake_of(io);

	f->unshare_calls++;
	if (f->live_shares != 0)
		f->live_shares--;
	return fake_remove_mapping(f, addr, count, true);
}

static uint32_t io_share_limit(void *io)
{
	return fake_of(io)->share_limit;
}

static int io_bind(void *io, uint32_t domid, uint32_t remote_port)
{
	struct fake *f = fake_of(io);

	CHECK(!f->bound);
	f->binds++;
	f->bound = true;
	f->bind_domid = domid;
	f->bind_port = remote_port;
	return LOCAL_PORT;
}

static int io_unbind(void *io)
{
	struct fake *f = fake_of(io);

	CHECK(f->bound);
	f->unbinds++;
	f->bound = false;
	return 0;
}

static int io_notify(void *io)
{
	fake_of(io)->notifies++;
	return 0;
}

static const struct zcd_front_io_ops fake_ops = {
	.read = io_read,
	.write = io_write,
	.watch = io_watch,
	.wait = io_wait,
	.now_ms = io_now_ms,
	.map = io_map,
	.unmap = io_unmap,
	.share = io_share,
	.unshare = io_unshare,
	.share_limit = io_share_limit,
	.bind = io_bind,
	.unbind = io_unbind,
	.notify = io_notify,
};

static struct fake *fake_open(void)
{
	struct fake *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	f->memfd = memfd_create("fake-grants", MFD_CLOEXEC);
	if (f->memfd < 0 || ftruncate(f->memfd, (off_t)FAKE_PAGES * PAGE) != 0)
		goto fail;
	f->grant_space = mmap(NULL, (size_t)FAKE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
			      f->memfd, 0);
	if (f->grant_space == MAP_FAILED)
		goto fail;
	f->share_limit = 1024;
	f->now_ms = 1000000;
	fake_set(f, "domid", "7");
	fake_set(f, "name", GUEST_NAME);
	return f;

fail:
	if (f->memfd >= 0)
		close(f->memfd);
	free(f);
	return NULL;
}

static void fake_close(struct fake *f)
{
	while (f->nb_maps > 0)
		fake_remove_mapping(f, f->maps[0].addr, f->maps[0].count, f->maps[0].shared);
	munmap(f->grant_space, (size_t)FAKE_PAGES * PAGE);
	close(f->memfd);
	free(f);
}

static unsigned fake_live_buffer_maps(const struct fake *f)
{
	unsigned n = 0;

	for (unsigned i = 0; i < f->nb_maps; i++)
		n += !f->maps[i].shared;
	return n;
}

static int front_state(struct fake *f)
{
	return (int)fake_get_u32(f, FRONT_DIR "/state");
}

/* ---- the fake backend ---- */

struct offer {
	uint32_t ring_ref; /* first ring page */
	uint32_t rx_size, ret_size, credits;
	uint32_t buffer_pages;
	uint32_t copy_slots_max;
};

static const struct offer default_offer = {
	.ring_ref = REF_RING, .rx_size = 64, .ret_size = 128, .credits = 64,
	.buffer_pages = 1, .copy_slots_max = 8,
};

/* Format the ring, publish the offer and go to InitWait. */
static void backend_offer(struct fake *f, const struct offer *o)
{
	size_t bytes = zcd_ring_area_bytes(o->rx_size, o->ret_size);
	uint32_t pages = (uint32_t)(bytes / PAGE);
	char key[32];

	CHECK_EQ(zcd_ring_format(&f->ring, fake_page(f, o->ring_ref), bytes, o->rx_size,
				 o->ret_size, o->credits), 0);
	f->buffer_pages = o->buffer_pages;
	fake_set_u32(f, BACKEND_DIR, ZCD_XS_PROTOCOL, ZCD_RING_VERSION);
	fake_set_u32(f, BACKEND_DIR, ZCD_XS_RING_PAGES, pages);
	for (uint32_t i = 0; i < pages; i++) {
		snprintf(key, sizeof(key), ZCD_XS_RING_REF_FMT, i);
		fake_set_u32(f, BACKEND_DIR, key, o->ring_ref + i);
	}
	fake_set_u32(f, BACKEND_DIR, ZCD_XS_EVENT_CHANNEL, REMOTE_PORT);
	fake_set_u32(f, BACKEND_DIR, ZCD_XS_BUFFER_PAGES, o->buffer_pages);
	fake_set_u32(f, BACKEND_DIR, ZCD_XS_COPY_SLOTS_MAX, o->copy_slots_max);
	fake_set_u32(f, BACKEND_DIR, ZCD_XS_STATE, XenbusStateInitWait);
}

static void backend_set_state(struct fake *f, enum xenbus_state state)
{
	fake_set_u32(f, BACKEND_DIR, ZCD_XS_STATE, state);
}

static uint8_t frame_byte(uint32_t seq, uint32_t i)
{
	/* Never 0, so a frame's bytes are never mistaken for scrubbed space. */
	return (uint8_t)((seq * 37 + i * 11) % 255 + 1);
}

/* Frames as the backend sent them, to compare with what the guest delivered. */
struct frames {
	uint8_t *data[MAX_FRAMES];
	uint16_t length[MAX_FRAMES];
	uint16_t vlan[MAX_FRAMES];
	bool copied[MAX_FRAMES];
	unsigned count;
};

static void frames_add(struct frames *fr, const uint8_t *data, uint16_t length, uint16_t vlan,
		       bool copied)
{
	CHECK(fr->count < MAX_FRAMES);
	if (fr->count == MAX_FRAMES)
		return;
	fr->data[fr->count] = malloc(length);
	if (fr->data[fr->count] == NULL) {
		CHECK(fr->data[fr->count] != NULL);
		return;
	}
	memcpy(fr->data[fr->count], data, length);
	fr->length[fr->count] = length;
	fr->vlan[fr->count] = vlan;
	fr->copied[fr->count] = copied;
	fr->count++;
}

static void frames_free(struct frames *fr)
{
	for (unsigned i = 0; i < fr->count; i++)
		free(fr->data[i]);
	fr->count = 0;
}

static void record_frame(void *ctx, const struct zcd_front_frame *frame)
{
	frames_add(ctx, frame->data, frame->length, frame->vlan, frame->copied);
}

/* The guest must have received exactly what was sent, byte for byte, in order. */
static void check_frames_equal(const struct frames *sent, const struct frames *got)
{
	CHECK_EQ(got->count, sent->count);
	for (unsigned i = 0; i < sent->count && i < got->count; i++) {
		CHECK_EQ(got->length[i], sent->length[i]);
		CHECK_EQ(got->vlan[i], sent->vlan[i]);
		CHECK_EQ(got->copied[i], sent->copied[i]);
		if (got->length[i] == sent->length[i])
			CHECK(memcmp(got->data[i], sent->data[i], sent->length[i]) == 0);
	}
}

static void fill_frame(uint8_t *dst, uint32_t seq, uint16_t length)
{
	for (uint32_t i = 0; i < length; i++)
		dst[i] = frame_byte(seq, i);
}

/* Grant buffer buf_id holding frame seq; the rest of its pages are zero (scrubbed). */
static struct zcd_rx_desc backend_remap(struct fake *f, struct frames *sent, uint32_t buf_id,
					uint32_t generation, uint16_t offset, uint16_t length,
					uint32_t seq)
{
	uint32_t ref = REF_POOL + buf_id * f->buffer_pages;
	uint8_t *buf = fake_page(f, ref);
	struct zcd_rx_desc d = {
		.buf_id = buf_id, .generation = generation, .handle = ref,
		.nr_pages = (uint16_t)f->buffer_pages, .offset = offset, .length = length,
		.flags = ZCD_RXF_READONLY, .vlan = (uint16_t)(seq % 5),
	};

	memset(buf, 0, (size_t)f->buffer_pages * PAGE);
	fill_frame(buf + offset, seq, length);
	if (sent != NULL)
		frames_add(sent, buf + offset, length, d.vlan, false);
	return d;
}

/* Copy frame seq into the guest's copy slot, as the backend's copy path does. */
static struct zcd_rx_desc backend_copy(struct fake *f, struct frames *sent, uint32_t slot,
				       uint32_t generation, uint16_t length, uint32_t seq)
{
	struct zcd_rx_desc d = {
		.buf_id = slot, .generation = generation, .handle = slot * f->buffer_pages,
		.nr_pages = (uint16_t)f->buffer_pages, .offset = 0, .length = length,
		.flags = ZCD_RXF_COPY, .vlan = (uint16_t)(seq % 5),
	};
	uint8_t frame[3 * PAGE];
	uint32_t left = length;

	fill_frame(frame, seq, length);
	/* The slot's pages through the grants the guest published, scrubbed first. */
	for (uint32_t p = 0; p < f->buffer_pages; p++) {
		uint32_t take = left < PAGE ? left : PAGE;
		long ref = copy_ref(f, slot * f->buffer_pages + p);

		CHECK(ref >= 0);
		if (ref < 0)
			break;
		memset(fake_page(f, (uint32_t)ref), 0, PAGE);
		memcpy(fake_page(f, (uint32_t)ref), frame + p * PAGE, take);
		left -= take;
	}
	if (sent != NULL)
		frames_add(sent, frame, length, d.vlan, true);
	return d;
}

static void backend_put(struct fake *f, const struct zcd_rx_desc *d)
{
	zcd_rx_put(&f->ring, d);
}

/* Publish; raise the event if the guest asked for one. */
static void backend_publish(struct fake *f)
{
	if (zcd_rx_publish(&f->ring))
		f->event_pending = true;
}

static unsigned backend_take_returns(struct fake *f, struct zcd_ret_desc *out, unsigned max)
{
	bool broken = false;
	unsigned n = 0;
	uint32_t ready = zcd_ret_ready(&f->ring, &broken);

	CHECK(!broken);
	for (; n < ready && n < max; n++)
		zcd_ret_take(&f->ring, &out[n]);
	zcd_ret_consumed(&f->ring);
	return n;
}

/* ---- fixture ---- */

struct fixture {
	struct fake *fake;
	struct zcd_front *fe;
	struct frames sent;
	struct frames got;
};

/* A frontend with params, delivering into fx->got. */
static int fixture_open_params(struct fixture *fx, struct zcd_front_params params)
{
	char err[256];

	memset(fx, 0, sizeof(*fx));
	params.deliver = record_frame;
	params.deliver_ctx = &fx->got;
	fx->fake = fake_open();
	if (fx->fake == NULL) {
		CHECK(fx->fake != NULL);
		return -1;
	}
	fx->fe = zcd_front_create(&params, &fake_ops, fx->fake, err, sizeof(err));
	if (fx->fe == NULL) {
		fprintf(stderr, "zcd_front_create: %s\n", err);
		CHECK(fx->fe != NULL);
		fake_close(fx->fake);
		return -1;
	}
	return 0;
}

static int fixture_open(struct fixture *fx, bool misbehave, uint32_t copy_slots_cap)
{
	return fixture_open_params(fx, (struct zcd_front_params){
		.backend_domid = BACKEND_DOMID,
		.copy_slots_cap = copy_slots_cap,
		.misbehave = misbehave,
	});
}

static void fixture_close(struct fixture *fx)
{
	zcd_front_shutdown(fx->fe);
	zcd_front_destroy(fx->fe);
	fake_close(fx->fake);
	frames_free(&fx->sent);
	frames_free(&fx->got);
}

static int step(struct fixture *fx)
{
	return zcd_front_step(fx->fe, 100);
}

/*
 * Step until event (a watch is noticed at the next wait, so a state change
 * takes one or two steps); returns the last event seen.
 */
static int step_until(struct fixture *fx, int event)
{
	int seen = ZCD_FRONT_IDLE;

	for (int i = 0; i < 3 && seen != event; i++)
		seen = step(fx);
	return seen;
}

/* Offer, let the guest set up, connect; true if it reached Connected. */
static bool connect(struct fixture *fx, const struct offer *o)
{
	backend_offer(fx->fake, o);
	CHECK_EQ(step(fx), ZCD_FRONT_IDLE);
	CHECK_EQ(front_state(fx->fake), XenbusStateInitialised);
	backend_set_state(fx->fake, XenbusStateConnected);
	CHECK_EQ(step(fx), ZCD_FRONT_CONNECTED);
	CHECK_EQ(front_state(fx->fake), XenbusStateConnected);
	return front_state(fx->fake) == XenbusStateConnected;
}

static const struct zcd_front_stats *stats(const struct fixture *fx)
{
	return zcd_front_stats(fx->fe);
}

static void check_return(const struct zcd_ret_desc *r, uint32_t buf_id, uint32_t generation,
			 uint16_t flags)
{
	CHECK_EQ(r->buf_id, buf_id);
	CHECK_EQ(r->generation, generation);
	CHECK_EQ(r->flags, flags);
}

static void expected_sha(const struct frames *fr, char out[ZCD_SHA256_HEX_BYTES])
{
	struct zcd_sha256 ctx;

	zcd_sha256_init(&ctx);
	for (unsigned i = 0; i < fr->count; i++)
		zcd_sha256_update(&ctx, fr->data[i], fr->length[i]);
	zcd_sha256_hex(&ctx, out);
}

/* ---- tests ---- */

static void test_handshake(void)
{
	struct fixture fx;
	struct fake *f;
	char path[ZCD_XS_PATH_MAX];

	if (fixture_open(&fx, false, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	CHECK(strcmp(zcd_front_name(fx.fe), GUEST_NAME) == 0);
	CHECK(strcmp(f->watched, BACKEND_DIR) == 0);
	/* No backend yet: the guest waits and writes nothing. */
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(front_state(f), -1);
	CHECK_EQ(f->map_calls, 0);

	backend_offer(f, &default_offer);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	/* The ring: one writable map call of both pages; channel bound to the backend. */
	CHECK_EQ(f->map_calls, 1);
	CHECK_EQ(f->writable_map_calls, 1);
	CHECK_EQ(fake_live_buffer_maps(f), 1);
	CHECK_EQ(f->maps[0].count, 2);
	CHECK(f->bound);
	CHECK_EQ(f->bind_domid, BACKEND_DOMID);
	CHECK_EQ(f->bind_port, REMOTE_PORT);
	/* Our end, for a backend that restarts and binds to it again. */
	CHECK_EQ(fake_get_u32(f, FRONT_DIR "/event-channel"), LOCAL_PORT);
	/* min(credits 64, copy-slots-max 8) slots of one page, shared, and a
	 * one-page table of their grants published through xenstore. */
	CHECK_EQ(f->share_calls, 2);
	CHECK_EQ(fake_get_u32(f, FRONT_DIR "/copy-slots"), 8);
	CHECK_EQ(fake_get_u32(f, FRONT_DIR "/copy-table-pages"), 1);
	for (unsigned i = 0; i < 8; i++)
		CHECK_EQ(copy_ref(f, i), REF_SHARE + i);
	snprintf(path, sizeof(path), FRONT_DIR "/copy-table-ref%u", 1);
	CHECK_EQ(fake_get_u32(f, path), -1);
	CHECK_EQ(front_state(f), XenbusStateInitialised);

	/* Still InitWait: keep waiting. */
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(front_state(f), XenbusStateInitialised);
	backend_set_state(f, XenbusStateConnected);
	CHECK_EQ(step(&fx), ZCD_FRONT_CONNECTED);
	CHECK_EQ(front_state(f), XenbusStateConnected);
	CHECK_EQ(stats(&fx)->sessions, 1);

	/* Idle: it asks for an event at the next descriptor and sleeps. */
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(f->ring.hdr->rx_event, 1);
	fixture_close(&fx);
}

static void test_copy_slot_count(void)
{
	static const struct {
		uint32_t credits, copy_slots_max, cap, share_limit, buffer_pages, expect;
	} cases[] = {
		{ 64, 8, UINT32_MAX, 1024, 1, 8 }, /* backend's maximum */
		{ 4, 8, UINT32_MAX, 1024, 1, 4 }, /* credits */
		{ 64, 8, 3, 1024, 1, 3 }, /* our option */
		{ 64, 8, UINT32_MAX, 5, 2, 2 }, /* gntalloc's limit: 2 slots + 1 table page */
		{ 64, 8, UINT32_MAX, 4, 2, 1 }, /* 2 slots would need a fifth page */
		{ 64, 8, 0, 1024, 1, 0 }, /* none at all */
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fixture fx;
		struct offer o = default_offer;

		if (fixture_open(&fx, false, cases[i].cap) != 0)
			return;
		fx.fake->share_limit = cases[i].share_limit;
		o.credits = cases[i].credits;
		o.copy_slots_max = cases[i].copy_slots_max;
		o.buffer_pages = cases[i].buffer_pages;
		CHECK(connect(&fx, &o));
		CHECK_EQ(fake_get_u32(fx.fake, FRONT_DIR "/copy-slots"), cases[i].expect);
		/* The copy pages, then the table of their grants. */
		CHECK_EQ(fx.fake->share_calls, cases[i].expect != 0 ? 2 : 0);
		fixture_close(&fx);
	}
}

/* Remapped frames: in order, byte for byte, one map and one unmap call per batch. */
static void test_remapped_batches(void)
{
	struct fixture fx;
	struct fake *f;
	struct zcd_ret_desc ret[64];
	char sha[ZCD_SHA256_HEX_BYTES], want_sha[ZCD_SHA256_HEX_BYTES];
	uint32_t seq = 0;
	uint64_t bytes = 0;

	if (fixture_open(&fx, false, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	if (!connect(&fx, &default_offer))
		goto out;
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE); /* arms the event */

	/* Batch 1: 5 frames of varied length and offset. */
	for (uint32_t b = 0; b < 5; b++, seq++) {
		uint16_t length = (uint16_t)(60 + b * 300);
		struct zcd_rx_desc d = backend_remap(f, &fx.sent, b, 100 + b,
						     (uint16_t)(b * 128), length, seq);

		bytes += length;
		backend_put(f, &d);
	}
	backend_publish(f);
	CHECK(f->event_pending); /* the guest had asked to be woken */
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(stats(&fx)->frames, 5);
	CHECK_EQ(stats(&fx)->remapped, 5);
	CHECK_EQ(stats(&fx)->map_calls, 1);
	CHECK_EQ(stats(&fx)->unmap_calls, 1);
	CHECK_EQ(f->map_calls, 2); /* ring + one batch */
	CHECK_EQ(f->writable_map_calls, 1); /* buffers are mapped read-only */
	CHECK_EQ(fake_live_buffer_maps(f), 1); /* only the ring is still mapped */
	CHECK_EQ(f->bad_unmaps, 0);
	CHECK_EQ(f->ring.hdr->rx_cons, 5);
	CHECK_EQ(backend_take_returns(f, ret, 64), 5);
	for (uint32_t b = 0; b < 5; b++)
		check_return(&ret[b], b, 100 + b, 0);

	/* Batch 2 after an idle step: 12 frames, one call each way again. */
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(f->ring.hdr->rx_event, 6);
	for (uint32_t b = 0; b < 12; b++, seq++) {
		struct zcd_rx_desc d = backend_remap(f, &fx.sent, 10 + b, 7, 0, 1514, seq);

		bytes += 1514;
		backend_put(f, &d);
	}
	backend_publish(f);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(stats(&fx)->map_calls, 2);
	CHECK_EQ(stats(&fx)->unmap_calls, 2);
	CHECK_EQ(backend_take_returns(f, ret, 64), 12);
	for (uint32_t b = 0; b < 12; b++)
		check_return(&ret[b], 10 + b, 7, 0);

	check_frames_equal(&fx.sent, &fx.got);
	CHECK_EQ(stats(&fx)->frames, 17);
	CHECK_EQ(stats(&fx)->bytes, bytes);
	CHECK_EQ(stats(&fx)->returns_sent, 17);
	CHECK_EQ(stats(&fx)->residue_bytes, 0);
	CHECK_EQ(stats(&fx)->bad_descs, 0);
	expected_sha(&fx.sent, want_sha);
	zcd_front_sha256_hex(fx.fe, sha);
	CHECK(strcmp(sha, want_sha) == 0);
out:
	fixture_close(&fx);
}

/* Multi-page buffers map as handle .. handle + nr_pages - 1, contiguously. */
/* notify-poll: the guest never asks for an event and looks at its ring every millisecond. */
static void test_poll_mode(void)
{
	struct fixture fx;
	struct fake *f;
	struct zcd_ret_desc ret[8];
	uint64_t before;

	if (fixture_open(&fx, false, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	backend_offer(f, &default_offer);
	fake_set_u32(f, BACKEND_DIR, ZCD_XS_NOTIFY_POLL, 1);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	backend_set_state(f, XenbusStateConnected);
	CHECK_EQ(step(&fx), ZCD_FRONT_CONNECTED);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	before = f->now_ms;
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(f->ring.hdr->rx_event, 1); /* as the backend formatted it: never armed */
	CHECK_EQ(f->now_ms - before, 1); /* waited one poll interval, not until a recheck */
	for (uint32_t b = 0; b < 3; b++) {
		struct zcd_rx_desc d = backend_remap(f, &fx.sent, b, 1, 0, 60, b);

		backend_put(f, &d);
	}
	backend_publish(f);
	f->event_pending = false; /* a polled guest gets no event */
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(stats(&fx)->frames, 3);
	CHECK_EQ(f->ring.hdr->rx_event, 1);
	CHECK_EQ(backend_take_returns(f, ret, 8), 3);
	fixture_close(&fx);
}

static void test_multi_page_buffers(void)
{
	struct fixture fx;
	struct fake *f;
	struct offer o = default_offer;
	struct zcd_ret_desc ret[8];

	o.buffer_pages = 3;
	if (fixture_open(&fx, false, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	if (!connect(&fx, &o))
		goto out;
	for (uint32_t b = 0; b < 4; b++) {
		/* A jumbo frame crossing both page boundaries. */
		struct zcd_rx_desc d = backend_remap(f, &fx.sent, b, 1, 100, 9018, b);

		backend_put(f, &d);
	}
	backend_publish(f);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	check_frames_equal(&fx.sent, &fx.got);
	CHECK_EQ(stats(&fx)->map_calls, 1);
	CHECK_EQ(stats(&fx)->unmap_calls, 1);
	CHECK_EQ(stats(&fx)->residue_bytes, 0);
	CHECK_EQ(backend_take_returns(f, ret, 8), 4);
out:
	fixture_close(&fx);
}

/* Copied frames live in our shared pages: no grant calls, returns flagged COPY. */
static void test_copy_frames(void)
{
	struct fixture fx;
	struct fake *f;
	struct zcd_ret_desc ret[16];
	struct zcd_rx_desc d;

	if (fixture_open(&fx, false, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	if (!connect(&fx, &default_offer))
		goto out;
	d = backend_remap(f, &fx.sent, 3, 30, 0, 200, 0);
	backend_put(f, &d);
	for (uint32_t slot = 0; slot < 3; slot++) {
		d = backend_copy(f, &fx.sent, slot, 50 + slot, (uint16_t)(64 + slot), 1 + slot);
		backend_put(f, &d);
	}
	backend_publish(f);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	check_frames_equal(&fx.sent, &fx.got);
	CHECK_EQ(stats(&fx)->copied, 3);
	CHECK_EQ(stats(&fx)->remapped, 1);
	CHECK_EQ(stats(&fx)->map_calls, 1);
	CHECK_EQ(stats(&fx)->unmap_calls, 1);
	CHECK_EQ(backend_take_returns(f, ret, 16), 4);
	check_return(&ret[0], 3, 30, 0);
	for (uint32_t slot = 0; slot < 3; slot++)
		check_return(&ret[1 + slot], slot, 50 + slot, ZCD_RETF_COPY);

	/* A batch of copies only makes no grant call at all. */
	d = backend_copy(f, &fx.sent, 7, 9, 1500, 10);
	backend_put(f, &d);
	backend_publish(f);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(stats(&fx)->map_calls, 1);
	CHECK_EQ(stats(&fx)->unmap_calls, 1);
	check_frames_equal(&fx.sent, &fx.got);
	CHECK_EQ(stats(&fx)->residue_bytes, 0);
out:
	fixture_close(&fx);
}

/* Malformed descriptors are counted, neither delivered nor returned; the rest go on. */
static void test_bad_descriptors(void)
{
	struct fixture fx;
	struct fake *f;
	struct offer o = default_offer;
	struct zcd_ret_desc ret[16];
	struct zcd_rx_desc good1, good2, copy_ok, bad;

	o.buffer_pages = 2;
	if (fixture_open(&fx, false, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	if (!connect(&fx, &o))
		goto out;
	good1 = backend_remap(f, &fx.sent, 0, 1, 0, 100, 0);
	backend_put(f, &good1);
	bad = backend_remap(f, NULL, 1, 1, 0, 100, 1);
	bad.nr_pages = 1; /* not buffer-pages */
	backend_put(f, &bad);
	bad.nr_pages = 2;
	bad.length = 0;
	backend_put(f, &bad);
	bad.length = 200;
	bad.offset = 2 * PAGE - 199; /* one byte past the buffer */
	backend_put(f, &bad);
	bad.offset = 0;
	bad.handle = UINT32_MAX; /* references would wrap */
	backend_put(f, &bad);
	bad = backend_copy(f, NULL, 0, 1, 100, 2);
	bad.buf_id = 8; /* slot 8 of 8 */
	bad.handle = 8 * 2;
	backend_put(f, &bad);
	bad = backend_copy(f, NULL, 1, 1, 100, 2);
	bad.handle = 3; /* not slot 1's first page */
	backend_put(f, &bad);
	copy_ok = backend_copy(f, &fx.sent, 2, 4, 300, 3);
	backend_put(f, &copy_ok);
	good2 = backend_remap(f, &fx.sent, 5, 6, 2 * PAGE - 60, 60, 4); /* ends exactly at the end */
	backend_put(f, &good2);
	backend_publish(f);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(stats(&fx)->bad_descs, 6);
	CHECK_EQ(stats(&fx)->frames, 3);
	check_frames_equal(&fx.sent, &fx.got);
	CHECK_EQ(stats(&fx)->map_calls, 1);
	CHECK_EQ(stats(&fx)->unmap_calls, 1);
	CHECK_EQ(f->ring.hdr->rx_cons, 9); /* every slot consumed */
	CHECK_EQ(backend_take_returns(f, ret, 16), 3);
	check_return(&ret[0], 0, 1, 0);
	check_return(&ret[1], 2, 4, ZCD_RETF_COPY);
	check_return(&ret[2], 5, 6, 0);
out:
	fixture_close(&fx);
}

/* A grant that does not map fails the batch call; buffer-by-buffer finds it. */
static void test_unmappable_grant(void)
{
	struct fixture fx;
	struct fake *f;
	struct zcd_ret_desc ret[8];

	if (fixture_open(&fx, false, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	if (!connect(&fx, &default_offer))
		goto out;
	for (uint32_t b = 0; b < 4; b++) {
		struct zcd_rx_desc d = backend_remap(f, b == 1 ? NULL : &fx.sent, b, 2, 0, 80, b);

		backend_put(f, &d);
	}
	f->bad_ref[REF_POOL + 1] = true;
	backend_publish(f);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(stats(&fx)->bad_descs, 1);
	CHECK_EQ(stats(&fx)->map_calls, 1 + 4);
	CHECK_EQ(f->failed_map_calls, 2);
	CHECK_EQ(stats(&fx)->unmap_calls, 3);
	CHECK_EQ(fake_live_buffer_maps(f), 1);
	CHECK_EQ(f->bad_unmaps, 0);
	check_frames_equal(&fx.sent, &fx.got);
	CHECK_EQ(backend_take_returns(f, ret, 8), 3);
	check_return(&ret[0], 0, 2, 0);
	check_return(&ret[1], 2, 2, 0);
	check_return(&ret[2], 3, 2, 0);
out:
	fixture_close(&fx);
}

/* Bytes an earlier frame left in a page are counted, in pool buffers and copy slots. */
static void test_residue(void)
{
	struct fixture fx;
	struct fake *f;
	struct zcd_rx_desc d;
	uint8_t *page;

	if (fixture_open(&fx, false, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	if (!connect(&fx, &default_offer))
		goto out;
	d = backend_remap(f, &fx.sent, 0, 1, 200, 100, 0);
	page = fake_page(f, d.handle);
	memset(page + 10, 0xaa, 5); /* before the frame */
	memset(page + 300, 0x01, 3); /* right after it */
	page[PAGE - 1] = 0xff; /* at the very end */
	backend_put(f, &d);
	d = backend_copy(f, &fx.sent, 1, 1, 64, 1);
	page = fake_page(f, (uint32_t)copy_ref(f, 1));
	memset(page + 64, 0x55, 7); /* a longer earlier frame, not scrubbed */
	backend_put(f, &d);
	backend_publish(f);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(stats(&fx)->residue_bytes, 5 + 3 + 1 + 7);
	check_frames_equal(&fx.sent, &fx.got);
	CHECK_EQ(stats(&fx)->returns_sent, 2);
out:
	fixture_close(&fx);
}

/* Expected returns of the k-th remapped frame (buffer id, generation) under --misbehave. */
static unsigned expect_misbehave(uint64_t k, uint32_t buf_id, uint32_t generation,
				 struct zcd_ret_desc *out)
{
	unsigned n = 0;

	if (k % 10 == 9)
		return 0;
	out[n++] = (struct zcd_ret_desc){ .buf_id = buf_id, .generation = generation };
	if (k % 10 == 3)
		out[n++] = (struct zcd_ret_desc){ .buf_id = 0xfffffff0U, .generation = 1 };
	else if (k % 10 == 5)
		out[n++] = (struct zcd_ret_desc){ .buf_id = buf_id, .generation = generation };
	else if (k % 10 == 7)
		out[n++] = (struct zcd_ret_desc){ .buf_id = buf_id, .generation = generation - 1 };
	return n;
}

/*
 * Credit announcements are read and reported.  A behaving guest holds
 * nothing between batches; a misbehaving one keeps what it withheld when
 * asked to give buffers back, and says how many it kept.
 */
static void check_credit_news(bool misbehave)
{
	struct fixture fx;
	struct fake *f;
	struct zcd_ret_desc ret[32];

	if (fixture_open(&fx, misbehave, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	if (!connect(&fx, &default_offer))
		goto out;
	CHECK_EQ(stats(&fx)->credit_limit, 64);
	for (uint32_t k = 0; k < 20; k++) {
		struct zcd_rx_desc d = backend_remap(f, &fx.sent, k, 7, 0, 64, k);

		backend_put(f, &d);
	}
	backend_publish(f);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	backend_take_returns(f, ret, 32);
	CHECK_EQ(stats(&fx)->withheld, misbehave ? 2 : 0); /* k = 9, 19 */

	/* Down to 1: the backend asks for what is held above it. */
	zcd_ring_announce_credits(&f->ring, 1, 1);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(stats(&fx)->credit_news, 1);
	CHECK_EQ(stats(&fx)->credit_limit, 1);
	CHECK_EQ(stats(&fx)->give_back_ignored, misbehave ? 1 : 0);
	CHECK_EQ(backend_take_returns(f, ret, 32), 0);

	/* Back up: news, nothing asked. */
	zcd_ring_announce_credits(&f->ring, 64, 0);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(stats(&fx)->credit_news, 2);
	CHECK_EQ(stats(&fx)->credit_limit, 64);
	CHECK_EQ(stats(&fx)->give_back_ignored, misbehave ? 1 : 0);
out:
	fixture_close(&fx);
}

static void test_credit_news(void)
{
	check_credit_news(false);
	check_credit_news(true);
}

/* The misbehave schedule: exact counts, exact return sequence, withheld stay mapped. */
static void test_misbehave_schedule(void)
{
	static const unsigned batches[] = { 7, 1, 1, 11, 10, 5 };
	static const unsigned map_calls_per_batch[] = { 1, 1, 1, 2, 2, 1 };
	static const unsigned unmap_calls_per_batch[] = { 1, 1, 0, 1, 1, 1 };
	struct fixture fx;
	struct fake *f;
	struct zcd_ret_desc want[128], got[128];
	unsigned nb_want = 0, nb_got = 0;
	uint64_t k = 0;
	unsigned map_calls = 0, unmap_calls = 0;

	if (fixture_open(&fx, true, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	if (!connect(&fx, &default_offer))
		goto out;
	for (unsigned b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		for (unsigned i = 0; i < batches[b]; i++) {
			uint32_t buf_id = (uint32_t)k;
			uint32_t generation = 1000 + (uint32_t)k;
			struct zcd_rx_desc d =
				backend_remap(f, &fx.sent, buf_id, generation, 0, 64, (uint32_t)k);

			backend_put(f, &d);
			k++;
			nb_want += expect_misbehave(k, buf_id, generation, want + nb_want);
		}
		/* A copied frame in between is not a remapped frame: k does not move. */
		if (b == 2) {
			struct zcd_rx_desc d = backend_copy(f, &fx.sent, 0, 5, 64, 999);

			backend_put(f, &d);
			want[nb_want++] = (struct zcd_ret_desc){ .buf_id = 0, .generation = 5,
								  .flags = ZCD_RETF_COPY };
		}
		backend_publish(f);
		CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
		map_calls += map_calls_per_batch[b];
		unmap_calls += unmap_calls_per_batch[b];
		CHECK_EQ(stats(&fx)->map_calls, map_calls);
		CHECK_EQ(stats(&fx)->unmap_calls, unmap_calls);
		nb_got += backend_take_returns(f, got + nb_got, 128 - nb_got);
	}
	CHECK_EQ(k, 35);
	CHECK_EQ(stats(&fx)->remapped, 35);
	CHECK_EQ(stats(&fx)->copied, 1);
	CHECK_EQ(stats(&fx)->forged_sent, 4); /* k = 3, 13, 23, 33 */
	CHECK_EQ(stats(&fx)->duplicate_sent, 4); /* 5, 15, 25, 35 */
	CHECK_EQ(stats(&fx)->stale_sent, 3); /* 7, 17, 27 */
	CHECK_EQ(stats(&fx)->withheld, 3); /* 9, 19, 29 */
	CHECK_EQ(stats(&fx)->returns_sent, 35 - 3 + 1);
	CHECK_EQ(nb_got, nb_want);
	for (unsigned i = 0; i < nb_got && i < nb_want; i++)
		check_return(&got[i], want[i].buf_id, want[i].generation, want[i].flags);
	check_frames_equal(&fx.sent, &fx.got);
	/* The withheld buffers are still mapped, each on its own. */
	CHECK_EQ(fake_live_buffer_maps(f), 1 + 3);

	/* The backend closes: they are unmapped then, one call each. */
	backend_set_state(f, XenbusStateClosing);
	CHECK_EQ(step_until(&fx, ZCD_FRONT_DISCONNECTED), ZCD_FRONT_DISCONNECTED);
	CHECK_EQ(stats(&fx)->unmap_calls, unmap_calls + 3);
	CHECK_EQ(f->nb_maps, 0);
	CHECK_EQ(f->bad_unmaps, 0);
	CHECK_EQ(front_state(f), XenbusStateClosed);
out:
	fixture_close(&fx);
}

/*
 * Misbehaving with an unmappable grant in the batch: the numbering shifts,
 * so every buffer is mapped alone and the one that really is k = 9 is kept.
 */
static void test_misbehave_with_bad_grant(void)
{
	struct fixture fx;
	struct fake *f;
	struct zcd_ret_desc got[32];
	unsigned n;

	if (fixture_open(&fx, true, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	if (!connect(&fx, &default_offer))
		goto out;
	for (uint32_t b = 0; b < 10; b++) {
		struct zcd_rx_desc d = backend_remap(f, b == 2 ? NULL : &fx.sent, b, 1, 0, 64, b);

		backend_put(f, &d);
	}
	f->bad_ref[REF_POOL + 2] = true;
	backend_publish(f);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(stats(&fx)->bad_descs, 1);
	CHECK_EQ(stats(&fx)->remapped, 9);
	/* predicted candidate (buffer 8) + failed batch call + nine one by one */
	CHECK_EQ(stats(&fx)->map_calls, 1 + 1 + 9);
	CHECK_EQ(stats(&fx)->withheld, 1);
	CHECK_EQ(stats(&fx)->unmap_calls, 8);
	CHECK_EQ(fake_live_buffer_maps(f), 1 + 1);
	CHECK_EQ(stats(&fx)->forged_sent, 1);
	CHECK_EQ(stats(&fx)->duplicate_sent, 1);
	CHECK_EQ(stats(&fx)->stale_sent, 1);
	n = backend_take_returns(f, got, 32);
	/* k per buffer: 0->1 1->2 3->3 (+forged) 4->4 5->5 (+dup) 6->6 7->7 (+stale) 8->8;
	 * buffer 9 is k = 9 and kept. */
	CHECK_EQ(n, 8 + 3);
	if (n == 11) {
		check_return(&got[2], 3, 1, 0);
		check_return(&got[3], 0xfffffff0U, 1, 0);
		check_return(&got[9], 7, 0, 0);
		check_return(&got[10], 8, 1, 0);
	}
	check_frames_equal(&fx.sent, &fx.got);
out:
	fixture_close(&fx);
}

/* A full return ring: returns wait, no new batch is taken, nothing is lost. */
static void test_return_ring_full(void)
{
	struct fixture fx;
	struct fake *f;
	struct offer o = default_offer;
	struct zcd_ret_desc ret[16];
	unsigned n;

	o.rx_size = 16;
	o.ret_size = 4;
	o.credits = 16;
	if (fixture_open(&fx, false, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	if (!connect(&fx, &o))
		goto out;
	for (uint32_t b = 0; b < 10; b++) {
		struct zcd_rx_desc d = backend_remap(f, &fx.sent, b, 3, 0, 64, b);

		backend_put(f, &d);
	}
	backend_publish(f);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(stats(&fx)->frames, 10);
	CHECK_EQ(stats(&fx)->returns_sent, 4);
	/* More frames arrive, but the guest first waits for return space. */
	for (uint32_t b = 10; b < 12; b++) {
		struct zcd_rx_desc d = backend_remap(f, &fx.sent, b, 3, 0, 64, b);

		backend_put(f, &d);
	}
	backend_publish(f);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(stats(&fx)->frames, 10);
	n = backend_take_returns(f, ret, 16);
	CHECK_EQ(n, 4);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE); /* 4 more returns */
	CHECK_EQ(stats(&fx)->returns_sent, 8);
	n += backend_take_returns(f, ret + n, 16 - n);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE); /* last 2, then the next batch (2 returns) */
	n += backend_take_returns(f, ret + n, 16 - n);
	CHECK_EQ(stats(&fx)->frames, 12);
	CHECK_EQ(stats(&fx)->returns_sent, 12);
	CHECK_EQ(n, 12);
	for (uint32_t b = 0; b < n; b++)
		check_return(&ret[b], b, 3, 0);
	check_frames_equal(&fx.sent, &fx.got);
out:
	fixture_close(&fx);
}

/* Returns notify the backend only when it asked (ret_event). */
static void test_return_notification(void)
{
	struct fixture fx;
	struct fake *f;
	struct zcd_rx_desc d;

	if (fixture_open(&fx, false, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	if (!connect(&fx, &default_offer))
		goto out;
	d = backend_remap(f, &fx.sent, 0, 1, 0, 64, 0);
	backend_put(f, &d);
	backend_publish(f);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(f->notifies, 0); /* a polling backend asks for nothing */
	f->ring.hdr->ret_event = f->ring.hdr->ret_prod + 1;
	d = backend_remap(f, &fx.sent, 1, 1, 0, 64, 1);
	backend_put(f, &d);
	backend_publish(f);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(f->notifies, 1);
out:
	fixture_close(&fx);
}

/* An impossible producer index ends the session; everything is released. */
static void test_broken_ring(void)
{
	struct fixture fx;
	struct fake *f;

	if (fixture_open(&fx, false, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	if (!connect(&fx, &default_offer))
		goto out;
	f->ring.hdr->rx_prod = 64 + 5;
	CHECK_EQ(step(&fx), ZCD_FRONT_DISCONNECTED);
	CHECK_STR_CONTAINS(zcd_front_reason(fx.fe), "impossible");
	CHECK_EQ(f->nb_maps, 0);
	CHECK(!f->bound);
	CHECK_EQ(front_state(f), XenbusStateClosed);
out:
	fixture_close(&fx);
}

/* --scribble-session: the ring's indices are impossible once that session connects. */
static void test_scribble_session(void)
{
	struct fixture fx;
	struct fake *f;
	bool broken = false;

	if (fixture_open_params(&fx, (struct zcd_front_params){.backend_domid = BACKEND_DOMID,
							       .copy_slots_cap = UINT32_MAX,
							       .scribble_session = 1}) != 0)
		return;
	f = fx.fake;
	if (!connect(&fx, &default_offer))
		goto out;
	CHECK_EQ(stats(&fx)->scribbled, 1);
	zcd_ret_ready(&f->ring, &broken);
	CHECK(broken);
	CHECK_EQ(f->ring.hdr->rx_cons, 0x80000000u);
	/* The backend cuts it off: the session ends like any other. */
	backend_set_state(f, XenbusStateClosing);
	CHECK_EQ(step_until(&fx, ZCD_FRONT_DISCONNECTED), ZCD_FRONT_DISCONNECTED);
	CHECK_EQ(front_state(f), XenbusStateClosed);
out:
	fixture_close(&fx);
}

/* The backend closes, restarts with a different ring, and the guest reconnects. */
static void test_rehandshake(void)
{
	struct fixture fx;
	struct fake *f;
	struct offer second = default_offer;
	struct zcd_ret_desc ret[16];
	struct zcd_rx_desc d;
	char sha[ZCD_SHA256_HEX_BYTES], want_sha[ZCD_SHA256_HEX_BYTES];

	if (fixture_open(&fx, false, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	if (!connect(&fx, &default_offer))
		goto out;
	for (uint32_t b = 0; b < 3; b++) {
		d = backend_remap(f, &fx.sent, b, 1, 0, 64, b);
		backend_put(f, &d);
	}
	backend_publish(f);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	backend_set_state(f, XenbusStateClosing);
	CHECK_EQ(step_until(&fx, ZCD_FRONT_DISCONNECTED), ZCD_FRONT_DISCONNECTED);
	CHECK_STR_CONTAINS(zcd_front_reason(fx.fe), "Closing");
	CHECK_EQ(f->nb_maps, 0);
	CHECK_EQ(f->unshare_calls, 2); /* the copy pages and their table */
	CHECK_EQ(f->unbinds, 1);
	CHECK_EQ(front_state(f), XenbusStateClosed);
	CHECK_EQ(stats(&fx)->frames, 3);

	/* Closed backend: nothing happens. */
	backend_set_state(f, XenbusStateClosed);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(f->binds, 1);

	/* A new dataplane: other ring pages, sizes and geometry. */
	second.ring_ref = REF_RING2;
	second.rx_size = 128;
	second.ret_size = 256;
	second.buffer_pages = 2;
	second.copy_slots_max = 4;
	CHECK(connect(&fx, &second));
	CHECK_EQ(stats(&fx)->sessions, 2);
	CHECK_EQ(f->binds, 2);
	CHECK_EQ(fake_get_u32(f, FRONT_DIR "/copy-slots"), 4);
	for (uint32_t b = 0; b < 4; b++) {
		d = backend_remap(f, &fx.sent, b, 2, 0, 5000, 100 + b);
		backend_put(f, &d);
	}
	d = backend_copy(f, &fx.sent, 3, 8, 6000, 200);
	backend_put(f, &d);
	backend_publish(f);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(f->ring.hdr->rx_cons, 5); /* the new ring, from index 0 */
	CHECK_EQ(backend_take_returns(f, ret, 16), 5);
	check_return(&ret[4], 3, 8, ZCD_RETF_COPY);
	check_frames_equal(&fx.sent, &fx.got);
	CHECK_EQ(stats(&fx)->frames, 8);
	CHECK_EQ(stats(&fx)->residue_bytes, 0);
	expected_sha(&fx.sent, want_sha);
	zcd_front_sha256_hex(fx.fe, sha);
	CHECK(strcmp(sha, want_sha) == 0);
out:
	fixture_close(&fx);
}

/* The backend's directory vanishing (its domain destroyed) ends the session too. */
static void test_backend_vanishes(void)
{
	struct fixture fx;
	struct fake *f;

	if (fixture_open(&fx, false, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	if (!connect(&fx, &default_offer))
		goto out;
	fake_remove_dir(f, BACKEND_DIR);
	CHECK_EQ(step_until(&fx, ZCD_FRONT_DISCONNECTED), ZCD_FRONT_DISCONNECTED);
	CHECK_STR_CONTAINS(zcd_front_reason(fx.fe), "absent");
	CHECK_EQ(f->nb_maps, 0);
	CHECK(!f->bound);
	CHECK_EQ(front_state(f), XenbusStateClosed);
out:
	fixture_close(&fx);
}

/* Without any watch event the guest still notices within the re-check interval. */
static void test_recheck_without_watch(void)
{
	struct fixture fx;
	struct fake *f;

	if (fixture_open(&fx, false, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	if (!connect(&fx, &default_offer))
		goto out;
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	backend_set_state(f, XenbusStateClosing);
	f->watch_fired = false; /* the event got lost */
	for (int i = 0; i < 20 && front_state(f) != XenbusStateClosed; i++)
		step(&fx);
	CHECK_EQ(front_state(f), XenbusStateClosed);
out:
	fixture_close(&fx);
}

/* A failed wait ends the session (and is fatal only with no session to end). */
static void test_wait_failure(void)
{
	struct fixture fx;
	struct fake *f;

	if (fixture_open(&fx, false, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	if (!connect(&fx, &default_offer))
		goto out;
	f->fail_wait = true;
	CHECK_EQ(step(&fx), ZCD_FRONT_DISCONNECTED);
	CHECK_STR_CONTAINS(zcd_front_reason(fx.fe), "waiting for events failed");
	CHECK_EQ(front_state(f), XenbusStateClosed);
	CHECK_EQ(f->nb_maps, 0);
	CHECK(!f->bound);
	CHECK_EQ(step(&fx), -1);
	f->fail_wait = false;
out:
	fixture_close(&fx);
}

/* A buffer that cannot be unmapped ends the session after its batch; reconnecting waits. */
static void test_unmap_failure(void)
{
	struct fixture fx;
	struct fake *f;
	struct zcd_ret_desc ret[4];
	struct zcd_rx_desc d;
	uint64_t failed_at;

	if (fixture_open(&fx, false, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	if (!connect(&fx, &default_offer))
		goto out;
	d = backend_remap(f, &fx.sent, 0, 1, 0, 64, 0);
	backend_put(f, &d);
	backend_publish(f);
	f->fail_next_unmap = true;
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(backend_take_returns(f, ret, 4), 1);
	CHECK_EQ(step(&fx), ZCD_FRONT_DISCONNECTED);
	CHECK_STR_CONTAINS(zcd_front_reason(fx.fe), "cannot unmap a batch");
	CHECK_EQ(front_state(f), XenbusStateClosed);
	failed_at = f->now_ms;
	backend_offer(f, &default_offer);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(front_state(f), XenbusStateClosed); /* not before the pause */
	for (int i = 0; i < 30 && front_state(f) != XenbusStateInitialised; i++)
		step(&fx);
	CHECK_EQ(front_state(f), XenbusStateInitialised);
	CHECK(f->now_ms >= failed_at + 1000);
out:
	fixture_close(&fx);
}

/* A bad offer fails the handshake cleanly, and is retried only after a pause. */
static void test_handshake_failures(void)
{
	struct fixture fx;
	struct fake *f;
	uint64_t failed_at;

	if (fixture_open(&fx, false, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	backend_offer(f, &default_offer);
	f->ring.hdr->magic = 0; /* not a ring */
	CHECK_EQ(step(&fx), ZCD_FRONT_HANDSHAKE_FAILED);
	CHECK_STR_CONTAINS(zcd_front_reason(fx.fe), "ring header");
	CHECK_EQ(front_state(f), XenbusStateClosed);
	CHECK_EQ(f->nb_maps, 0);
	CHECK(!f->bound);
	failed_at = f->now_ms;
	/* Pausing, not retrying at once (the first wait only drains the watch). */
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	CHECK_EQ(f->map_calls, 1);
	CHECK(f->now_ms > failed_at);

	/* The backend fixes its ring; after the pause the guest connects. */
	backend_offer(f, &default_offer);
	for (int i = 0; i < 30 && front_state(f) != XenbusStateInitialised; i++)
		step(&fx);
	CHECK_EQ(front_state(f), XenbusStateInitialised);
	CHECK(f->now_ms >= failed_at + 1000);

	/* The backend gives up before connecting: Closed again, nothing held. */
	backend_set_state(f, XenbusStateClosing);
	CHECK_EQ(step(&fx), ZCD_FRONT_HANDSHAKE_FAILED);
	CHECK_STR_CONTAINS(zcd_front_reason(fx.fe), "before connecting");
	CHECK_EQ(front_state(f), XenbusStateClosed);
	CHECK_EQ(f->nb_maps, 0);
	CHECK_EQ(stats(&fx)->sessions, 0);

	/* Missing keys and a wrong protocol are refused before anything is mapped. */
	backend_offer(f, &default_offer);
	fake_set(f, BACKEND_DIR "/protocol", "2");
	f->now_ms += 5000;
	CHECK_EQ(step(&fx), ZCD_FRONT_HANDSHAKE_FAILED);
	CHECK_STR_CONTAINS(zcd_front_reason(fx.fe), "protocol");
	backend_offer(f, &default_offer);
	fake_set(f, BACKEND_DIR "/buffer-pages", "x1");
	f->now_ms += 5000;
	CHECK_EQ(step(&fx), ZCD_FRONT_HANDSHAKE_FAILED);
	CHECK_STR_CONTAINS(zcd_front_reason(fx.fe), "buffer-pages");
	CHECK_EQ(f->nb_maps, 0);
	fixture_close(&fx);
}

/* A state left by a crashed instance is retracted; shutdown goes Closing -> Closed. */
static void test_stale_state_and_shutdown(void)
{
	struct fake *f = fake_open();
	struct frames got = { .count = 0 };
	struct zcd_front_params params = {
		.backend_domid = BACKEND_DOMID, .copy_slots_cap = UINT32_MAX,
		.deliver = record_frame, .deliver_ctx = &got,
	};
	struct zcd_front *fe;
	char err[256];

	if (f == NULL) {
		CHECK(f != NULL);
		return;
	}
	fake_set(f, FRONT_DIR "/state", "4");
	fe = zcd_front_create(&params, &fake_ops, f, err, sizeof(err));
	CHECK(fe != NULL);
	if (fe == NULL)
		goto out;
	CHECK_EQ(front_state(f), XenbusStateClosed);
	backend_offer(f, &default_offer);
	CHECK_EQ(zcd_front_step(fe, 0), ZCD_FRONT_IDLE);
	backend_set_state(f, XenbusStateConnected);
	CHECK_EQ(zcd_front_step(fe, 0), ZCD_FRONT_CONNECTED);
	f->nb_front_states = 0;
	CHECK_EQ(zcd_front_shutdown(fe), 0);
	CHECK_EQ(f->nb_front_states, 2);
	CHECK_EQ(f->front_states[0], XenbusStateClosing);
	CHECK_EQ(f->front_states[1], XenbusStateClosed);
	CHECK_EQ(f->nb_maps, 0);
	CHECK(!f->bound);
	/* Twice is harmless and writes nothing. */
	CHECK_EQ(zcd_front_shutdown(fe), 0);
	CHECK_EQ(f->nb_front_states, 2);
	zcd_front_destroy(fe);
out:
	frames_free(&got);
	fake_close(f);
}

static void test_report_line(void)
{
	struct fixture fx;
	struct fake *f;
	struct zcd_rx_desc d;
	char line[1024], want[1024], sha[ZCD_SHA256_HEX_BYTES];

	if (fixture_open(&fx, false, UINT32_MAX) != 0)
		return;
	f = fx.fake;
	if (!connect(&fx, &default_offer))
		goto out;
	d = backend_remap(f, &fx.sent, 0, 1, 0, 100, 0);
	backend_put(f, &d);
	d = backend_copy(f, &fx.sent, 0, 1, 60, 1);
	backend_put(f, &d);
	backend_publish(f);
	CHECK_EQ(step(&fx), ZCD_FRONT_IDLE);
	expected_sha(&fx.sent, sha);
	snprintf(want, sizeof(want),
		 "ZCD-GUEST name=" GUEST_NAME " session=1 frames=2 bytes=160 remapped=1 "
		 "copied=1 residue_bytes=0 bad_descs=0 map_calls=1 unmap_calls=1 "
		 "returns_sent=2 forged_sent=0 duplicate_sent=0 stale_sent=0 withheld=0 "
		 "credit_limit=64 credit_news=0 give_back_ignored=0 sha256=%s", sha);
	zcd_front_format_report(fx.fe, line, sizeof(line));
	CHECK(strcmp(line, want) == 0);
	if (strcmp(line, want) != 0)
		fprintf(stderr, "got:  %s\nwant: %s\n", line, want);
out:
	fixture_close(&fx);
}

int main(void)
{
	test_handshake();
	test_copy_slot_count();
	test_remapped_batches();
	test_poll_mode();
	test_multi_page_buffers();
	test_copy_frames();
	test_bad_descriptors();
	test_unmappable_grant();
	test_residue();
	test_misbehave_schedule();
	test_misbehave_with_bad_grant();
	test_credit_news();
	test_return_ring_full();
	test_return_notification();
	test_broken_ring();
	test_scribble_session();
	test_rehandshake();
	test_backend_vanishes();
	test_recheck_without_watch();
	test_wait_failure();
	test_unmap_failure();
	test_handshake_failures();
	test_stale_state_and_shutdown();
	test_report_line();
	return check_report("test_guest_frontend");
}
