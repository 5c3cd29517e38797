/* SPDX-License-Identifier: MIT */
/*
 * fuzz_frame: the framing code (tp_conn_recv) on a real socketpair, the only
 * way to reach it. The input is cut into chunks, each written with its own
 * sendmsg (fds attached to some), and the server side reads whatever is there
 * after chosen chunks: messages arrive split at every possible point, fds
 * ride on any byte, headers claim any size. Every message goes on to
 * tp_session_handle (the fake function), as in the server.
 *
 * Checked against a reference framer run over the same byte stream: the
 * messages come out in order, each with the header, fault class and payload
 * the stream says (a header claiming under 16 bytes is a bare header; one
 * claiming more than TP_VU_MAX_MSG is refused and its body skipped), none
 * more; EOF is reported as -ECONNRESET; and no fd is left open.
 *
 * Input: chunks of u8 ctl (bits 0-4: fds to attach, more than 16 overflow
 * the receiver; bit 5: let the server read after this chunk; bits 6-7: the
 * fds' kind as in fz_make_fd), u16 length, then that many bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thunderpass/log.h>

#include "device.h"
#include "fake_backend.h"
#include "fuzz_common.h"
#include "transport.h"
#include "util.h"

#define MAX_STREAM (256u << 10)
#define MAX_MSGS 4096

struct expect {
	uint32_t off;  /* of the header in the stream */
	uint32_t len;  /* payload bytes */
	enum tp_msg_fault fault;
};

struct run {
	struct tp_conn conn;
	struct tp_session s;
	struct fz_sink sink;
	uint8_t *stream; /* every byte sent, in order */
	uint32_t sent;
	unsigned got;    /* messages received */
	struct expect *want;
	unsigned nwant;
	uint32_t pos;  /* the reference's parse position */
	uint64_t skip; /* body bytes of an oversized message still to skip */
	bool eof;
};

static struct fake_be fb;
static struct tp_device dev;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_init_logging();
	FZ_CHECK(fake_be_init(&fb, NULL) == 0, "fake_be_init");
	FZ_CHECK(tp_device_open(&dev, &fb.be, NULL) == 0, "tp_device_open");
	return 0;
}

/* The reference: where each message of the stream begins and what it is.
 * Incremental: the stream only grows, so parsing resumes where it stopped. */
static void reference(struct run *r)
{
	while (r->nwant < MAX_MSGS) {
		struct tp_vu_hdr h;
		struct expect *e = &r->want[r->nwant];

		if (r->skip) { /* an oversized message's body: skipped, unread */
			uint64_t n = TP_MIN(r->skip, (uint64_t)(r->sent - r->pos));

			r->pos += (uint32_t)n;
			r->skip -= n;
			if (r->skip)
				return;
			continue;
		}
		if (r->sent - r->pos < sizeof(h))
			return;
		memcpy(&h, r->stream + r->pos, sizeof(h));
		e->off = r->pos;
		e->len = 0;
		if (h.size < sizeof(h)) {
			e->fault = TP_MSG_UNDERSIZED;
			r->pos += sizeof(h);
		} else if (h.size > TP_VU_MAX_MSG) {
			e->fault = TP_MSG_OVERSIZED;
			r->pos += sizeof(h);
			r->skip = h.size - sizeof(h);
		} else {
			if (r->sent - r->pos < h.size)
				return;
			e->fault = TP_MSG_OK;
			e->len = h.size - (uint32_t)sizeof(h);
			r->pos += h.size;
		}
		r->nwant++;
	}
}

static void check_msg(struct run *r, const struct tp_msg *m)
{
	const struct expect *e;

	reference(r);
	FZ_CHECK(r->got < r->nwant, "message %u received; the stream holds %u", r->got, r->nwant);
	e = &r->want[r->got];
	FZ_CHECK(!memcmp(&m->hdr, r->stream + e->off, sizeof(m->hdr)),
		 "message %u: header differs from the stream at %u", r->got, e->off);
	FZ_CHECK(m->nfds <= TP_CONN_MAX_FDS, "%u fds", m->nfds);
	if (e->fault == TP_MSG_OK)
		FZ_CHECK(m->fault == TP_MSG_OK || m->fault == TP_MSG_FDS_LOST,
			 "message %u: fault %d, want none", r->got, m->fault);
	else
		FZ_CHECK(m->fault == e->fault, "message %u: fault %d, want %d", r->got, m->fault,
			 e->fault);
	FZ_CHECK(m->len == e->len, "message %u: %u payload bytes, want %u", r->got, m->len, e->len);
	FZ_CHECK(!memcmp(m->payload, r->stream + e->off + sizeof(m->hdr), m->len),
		 "message %u: payload differs from the stream", r->got);
	r->got++;
}

