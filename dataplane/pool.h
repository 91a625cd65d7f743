/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The buffer pool: page-aligned buffers of whole 4 KiB pages that belong to
 * no guest, and the mbufs that describe them.
 *
 * Frame data lives only in the buffer region; mbuf headers and every other
 * piece of dataplane metadata live in DPDK memory that no VM ever sees (each
 * mbuf is permanently attached to its buffer as a pinned external buffer).
 * The mbufs sit in a mempool whose ops are ours, so every buffer the device
 * driver takes (FREE -> POSTED) or gives back is seen by the ledger.
 *
 * One region, one ledger, and one mempool per NUMA node in use: node k's
 * buffers are a slice of the region placed on that node, and the ports on
 * that node receive into them.  A buffer always goes back to its own node's
 * free stack.
 *
 * Scrubbing is lazy and touches only bytes that were written: each buffer
 * keeps the range that frames (or a device) may have written since it was
 * last clean, and only when it is about to be handed to a VM are the dirty
 * bytes outside the new frame zeroed.  A buffer that never leaves the
 * dataplane (its frame was dropped or copied) costs nothing, and neither
 * does one whose new frame covers the old one: the dataplane core does no
 * per-byte work for a remapped frame.
 */
#ifndef ZCDEMUX_POOL_H
#define ZCDEMUX_POOL_H

#include <stdint.h>

#include <rte_mbuf.h>
#include <rte_spinlock.h>

#include "ledger.h"
#include "zcdemux/hv.h"
#include "zcdemux/ring.h"

/*
 * Test-only fault injection (--inject-dma-fault): once a buffer has been
 * handed to a VM, the next buffer posted to the device carries that
 * buffer's old IOVA, as a stale descriptor would.  With the buffer out of
 * the DMA table the device's write must fault in the IOMMU and leave the
 * VM's page unchanged; the frame that arrives in the poisoned buffer is
 * dropped and counted.
 */
struct zcd_dma_fault {
	bool armed;
	bool done; /* one poisoned posting per run */
	uint32_t victim; /* the buffer handed to a VM */
	bool has_victim;
	rte_iova_t victim_iova;
	uint32_t victim_generation;
	uint64_t victim_hash; /* its bytes when it was handed over */
	struct rte_mbuf *poisoned; /* posted with victim_iova */
	rte_iova_t poisoned_iova; /* its own IOVA, restored once it comes back */
	uint64_t frames_dropped; /* frames the device "received" into it */
	bool victim_checked; /* the VM still held it at the end: it could be compared */
	bool victim_changed;
};

/* Bytes [lo, hi) of a buffer may hold data; lo == hi: all zero. */
struct zcd_dirty_range {
	uint32_t lo;
	uint32_t hi;
};

#define ZCD_POOL_MAX_NODES 8

/* How many buffers to place on which NUMA node. */
struct zcd_pool_part {
	int socket;
	uint32_t nb_bufs;
};

struct zcd_pool;

/* One node's buffers: ids [first_buf, first_buf + nb_bufs). */
struct zcd_pool_node {
	struct zcd_pool *pool;
	struct rte_mempool *mp;
	int socket;
	uint32_t first_buf;
	uint32_t nb_bufs;
	/* Its free buffers: a LIFO stack, so recently used pages stay in cache. */
	rte_spinlock_t lock;
	struct rte_mbuf **free_stack;
	uint32_t free_top;
} __rte_cache_aligned;

/* A file for the pool's pages (see zcd_pool_create). */
struct zcd_pool_file {
	int fd; /* the pool keeps a duplicate */
	bool kept; /* it holds an earlier run's buffers, which may hold data anywhere */
};

struct zcd_pool {
	struct zcd_buf_region region;
	size_t map_bytes; /* region.bytes, rounded up to the file's pages */
	struct zcd_ledger ledger;
	struct rte_mbuf **mbuf_of; /* by buffer id */
	struct zcd_dirty_range *dirty; /* by buffer id */
	struct zcd_pool_node nodes[ZCD_POOL_MAX_NODES];
	unsigned nb_nodes;
	struct zcd_dma_fault fault;
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
 * Create buffers of pages_per_buf pages: parts[k].nb_bufs of them on NUMA
 * socket parts[k].socket, with a mempool each, every one FREE.  Their
 * pages are file's, allocated already (they stay where they are), or
 * with file NULL a new memfd's, placed on each part's node; mapped shared.  The ledger's
 * entries live in ledger_storage if it is not NULL (the state file),
 * keeping their generations.  Returns NULL with a message in err.  Logs
 * nothing.
 */
struct zcd_pool *zcd_pool_create(const struct zcd_pool_part *parts, unsigned nb_parts,
				 uint32_t pages_per_buf, struct zcd_ledger_entry *ledger_storage,
				 const struct zcd_pool_file *file, char *err, size_t errlen);

/*
 * At start, before any port: buffer id, FREE, stays with VM vm at
 * generation, as a guest of an earlier run kept it (GRANTED).  0, or -1 if
 * it is not FREE.  zcd_pool_prune_free must follow the last call.
 */
int zcd_pool_keep(struct zcd_pool *pool, uint32_t id, uint16_t vm, uint32_t generation);

/* Take the buffers kept by zcd_pool_keep out of the free pool, in one pass. */
void zcd_pool_prune_free(struct zcd_pool *pool);
void zcd_pool_destroy(struct zcd_pool *pool);

/* The device wrote m's frame (each segment into its own buffer). */
static inline void zcd_pool_note_frame(struct zcd_pool *pool, const struct rte_mbuf *m)
{
	for (; m != NULL; m = m->next) {
		struct zcd_dirty_range *d = &pool->dirty[zcd_mbuf_buf_id(m)];
		uint32_t lo = m->data_off, hi = (uint32_t)m->data_off + m->data_len;

		if (d->lo == d->hi) {
			d->lo = lo;
			d->hi = hi;
			continue;
		}
		d->lo = RTE_MIN(d->lo, lo);
		d->hi = RTE_MAX(d->hi, hi);
	}
}

/*
 * Buffer m (one segment) is about to reach a VM: zero every byte that may
 * hold data except its frame, so that nothing of an earlier frame shows.
 * Returns the bytes zeroed (the caller counts them: any lcore may call).
 */
uint32_t zcd_pool_clean_around_frame(struct zcd_pool *pool, const struct rte_mbuf *m);

/* Fault injection: choose buffer id, just handed to a VM, as the victim. */
void zcd_pool_fault_victim(struct zcd_pool *pool, uint32_t id);
/* Fault injection: m came back from the device; true if it was the poisoned one. */
bool zcd_pool_fault_received(struct zcd_pool *pool, struct rte_mbuf *m);
/* Fault injection: compare the victim with what it held when handed over. */
void zcd_pool_fault_verify(struct zcd_pool *pool);

static inline uint32_t zcd_pool_free_count(const struct zcd_pool *pool)
{
	uint32_t n = 0;

	for (unsigned k = 0; k < pool->nb_nodes; k++)
		n += __atomic_load_n(&pool->nodes[k].free_top, __ATOMIC_RELAXED);
	return n;
}

/* The mempool of the node socket is on, or the first one if none is. */
static inline struct rte_mempool *zcd_pool_mempool(const struct zcd_pool *pool, int socket)
{
	for (unsigned k = 0; k < pool->nb_nodes; k++)
		if (pool->nodes[k].socket == socket)
			return pool->nodes[k].mp;
	return pool->nodes[0].mp;
}

#endif /* ZCDEMUX_POOL_H */
