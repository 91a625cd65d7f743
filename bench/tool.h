/* SPDX-License-Identifier: BSD-3-Clause */
/* What the benchmark tools share: DPDK's command line with --help first. */
#ifndef ZCDEMUX_BENCH_TOOL_H
#define ZCDEMUX_BENCH_TOOL_H

#include <stdio.h>

/*
 * Answer -h/--help anywhere on the command line without starting DPDK,
 * otherwise initialise the EAL.  Returns the index in argv where the
 * tool's own options start (argv[index] is then the tool's name, for
 * getopt), 0 if help was printed, -1 (after a message) if the EAL failed.
 */
int zcd_tool_init(int argc, char **argv, const char *prog,
		  void (*usage)(FILE *out, const char *prog));

#endif /* ZCDEMUX_BENCH_TOOL_H */
