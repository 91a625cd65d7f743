/* SPDX-License-Identifier: BSD-3-Clause */
/* Strict and deferred DMA-table updates, and the checker; see dma.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_malloc.h>

#include "dma.h"

int zcd_dma_init(struct zcd_dma *dma, const struct zcd_config *cfg,
		 const struct zcd_buf_region *pool, char *err, size_t errlen)
{
	char why[256];

	memset(dma, 0, sizeof(*dma));
	dma->ops = zcd_iommu_find(cfg->iommu_backend);
	dma->mode = cfg->iommu_mode;
	dma->batch = cfg->iommu_deferred_batch;
	dma->max_wait_tsc = (uint64_t)cfg->iommu_deferred_us * rte_get_tsc_hz() / 1000000;
	dma->pending = rte_malloc("zcd_dma_pending", dma->batch * sizeof(*dma->pending), 0);
	dma->is_pending = rte_zmalloc("zcd_dma_flags", pool->nb_bufs, 0);
	dma->scratch = rte_malloc("zcd_dma_scratch",
				  (dma->batch > pool->nb_bufs ? dma->batch : pool->nb_bufs) *
					  sizeof(*dma->scratch),
				  0);
	if (dma->pending == NULL || dma->is_pending == NULL || dma->scratch == NULL) {
		snprintf(err, errlen, "out of DPDK memory for the DMA-table state");
		return -1;
	}
	dma->mmu = dma->ops->create(cfg, pool, why, sizeof(why));
	if (dma->mmu == NULL) {
		snprintf(err, errlen, "iommu %s: %s", cfg->iommu_backend, why);
		return -1;
	}
	dma->nb_bufs = pool->nb_bufs;
	rte_spinlock_init(&dma->lock);
	dma->keeps_table = dma->ops->is_mapped(dma->mmu, 0) >= 0;
	return 0;
}

void zcd_dma_fini(struct zcd_dma *dma)
{
	if (dma->mmu != NULL)
		dma->ops->destroy(dma->mmu);
	rte_free(dma->scratch);
	rte_free(dma->is_pending);
	rte_free(dma->pending);
	memset(dma, 0, sizeof(*dma));
}

static int cmp_id(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Ids in ascending order, so that the backend sees contiguous runs. */
static void call_sorted(struct zcd_dma *dma, const uint32_t *ids, unsigned n, bool map)
{
	int rc;

	if (n == 0)
		return;
	if (ids != dma->scratch)
		memcpy(dma->scratch, ids, n * sizeof(*ids));
	qsort(dma->scratch, n, sizeof(*dma->scratch), cmp_id);
	rc = map ? dma->ops->map(dma->mmu, dma->scratch, n)
		 : dma->ops->unmap(dma->mmu, dma->scratch, n);
	if (rc != 0)
		dma->st.failures++;
}

static void flush_locked(struct zcd_dma *dma, uint64_t now_tsc)
{
	unsigned live = 0;

	if (dma->nb_pending == 0)
		return;
	/* The buffers came back meanwhile are no longer queued: skip them. */
	for (uint32_t i = 0; i < dma->nb_pending; i++) {
		uint32_t id = dma->pending[i];

		if (!dma->is_pending[id])
			continue;
		dma->is_pending[id] = 0;
		dma->pending[live++] = id;
	}
	if (live != 0) {
		uint64_t waited = now_tsc > dma->oldest_tsc ? now_tsc - dma->oldest_tsc : 0;
		uint64_t waited_us = waited * 1000000 / rte_get_tsc_hz();

		if (waited_us > dma->st.max_exposure_us)
			dma->st.max_exposure_us = waited_us;
		call_sorted(dma, dma->pending, live, false);
	}
	dma->nb_pending = 0;
}

void zcd_dma_flush(struct zcd_dma *dma, uint64_t now_tsc)
{
	if (!dma->keeps_table)
		return;
	rte_spinlock_lock(&dma->lock);
	flush_locked(dma, now_tsc);
	rte_spinlock_unlock(&dma->lock);
}

void zcd_dma_unmap(struct zcd_dma *dma, const uint32_t *ids, unsigned n, uint64_t now_tsc)
{
	if (!dma->keeps_table || n == 0)
		return;
	rte_spinlock_lock(&dma->lock);
	if (dma->mode == ZCD_IOMMU_STRICT) {
		call_sorted(dma, ids, n, false);
		rte_spinlock_unlock(&dma->lock);
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		if (dma->nb_pending == dma->batch) {
			dma->st.flushes_by_count++;
			flush_locked(dma, now_tsc);
		}
		if (dma->nb_pending == 0)
			dma->oldest_tsc = now_tsc;
		dma->pending[dma->nb_pending++] = ids[i];
		dma->is_pending[ids[i]] = 1;
		dma->st.deferred_buffers++;
	}
	rte_spinlock_unlock(&dma->lock);
}

void zcd_dma_map(struct zcd_dma *dma, const uint32_t *ids, unsigned n)
{
	unsigned k = 0;

	if (!dma->keeps_table || n == 0)
		return;
	rte_spinlock_lock(&dma->lock);
	for (unsigned i = 0; i < n; i++) {
		if (dma->is_pending[ids[i]])
			dma->is_pending[ids[i]] = 0; /* never left the table */
		else
			dma->scratch[k++] = ids[i];
	}
	call_sorted(dma, dma->scratch, k, true);
	rte_spinlock_unlock(&dma->lock);
}

void zcd_dma_tick(struct zcd_dma *dma, uint64_t now_tsc)
{
	if (!dma->keeps_table)
		return;
	rte_spinlock_lock(&dma->lock);
	/* now_tsc may be a little behind the TSC another lcore queued with. */
	if (dma->nb_pending != 0 && now_tsc >= dma->oldest_tsc &&
	    now_tsc - dma->oldest_tsc >= dma->max_wait_tsc) {
		dma->st.flushes_by_time++;
		flush_locked(dma, now_tsc);
	}
	rte_spinlock_unlock(&dma->lock);
}

uint64_t zcd_dma_check(struct zcd_dma *dma, const struct zcd_ledger *ledger)
{
	uint64_t mismatches = 0;

	if (!zcd_dma_has_table(dma))
		return 0;
	rte_spinlock_lock(&dma->lock);
	dma->st.checks++;
	for (uint32_t id = 0; id < ledger->nb_bufs; id++) {
		enum zcd_buf_state st = zcd_ledger_state(ledger, id);
		int want = st == ZCD_BUF_FREE || st == ZCD_BUF_POSTED || st == ZCD_BUF_HELD ||
			   dma->is_pending[id];

		if (dma->ops->is_mapped(dma->mmu, id) != want)
			mismatches++;
	}
	dma->st.mismatches += mismatches;
	rte_spinlock_unlock(&dma->lock);
	return mismatches;
}
