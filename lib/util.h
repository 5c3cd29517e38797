/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the core. Error rule for lib/: functions return 0
 * (or a count) on success and a negative errno on failure, and log only where
 * the error is decided.
 */
#ifndef TP_UTIL_H
#define TP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define TP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TP_MAX(a, b) ((a) > (b) ? (a) : (b))

/* True when [off, off + len) lies inside [0, size), without overflow. */
static inline bool tp_range_ok(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

static inline bool tp_is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* Parses "256M", "4G", "65536", "0x1000" (K/M/G/T, powers of 1024). */
int tp_parse_size(const char *s, uint64_t *out);
/* Parses a u64 in C notation (decimal, 0x hex, 0 octal), whole string. */
int tp_parse_u64(const char *s, uint64_t *out);

/* Formats a byte count as "256 MiB" / "16 KiB" / "100 B". */
const char *tp_fmt_size(uint64_t bytes, char *buf, size_t len);

/* Little-endian loads/stores on byte buffers (config space, wire data). */
static inline uint32_t tp_le_get(const uint8_t *p, unsigned len)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < len; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static inline void tp_le_put(uint8_t *p, unsigned len, uint32_t v)
{
	for (unsigned i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Monotonic clock in nanoseconds. */
uint64_t tp_now_ns(void);

/* Test builds may make allocations fail (issue: fault injection). */
void *tp_calloc(size_t n, size_t size);
void *tp_malloc(size_t size);
void *tp_realloc(void *p, size_t size);

#ifdef TP_TEST_HOOKS
/*
 * Fault injection (built only with -DTP_TEST_HOOKS, tests/fault): the n-th
 * call of tp_malloc/tp_calloc/tp_realloc from now on fails (1 = the next
 * one); 0 disarms. tp_alloc_calls() counts calls since the last arm, so a
 * test can size its sweep; tp_alloc_failed() says whether the failure fired.
 */
void tp_alloc_fail_at(uint64_t n);
uint64_t tp_alloc_calls(void);
bool tp_alloc_failed(void);
#endif

#endif
