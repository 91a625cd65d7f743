/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libgen.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "zcdemux/config.h"
#include "zcdemux/ring.h"

#include "keep_file.h"

int zcd_keep_place(const char *keep, char *out, size_t outlen, uint64_t *align)
{
	char dir[ZCD_FILE_PATH_MAX];
	struct statfs fs;

	*align = ZCD_PAGE_SIZE;
	snprintf(out, outlen, "%s", keep != NULL ? keep : "");
	if (keep == NULL)
		return 0;
	snprintf(dir, sizeof(dir), "%s", keep);
	if (statfs(dirname(dir), &fs) != 0)
		return -1;
	if (fs.f_type == HUGETLBFS_MAGIC && fs.f_bsize > ZCD_PAGE_SIZE)
		*align = (uint64_t)fs.f_bsize;
	return 0;
}

int zcd_keep_file_create(const char *path, const char *name, uint64_t bytes, void **map)
{
	int fd = path != NULL ? open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)
			      : memfd_create(name, MFD_CLOEXEC);
	int saved_errno;

	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)bytes) == 0 && fallocate(fd, 0, 0, (off_t)bytes) == 0) {
		*map = zcd_keep_file_map(fd, bytes);
		if (*map != NULL)
			return fd;
	}
	saved_errno = errno;
	close(fd);
	if (path != NULL)
		unlink(path);
	errno = saved_errno;
	return -1;
}

int zcd_keep_file_open(const char *path, void *hdr, size_t hdr_len)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd >= 0 && pread(fd, hdr, hdr_len, 0) != (ssize_t)hdr_len) {
		close(fd);
		return -1;
	}
	return fd;
}

void *zcd_keep_file_map(int fd, uint64_t bytes)
{
	struct stat sb;
	void *map;

	if (fstat(fd, &sb) != 0 || (uint64_t)sb.st_size != bytes) {
		errno = EINVAL;
		return NULL;
	}
	map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return map != MAP_FAILED ? map : NULL;
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
