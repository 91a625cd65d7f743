/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zcdemux guest frontend: handshake (include/zcdemux/xenbus.h), ring
 * consumption and batching (include/zcdemux/ring.h).  See zcd_front.h.
 *
 * Control path: create, the handshake and teardown inside step, shutdown
 * (xenstore reads and writes, allocation).  Receive path: one batch per
 * step, with one grant-map call, one grant-unmap call, one return publish
 * and at most one notification per batch; no allocation.
 *
 * The backend is treated as hostile: descriptors are copied out before they
 * are checked, every index it writes is bounded, a batch whose grants do not
 * all map is mapped buffer by buffer so that one bad reference costs only its
 * own frame.
 */
#include "zcd_front.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xen/io/xenbus.h>

#include "sha256.h"
#include "zcdemux/ring.h"
#include "zcdemux/xenbus.h"

#define FRONT_RECHECK_MS 1000 /* re-read the backend state at least this often */
#define FRONT_RETRY_MS 1000 /* pause after a failed handshake */
#define FRONT_RETURN_WAIT_MS 1 /* nap while the backend drains a full return ring */
#define FRONT_POLL_MS 1 /* notify-poll: look at the ring this often when idle */
#define FRONT_BATCH_MAX 256U /* descriptors per batch (bounds one grant-map call) */
#define FRONT_RING_PAGES_MAX 256U
#define FRONT_REFS_PER_PAGE (ZCD_PAGE_SIZE / 4U) /* uint32_t grant references */
#define FRONT_COPY_TABLE_PAGES_MAX 16U /* 16384 copy pages */
#define FRONT_BUFFER_PAGES_MAX 16U /* 64 KiB: more than any frame needs */
#define FRONT_WITHHELD_MAX 65536U
#define FRONT_NAME_MAX 128

/* Misbehave mode's forged return names a buffer no pool has. */
#define FORGED_BUF_ID 0xfffffff0U
#define FORGED_GENERATION 1U

enum front_phase {
	PHASE_WAIT_BACKEND, /* no session: waiting for the backend's InitWait */
	PHASE_WAIT_CONNECTED, /* we are Initialised: waiting for the backend's Connected */
	PHASE_CONNECTED, /* frames flow */
};

/* Why a return is on the queue; counted when it is actually put on the ring. */
enum return_kind { RET_GENUINE, RET_FORGED, RET_DUPLICATE, RET_STALE };

/* One descriptor of the batch being processed. */
struct front_item {
	struct zcd_rx_desc desc; /* our copy, checked */
	uint8_t *pages; /* the buffer's first page as we see it; NULL: not deliverable */
	bool copy; /* in a copy slot rather than a remapped pool buffer */
	bool own_mapping; /* mapped by a call of its own: can be kept or unmapped alone */
	bool withhold_candidate; /* misbehave: predicted k % 10 == 9, mapped on its own */
};

struct front_mapping {
	void *addr;
	uint32_t pages;
};

/* Everything one session holds; all zero between sessions. */
struct front_session {
	uint32_t ring_pages;
	uint32_t ring_refs[FRONT_RING_PAGES_MAX];
	uint32_t remote_port;
	uint32_t buffer_pages;
	uint32_t copy_slots_max; /* the backend's limit */
	bool poll_mode; /* the backend sends no events (notify-poll) */

	void *ring_area; /* mapped ring, ring_pages pages */
	struct zcd_ring ring; /* our private view */
	bool bound;

	uint32_t copy_slots;
	uint8_t *copy_area; /* copy_slots * buffer_pages pages shared with the backend */
	uint32_t *copy_refs;
	uint32_t *copy_table; /* copy_refs as the backend reads them, shared too */
	uint32_t copy_table_pages;
	uint32_t copy_table_refs[FRONT_COPY_TABLE_PAGES_MAX];

	uint32_t batch_max;
	struct front_item *items; /* batch_max */
	uint32_t *group_refs; /* batch_max * buffer_pages: the one-call mapping */

	struct zcd_ret_desc *returns; /* 2 * batch_max: a batch's returns not yet on the ring */
	uint8_t *return_kinds;
	uint32_t nb_returns;
	uint32_t returns_put; /* of nb_returns, already on the ring */

	struct front_mapping *withheld; /* misbehave: buffers kept until the session ends */
	uint32_t nb_withheld;
	uint32_t withheld_cap;

	bool failed; /* a Xen call failed mid-session: end it at the next step */
};

struct zcd_front {
	struct zcd_front_params params;
	const struct zcd_front_io_ops *ops;
	void *io;

	uint32_t domid;
	char name[FRONT_NAME_MAX];
	char front_dir[ZCD_XS_PATH_MAX];
	char backend_dir[ZCD_XS_PATH_MAX];

	enum front_phase phase;
	bool recheck; /* a watch fired: re-read the backend state */
	uint64_t last_check_ms;
	uint64_t retry_at_ms;

	struct front_session s;
	struct zcd_front_stats stats;
	struct zcd_sha256 sha;
	char reason[256];
};

