/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * "vfio": the pool in the DMA table of the devices DPDK drives through
 * vfio-pci (VFIO type1, DPDK's default container).  DPDK maps its own
 * memory (rings, descriptors, mbuf headers) for the devices; this backend
 * maps the pool's buffers, which live outside DPDK's memory, and takes each
 * buffer out of the table while a VM has it.
 *
 * The container is DPDK's (rte_vfio_get_container_fd()); the map and unmap
 * ioctls go to it directly, because DPDK's own helper keeps a list of at
 * most 256 user mappings, which runs out once a few hundred buffers are out
 * at scattered places.  A type1 IOMMU cannot split a mapping, so every
 * buffer is mapped on its own (one call per buffer); an unmap takes a whole
 * run of adjacent buffers in one call, with one IOTLB invalidation.
 * IOVA = virtual address: DPDK must run in IOVA-as-VA mode (its default
 * with VFIO).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/vfio.h>
#include <sys/ioctl.h>

#include <rte_eal.h>
#include <rte_vfio.h>

#include "backends.h"

struct zcd_iommu {
	int container_fd;
	uint8_t *base;
	uint32_t nb_bufs;
	uint32_t buf_size;
	uint32_t pages_per_buf;
	uint8_t *mapped; /* one byte per buffer */
	struct zcd_iommu_stats stats;
};

static int map_one(struct zcd_iommu *mmu, uint32_t id)
{
	uint64_t va = (uint64_t)(uintptr_t)(mmu->base + (size_t)id * mmu->buf_size);
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = va,
		.iova = va,
		.size = mmu->buf_size,
	};

	mmu->stats.map_calls++;
	if (ioctl(mmu->container_fd, VFIO_IOMMU_MAP_DMA, &map) != 0)
		return -1;
	mmu->mapped[id] = 1;
	mmu->stats.pages_mapped += mmu->pages_per_buf;
	return 0;
}

/* Unmap buffers first..first+count-1, all mapped, with one call. */
static int unmap_run(struct zcd_iommu *mmu, uint32_t first, uint32_t count)
{
	uint64_t va = (uint64_t)(uintptr_t)(mmu->base + (size_t)first * mmu->buf_size);
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap),
		.iova = va,
		.size = (uint64_t)count * mmu->buf_size,
	};

	mmu->stats.unmap_calls++;
	/* The kernel reports how much it unmapped: all of it, or it failed. */
	if (ioctl(mmu->container_fd, VFIO_IOMMU_UNMAP_DMA, &unmap) != 0 ||
	    unmap.size != (uint64_t)count * mmu->buf_size)
		return -1;
	memset(mmu->mapped + first, 0, count);
	mmu->stats.pages_unmapped += (uint64_t)count * mmu->pages_per_buf;
	return 0;
}

static void vfio_destroy(struct zcd_iommu *mmu);

static struct zcd_iommu *vfio_create(const struct zcd_config *cfg,
				     const struct zcd_buf_region *pool, char *err, size_t errlen)
{
	struct zcd_iommu *mmu;

	(void)cfg;
	if (rte_eal_iova_mode() != RTE_IOVA_VA) {
		snprintf(err, errlen, "needs DPDK in IOVA-as-VA mode (EAL option --iova-mode=va)");
		return NULL;
	}
	if (!rte_vfio_is_enabled("vfio_pci") || rte_vfio_get_container_fd() < 0) {
		snprintf(err, errlen, "no device is driven through vfio-pci (bind the NIC to "
				      "vfio-pci and name it in ports[].devargs)");
		return NULL;
	}
	mmu = calloc(1, sizeof(*mmu));
	if (mmu == NULL || (mmu->mapped = calloc(pool->nb_bufs, 1)) == NULL) {
		free(mmu);
		snprintf(err, errlen, "out of memory for %u buffers", pool->nb_bufs);
		return NULL;
	}
	mmu->container_fd = rte_vfio_get_container_fd();
	mmu->base = pool->base;
	mmu->nb_bufs = pool->nb_bufs;
	mmu->buf_size = pool->buf_size;
	mmu->pages_per_buf = pool->pages_per_buf;
	for (uint32_t id = 0; id < pool->nb_bufs; id++) {
		if (map_one(mmu, id) != 0) {
			int e = errno;

			snprintf(err, errlen, "cannot map buffer %u into the VFIO container: %s%s", id,
				 strerror(e),
				 e == EINVAL ? " (IOVA = virtual address; is the IOMMU's address width "
					       "below 48 bits?)"
					     : "");
			vfio_destroy(mmu);
			return NULL;
		}
	}
	return mmu;
}

/* ids are sorted (the dataplane sorts them): runs of adjacent ids go out together. */
static int vfio_unmap(struct zcd_iommu *mmu, const uint32_t *ids, unsigned n)
{
	int rc = 0;

	for (unsigned i = 0; i < n;) {
		uint32_t first = ids[i], count = 1;

		if (first >= mmu->nb_bufs || !mmu->mapped[first]) {
			mmu->stats.errors++;
			rc = -1;
			i++;
			continue;
		}
		while (i + count < n && ids[i + count] == first + count &&
		       first + count < mmu->nb_bufs && mmu->mapped[first + count])
			count++;
		if (unmap_run(mmu, first, count) != 0)
			rc = -1;
		i += count;
	}
	return rc;
}

static int vfio_map(struct zcd_iommu *mmu, const uint32_t *ids, unsigned n)
{
	int rc = 0;

	for (unsigned i = 0; i < n; i++) {
		if (ids[i] >= mmu->nb_bufs || mmu->mapped[ids[i]]) {
			mmu->stats.errors++;
			rc = -1;
			continue;
		}
		if (map_one(mmu, ids[i]) != 0)
			rc = -1;
	}
	return rc;
}

static int vfio_is_mapped(const struct zcd_iommu *mmu, uint32_t buf_id)
{
	return buf_id < mmu->nb_bufs ? mmu->mapped[buf_id] : 0;
}

static void vfio_stats(const struct zcd_iommu *mmu, struct zcd_iommu_stats *out)
{
	*out = mmu->stats;
}

/* Take the pool out of the container: the device must not reach freed memory. */
static void vfio_destroy(struct zcd_iommu *mmu)
{
	if (mmu == NULL)
		return;
	for (uint32_t id = 0; id < mmu->nb_bufs;) {
		uint32_t count = 0;

		while (id + count < mmu->nb_bufs && mmu->mapped[id + count])
			count++;
		if (count != 0)
			unmap_run(mmu, id, count);
		id += count + 1;
	}
	free(mmu->mapped);
	free(mmu);
}

const struct zcd_iommu_ops zcd_iommu_vfio_ops = {
	.name = "vfio",
	.create = vfio_create,
	.map = vfio_map,
	.unmap = vfio_unmap,
	.is_mapped = vfio_is_mapped,
	.stats = vfio_stats,
	.destroy = vfio_destroy,
};
