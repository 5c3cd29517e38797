/* SPDX-License-Identifier: MIT */
/*
 * Session recordings (`thunderpass serve --record FILE`): every message a
 * client sends, as the transport handed it to the dispatcher, in a form the
 * message fuzzer (tests/fuzz/fuzz_msg.c) replays byte for byte. Recordings of
 * real QEMU sessions are the fuzzer's seeds.
 *
 * Format (little-endian; docs/security.md has the same):
 *
 *   file    "TPREC01\n" (8 bytes), then records until the end of the file
 *   record  u8 tag: 'M' a message, 'E' the client went away (session end)
 *   'M'     u8 fdinfo   bits 0-4: fd descriptors that follow (0..16);
 *                       bit 7: the transport lost fds (TP_MSG_FDS_LOST)
 *           u8 desc[n]  per fd: bits 7-6 kind (0 regular file or memfd,
 *                       1 eventfd, 2 anything else), bits 5-0 size class c:
 *                       the file holds at most 4096 << c bytes (0 if not a file)
 *           16 bytes    the vfio-user header as received
 *           body        header.size - 16 bytes when 16 <= header.size <=
 *                       TP_VU_MAX_MSG; none otherwise (the transport refused
 *                       the message: undersized, or oversized and discarded)
 *
 * fds are placeholders: their numbers mean nothing in another process, so
 * only what replaying needs is kept (an eventfd, or a file big enough for
 * the DMA_MAP that came with it). Guest data in REGION_WRITE bodies is
 * recorded as it came: the file is created owner-only (0600).
 *
 * Errors: -errno; a failed write is logged once and ends the recording (the
 * server goes on serving).
 */
#ifndef TP_RECORD_H
#define TP_RECORD_H

#include <stdint.h>

#include "transport.h"

#define TP_REC_MAGIC "TPREC01\n"
#define TP_REC_MAGIC_LEN 8
#define TP_REC_MSG 'M'
#define TP_REC_END 'E'
#define TP_REC_FDS_LOST 0x80u
#define TP_REC_FD_COUNT 0x1fu
#define TP_REC_KIND_FILE 0u
#define TP_REC_KIND_EVENTFD 1u
#define TP_REC_KIND_OTHER 2u
#define TP_REC_CLASS_MASK 0x3fu

struct tp_recorder;

/* Creates (or truncates) path, mode 0600, and writes the magic. */
int tp_record_open(const char *path, const char *who, struct tp_recorder **out);
/* One message as received (before the dispatcher takes its fds). */
void tp_record_msg(struct tp_recorder *r, const struct tp_msg *m);
/* The client went away. Flushes, so a killed server loses little. */
void tp_record_end(struct tp_recorder *r);
void tp_record_close(struct tp_recorder *r);

/* The body length a recorded header implies (what the transport kept). */
uint32_t tp_record_body_len(const struct tp_vu_hdr *h);
/* The descriptor byte for one fd. */
uint8_t tp_record_fd_desc(int fd);

#endif
