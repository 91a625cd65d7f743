/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the guest's SHA-256 (hypervisor-glue/xen/guest/sha256.c)
 * against the FIPS 180-4 example vectors (NIST CSRC "Examples with
 * Intermediate Values", SHA-256) and its streaming behaviour.
 */
#include <stdlib.h>

#include "check.h"

#include "../../hypervisor-glue/xen/guest/sha256.h"

static void hash_hex(const void *data, size_t len, char out[ZCD_SHA256_HEX_BYTES])
{
	struct zcd_sha256 ctx;

	zcd_sha256_init(&ctx);
	zcd_sha256_update(&ctx, data, len);
	zcd_sha256_hex(&ctx, out);
}

static void test_fips_vectors(void)
{
	char hex[ZCD_SHA256_HEX_BYTES];

	hash_hex("abc", 3, hex);
	CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);

	hash_hex("", 0, hex);
	CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);

	/* The two-block, 448-bit message. */
	hash_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
	CHECK(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
}

/* One million 'a', fed in uneven pieces so every buffering path runs. */
static void test_million_a(void)
{
	static const size_t pieces[] = { 1, 63, 64, 65, 127, 1000, 4096, 7 };
	char *chunk = malloc(4096);
	struct zcd_sha256 ctx;
	char hex[ZCD_SHA256_HEX_BYTES];
	size_t left = 1000000;

	if (chunk == NULL) {
		CHECK(chunk != NULL);
		return;
	}
	memset(chunk, 'a', 4096);
	zcd_sha256_init(&ctx);
	for (unsigned i = 0; left > 0; i++) {
		size_t take = pieces[i % (sizeof(pieces) / sizeof(pieces[0]))];

		if (take > left)
			take = left;
		zcd_sha256_update(&ctx, chunk, take);
		left -= take;
	}
	zcd_sha256_hex(&ctx, hex);
	CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
	free(chunk);
}

/* The digest of a prefix leaves the context able to go on hashing. */
static void test_running_digest(void)
{
	struct zcd_sha256 ctx;
	char hex[ZCD_SHA256_HEX_BYTES];

	zcd_sha256_init(&ctx);
	zcd_sha256_update(&ctx, "ab", 2);
	zcd_sha256_hex(&ctx, hex);
	zcd_sha256_update(&ctx, "c", 1);
	zcd_sha256_hex(&ctx, hex);
	CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
}

/* Lengths around the padding boundary (55, 56, 63, 64 bytes) against sha256sum. */
static void test_padding_boundaries(void)
{
	static const struct {
		size_t len;
		const char *hex;
	} cases[] = {
		{ 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318" },
		{ 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a" },
		{ 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34" },
		{ 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb" },
	};
	char data[64];
	char hex[ZCD_SHA256_HEX_BYTES];

	memset(data, 'a', sizeof(data));
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		hash_hex(data, cases[i].len, hex);
		CHECK(strcmp(hex, cases[i].hex) == 0);
	}
}

int main(void)
{
	test_fips_vectors();
	test_million_a();
	test_running_digest();
	test_padding_boundaries();
	return check_report("test_guest_sha256");
}