static void set_reason(struct zcd_front *fe, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void add_reason(struct zcd_front *fe, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_reason(struct zcd_front *fe, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(fe->reason, sizeof(fe->reason), fmt, ap);
	va_end(ap);
}

/* Append to the reason: a failure while cleaning up must not hide the cause. */
static void add_reason(struct zcd_front *fe, const char *fmt, ...)
{
	size_t used = strlen(fe->reason);
	va_list ap;

	if (used != 0 && used + 2 < sizeof(fe->reason)) {
		memcpy(fe->reason + used, "; ", 3);
		used += 2;
	}
	va_start(ap, fmt);
	vsnprintf(fe->reason + used, sizeof(fe->reason) - used, fmt, ap);
	va_end(ap);
}

static const char *state_name(int state)
{
	static const char *const names[] = {
		[XenbusStateUnknown] = "Unknown",
		[XenbusStateInitialising] = "Initialising",
		[XenbusStateInitWait] = "InitWait",
		[XenbusStateInitialised] = "Initialised",
		[XenbusStateConnected] = "Connected",
		[XenbusStateClosing] = "Closing",
		[XenbusStateClosed] = "Closed",
		[XenbusStateReconfiguring] = "Reconfiguring",
		[XenbusStateReconfigured] = "Reconfigured",
	};

	if (state < 0)
		return "absent";
	if ((size_t)state >= sizeof(names) / sizeof(names[0]))
		return "invalid";
	return names[state];
}

/* Decimal text to uint32_t: digits only, no sign, no overflow. */
static int parse_u32(const char *text, uint32_t *out)
{
	uint64_t value = 0;

	if (text[0] == '\0')
		return -1;
	for (const char *p = text; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		value = value * 10 + (uint64_t)(*p - '0');
		if (value > UINT32_MAX)
			return -1;
	}
	*out = (uint32_t)value;
	return 0;
}

/* Read a node holding a decimal number; -1 if absent or not a number. */
static int read_u32_path(struct zcd_front *fe, const char *path, uint32_t *out)
{
	char *text = fe->ops->read(fe->io, path);
	int rc;

	if (text == NULL)
		return -1;
	rc = parse_u32(text, out);
	free(text);
	if (rc != 0)
		errno = EINVAL;
	return rc;
}

static int read_u32(struct zcd_front *fe, const char *dir, const char *key, uint32_t *out)
{
	char path[ZCD_XS_PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", dir, key) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return read_u32_path(fe, path, out);
}

static int write_u32(struct zcd_front *fe, const char *key, uint32_t value)
{
	char path[ZCD_XS_PATH_MAX];
	char text[16];

	if (snprintf(path, sizeof(path), "%s/%s", fe->front_dir, key) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	snprintf(text, sizeof(text), "%" PRIu32, value);
	return fe->ops->write(fe->io, path, text);
}

/* The backend's XenbusState, or -1 if its directory or state is gone or garbage. */
static int backend_state(struct zcd_front *fe)
{
	uint32_t state;

	if (read_u32(fe, fe->backend_dir, ZCD_XS_STATE, &state) != 0 ||
	    state > XenbusStateReconfigured)
		return -1;
	return (int)state;
}

static int write_state(struct zcd_front *fe, enum xenbus_state state)
{
	return write_u32(fe, ZCD_XS_STATE, (uint32_t)state);
}

/* Non-zero bytes of buf[0, bytes) outside [start, end): what an earlier frame left. */
static uint64_t count_residue(const uint8_t *buf, size_t bytes, size_t start, size_t end)
{
	uint64_t residue = 0;

	for (size_t i = 0; i < start; i++)
		residue += buf[i] != 0;
	for (size_t i = end; i < bytes; i++)
		residue += buf[i] != 0;
	return residue;
}

/* ---- session resources ---- */

/*
 * Release whatever the session holds, in the order that lets the backend
 * take its pages back: buffers, our shared pages, the ring, the channel.
 * Returns 0, or -1 (added to the reason) if some release failed; it goes on
 * with the rest anyway.
 */
static int session_release(struct zcd_front *fe)
{
	struct front_session *s = &fe->s;
	int rc = 0;

	for (uint32_t i = 0; i < s->nb_withheld; i++) {
		fe->stats.unmap_calls++;
		if (fe->ops->unmap(fe->io, s->withheld[i].addr, s->withheld[i].pages) != 0) {
			add_reason(fe, "cannot unmap a withheld buffer: %s", strerror(errno));
			rc = -1;
		}
	}
	if (s->copy_table != NULL &&
	    fe->ops->unshare(fe->io, s->copy_table, s->copy_table_pages) != 0) {
		add_reason(fe, "cannot unshare the copy-page table: %s", strerror(errno));
		rc = -1;
	}
	if (s->copy_area != NULL &&
	    fe->ops->unshare(fe->io, s->copy_area, s->copy_slots * s->buffer_pages) != 0) {
		add_reason(fe, "cannot unshare the copy pages: %s", strerror(errno));
		rc = -1;
	}
	if (s->ring_area != NULL && fe->ops->unmap(fe->io, s->ring_area, s->ring_pages) != 0) {
		add_reason(fe, "cannot unmap the ring: %s", strerror(errno));
		rc = -1;
	}
	if (s->bound && fe->ops->unbind(fe->io) != 0) {
		add_reason(fe, "cannot unbind the event channel: %s", strerror(errno));
		rc = -1;
	}
	free(s->copy_refs);
	free(s->items);
	free(s->group_refs);
	free(s->returns);
	free(s->return_kinds);
	free(s->withheld);
	memset(s, 0, sizeof(*s));
	return rc;
}

/* Release the session and tell the backend we are Closed; back to waiting. */
static void session_end(struct zcd_front *fe)
{
	session_release(fe);
	if (write_state(fe, XenbusStateClosed) != 0)
		add_reason(fe, "cannot write state Closed: %s", strerror(errno));
	fe->phase = PHASE_WAIT_BACKEND;
}

/*
 * End the session because something on our side or in the ring failed:
 * pause before the next handshake, so that a failure that repeats does not
 * turn into a busy loop of handshakes.
 */
static void session_fail(struct zcd_front *fe)
{
	session_end(fe);
	fe->retry_at_ms = fe->ops->now_ms(fe->io) + FRONT_RETRY_MS;
}

/* Read the backend's offer (InitWait); -1 with a reason if it is unusable. */
static int session_read_offer(struct zcd_front *fe)
{
	struct front_session *s = &fe->s;
	const char *dir = fe->backend_dir;
	uint32_t protocol, notify_poll;

	if (read_u32(fe, dir, ZCD_XS_PROTOCOL, &protocol) != 0 || protocol != ZCD_RING_VERSION) {
		set_reason(fe, "%s/%s is missing or not %u", dir, ZCD_XS_PROTOCOL,
			   ZCD_RING_VERSION);
		return -1;
	}
	if (read_u32(fe, dir, ZCD_XS_RING_PAGES, &s->ring_pages) != 0 || s->ring_pages == 0 ||
	    s->ring_pages > FRONT_RING_PAGES_MAX) {
		set_reason(fe, "%s/%s is missing or not 1..%u", dir, ZCD_XS_RING_PAGES,
			   FRONT_RING_PAGES_MAX);
		return -1;
	}
	for (uint32_t i = 0; i < s->ring_pages; i++) {
		char key[32];

		snprintf(key, sizeof(key), ZCD_XS_RING_REF_FMT, i);
		if (read_u32(fe, dir, key, &s->ring_refs[i]) != 0) {
			set_reason(fe, "%s/%s is missing or not a number", dir, key);
			return -1;
		}
	}
	if (read_u32(fe, dir, ZCD_XS_EVENT_CHANNEL, &s->remote_port) != 0) {
		set_reason(fe, "%s/%s is missing or not a number", dir, ZCD_XS_EVENT_CHANNEL);
		return -1;
	}
	if (read_u32(fe, dir, ZCD_XS_BUFFER_PAGES, &s->buffer_pages) != 0 ||
	    s->buffer_pages == 0 || s->buffer_pages > FRONT_BUFFER_PAGES_MAX) {
		set_reason(fe, "%s/%s is missing or not 1..%u", dir, ZCD_XS_BUFFER_PAGES,
			   FRONT_BUFFER_PAGES_MAX);
		return -1;
	}
	if (read_u32(fe, dir, ZCD_XS_COPY_SLOTS_MAX, &s->copy_slots_max) != 0) {
		set_reason(fe, "%s/%s is missing or not a number", dir, ZCD_XS_COPY_SLOTS_MAX);
		return -1;
	}
	s->poll_mode = read_u32(fe, dir, ZCD_XS_NOTIFY_POLL, &notify_poll) == 0 && notify_poll == 1;
	return 0;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* Share the copy slots and a table of their grants, publish the table's grants; -1 with a reason. */
static int session_share_copy_slots(struct zcd_front *fe, uint32_t credits)
{
	struct front_session *s = &fe->s;
	uint32_t slots = min_u32(min_u32(credits, s->copy_slots_max), fe->params.copy_slots_cap);
	uint32_t limit = fe->ops->share_limit(fe->io);
	uint32_t pages, table_pages;

	slots = min_u32(slots, FRONT_COPY_TABLE_PAGES_MAX * FRONT_REFS_PER_PAGE / s->buffer_pages);
	/* The copy pages and their table both come out of the share limit. */
	for (;; slots--) {
		pages = slots * s->buffer_pages;
		table_pages = (pages + FRONT_REFS_PER_PAGE - 1) / FRONT_REFS_PER_PAGE;
		if (slots == 0 || (uint64_t)pages + table_pages <= limit)
			break;
	}
	if (slots != 0) {
		s->copy_refs = calloc(pages, sizeof(*s->copy_refs));
		if (s->copy_refs == NULL) {
			set_reason(fe, "out of memory");
			return -1;
		}
		s->copy_area = fe->ops->share(fe->io, fe->params.backend_domid, pages, s->copy_refs);
		if (s->copy_area == NULL) {
			set_reason(fe, "cannot share %" PRIu32 " copy pages with domain %" PRIu32
				   ": %s", pages, fe->params.backend_domid, strerror(errno));
			return -1;
		}
		s->copy_slots = slots;
		s->copy_table = fe->ops->share(fe->io, fe->params.backend_domid, table_pages,
					       s->copy_table_refs);
		if (s->copy_table == NULL) {
			set_reason(fe, "cannot share the %" PRIu32 "-page copy table with domain %"
				   PRIu32 ": %s", table_pages, fe->params.backend_domid,
				   strerror(errno));
			return -1;
		}
		s->copy_table_pages = table_pages;
		memcpy(s->copy_table, s->copy_refs, pages * sizeof(*s->copy_refs));
	}
	for (uint32_t i = 0; i < s->copy_table_pages; i++) {
		char key[32];

		snprintf(key, sizeof(key), ZCD_XS_COPY_TABLE_REF_FMT, i);
		if (write_u32(fe, key, s->copy_table_refs[i]) != 0) {
			set_reason(fe, "cannot write %s/%s: %s", fe->front_dir, key, strerror(errno));
			return -1;
		}
	}
	if (write_u32(fe, ZCD_XS_COPY_TABLE_PAGES, s->copy_table_pages) != 0 ||
	    write_u32(fe, ZCD_XS_COPY_SLOTS, slots) != 0) {
		set_reason(fe, "cannot write %s/%s: %s", fe->front_dir, ZCD_XS_COPY_SLOTS,
			   strerror(errno));
		return -1;
	}
	return 0;
}

static int session_alloc_batch(struct zcd_front *fe, uint32_t credits)
{
	struct front_session *s = &fe->s;

	s->batch_max = min_u32(s->ring.rx_mask + 1, FRONT_BATCH_MAX);
	s->items = calloc(s->batch_max, sizeof(*s->items));
	s->group_refs = calloc((size_t)s->batch_max * s->buffer_pages, sizeof(*s->group_refs));
	s->returns = calloc(2 * (size_t)s->batch_max, sizeof(*s->returns));
	s->return_kinds = calloc(2 * (size_t)s->batch_max, sizeof(*s->return_kinds));
	/* An honest backend never lets us hold more than credits buffers. */
	s->withheld_cap = fe->params.misbehave ? min_u32(credits, FRONT_WITHHELD_MAX) : 0;
	if (s->withheld_cap != 0)
		s->withheld = calloc(s->withheld_cap, sizeof(*s->withheld));
	if (s->items == NULL || s->group_refs == NULL || s->returns == NULL ||
	    s->return_kinds == NULL || (s->withheld_cap != 0 && s->withheld == NULL)) {
		set_reason(fe, "out of memory");
		return -1;
	}
	return 0;
}

/*
 * The guest's half of the handshake, from the backend's InitWait up to our
 * Initialised.  -1 with a reason; the caller releases what was set up.
 */
static int session_setup(struct zcd_front *fe)
{
	struct front_session *s = &fe->s;
	uint32_t domid = fe->params.backend_domid;
	uint32_t credits;
	int port;

	if (session_read_offer(fe) != 0)
		return -1;
	s->ring_area = fe->ops->map(fe->io, domid, s->ring_pages, s->ring_refs, true);
	if (s->ring_area == NULL) {
		set_reason(fe, "cannot map the %" PRIu32 "-page ring of domain %" PRIu32 ": %s",
			   s->ring_pages, domid, strerror(errno));
		return -1;
	}
	if (zcd_ring_attach(&s->ring, s->ring_area, (size_t)s->ring_pages * ZCD_PAGE_SIZE) != 0) {
		set_reason(fe, "the backend's ring header is not a valid version %u ring",
			   ZCD_RING_VERSION);
		return -1;
	}
	/* Read once: the backend could change it under us. */
	credits = __atomic_load_n(&s->ring.hdr->credits, __ATOMIC_RELAXED);
	fe->stats.credit_limit = credits;
	port = fe->ops->bind(fe->io, domid, s->remote_port);
	if (port < 0) {
		set_reason(fe, "cannot bind event channel %" PRIu32 " of domain %" PRIu32 ": %s",
			   s->remote_port, domid, strerror(errno));
		return -1;
	}
	s->bound = true;
	if (write_u32(fe, ZCD_XS_GUEST_EVENT_CHANNEL, (uint32_t)port) != 0) {
		set_reason(fe, "cannot write %s/%s: %s", fe->front_dir, ZCD_XS_GUEST_EVENT_CHANNEL,
			   strerror(errno));
		return -1;
	}
	if (session_alloc_batch(fe, credits) != 0 || session_share_copy_slots(fe, credits) != 0)
		return -1;
	if (write_state(fe, XenbusStateInitialised) != 0) {
		set_reason(fe, "cannot write state Initialised: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- receive path ---- */

static bool desc_valid(const struct front_session *s, const struct zcd_rx_desc *d)
{
	uint32_t bp = s->buffer_pages;

	if (d->nr_pages != bp || d->length == 0 ||
	    (uint32_t)d->offset + d->length > bp * ZCD_PAGE_SIZE)
		return false;
	/* xenbus.h: a copy names slot buf_id, whose first page is slot * buffer-pages. */
	if (d->flags & ZCD_RXF_COPY)
		return d->buf_id < s->copy_slots && (uint64_t)d->handle == (uint64_t)d->buf_id * bp;
	/* The buffer's references handle .. handle + bp - 1 must not wrap. */
	return d->handle <= UINT32_MAX - (bp - 1);
}

static void fill_refs(uint32_t *refs, uint32_t first, uint32_t count)
{
	for (uint32_t p = 0; p < count; p++)
		refs[p] = first + p;
}

/* Map one buffer by itself; false (counted bad) if its grants do not map. */
static bool map_alone(struct zcd_front *fe, struct front_item *item)
{
	uint32_t bp = fe->s.buffer_pages;
	uint32_t refs[FRONT_BUFFER_PAGES_MAX];

	fill_refs(refs, item->desc.handle, bp);
	fe->stats.map_calls++;
	item->pages = fe->ops->map(fe->io, fe->params.backend_domid, bp, refs, false);
	if (item->pages == NULL) {
		fe->stats.bad_descs++;
		return false;
	}
	item->own_mapping = true;
	return true;
}

static void queue_return(struct front_session *s, const struct zcd_rx_desc *d, uint32_t buf_id,
			 uint32_t generation, enum return_kind kind)
{
	s->returns[s->nb_returns] = (struct zcd_ret_desc){
		.buf_id = buf_id,
		.generation = generation,
		.flags = (d->flags & ZCD_RXF_COPY) ? ZCD_RETF_COPY : 0,
	};
	s->return_kinds[s->nb_returns] = (uint8_t)kind;
	s->nb_returns++;
}

/*
 * Give back (or, misbehaving, mistreat) the k-th remapped frame.  Returns
 * true if the buffer is withheld: it stays mapped until the session ends.
 */
static bool settle_remapped(struct zcd_front *fe, const struct front_item *item, uint64_t k)
{
	struct front_session *s = &fe->s;
	const struct zcd_rx_desc *d = &item->desc;

	if (fe->params.misbehave && k % 10 == 9 && item->own_mapping &&
	    s->nb_withheld < s->withheld_cap) {
		s->withheld[s->nb_withheld++] =
			(struct front_mapping){ .addr = item->pages, .pages = s->buffer_pages };
		fe->stats.withheld++;
		return true;
	}
	queue_return(s, d, d->buf_id, d->generation, RET_GENUINE);
	if (!fe->params.misbehave)
		return false;
	if (k % 10 == 3)
		queue_return(s, d, FORGED_BUF_ID, FORGED_GENERATION, RET_FORGED);
	else if (k % 10 == 5)
		queue_return(s, d, d->buf_id, d->generation, RET_DUPLICATE);
	else if (k % 10 == 7)
		queue_return(s, d, d->buf_id, d->generation - 1, RET_STALE);
	return false;
}

/* Put as many queued returns as the ring takes, publish once, notify if asked. */
static void flush_returns(struct zcd_front *fe)
{
	struct front_session *s = &fe->s;
	uint32_t space = zcd_ret_space(&s->ring);
	uint32_t first = s->returns_put;

	for (; space > 0 && s->returns_put < s->nb_returns; space--, s->returns_put++) {
		uint32_t i = s->returns_put;

		zcd_ret_put(&s->ring, &s->returns[i]);
		switch ((enum return_kind)s->return_kinds[i]) {
		case RET_GENUINE:
			fe->stats.returns_sent++;
			break;
		case RET_FORGED:
			fe->stats.forged_sent++;
			break;
		case RET_DUPLICATE:
			fe->stats.duplicate_sent++;
			break;
		case RET_STALE:
			fe->stats.stale_sent++;
			break;
		}
	}
	if (s->returns_put != first && zcd_ret_publish(&s->ring) && fe->ops->notify(fe->io) != 0) {
		set_reason(fe, "cannot notify the backend: %s", strerror(errno));
		s->failed = true;
	}
	if (s->returns_put == s->nb_returns)
		s->nb_returns = s->returns_put = 0;
}

/*
 * Copy n descriptors out and check them.  Remapped buffers go into the
 * one-call group, except (misbehaving) those predicted to be withheld,
 * which need mappings of their own.  Returns the number of items kept.
 */
static uint32_t batch_take(struct zcd_front *fe, uint32_t n, uint32_t *nb_group)
{
	struct front_session *s = &fe->s;
	uint64_t k = fe->stats.remapped;
	uint32_t nb_items = 0;

	*nb_group = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct front_item *item = &s->items[nb_items];

		memset(item, 0, sizeof(*item));
		zcd_rx_take(&s->ring, &item->desc);
		if (!desc_valid(s, &item->desc)) {
			fe->stats.bad_descs++;
			continue;
		}
		nb_items++;
		if (item->desc.flags & ZCD_RXF_COPY) {
			item->copy = true;
			item->pages = s->copy_area + (size_t)item->desc.handle * ZCD_PAGE_SIZE;
			continue;
		}
		k++;
		item->withhold_candidate = fe->params.misbehave && k % 10 == 9;
		if (!item->withhold_candidate) {
			fill_refs(s->group_refs + (size_t)*nb_group * s->buffer_pages,
				  item->desc.handle, s->buffer_pages);
			(*nb_group)++;
		}
	}
	return nb_items;
}

/*
 * Map the batch's remapped buffers: the group with one call.  If anything
 * fails to map, the frame numbering k shifts, so every buffer gets its own
 * mapping (any of them may then be the one to keep) and the unmappable ones
 * are counted bad.  Returns the group mapping, or NULL if there is none.
 */
static void *batch_map(struct zcd_front *fe, uint32_t nb_items, uint32_t nb_group)
{
	struct front_session *s = &fe->s;
	size_t buf_bytes = (size_t)s->buffer_pages * ZCD_PAGE_SIZE;
	bool one_by_one = false;
	uint8_t *group = NULL;

	for (uint32_t i = 0; i < nb_items; i++)
		if (s->items[i].withhold_candidate && !map_alone(fe, &s->items[i]))
			one_by_one = true;
	if (!one_by_one && nb_group != 0) {
		fe->stats.map_calls++;
		group = fe->ops->map(fe->io, fe->params.backend_domid, nb_group * s->buffer_pages,
				     s->group_refs, false);
		one_by_one = group == NULL;
	}
	for (uint32_t i = 0, g = 0; i < nb_items; i++) {
		struct front_item *item = &s->items[i];

		if (item->copy || item->withhold_candidate)
			continue;
		if (one_by_one)
			map_alone(fe, item);
		else
			item->pages = group + (size_t)g++ * buf_bytes;
	}
	return group;
}

static void deliver(struct zcd_front *fe, const struct front_item *item)
{
	const struct zcd_rx_desc *d = &item->desc;
	size_t bytes = (size_t)fe->s.buffer_pages * ZCD_PAGE_SIZE;
	const struct zcd_front_frame frame = {
		.data = item->pages + d->offset,
		.length = d->length,
		.vlan = d->vlan,
		.copied = item->copy,
	};

	fe->stats.residue_bytes +=
		count_residue(item->pages, bytes, d->offset, (size_t)d->offset + d->length);
	zcd_sha256_update(&fe->sha, frame.data, frame.length);
	if (fe->params.deliver != NULL)
		fe->params.deliver(fe->params.deliver_ctx, &frame);
	fe->stats.frames++;
	fe->stats.bytes += d->length;
}

/* One batch: take, check, map (one call), deliver in order, unmap (one call), return. */
static void process_batch(struct zcd_front *fe, uint32_t n)
{
	struct front_session *s = &fe->s;
	uint32_t nb_group;
	uint32_t nb_items = batch_take(fe, n, &nb_group);
	void *group = batch_map(fe, nb_items, nb_group);

	for (uint32_t i = 0; i < nb_items; i++) {
		struct front_item *item = &s->items[i];

		if (item->pages == NULL)
			continue;
		deliver(fe, item);
		if (item->copy) {
			fe->stats.copied++;
			queue_return(s, &item->desc, item->desc.buf_id, item->desc.generation,
				     RET_GENUINE);
		} else if (settle_remapped(fe, item, ++fe->stats.remapped)) {
			item->own_mapping = false; /* kept: not unmapped below */
		}
	}
	/* Unmap before returning: the backend can end a grant only once it is unmapped. */
	if (group != NULL) {
		fe->stats.unmap_calls++;
		if (fe->ops->unmap(fe->io, group, nb_group * s->buffer_pages) != 0) {
			set_reason(fe, "cannot unmap a batch of buffers: %s", strerror(errno));
			s->failed = true;
		}
	}
	for (uint32_t i = 0; i < nb_items; i++) {
		struct front_item *item = &s->items[i];

		if (!item->own_mapping)
			continue;
		fe->stats.unmap_calls++;
		if (fe->ops->unmap(fe->io, item->pages, s->buffer_pages) != 0) {
			set_reason(fe, "cannot unmap a buffer: %s", strerror(errno));
			s->failed = true;
		}
	}
	zcd_rx_consumed(&s->ring);
	flush_returns(fe);
}

/* ---- the state machine ---- */

/* Wait for something to happen, at most timeout_ms and at most until the next check. */
static int front_wait(struct zcd_front *fe, int timeout_ms, uint64_t deadline_ms)
{
	uint64_t now = fe->ops->now_ms(fe->io);
	uint64_t until_deadline = deadline_ms > now ? deadline_ms - now : 0;
	int wait_ms = FRONT_RECHECK_MS;
	int fired;

	if (timeout_ms >= 0 && timeout_ms < wait_ms)
		wait_ms = timeout_ms;
	if (until_deadline < (uint64_t)wait_ms)
		wait_ms = (int)until_deadline;
	fired = fe->ops->wait(fe->io, wait_ms);
	if (fired < 0) {
		int saved_errno = errno;

		set_reason(fe, "waiting for events failed: %s", strerror(saved_errno));
		/* Mid-session it ends the session; with nothing to end, it is fatal. */
		switch (fe->phase) {
		case PHASE_WAIT_BACKEND:
			errno = saved_errno;
			return -1;
		case PHASE_WAIT_CONNECTED:
			session_fail(fe);
			return ZCD_FRONT_HANDSHAKE_FAILED;
		case PHASE_CONNECTED:
			session_fail(fe);
			return ZCD_FRONT_DISCONNECTED;
		}
	}
	if (fired & ZCD_IO_XENSTORE)
		fe->recheck = true;
	return ZCD_FRONT_IDLE;
}

static int step_wait_backend(struct zcd_front *fe, int timeout_ms)
{
	uint64_t now = fe->ops->now_ms(fe->io);

	if (now >= fe->retry_at_ms && backend_state(fe) == XenbusStateInitWait) {
		fe->reason[0] = '\0';
		if (session_setup(fe) == 0) {
			fe->phase = PHASE_WAIT_CONNECTED;
			return ZCD_FRONT_IDLE;
		}
		session_fail(fe);
		return ZCD_FRONT_HANDSHAKE_FAILED;
	}
	return front_wait(fe, timeout_ms,
			  fe->retry_at_ms > now ? fe->retry_at_ms : now + FRONT_RECHECK_MS);
}

/* Test mode: indices no ring of this size can have (the backend must notice). */
static void scribble_ring(struct zcd_front *fe)
{
	struct zcd_ring *r = &fe->s.ring;

	__atomic_store_n(&r->hdr->rx_cons, r->rx_cons + 0x80000000u, __ATOMIC_RELEASE);
	__atomic_store_n(&r->hdr->ret_prod, r->ret_prod + 0x80000000u, __ATOMIC_RELEASE);
	fe->stats.scribbled++;
}

static int step_wait_connected(struct zcd_front *fe, int timeout_ms)
{
	int state = backend_state(fe);
	uint64_t now = fe->ops->now_ms(fe->io);

	if (state == XenbusStateConnected) {
		if (write_state(fe, XenbusStateConnected) != 0) {
			set_reason(fe, "cannot write state Connected: %s", strerror(errno));
			session_fail(fe);
			return ZCD_FRONT_HANDSHAKE_FAILED;
		}
		fe->stats.sessions++;
		if (fe->stats.sessions == fe->params.scribble_session)
			scribble_ring(fe);
		fe->phase = PHASE_CONNECTED;
		fe->recheck = false;
		fe->last_check_ms = now;
		fe->reason[0] = '\0';
		return ZCD_FRONT_CONNECTED;
	}
	if (state == XenbusStateInitWait || state == XenbusStateInitialised)
		return front_wait(fe, timeout_ms, now + FRONT_RECHECK_MS);
	set_reason(fe, "the backend went to state %s before connecting", state_name(state));
	session_end(fe);
	return ZCD_FRONT_HANDSHAKE_FAILED;
}

/*
 * The backend changed our credits (include/zcdemux/ring.h, "Credits").
 * Only withheld buffers outlive a batch, and only a misbehaving guest
 * withholds: it keeps them, and the backend's time-out cuts it off.
 */
static void take_credit_news(struct zcd_front *fe)
{
	struct front_session *s = &fe->s;
	uint32_t limit, give_back;

	if (!zcd_ring_credit_news(&s->ring, &limit, &give_back))
		return;
	fe->stats.credit_news++;
	fe->stats.credit_limit = limit;
	fe->stats.give_back_ignored += min_u32(give_back, s->nb_withheld);
}

static int step_connected(struct zcd_front *fe, int timeout_ms)
{
	struct front_session *s = &fe->s;
	uint64_t now = fe->ops->now_ms(fe->io);
	bool broken = false;
	uint32_t ready;

	if (fe->recheck || now - fe->last_check_ms >= FRONT_RECHECK_MS) {
		int state = backend_state(fe);

		fe->recheck = false;
		fe->last_check_ms = now;
		if (state != XenbusStateConnected) {
			set_reason(fe, "the backend is %s", state_name(state));
			session_end(fe);
			return ZCD_FRONT_DISCONNECTED;
		}
	}
	if (s->failed) {
		session_fail(fe);
		return ZCD_FRONT_DISCONNECTED;
	}
	if (s->nb_returns != 0) {
		flush_returns(fe);
		if (s->nb_returns != 0)
			return front_wait(fe, timeout_ms, now + FRONT_RETURN_WAIT_MS);
	}
	take_credit_news(fe);
	ready = zcd_rx_ready(&s->ring, &broken);
	if (broken) {
		set_reason(fe, "the backend published an impossible rx producer index");
		session_fail(fe);
		return ZCD_FRONT_DISCONNECTED;
	}
	if (ready != 0) {
		process_batch(fe, min_u32(ready, s->batch_max));
		return ZCD_FRONT_IDLE;
	}
	/* No event will come: look again shortly. */
	if (s->poll_mode)
		return front_wait(fe, timeout_ms, now + FRONT_POLL_MS);
	/* Ask for an event, then look once more: a frame may have slipped in. */
	if (zcd_rx_arm_event(&s->ring))
		return ZCD_FRONT_IDLE;
	return front_wait(fe, timeout_ms, fe->last_check_ms + FRONT_RECHECK_MS);
}

int zcd_front_step(struct zcd_front *fe, int timeout_ms)
{
	switch (fe->phase) {
	case PHASE_WAIT_BACKEND:
		return step_wait_backend(fe, timeout_ms);
	case PHASE_WAIT_CONNECTED:
		return step_wait_connected(fe, timeout_ms);
	case PHASE_CONNECTED:
		return step_connected(fe, timeout_ms);
	}
	errno = EINVAL;
	return -1;
}

/* ---- life cycle ---- */

struct zcd_front *zcd_front_create(const struct zcd_front_params *params,
				   const struct zcd_front_io_ops *ops, void *io, char *err,
				   size_t errlen)
{
	struct zcd_front *fe = calloc(1, sizeof(*fe));
	uint32_t stale_state;
	char *name;

	if (fe == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	fe->params = *params;
	fe->ops = ops;
	fe->io = io;
	zcd_sha256_init(&fe->sha);
	/* Relative paths resolve under this domain's own /local/domain/<id>. */
	if (read_u32_path(fe, "domid", &fe->domid) != 0) {
		snprintf(err, errlen, "cannot read this domain's id from xenstore (domid): %s",
			 strerror(errno));
		goto fail;
	}
	name = ops->read(io, "name");
	if (name != NULL)
		snprintf(fe->name, sizeof(fe->name), "%s", name);
	else
		snprintf(fe->name, sizeof(fe->name), "domain-%" PRIu32, fe->domid);
	free(name);
	snprintf(fe->front_dir, sizeof(fe->front_dir), "device/%s/%d", ZCD_XS_TYPE, ZCD_XS_DEVID);
	snprintf(fe->backend_dir, sizeof(fe->backend_dir), "/local/domain/%" PRIu32
		 "/backend/%s/%" PRIu32 "/%d", params->backend_domid, ZCD_XS_TYPE, fe->domid,
		 ZCD_XS_DEVID);
	if (ops->watch(io, fe->backend_dir) != 0) {
		snprintf(err, errlen, "cannot watch %s: %s", fe->backend_dir, strerror(errno));
		goto fail;
	}
	/* An earlier instance that died mid-session left its state: retract it. */
	if (read_u32(fe, fe->front_dir, ZCD_XS_STATE, &stale_state) == 0 &&
	    (stale_state == XenbusStateInitialised || stale_state == XenbusStateConnected ||
	     stale_state == XenbusStateClosing) &&
	    write_state(fe, XenbusStateClosed) != 0) {
		snprintf(err, errlen, "cannot write %s/%s: %s", fe->front_dir, ZCD_XS_STATE,
			 strerror(errno));
		goto fail;
	}
	fe->phase = PHASE_WAIT_BACKEND;
	return fe;

fail:
	free(fe);
	return NULL;
}

int zcd_front_shutdown(struct zcd_front *fe)
{
	int rc = 0;

	if (fe->phase == PHASE_WAIT_BACKEND)
		return 0;
	fe->reason[0] = '\0';
	if (write_state(fe, XenbusStateClosing) != 0) {
		add_reason(fe, "cannot write state Closing: %s", strerror(errno));
		rc = -1;
	}
	if (session_release(fe) != 0)
		rc = -1;
	if (write_state(fe, XenbusStateClosed) != 0) {
		add_reason(fe, "cannot write state Closed: %s", strerror(errno));
		rc = -1;
	}
	fe->phase = PHASE_WAIT_BACKEND;
	return rc;
}

void zcd_front_destroy(struct zcd_front *fe)
{
	free(fe);
}

const struct zcd_front_stats *zcd_front_stats(const struct zcd_front *fe)
{
	return &fe->stats;
}

void zcd_front_sha256_hex(const struct zcd_front *fe, char out[65])
{
	zcd_sha256_hex(&fe->sha, out);
}

const char *zcd_front_reason(const struct zcd_front *fe)
{
	return fe->reason;
}

const char *zcd_front_name(const struct zcd_front *fe)
{
	return fe->name;
}

int zcd_front_format_report(const struct zcd_front *fe, char *buf, size_t len)
{
	const struct zcd_front_stats *st = &fe->stats;
	char sha[ZCD_SHA256_HEX_BYTES];

	zcd_sha256_hex(&fe->sha, sha);
	return snprintf(buf, len,
			"ZCD-GUEST name=%s session=%" PRIu64 " frames=%" PRIu64 " bytes=%" PRIu64
			" remapped=%" PRIu64 " copied=%" PRIu64 " residue_bytes=%" PRIu64
			" bad_descs=%" PRIu64 " map_calls=%" PRIu64 " unmap_calls=%" PRIu64
			" returns_sent=%" PRIu64 " forged_sent=%" PRIu64 " duplicate_sent=%" PRIu64
			" stale_sent=%" PRIu64 " withheld=%" PRIu64 " credit_limit=%" PRIu64
			" credit_news=%" PRIu64 " give_back_ignored=%" PRIu64 " sha256=%s",
			fe->name, st->sessions, st->frames, st->bytes, st->remapped, st->copied,
			st->residue_bytes, st->bad_descs, st->map_calls, st->unmap_calls,
			st->returns_sent, st->forged_sent, st->duplicate_sent, st->stale_sent,
			st->withheld, st->credit_limit, st->credit_news, st->give_back_ignored, sha);
}
