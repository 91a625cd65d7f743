/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zcdemux guest frontend: the receiving side of a zcdemux device in a Xen
 * guest, in user space.  It follows the handshake of include/zcdemux/xenbus.h
 * with the backend (the zcdemux dataplane in dom0 or a driver domain),
 * consumes the shared ring of include/zcdemux/ring.h, maps each batch of
 * granted buffers with one grant-map call, hands every frame to a callback,
 * unmaps the batch with one call and gives the buffers back.  When the
 * backend closes, the frontend releases everything and waits for the backend
 * to come back, so it outlives restarts of the dataplane.
 *
 * Everything Xen-specific goes through struct zcd_front_io_ops (xen_io.c
 * implements it with libxenstore, libxengnttab and libxenevtchn), so the
 * ring, batching, validation and return logic runs in unit tests against a
 * fake backend.
 *
 * Single-threaded: one thread calls every function of one frontend.  The
 * library never logs and never exits; what went wrong is in
 * zcd_front_reason().
 */
#ifndef ZCDEMUX_GUEST_ZCD_FRONT_H
#define ZCDEMUX_GUEST_ZCD_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bits returned by zcd_front_io_ops.wait. */
#define ZCD_IO_EVENT 0x1 /* the bound event channel fired (already acknowledged) */
#define ZCD_IO_XENSTORE 0x2 /* a xenstore watch fired (events already drained) */
#define ZCD_IO_WAKE 0x4 /* the caller's wake-up file descriptor was signalled */

/*
 * The Xen services the frontend uses.  Every function returns -1 (or NULL)
 * with errno set on failure; io is the implementation's context.
 */
struct zcd_front_io_ops {
	/* xenstore: read a node as a malloc'd NUL-terminated string. */
	char *(*read)(void *io, const char *path);
	/* xenstore: write a node (creating it if needed). */
	int (*write)(void *io, const char *path, const char *value);
	/* xenstore: watch path and everything under it. */
	int (*watch)(void *io, const char *path);

	/*
	 * Sleep until the bound event channel, a watch or the wake-up fd fires,
	 * or timeout_ms (-1: no limit) passes.  Returns a mask of ZCD_IO_*,
	 * 0 on timeout.  What fired is consumed.
	 */
	int (*wait)(void *io, int timeout_ms);
	/* Monotonic milliseconds. */
	uint64_t (*now_ms)(void *io);

	/*
	 * Map count grant references of domid contiguously in one call;
	 * on failure nothing is mapped.  refs is not modified.
	 */
	void *(*map)(void *io, uint32_t domid, uint32_t count, uint32_t *refs, bool writable);
	/* Unmap exactly one whole mapping made by one map call. */
	int (*unmap)(void *io, void *addr, uint32_t count);

	/* Allocate count zeroed pages shared writable with domid; refs[] out. */
	void *(*share)(void *io, uint32_t domid, uint32_t count, uint32_t *refs);
	/* Stop sharing and free pages from one share call. */
	int (*unshare)(void *io, void *addr, uint32_t count);
	/* Most pages share can hand out at once (gntalloc's limit). */
	uint32_t (*share_limit)(void *io);

	/* Bind to remote_port of domid; wait() reports it from now on. */
	int (*bind)(void *io, uint32_t domid, uint32_t remote_port);
	/* Unbind the bound channel. */
	int (*unbind)(void *io);
	/* Notify the other end of the bound channel. */
	int (*notify)(void *io);
};

/* One received frame, valid only during the callback. */
struct zcd_front_frame {
	const uint8_t *data;
	uint16_t length;
	uint16_t vlan; /* VID the backend demultiplexed it under, 0 = untagged */
	bool copied; /* true: in one of our copy slots; false: a remapped pool buffer */
};

typedef void (*zcd_front_deliver_fn)(void *ctx, const struct zcd_front_frame *frame);

