/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SHA-256 (FIPS 180-4, section 6.2), streaming.  The guest keeps a running
 * digest of every frame byte it receives so that a harness can compare what
 * arrived with what was sent without shipping the frames themselves.
 */
#ifndef ZCDEMUX_GUEST_SHA256_H
#define ZCDEMUX_GUEST_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define ZCD_SHA256_DIGEST_BYTES 32U
#define ZCD_SHA256_HEX_BYTES (2U * ZCD_SHA256_DIGEST_BYTES + 1U) /* with the NUL */

struct zcd_sha256 {
	uint32_t state[8]; /* H0..H7 */
	uint64_t total_bytes; /* message length so far */
	uint8_t block[64]; /* bytes not yet compressed */
	size_t block_fill;
};

void zcd_sha256_init(struct zcd_sha256 *ctx);

/* Append len bytes to the message. */
void zcd_sha256_update(struct zcd_sha256 *ctx, const void *data, size_t len);

/* Digest of the message so far; ctx is left as it was, so hashing can go on. */
void zcd_sha256_digest(const struct zcd_sha256 *ctx, uint8_t out[ZCD_SHA256_DIGEST_BYTES]);

/* The same as 64 lower-case hex digits and a NUL. */
void zcd_sha256_hex(const struct zcd_sha256 *ctx, char out[ZCD_SHA256_HEX_BYTES]);

#endif /* ZCDEMUX_GUEST_SHA256_H */
