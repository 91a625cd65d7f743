/* SPDX-License-Identifier: BSD-3-Clause */
/* Private to hypervisor-glue: files a backend keeps next to the state file (hv.h, create). */
#ifndef ZCDEMUX_HV_KEEP_FILE_H
#define ZCDEMUX_HV_KEEP_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "zcdemux/config.h"

/*
 * Where a backend keeps its files: keep (NULL: nowhere, out = "") copied
 * into out, and in *align the unit they are laid out in: the file
 * system's page (a huge page on hugetlbfs, which maps only whole ones),
 * else 4 KiB.  0, or -1 with errno if keep's directory cannot be looked at.
 */
int zcd_keep_place(const char *keep, char *out, size_t outlen, uint64_t *align);

/*
 * A new file of bytes, zeroed and its space reserved, mapped shared: path
 * (which must not exist), or with path NULL a memfd called name.  Its fd,
 * with the mapping in *map; -1 with errno, nothing left open.
 */
int zcd_keep_file_create(const char *path, const char *name, uint64_t bytes, void **map);

/* The file at path, opened read-write, with its first hdr_len bytes in hdr: its fd, or -1. */
int zcd_keep_file_open(const char *path, void *hdr, size_t hdr_len);

/* fd mapped shared read-write if it is exactly bytes long; NULL otherwise. */
void *zcd_keep_file_map(int fd, uint64_t bytes);

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
