/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The device's DMA table: which pool buffers the NIC may write.
 *
 * A buffer is DMA-able while the dataplane owns it (FREE, POSTED, HELD in the
 * ledger) and must not be from before it is handed to a VM until it has come
 * back and been scrubbed.  The dataplane unmaps a batch before the handoff
 * and maps a batch before returning scrubbed buffers to the free pool.
 * Backends: "none" (no table: the platform or hypervisor owns the IOMMU),
 * "vfio" (the NIC's VFIO type1 domain) and "sim" (a modelled table that
 * rejects double maps and unmaps).  Strict or deferred unmapping is the
 * dataplane's policy (dataplane/dma.h), not the backend's.
 */
#ifndef ZCDEMUX_IOMMU_H
#define ZCDEMUX_IOMMU_H

#include <stdint.h>

#include "zcdemux/config.h"
#include "zcdemux/hv.h"

struct zcd_iommu_stats {
	uint64_t map_calls; /* table updates issued (one per contiguous range) */
	uint64_t unmap_calls;
	uint64_t pages_mapped;
	uint64_t pages_unmapped;
	uint64_t errors; /* maps of mapped or unmaps of unmapped buffers */
};

struct zcd_iommu;

struct zcd_iommu_ops {
	const char *name;

	/*
	 * Set up the table for the pool with every buffer mapped.  Returns NULL
	 * with a message in err on failure.  May log.
	 */
	struct zcd_iommu *(*create)(const struct zcd_config *cfg, const struct zcd_buf_region *pool,
				    char *err, size_t errlen);

	/* Make buffers DMA-able / not DMA-able.  0, or -1 if any update failed. */
	int (*map)(struct zcd_iommu *mmu, const uint32_t *buf_ids, unsigned n);
	int (*unmap)(struct zcd_iommu *mmu, const uint32_t *buf_ids, unsigned n);

	/* 1 if the device may write buf_id, 0 if not, -1 if this backend keeps no table. */
	int (*is_mapped)(const struct zcd_iommu *mmu, uint32_t buf_id);

	void (*stats)(const struct zcd_iommu *mmu, struct zcd_iommu_stats *out);

	void (*destroy)(struct zcd_iommu *mmu);
};

/* Backend by name ("none", "vfio", "sim"); NULL if unknown. */
const struct zcd_iommu_ops *zcd_iommu_find(const char *name);

/* Comma-separated names of the backends built in, for messages. */
const char *zcd_iommu_names(void);

#endif /* ZCDEMUX_IOMMU_H */
