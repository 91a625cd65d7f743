/* SPDX-License-Identifier: BSD-3-Clause */
/* Private to hypervisor-glue: files a backend keeps next to the state file (hv.h, create). */
#ifndef ZCDEMUX_HV_KEEP_FILE_H
#define ZCDEMUX_HV_KEEP_FILE_H

#include <stdint.h>

#include "zcdemux/config.h"

/*
 * The unit a file kept under prefix keep is laid out in: the file system's
 * page (a huge page on hugetlbfs, which maps only whole ones), else 4 KiB.
 * 0, or -1 with errno if keep's directory cannot be looked at.
 */
int zcd_keep_file_align(const char *keep, uint64_t *align);

/*
 * For each file "<keep><infix><name>" whose name is no VM of cfg (left by
 * an earlier run whose configuration had that VM): retire(path, ctx).
 */
void zcd_keep_files_unconfigured(const char *keep, const char *infix,
				 const struct zcd_config *cfg,
				 void (*retire)(const char *path, void *ctx), void *ctx);

static inline uint64_t zcd_round_up(uint64_t bytes, uint64_t to)
{
	return (bytes + to - 1) / to * to;
}

#endif /* ZCDEMUX_HV_KEEP_FILE_H */
