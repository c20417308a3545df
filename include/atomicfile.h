/* SPDX-License-Identifier: Apache-2.0 */
#ifndef BERTH_ATOMICFILE_H
#define BERTH_ATOMICFILE_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Replace path with data durably: write a temp file in the same directory,
 * fsync it, rename it over path, fsync the directory. A crash at any point
 * leaves either the old or the new content, never a mix. 0 or -errno.
 */
int atomic_write_file(const char *path, const void *data, size_t len, mode_t mode);

/* Read a whole file of at most max bytes into a malloc'd NUL-terminated buffer. */
int read_file_bounded(const char *path, size_t max, char **out, size_t *len);

#endif
