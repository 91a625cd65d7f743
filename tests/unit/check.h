/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Minimal unit-test harness: CHECK* record a failure and go on, so that one
 * run reports every broken expectation; a test binary exits 1 if any failed.
 */
#ifndef ZCDEMUX_TESTS_CHECK_H
#define ZCDEMUX_TESTS_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static unsigned check_failures;
static unsigned check_count;

#define CHECK(cond)                                                                   \
	do {                                                                          \
		check_count++;                                                        \
		if (!(cond)) {                                                        \
			check_failures++;                                             \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, \
				#cond);                                               \
		}                                                                     \
	} while (0)

#define CHECK_EQ(a, b)                                                                \
	do {                                                                          \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);       \
		check_count++;                                                        \
		if (check_a_ != check_b_) {                                           \
			check_failures++;                                             \
			fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, \
				__LINE__, #a, #b, check_a_, check_b_);                \
		}                                                                     \
	} while (0)

#define CHECK_STR_CONTAINS(haystack, needle)                                          \
	do {                                                                          \
		const char *check_h_ = (haystack), *check_n_ = (needle);              \
		check_count++;                                                        \
		if (check_h_ == NULL || strstr(check_h_, check_n_) == NULL) {          \
			check_failures++;                                             \
			fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, \
				__LINE__, check_h_ ? check_h_ : "(null)", check_n_);   \
		}                                                                     \
	} while (0)

/* Call at the end of main(): prints a summary, returns the exit status. */
static inline int check_report(const char *suite)
{
	if (check_failures != 0) {
		fprintf(stderr, "%s: %u of %u checks FAILED\n", suite, check_failures, check_count);
		return 1;
	}
	printf("%s: all %u checks passed\n", suite, check_count);
	return 0;
}

#endif /* ZCDEMUX_TESTS_CHECK_H */
