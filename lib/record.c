/* SPDX-License-Identifier: MIT */
/* Session recordings: see record.h for the format. */
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thunderpass/log.h>

#include "util.h"

struct tp_recorder {
	FILE *f;
	const char *who;
	uint64_t msgs;
};

uint32_t tp_record_body_len(const struct tp_vu_hdr *h)
{
	if (h->size < sizeof(*h) || h->size > TP_VU_MAX_MSG)
		return 0;
	return h->size - (uint32_t)sizeof(*h);
}

uint8_t tp_record_fd_desc(int fd)
{
	struct stat st;
	unsigned c = 0;

	/* fstat only: it is in the seccomp filter's list, readlink is not. */
	if (fstat(fd, &st) < 0)
		return TP_REC_KIND_OTHER << 6;
	if (S_ISREG(st.st_mode)) {
		/* Smallest class that holds the file: DMA_MAP checks offset + size
		 * against it, so the replayed file must be at least as big. */
		while (c < 51 && (4096ull << c) < (uint64_t)st.st_size)
			c++;
		return (uint8_t)(TP_REC_KIND_FILE << 6 | c);
	}
	/* Anonymous inodes have no file type: eventfds (what a client sends
	 * besides memory), or their timerfd/signalfd kin, replayed as eventfds. */
	if ((st.st_mode & S_IFMT) == 0)
		return TP_REC_KIND_EVENTFD << 6;
	return TP_REC_KIND_OTHER << 6;
}

int tp_record_open(const char *path, const char *who, struct tp_recorder **out)
{
	struct tp_recorder *r = calloc(1, sizeof(*r));
	int fd, rc;

	if (!r)
		return -ENOMEM;
	/* Owner-only from the start: register writes carry guest data. */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || !(r->f = fdopen(fd, "w"))) {
		rc = -errno;
		tp_err(who, "cannot record to %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(r);
		return rc;
	}
	r->who = who;
	if (fwrite(TP_REC_MAGIC, 1, TP_REC_MAGIC_LEN, r->f) != TP_REC_MAGIC_LEN) {
		tp_err(who, "cannot record to %s: %s", path, strerror(errno));
		tp_record_close(r);
		return -EIO;
	}
	tp_info(who, "recording client messages to %s", path);
	*out = r;
	return 0;
}

/* A failed write ends the recording: a short file still replays up to it. */
static void check(struct tp_recorder *r)
{
	if (!r->f || !ferror(r->f))
		return;
	tp_err(r->who, "recording stopped after %llu messages: write error",
	       (unsigned long long)r->msgs);
	fclose(r->f);
	r->f = NULL;
}

void tp_record_msg(struct tp_recorder *r, const struct tp_msg *m)
{
	uint8_t head[2 + TP_CONN_MAX_FDS];
	unsigned n = TP_MIN(m->nfds, (unsigned)TP_CONN_MAX_FDS);
	uint32_t body = tp_record_body_len(&m->hdr);

	if (!r || !r->f)
		return;
	head[0] = TP_REC_MSG;
	head[1] = (uint8_t)(n | (m->fault == TP_MSG_FDS_LOST ? TP_REC_FDS_LOST : 0));
	for (unsigned i = 0; i < n; i++)
		head[2 + i] = tp_record_fd_desc(m->fds[i]);
	fwrite(head, 1, 2 + n, r->f);
	fwrite(&m->hdr, 1, sizeof(m->hdr), r->f);
	/* The transport keeps exactly header.size - 16 bytes of a message it
	 * accepted; write what it has, padded should it ever hold less. */
	fwrite(m->payload, 1, TP_MIN(body, m->len), r->f);
	for (uint32_t i = m->len; i < body; i++)
		fputc(0, r->f);
	r->msgs++;
	check(r);
}

void tp_record_end(struct tp_recorder *r)
{
	if (!r || !r->f)
		return;
	fputc(TP_REC_END, r->f);
	fflush(r->f);
	check(r);
}

void tp_record_close(struct tp_recorder *r)
{
	if (!r)
		return;
	if (r->f && fclose(r->f) != 0)
		tp_err(r->who, "recording: closing the file failed: %s", strerror(errno));
	free(r);
}
