/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * "sim": a modelled DMA table, one entry per pool buffer.  It counts table
 * updates the way the vfio backend programs a type1 IOMMU (a mapping per
 * buffer, since type1 cannot split one; an unmap per run of contiguous
 * buffers) and refuses to map a mapped buffer or unmap an unmapped one, so
 * that tests catch a dataplane whose ledger and DMA table drift apart.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "backends.h"

struct zcd_iommu {
	uint8_t *mapped; /* one byte per buffer: simpler than bits, same checks */
	uint32_t nb_bufs;
	uint32_t pages_per_buf;
	struct zcd_iommu_stats stats;
};

static struct zcd_iommu *sim_create(const struct zcd_config *cfg, const struct zcd_buf_region *pool,
				    char *err, size_t errlen)
{
	struct zcd_iommu *mmu = calloc(1, sizeof(*mmu));

	(void)cfg;
	if (mmu == NULL || (mmu->mapped = malloc(pool->nb_bufs)) == NULL) {
		free(mmu);
		snprintf(err, errlen, "iommu sim: out of memory for %u buffers", pool->nb_bufs);
		return NULL;
	}
	for (uint32_t i = 0; i < pool->nb_bufs; i++)
		mmu->mapped[i] = 1;
	mmu->nb_bufs = pool->nb_bufs;
	mmu->pages_per_buf = pool->pages_per_buf;
	mmu->stats.map_calls = pool->nb_bufs; /* mapped buffer by buffer at start */
	mmu->stats.pages_mapped = (uint64_t)pool->nb_bufs * pool->pages_per_buf;
	return mmu;
}

/*
 * Set buffers to state want; a buffer already in that state (or out of
 * range) is an error and is left alone.  Each buffer mapped is one update;
 * runs of consecutive ids unmapped are one.
 */
static int sim_update(struct zcd_iommu *mmu, const uint32_t *buf_ids, unsigned n, bool want,
		      uint64_t *calls, uint64_t *pages)
{
	int rc = 0;

	for (unsigned i = 0; i < n; i++) {
		uint32_t id = buf_ids[i];

		if (id >= mmu->nb_bufs || mmu->mapped[id] == want) {
			mmu->stats.errors++;
			rc = -1;
			continue;
		}
		mmu->mapped[id] = want;
		*pages += mmu->pages_per_buf;
		if (want || i == 0 || buf_ids[i - 1] + 1 != id)
			(*calls)++;
	}
	return rc;
}

static int sim_map(struct zcd_iommu *mmu, const uint32_t *buf_ids, unsigned n)
{
	return sim_update(mmu, buf_ids, n, true, &mmu->stats.map_calls, &mmu->stats.pages_mapped);
}

static int sim_unmap(struct zcd_iommu *mmu, const uint32_t *buf_ids, unsigned n)
{
	return sim_update(mmu, buf_ids, n, false, &mmu->stats.unmap_calls,
			  &mmu->stats.pages_unmapped);
}

static int sim_is_mapped(const struct zcd_iommu *mmu, uint32_t buf_id)
{
	return buf_id < mmu->nb_bufs ? mmu->mapped[buf_id] : 0;
}

static void sim_stats(const struct zcd_iommu *mmu, struct zcd_iommu_stats *out)
{
	*out = mmu->stats;
}

static void sim_destroy(struct zcd_iommu *mmu)
{
	if (mmu != NULL)
		free(mmu->mapped);
	free(mmu);
}

const struct zcd_iommu_ops zcd_iommu_sim_ops = {
	.name = "sim",
	.create = sim_create,
	.map = sim_map,
	.unmap = sim_unmap,
	.is_mapped = sim_is_mapped,
	.stats = sim_stats,
	.destroy = sim_destroy,
};
