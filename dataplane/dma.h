/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * When pool buffers leave and re-enter the device's DMA table, on top of an
 * iommu backend (include/zcdemux/iommu.h).
 *
 *   strict    a buffer is unmapped before its VM can see it;
 *   deferred  unmaps wait until deferred_batch buffers are queued or the
 *             oldest has waited deferred_max_us, then go out together (one
 *             IOTLB invalidation per contiguous run instead of per burst).
 *             Until then the device could still write a buffer its VM
 *             already sees: that is the exposure window, counted in
 *             `deferred_buffers` and bounded by deferred_max_us.
 *
 * A buffer that comes back while its unmap is still queued simply leaves
 * the queue: it never left the table.  The checker walks the ledger and the
 * table together: a buffer must be mapped exactly when the dataplane owns it
 * (FREE, POSTED, HELD) or its unmap is queued.
 *
 * Any lcore may call these: with a table to keep they take the module's
 * lock (the backend call is a syscall anyway); without one they return at
 * once.  The checker needs a ledger nobody is changing.
 */
#ifndef ZCDEMUX_DMA_H
#define ZCDEMUX_DMA_H

#include <stdint.h>

#include <rte_spinlock.h>

#include "ledger.h"
#include "zcdemux/config.h"
#include "zcdemux/iommu.h"

struct zcd_dma_stats {
	uint64_t deferred_buffers; /* handed over while still mapped */
	uint64_t flushes_by_count;
	uint64_t flushes_by_time;
	uint64_t max_exposure_us; /* longest a handed-over buffer stayed mapped */
	uint64_t failures; /* backend map/unmap calls that failed */
	uint64_t mismatches; /* ledger and table disagreed (checker) */
	uint64_t checks;
};

struct zcd_dma {
	const struct zcd_iommu_ops *ops;
	struct zcd_iommu *mmu;
	enum zcd_iommu_mode mode;
	uint32_t batch;
	uint64_t max_wait_tsc;
	uint32_t nb_bufs;
	uint32_t *pending; /* queued unmaps, oldest first; stale entries allowed */
	uint32_t nb_pending;
	uint8_t *is_pending; /* by buffer id: its unmap is queued */
	uint64_t oldest_tsc; /* when the oldest queued unmap was queued */
	uint32_t *scratch; /* sorted ids for one backend call */
	bool keeps_table; /* false: the backend has nothing to update (none) */
	rte_spinlock_t lock; /* everything above that changes, and the backend */
	struct zcd_dma_stats st;
};

/* The backend named in cfg, all buffers mapped.  0, or -1 with a message. */
int zcd_dma_init(struct zcd_dma *dma, const struct zcd_config *cfg,
		 const struct zcd_buf_region *pool, char *err, size_t errlen);
void zcd_dma_fini(struct zcd_dma *dma);

/* The device must lose access to these buffers: now (strict) or soon (deferred). */
void zcd_dma_unmap(struct zcd_dma *dma, const uint32_t *ids, unsigned n, uint64_t now_tsc);
/* Give the device these buffers back (scrubbed); queued unmaps are cancelled. */
void zcd_dma_map(struct zcd_dma *dma, const uint32_t *ids, unsigned n);
/* Flush deferred unmaps whose time is up; cheap when there are none. */
void zcd_dma_tick(struct zcd_dma *dma, uint64_t now_tsc);
/* Flush every queued unmap. */
void zcd_dma_flush(struct zcd_dma *dma, uint64_t now_tsc);
/* Walk ledger and table; returns (and counts) the disagreements. */
uint64_t zcd_dma_check(struct zcd_dma *dma, const struct zcd_ledger *ledger);

static inline bool zcd_dma_has_table(const struct zcd_dma *dma)
{
	return dma->nb_bufs != 0 && dma->ops->is_mapped(dma->mmu, 0) >= 0;
}

#endif /* ZCDEMUX_DMA_H */
