/* SPDX-License-Identifier: MIT */
#include "fuzz_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <thunderpass/log.h>

uint8_t fz_u8(struct fz_reader *r)
{
	uint8_t v = 0;

	fz_take(r, &v, 1);
	return v;
}

uint16_t fz_u16(struct fz_reader *r)
{
	uint16_t v = fz_u8(r);

	return (uint16_t)(v | fz_u8(r) << 8);
}

uint32_t fz_u32(struct fz_reader *r)
{
	uint32_t v = fz_u16(r);

	return v | (uint32_t)fz_u16(r) << 16;
}

uint64_t fz_u64(struct fz_reader *r)
{
	uint64_t v = fz_u32(r);

	return v | (uint64_t)fz_u32(r) << 32;
}

void fz_die(const char *fmt, ...)
{
	va_list ap;

	printf("FUZZ INVARIANT BROKEN: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	abort();
}

int fz_make_fd(uint8_t desc, unsigned max_class)
{
	unsigned cls = desc & 0x3f;
	int fd = -1, p[2];

	switch (desc >> 6) {
	case 0:
		fd = memfd_create("fuzz-guest-ram", MFD_CLOEXEC);
		/* Sparse: a large class costs nothing until touched. */
		if (fd >= 0 && ftruncate(fd, (off_t)(4096ull << (cls < max_class ? cls : max_class))))
			fz_die("ftruncate: %s", strerror(errno));
		break;
	case 1:
		fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		break;
	case 2:
		if (pipe2(p, O_CLOEXEC) == 0) {
			close(p[1]);
			fd = p[0];
		}
		break;
	default:
		fd = open("/", O_PATH | O_CLOEXEC);
		break;
	}
	FZ_CHECK(fd >= 0, "cannot make an fd (kind %u): %s (fds leaking?)", desc >> 6,
		 strerror(errno));
	return fd;
}

int fz_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = -1; /* the directory's own fd */

	FZ_CHECK(d, "opendir /proc/self/fd: %s", strerror(errno));
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

bool fz_fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0 || errno != EBADF;
}

void fz_init_logging(void)
{
	/* Errors stay on (an error log line is itself a finding to read). */
	tp_log_set_level(getenv("FUZZ_VERBOSE") ? TP_LOG_DEBUG : TP_LOG_ERROR);
}

int fz_sink_send(void *ctx, const struct tp_vu_hdr *hdr, const void *payload, uint32_t len,
		 const int *fds, unsigned nfds)
{
	struct fz_sink *s = ctx;

	FZ_CHECK(hdr->size == sizeof(*hdr) + len, "reply size field %u for %u payload bytes",
		 hdr->size, len);
	FZ_CHECK(len <= TP_VU_MAX_MSG - sizeof(*hdr), "reply of %u bytes", len);
	FZ_CHECK((hdr->flags & TP_VU_TYPE_MASK) == TP_VU_TYPE_REPLY, "reply flags %#x", hdr->flags);
	FZ_CHECK(nfds <= 1, "reply with %u fds", nfds);
	if (hdr->flags & TP_VU_ERROR)
		FZ_CHECK(hdr->error && !len && !nfds, "error reply: errno %u, %u bytes, %u fds",
			 hdr->error, len, nfds);
	else
		FZ_CHECK(!hdr->error, "success reply with errno %u", hdr->error);
	for (unsigned i = 0; i < nfds; i++)
		FZ_CHECK(fds[i] >= 0 && fz_fd_open(fds[i]), "reply carries a closed fd %d", fds[i]);
	if (len)
		FZ_CHECK(payload, "reply payload NULL");
	/* Touch every byte: ASan catches a reply built from freed or short memory. */
	{
		volatile uint8_t sum = 0;

		for (uint32_t i = 0; i < len; i++)
			sum ^= ((const uint8_t *)payload)[i];
		(void)sum;
	}
	s->sends++;
	s->hdr = *hdr;
	s->len = len;
	s->nfds = nfds;
	return s->fail;
}

void fz_handle(struct tp_session *s, struct fz_sink *sink, struct tp_msg *m)
{
	struct tp_vu_hdr q = m->hdr;
	uint32_t argsz = 0, count = 0, len = m->len;
	bool want_reply = (q.flags & TP_VU_TYPE_MASK) == TP_VU_TYPE_COMMAND &&
			  !(q.flags & TP_VU_NO_REPLY);
	unsigned before = sink->sends;
	int rc;

	if (len >= 4)
		memcpy(&argsz, m->payload, 4);
	if (len >= 16)
		memcpy(&count, m->payload + 12, 4);
	rc = tp_session_handle(s, m);
	FZ_CHECK(m->nfds == 0, "%u fds neither taken nor closed (command %u)", m->nfds, q.command);
	FZ_CHECK(rc == sink->fail || (rc == 0 && sink->sends == before),
		 "tp_session_handle returned %d", rc);
	if (!want_reply) {
		FZ_CHECK(sink->sends == before, "a reply to a posted message or a reply (flags %#x)",
			 q.flags);
		return;
	}
	FZ_CHECK(sink->sends == before + 1, "%u replies to command %u", sink->sends - before,
		 q.command);
	FZ_CHECK(sink->hdr.msg_id == q.msg_id && sink->hdr.command == q.command,
		 "reply id %u command %u to id %u command %u", sink->hdr.msg_id,
		 sink->hdr.command, q.msg_id, q.command);
	if (sink->hdr.flags & TP_VU_ERROR)
		return;
	/* QEMU refuses a reply larger than the buffer its request implied. */
	switch (q.command) {
	case TP_VU_REGION_READ:
		FZ_CHECK(sink->len == 16 + count, "REGION_READ of %u bytes: %u in reply", count,
			 sink->len);
		break;
	case TP_VU_DEVICE_GET_REGION_INFO:
		FZ_CHECK(sink->len <= argsz, "GET_REGION_INFO reply %u bytes > argsz %u", sink->len,
			 argsz);
		break;
	default:
		FZ_CHECK(sink->len <= len, "command %u: reply %u bytes > request %u", q.command,
			 sink->len, len);
		FZ_CHECK(!sink->nfds, "command %u: reply with an fd", q.command);
		break;
	}
}
