/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * "none": no DMA table is managed here.  Right when the platform has no
 * IOMMU for the device, or when the hypervisor owns it (Xen enters guest
 * grant mappings itself).
 */
#include <stdio.h>
#include <stdlib.h>

#include "backends.h"

struct zcd_iommu {
	int unused;
};

static struct zcd_iommu *none_create(const struct zcd_config *cfg, const struct zcd_buf_region *pool,
				     char *err, size_t errlen)
{
	struct zcd_iommu *mmu = calloc(1, sizeof(*mmu));

	(void)cfg;
	(void)pool;
	if (mmu == NULL)
		snprintf(err, errlen, "iommu none: out of memory");
	return mmu;
}

static int none_update(struct zcd_iommu *mmu, const uint32_t *buf_ids, unsigned n)
{
	(void)mmu;
	(void)buf_ids;
	(void)n;
	return 0;
}

static int none_is_mapped(const struct zcd_iommu *mmu, uint32_t buf_id)
{
	(void)mmu;
	(void)buf_id;
	return -1;
}

static void none_stats(const struct zcd_iommu *mmu, struct zcd_iommu_stats *out)
{
	(void)mmu;
	*out = (struct zcd_iommu_stats){0};
}

static void none_destroy(struct zcd_iommu *mmu)
{
	free(mmu);
}

const struct zcd_iommu_ops zcd_iommu_none_ops = {
	.name = "none",
	.create = none_create,
	.map = none_update,
	.unmap = none_update,
	.is_mapped = none_is_mapped,
	.stats = none_stats,
	.destroy = none_destroy,
};