struct zcd_front_params {
	uint32_t backend_domid;
	uint32_t copy_slots_cap; /* most copy slots to share; UINT32_MAX = no cap of our own */
	/*
	 * Deterministic misbehaviour for tests of the backend.  For the k-th
	 * remapped frame since the frontend was created (k = 1, 2, ...):
	 * k % 10 == 3: also return (0xfffffff0, generation 1)   forged
	 * k % 10 == 5: return the buffer twice                  duplicate
	 * k % 10 == 7: also return (buf_id, generation - 1)     stale
	 * k % 10 == 9: never return it, keep it mapped until the session ends.
	 * A misbehaving guest also ignores requests to give credits back (the
	 * backend's time-out is what it tests).  A guest that behaves keeps no
	 * buffer past its batch, so it has nothing to give back when asked.
	 */
	bool misbehave;
	/*
	 * Test mode: once session scribble_session (1, 2, ...; 0 = never) has
	 * connected, write impossible rx consumer and return producer indices
	 * into the shared ring, as a guest corrupting its ring would.
	 */
	uint64_t scribble_session;
	zcd_front_deliver_fn deliver; /* may be NULL */
	void *deliver_ctx;
};

/* Cumulative since zcd_front_create. */
struct zcd_front_stats {
	uint64_t sessions; /* sessions that reached Connected */
	uint64_t frames; /* delivered = remapped + copied */
	uint64_t bytes;
	uint64_t remapped;
	uint64_t copied;
	uint64_t residue_bytes; /* non-zero bytes outside a frame in its pages: must stay 0 */
	uint64_t bad_descs; /* invalid or unmappable descriptors: not delivered, not returned */
	uint64_t map_calls; /* grant-map calls for frame buffers (not the ring) */
	uint64_t unmap_calls; /* grant-unmap calls for frame buffers (not the ring) */
	uint64_t returns_sent; /* genuine returns, one per frame given back */
	uint64_t forged_sent; /* misbehave extras */
	uint64_t duplicate_sent;
	uint64_t stale_sent;
	uint64_t withheld;
	uint64_t credit_news; /* credit announcements read from the ring */
	uint64_t credit_limit; /* frames this session may hold: the last announcement */
	uint64_t give_back_ignored; /* misbehave: buffers asked back and not given */
	uint64_t scribbled; /* sessions whose ring indices were scribbled over */
};

/* What zcd_front_step did. */
enum zcd_front_event {
	ZCD_FRONT_IDLE, /* worked or waited; nothing to report */
	ZCD_FRONT_CONNECTED, /* a session started (state Connected) */
	ZCD_FRONT_DISCONNECTED, /* a connected session ended, all released, state Closed */
	ZCD_FRONT_HANDSHAKE_FAILED, /* a handshake failed or was abandoned; retried later */
};

struct zcd_front;

/*
 * Create a frontend: read this domain's id and name from xenstore, watch
 * the backend directory, and mark a frontend state left behind by an earlier
 * instance (Initialised/Connected/Closing) as Closed so that the backend
 * starts over.  NULL with a message in err on failure.
 */
struct zcd_front *zcd_front_create(const struct zcd_front_params *params,
				   const struct zcd_front_io_ops *ops, void *io, char *err,
				   size_t errlen);

/*
 * Do the next piece of work: a handshake step, a batch of frames, or a wait
 * of at most timeout_ms (-1: up to an internal re-check interval) when there
 * is nothing to do.  Returns an enum zcd_front_event, or -1 with errno and a
 * reason if the Xen services failed in a way that retrying cannot fix.
 */
int zcd_front_step(struct zcd_front *fe, int timeout_ms);

/*
 * Leave for good: if a session or handshake is under way, state Closing,
 * release every mapping, shared page and the event channel, state Closed.
 * 0, or -1 if xenstore could not be written (everything is released anyway).
 */
int zcd_front_shutdown(struct zcd_front *fe);

/* Free the frontend (after zcd_front_shutdown). NULL is fine. */
void zcd_front_destroy(struct zcd_front *fe);

const struct zcd_front_stats *zcd_front_stats(const struct zcd_front *fe);

/* Running SHA-256 of every delivered frame's bytes, in order: 64 hex digits. */
void zcd_front_sha256_hex(const struct zcd_front *fe, char out[65]);

/* Why the last session or handshake ended, or what failed; "" if nothing. */
const char *zcd_front_reason(const struct zcd_front *fe);

/* This domain's xenstore name ("name" key), or "domain-<id>" if it has none. */
const char *zcd_front_name(const struct zcd_front *fe);

/*
 * The one-line report the test harness reads, without a newline:
 * "ZCD-GUEST name=... session=... frames=... ... sha256=<64 hex>".
 * Returns what snprintf returns.
 */
int zcd_front_format_report(const struct zcd_front *fe, char *buf, size_t len);

#endif /* ZCDEMUX_GUEST_ZCD_FRONT_H */
