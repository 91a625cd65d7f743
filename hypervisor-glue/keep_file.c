/* SPDX-License-Identifier: BSD-3-Clause */
#include <glob.h>
#include <libgen.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>

#include "zcdemux/config.h"
#include "zcdemux/ring.h"

#include "keep_file.h"

int zcd_keep_file_align(const char *keep, uint64_t *align)
{
	char dir[ZCD_FILE_PATH_MAX];
	struct statfs fs;

	*align = ZCD_PAGE_SIZE;
	snprintf(dir, sizeof(dir), "%s", keep);
	if (statfs(dirname(dir), &fs) != 0)
		return -1;
	if (fs.f_type == HUGETLBFS_MAGIC && fs.f_bsize > ZCD_PAGE_SIZE)
		*align = (uint64_t)fs.f_bsize;
	return 0;
}

void zcd_keep_files_unconfigured(const char *keep, const char *infix,
				 const struct zcd_config *cfg,
				 void (*retire)(const char *path, void *ctx), void *ctx)
{
	char pattern[ZCD_FILE_PATH_MAX + 16];
	size_t prefix;
	glob_t found;

	prefix = (size_t)snprintf(pattern, sizeof(pattern), "%s%s", keep, infix);
	snprintf(pattern + prefix, sizeof(pattern) - prefix, "*");
	if (glob(pattern, GLOB_NOSORT | GLOB_NOESCAPE, NULL, &found) != 0)
		return;
	for (size_t i = 0; i < found.gl_pathc; i++) {
		const char *name = found.gl_pathv[i] + prefix;
		bool wanted = false;

		for (unsigned v = 0; v < cfg->nb_vms && !wanted; v++)
			wanted = strcmp(cfg->vms[v].name, name) == 0;
		if (!wanted)
			retire(found.gl_pathv[i], ctx);
	}
	globfree(&found);
}