/* Reads and handles what the socket has, as serve_client does. */
static void drain(struct run *r)
{
	for (unsigned i = 0; i < MAX_MSGS + 8; i++) {
		struct tp_msg *m;
		int rc = tp_conn_recv(&r->conn, &m);

		if (rc == 0)
			return;
		if (rc < 0) {
			FZ_CHECK(rc == -ECONNRESET, "tp_conn_recv: %d", rc);
			r->eof = true;
			return;
		}
		check_msg(r, m);
		fz_handle(&r->s, &r->sink, m);
	}
	fz_die("tp_conn_recv never ran dry");
}

/* One sendmsg per chunk, fds on its first byte. A full socket is drained
 * (the reader is this thread) and the rest sent after. */
static void send_chunk(struct run *r, int peer, const uint8_t *p, uint32_t len, uint8_t ctl)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 32)];
		struct cmsghdr align;
	} cbuf;
	unsigned nfds = ctl & 0x1f;
	int fds[32];
	uint32_t done = 0;

	memcpy(r->stream + r->sent, p, len);
	r->sent += len;
	for (unsigned i = 0; i < nfds; i++)
		fds[i] = fz_make_fd((uint8_t)((ctl & 0xc0) | 8), 8);
	while (done < len) {
		struct iovec iov = { .iov_base = (void *)(p + done), .iov_len = len - done };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (nfds && !done) {
			struct cmsghdr *cm;

			memset(cbuf.buf, 0, sizeof(cbuf.buf));
			mh.msg_control = cbuf.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
		}
		n = sendmsg(peer, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			done += (uint32_t)n;
			continue;
		}
		FZ_CHECK(n < 0 && (errno == EAGAIN || errno == EINTR), "sendmsg: %s",
			 strerror(errno));
		/* The bytes sent so far are in the stream: the reader may take
		 * them now. */
		drain(r);
	}
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_reader in = { data, size };
	struct run *r;
	int sv[2], fds0 = fz_count_fds();

	if (size > MAX_STREAM / 2)
		return 0;
	r = calloc(1, sizeof(*r));
	FZ_CHECK(r, "calloc");
	r->stream = malloc(MAX_STREAM);
	r->want = malloc(MAX_MSGS * sizeof(*r->want));
	FZ_CHECK(r->stream && r->want, "malloc");
	FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	FZ_CHECK(tp_conn_init(&r->conn, sv[0]) == 0, "tp_conn_init");
	FZ_CHECK(tp_session_init(&r->s, &dev, fz_sink_send, &r->sink) == 0, "tp_session_init");
	while (in.n) {
		uint8_t ctl = fz_u8(&in);
		uint32_t len = fz_u16(&in);

		if (len > in.n)
			len = (uint32_t)in.n;
		/* An empty chunk with fds would be a message of fds alone:
		 * SOCK_STREAM drops those; keep the fds with a byte. */
		if (len || !(ctl & 0x1f))
			send_chunk(r, sv[1], in.p, len, ctl);
		in.p += len;
		in.n -= len;
		if (ctl & 0x20)
			drain(r);
	}
	drain(r);
	shutdown(sv[1], SHUT_WR);
	drain(r);
	FZ_CHECK(r->eof, "no EOF after the client shut down");
	reference(r);
	FZ_CHECK(r->got == r->nwant, "%u messages received, the stream holds %u", r->got,
		 r->nwant);
	close(sv[1]);
	tp_conn_close(&r->conn);
	tp_device_session_end(&dev);
	tp_session_fini(&r->s);
	FZ_CHECK(dev.dma.n == 0, "DMA regions left");
	FZ_CHECK(fb.violations == 0, "backend contract broken");
	free(r->stream);
	free(r->want);
	free(r);
	FZ_CHECK(fz_count_fds() == fds0, "%d fds open after the input, %d before", fz_count_fds(),
		 fds0);
	return 0;
}
