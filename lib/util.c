/* SPDX-License-Identifier: MIT */
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int tp_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int tp_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	default:
		return -EINVAL;
	}
	if (*end) {
		end++;
		/* Accept "256M", "256MB", "256MiB". */
		if (*end == 'i')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

const char *tp_fmt_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned u = 0;

	while (u + 1 < TP_ARRAY_SIZE(units) && bytes >= 1024 && !(bytes & 1023)) {
		bytes >>= 10;
		u++;
	}
	snprintf(buf, len, "%" PRIu64 " %s", bytes, units[u]);
	return buf;
}

uint64_t tp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#ifdef TP_TEST_HOOKS
/* Only the message thread allocates through these (backend threads use
 * malloc), so plain counters do. */
static uint64_t alloc_calls, alloc_fail_at;
static bool alloc_fired;

void tp_alloc_fail_at(uint64_t n)
{
	alloc_calls = 0;
	alloc_fail_at = n;
	alloc_fired = false;
}

uint64_t tp_alloc_calls(void)
{
	return alloc_calls;
}

bool tp_alloc_failed(void)
{
	return alloc_fired;
}

static bool alloc_fails(void)
{
	if (++alloc_calls != alloc_fail_at)
		return false;
	alloc_fired = true;
	return true;
}
#else
static inline bool alloc_fails(void)
{
	return false;
}
#endif

void *tp_calloc(size_t n, size_t size)
{
	return alloc_fails() ? NULL : calloc(n, size);
}

void *tp_malloc(size_t size)
{
	return alloc_fails() ? NULL : malloc(size);
}

void *tp_realloc(void *p, size_t size)
{
	return alloc_fails() ? NULL : realloc(p, size);
}
