/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The buffer pool: page-aligned buffers of whole 4 KiB pages that belong to
 * no guest, and the mbufs that describe them.
 *
 * Frame data lives only in the buffer region; mbuf headers and every other
 * piece of dataplane metadata live in DPDK memory that no VM ever sees (each
 * mbuf is permanently attached to its buffer as a pinned external buffer).
 * The mbufs sit in a mempool whose ops are ours, so every buffer the device
 * driver takes (FREE -> POSTED) or gives back is seen by the ledger, and
 * every buffer that reaches the free pool is scrubbed on the way in.
 */
#ifndef ZCDEMUX_POOL_H
#define ZCDEMUX_POOL_H

#include <stdint.h>

#include <rte_mbuf.h>
#include <rte_spinlock.h>

#include "ledger.h"
#include "zcdemux/hv.h"
#include "zcdemux/ring.h"

struct zcd_pool {
	struct zcd_buf_region region;
	struct zcd_ledger ledger;
	struct rte_mempool *mp;
	struct rte_mbuf **mbuf_of; /* by buffer id */

	/* The free pool: a LIFO stack, so recently scrubbed pages stay in cache. */
	rte_spinlock_t lock;
	struct rte_mbuf **free_stack;
	uint32_t free_top;
	uint64_t scrubbed_bytes;
};

/* The buffer id kept in each mbuf's private area. */
struct zcd_mbuf_priv {
	uint32_t buf_id;
	uint32_t reserved;
};

static inline uint32_t zcd_mbuf_buf_id(const struct rte_mbuf *m)
{
	/* The private area starts right after the mbuf header. */
	return ((const struct zcd_mbuf_priv *)(const void *)(m + 1))->buf_id;
}

/* Pages per buffer needed to receive a frame of frame_limit bytes. */
uint32_t zcd_pool_pages_per_buf(uint32_t frame_limit);

/*
 * Create nb_bufs buffers of pages_per_buf pages on NUMA socket socket.
 * Returns NULL with a message in err.  Logs nothing.
 */
struct zcd_pool *zcd_pool_create(uint32_t nb_bufs, uint32_t pages_per_buf, int socket, char *err,
				 size_t errlen);
void zcd_pool_destroy(struct zcd_pool *pool);

/*
 * Zero the bytes of buffer m that its last frame occupied (whole cache
 * lines around them), so that nothing of it can reach another VM.
 */
void zcd_pool_scrub_frame(struct zcd_pool *pool, const struct rte_mbuf *m);

static inline uint32_t zcd_pool_free_count(const struct zcd_pool *pool)
{
	return __atomic_load_n(&pool->free_top, __ATOMIC_RELAXED);
}

#endif /* ZCDEMUX_POOL_H */
