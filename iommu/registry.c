/* SPDX-License-Identifier: BSD-3-Clause */
/* Backend lookup by the name used in the configuration file. */
#include <stdio.h>
#include <string.h>

#include "backends.h"

static const struct zcd_iommu_ops *const iommu_backends[] = {
	&zcd_iommu_none_ops,
	&zcd_iommu_sim_ops,
	&zcd_iommu_vfio_ops,
};

const struct zcd_iommu_ops *zcd_iommu_find(const char *name)
{
	for (size_t i = 0; i < sizeof(iommu_backends) / sizeof(iommu_backends[0]); i++)
		if (strcmp(iommu_backends[i]->name, name) == 0)
			return iommu_backends[i];
	return NULL;
}

const char *zcd_iommu_names(void)
{
	static char names[128];

	if (names[0] == '\0')
		for (size_t i = 0; i < sizeof(iommu_backends) / sizeof(iommu_backends[0]); i++)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
				 i ? ", " : "", iommu_backends[i]->name);
	return names;
}
