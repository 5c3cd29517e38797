/* SPDX-License-Identifier: MIT */
/*
 * fuzz_msg: the message path above the socket. Every message of the input
 * goes through tp_session_handle exactly as the server hands it over (the
 * transport's faults included), with the fds it names made for it, against
 * one of four long-lived devices: the model GPU or the fake function
 * (tests/unit/fake_backend.c), each behind the identity or the dart IOMMU.
 * Devices live across inputs as they live across clients in the server; an
 * input is one or more client sessions, each ended as the server ends one.
 *
 * Input: one setup byte (bit 0: fake instead of model; bit 1: dart), then
 * records in the format of `serve --record` (lib/record.h) without the file
 * magic: 'E' ends a session (the next record starts a new one), anything
 * else is a message. A record cut short is a client that closed in the
 * middle of a message: the session ends there.
 *
 * Checked: every reply's frame and size (fuzz_common.c), every fd taken or
 * closed, and after each session: the guest memory map, the IOMMU mappings
 * and the eventfds all gone, and no fd left open in the process.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <thunderpass/backend.h>
#include <thunderpass/log.h>

#include "device.h"
#include "fake_backend.h"
#include "fuzz_common.h"
#include "record.h"

#define MAX_MSGS 512
#define MAX_FILE_CLASS 22 /* memfds up to 16 GiB, sparse */

struct target {
	bool open;
	struct fake_be fb; /* the fake targets' backend */
	struct tp_device dev;
};

static struct target targets[4];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_init_logging();
	return 0;
}

static struct target *target_get(unsigned which)
{
	struct target *t = &targets[which];
	const char *iommu = (which & 2) ? "dart" : "identity";
	struct tp_backend *be;
	int rc;

	if (t->open)
		return t;
	if (which & 1) {
		FZ_CHECK(fake_be_init(&t->fb, NULL) == 0, "fake_be_init");
		be = &t->fb.be;
	} else {
		/* The smallest VRAM: the copy engine's jobs stay small. */
		struct tp_backend_opt o = { "vram", "64M" };

		rc = tp_backend_find("model")->create(&o, 1, &be);
		FZ_CHECK(rc == 0, "model: %d", rc);
	}
	rc = tp_device_open(&t->dev, be, iommu);
	FZ_CHECK(rc == 0, "tp_device_open: %d", rc);
	t->open = true;
	return t;
}

/* What a finished session must leave behind: nothing of the client's. */
static void check_clean(struct target *t)
{
	struct tp_device *d = &t->dev;

	FZ_CHECK(d->dma.n == 0 && d->dma.bytes == 0, "%u DMA regions (%llu bytes) after the session",
		 d->dma.n, (unsigned long long)d->dma.bytes);
	FZ_CHECK(d->iommu->st.live == 0 && d->iommu->st.bytes == 0,
		 "%llu IOMMU mappings live after the session",
		 (unsigned long long)d->iommu->st.live);
	for (unsigned i = 0; i < TP_IRQ_INDEX_COUNT; i++)
		FZ_CHECK(d->irqs.idx[i].live == 0, "%u eventfds of index %u after the session",
			 d->irqs.idx[i].live, i);
	if (t == &targets[1] || t == &targets[3])
		FZ_CHECK(t->fb.violations == 0, "the core broke the backend contract %u times",
			 t->fb.violations);
}

/*
 * One record into m; false when the input ends (or is cut) first. Made fds
 * are stored in m (owned by it from here).
 */
static bool next_msg(struct fz_reader *r, struct tp_msg *m, bool *end)
{
	uint8_t tag, info, desc[TP_CONN_MAX_FDS];
	unsigned nfds;
	uint32_t body;

	*end = false;
	if (!fz_take(r, &tag, 1))
		return false;
	if (tag == TP_REC_END) {
		*end = true;
		return true;
	}
	if (!fz_take(r, &info, 1))
		return false;
	nfds = info & TP_REC_FD_COUNT;
	if (nfds > TP_CONN_MAX_FDS)
		nfds = TP_CONN_MAX_FDS;
	if (!fz_take(r, desc, nfds) || !fz_take(r, &m->hdr, sizeof(m->hdr)))
		return false;
	body = tp_record_body_len(&m->hdr);
	if (r->n < body)
		return false; /* closed in the middle of the message */
	memset(m->fds, -1, sizeof(m->fds));
	/* Each payload in a block of exactly its size: ASan sees any read past
	 * a message (the real transport's buffer would hide it). */
	m->payload = malloc(body ? body : 1);
	FZ_CHECK(m->payload, "malloc");
	memcpy(m->payload, r->p, body);
	r->p += body;
	r->n -= body;
	/* What tp_conn_recv would have said about it. */
	m->fault = TP_MSG_OK;
	if (m->hdr.size < sizeof(m->hdr))
		m->fault = TP_MSG_UNDERSIZED;
	else if (m->hdr.size > TP_VU_MAX_MSG)
		m->fault = TP_MSG_OVERSIZED;
	else if (info & TP_REC_FDS_LOST)
		m->fault = TP_MSG_FDS_LOST;
	m->len = body;
	m->nfds = nfds;
	for (unsigned i = 0; i < nfds; i++)
		m->fds[i] = fz_make_fd(desc[i], MAX_FILE_CLASS);
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_reader r = { data, size };
	struct fz_sink sink = { 0 };
	struct tp_session s;
	struct target *t;
	int fds0;

	if (!size)
		return 0;
	t = target_get(fz_u8(&r) & 3);
	fds0 = fz_count_fds();
	FZ_CHECK(tp_session_init(&s, &t->dev, fz_sink_send, &sink) == 0, "tp_session_init");
	for (unsigned n = 0; n < MAX_MSGS && r.n; n++) {
		struct tp_msg m = { 0 };
		bool end;

		if (!next_msg(&r, &m, &end))
			break;
		if (end) {
			tp_device_session_end(&t->dev);
			tp_session_fini(&s);
			check_clean(t);
			FZ_CHECK(tp_session_init(&s, &t->dev, fz_sink_send, &sink) == 0,
				 "tp_session_init");
			continue;
		}
		fz_handle(&s, &sink, &m);
		free(m.payload);
	}
	/* The client went away, as the server sees it: reset, drop everything. */
	tp_device_session_end(&t->dev);
	tp_session_fini(&s);
	check_clean(t);
	FZ_CHECK(fz_count_fds() == fds0, "%d fds open after the input, %d before",
		 fz_count_fds(), fds0);
	return 0;
}
