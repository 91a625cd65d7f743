/* SPDX-License-Identifier: BSD-3-Clause */
/* Backend lookup by the name used in the configuration file. */
#include <stdio.h>
#include <string.h>

#include "backends.h"

static const struct zcd_hv_ops *const hv_backends[] = {
	&zcd_hv_sim_ops,
	&zcd_hv_xen_ops,
};

const struct zcd_hv_ops *zcd_hv_find(const char *name)
{
	for (size_t i = 0; i < sizeof(hv_backends) / sizeof(hv_backends[0]); i++)
		if (strcmp(hv_backends[i]->name, name) == 0)
			return hv_backends[i];
	return NULL;
}

const char *zcd_hv_names(void)
{
	static char names[128];

	if (names[0] == '\0')
		for (size_t i = 0; i < sizeof(hv_backends) / sizeof(hv_backends[0]); i++)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
				 i ? ", " : "", hv_backends[i]->name);
	return names;
}
