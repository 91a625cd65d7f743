/* SPDX-License-Identifier: BSD-3-Clause */
/* Private to iommu/: the ops tables of the built-in backends. */
#ifndef ZCDEMUX_IOMMU_BACKENDS_H
#define ZCDEMUX_IOMMU_BACKENDS_H

#include "zcdemux/iommu.h"

extern const struct zcd_iommu_ops zcd_iommu_none_ops;
extern const struct zcd_iommu_ops zcd_iommu_sim_ops;
extern const struct zcd_iommu_ops zcd_iommu_vfio_ops;

#endif /* ZCDEMUX_IOMMU_BACKENDS_H */
