/* SPDX-License-Identifier: MIT */
/*
 * Shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c): a reader over the
 * fuzzer's input, fds made to order (memfds, eventfds, other kinds), an
 * invariant check that aborts with a message (libFuzzer then saves the
 * input), the open-fd count for leak checks, and an in-memory reply sink for
 * tp_session that checks the frame of every reply.
 *
 * Output: invariant failures go to stdout, because `make fuzz` closes the
 * harness's stderr (-close_fd_mask=2) to keep the server's hostile-message
 * warnings out of the log; libFuzzer and the sanitizers keep a copy of it
 * for their own reports.
 */
#ifndef TP_FUZZ_COMMON_H
#define TP_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <thunderpass/protocol.h>

#include "session.h"

struct fz_reader {
	const uint8_t *p;
	size_t n;
};

static inline bool fz_take(struct fz_reader *r, void *out, size_t len)
{
	if (r->n < len)
		return false;
	for (size_t i = 0; i < len; i++)
		((uint8_t *)out)[i] = r->p[i];
	r->p += len;
	r->n -= len;
	return true;
}

/* Missing bytes read as zero: a short input still runs its last step. */
uint8_t fz_u8(struct fz_reader *r);
uint16_t fz_u16(struct fz_reader *r);
uint32_t fz_u32(struct fz_reader *r);
uint64_t fz_u64(struct fz_reader *r);

/* An invariant broke: print why (stdout) and abort. */
void fz_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
#define FZ_CHECK(cond, ...)                  \
	do {                                 \
		if (!(cond))                 \
			fz_die(__VA_ARGS__); \
	} while (0)

/*
 * An fd from a descriptor byte (lib/record.h): bits 7-6 kind (0 memfd of
 * 4096 << min(class, max_class) bytes, 1 eventfd, 2 a pipe's read end, 3 an
 * O_PATH fd of a directory: mmap fails on it), bits 5-0 the size class.
 * Aborts when the process runs out of fds (a leak, in a harness).
 */
int fz_make_fd(uint8_t desc, unsigned max_class);
int fz_count_fds(void);
bool fz_fd_open(int fd);

/* Quiet logs unless FUZZ_VERBOSE is set; call from LLVMFuzzerInitialize. */
void fz_init_logging(void);

/*
 * Reply sink for tp_session_init: checks what every reply must be (size
 * field equal to 16 + payload, a REPLY, error replies empty with an errno and
 * no fd, at most one fd and it open) and remembers the last one.
 */
struct fz_sink {
	unsigned sends;
	struct tp_vu_hdr hdr;
	uint32_t len;
	unsigned nfds;
	int fail; /* what the callback returns */
};

int fz_sink_send(void *ctx, const struct tp_vu_hdr *hdr, const void *payload, uint32_t len,
		 const int *fds, unsigned nfds);

/*
 * Hands m to tp_session_handle and checks the exchange: fds taken or closed,
 * exactly one reply for a command that wants one (same id and command, no
 * larger than the request allows) and none otherwise. m->payload must stay
 * valid; m is the caller's.
 */
void fz_handle(struct tp_session *s, struct fz_sink *sink, struct tp_msg *m);

#endif
