/* SPDX-License-Identifier: BSD-3-Clause */
/* SHA-256 as specified in FIPS 180-4: constants 4.2.2, H(0) 5.3.3, rounds 6.2.2. */
#include "sha256.h"

#include <string.h>

/* First 32 bits of the fractional parts of the cube roots of the first 64 primes. */
static const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
	0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
	0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
	0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
	0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
	0xc67178f2,
};

static uint32_t rotr(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

static uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* One 512-bit block (6.2.2 steps 1-4). */
static void sha256_compress(uint32_t state[8], const uint8_t block[64])
{
	uint32_t w[64];
	uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
	uint32_t e = state[4], f = state[5], g = state[6], h = state[7];

	for (unsigned t = 0; t < 16; t++)
		w[t] = load_be32(block + 4 * t);
	for (unsigned t = 16; t < 64; t++) {
		uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
		uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);

		w[t] = w[t - 16] + s0 + w[t - 7] + s1;
	}
	for (unsigned t = 0; t < 64; t++) {
		uint32_t big_s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
		uint32_t ch = (e & f) ^ (~e & g);
		uint32_t t1 = h + big_s1 + ch + sha256_k[t] + w[t];
		uint32_t big_s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
		uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
		uint32_t t2 = big_s0 + maj;

		h = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	state[0] += a;
	state[1] += b;
	state[2] += c;
	state[3] += d;
	state[4] += e;
	state[5] += f;
	state[6] += g;
	state[7] += h;
}

void zcd_sha256_init(struct zcd_sha256 *ctx)
{
	static const uint32_t initial[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};

	memcpy(ctx->state, initial, sizeof(initial));
	ctx->total_bytes = 0;
	ctx->block_fill = 0;
}

void zcd_sha256_update(struct zcd_sha256 *ctx, const void *data, size_t len)
{
	const uint8_t *in = data;

	ctx->total_bytes += len;
	if (ctx->block_fill != 0) {
		size_t take = sizeof(ctx->block) - ctx->block_fill;

		if (take > len)
			take = len;
		memcpy(ctx->block + ctx->block_fill, in, take);
		ctx->block_fill += take;
		in += take;
		len -= take;
		if (ctx->block_fill < sizeof(ctx->block))
			return;
		sha256_compress(ctx->state, ctx->block);
		ctx->block_fill = 0;
	}
	for (; len >= sizeof(ctx->block); in += sizeof(ctx->block), len -= sizeof(ctx->block))
		sha256_compress(ctx->state, in);
	memcpy(ctx->block, in, len);
	ctx->block_fill = len;
}

void zcd_sha256_digest(const struct zcd_sha256 *ctx, uint8_t out[ZCD_SHA256_DIGEST_BYTES])
{
	/* Padding (5.1.1): 0x80, zeros, then the length in bits, big-endian. */
	uint8_t tail[128] = { 0 };
	size_t tail_len = ctx->block_fill < 56 ? 64 : 128;
	uint64_t bits = ctx->total_bytes * 8;
	uint32_t state[8];

	memcpy(tail, ctx->block, ctx->block_fill);
	tail[ctx->block_fill] = 0x80;
	store_be32(tail + tail_len - 8, (uint32_t)(bits >> 32));
	store_be32(tail + tail_len - 4, (uint32_t)bits);
	memcpy(state, ctx->state, sizeof(state));
	for (size_t off = 0; off < tail_len; off += 64)
		sha256_compress(state, tail + off);
	for (unsigned i = 0; i < 8; i++)
		store_be32(out + 4 * i, state[i]);
}

void zcd_sha256_hex(const struct zcd_sha256 *ctx, char out[ZCD_SHA256_HEX_BYTES])
{
	static const char digits[] = "0123456789abcdef";
	uint8_t digest[ZCD_SHA256_DIGEST_BYTES];

	zcd_sha256_digest(ctx, digest);
	for (unsigned i = 0; i < ZCD_SHA256_DIGEST_BYTES; i++) {
		out[2 * i] = digits[digest[i] >> 4];
		out[2 * i + 1] = digits[digest[i] & 0xf];
	}
	out[2 * ZCD_SHA256_DIGEST_BYTES] = '\0';
}
