/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdint.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include "tool.h"

int zcd_tool_init(int argc, char **argv, const char *prog,
		  void (*usage)(FILE *out, const char *prog))
{
	int eal_args;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout, prog);
			return 0;
		}
	eal_args = rte_eal_init(argc, argv);
	if (eal_args < 0) {
		fprintf(stderr, "%s: cannot initialise DPDK EAL: %s\n", prog, rte_strerror(rte_errno));
		return -1;
	}
	argv[eal_args] = (char *)(uintptr_t)prog;
	return eal_args;
}
