/* SPDX-License-Identifier: MIT */
/*
 * Fault injection sweeps, in process, through the same calls the server
 * makes (tp_device_open, tp_session_handle per message, tp_device_session_end
 * between clients, tp_device_close):
 *
 *  1. backend faults: a scripted session of a QEMU-like client, then a second
 *     client, against the model and against the fake function, each wrapped
 *     in faulty_backend; for every N in turn the N-th backend call fails with
 *     ENOMEM, then EIO, then EAGAIN;
 *  2. allocation faults: the same with the N-th core allocation failing
 *     (tp_malloc/tp_calloc/tp_realloc; this test links a copy of the library
 *     built with -DTP_TEST_HOOKS).
 *
 * For each failure: a device that cannot open says so with the errno and
 * leaves nothing behind; a message that meets it is answered with that errno
 * (a posted one is counted), the backend logs it once and the core at most
 * once more (the dispatcher's line about the message); the next messages
 * get the answers they get without faults, and so does the next client; no
 * fd is left open at the end (memory: ASan/LSan in `make san`).
 *
 * Known exceptions, by design: an unmap the client asked for cannot be
 * refused (the guest memory is gone either way), and a failed reset at a
 * client's end is only logged; a backend read at open that only picks quirks
 * (PMC_BOOT_42) may fail without failing the open.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <thunderpass/backend.h>
#include <thunderpass/log.h>

#include "device.h"
#include "fake_backend.h"
#include "faulty_backend.h"
#include "session.h"
#include "util.h"

#define MAX_STEPS 64
#define NO_REPLY_SENT 1000

struct step {
	const char *name;
	uint16_t cmd;
	uint32_t flags;
	uint8_t p[96];
	uint32_t len;
	uint32_t memfd;      /* attach a memfd of this many bytes */
	unsigned eventfds;   /* attach this many eventfds */
	bool unrefusable;    /* a failure here may still be answered with success */
};

struct script {
	struct step s[MAX_STEPS];
	unsigned n;
};

struct sink {
	unsigned sends;
	struct tp_vu_hdr hdr;
};

struct tally {
	unsigned long runs, injected, at_open, in_messages, posted, absorbed, at_end;
	unsigned long by_op[16];
	const char *ops[16];
};

static int log_fd; /* stderr goes here: the log lines are counted */
static int failures;
static char sites[512][96]; /* distinct "op at where" the faults met */
static unsigned nsites;

static void site(const char *op, const char *where)
{
	char s[96];

	snprintf(s, sizeof(s), "%s at %s", op ? op : "allocation", where);
	for (unsigned i = 0; i < nsites; i++)
		if (!strcmp(sites[i], s))
			return;
	if (nsites < 512)
		memcpy(sites[nsites++], s, sizeof(s));
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (++failures > 20)
		exit(1);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = -1;

	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static int sink_send(void *ctx, const struct tp_vu_hdr *hdr, const void *payload, uint32_t len,
		     const int *fds, unsigned nfds)
{
	struct sink *k = ctx;

	k->sends++;
	k->hdr = *hdr;
	return 0;
}

/* ---- the script ------------------------------------------------------------ */

static struct step *add(struct script *sc, const char *name, uint16_t cmd, const void *p,
			uint32_t len)
{
	struct step *s = &sc->s[sc->n++];

	*s = (struct step){ .name = name, .cmd = cmd, .len = len };
	if (len)
		memcpy(s->p, p, len);
	return s;
}

static void rw(struct script *sc, const char *name, uint16_t cmd, uint32_t region, uint64_t off,
	       uint32_t count, uint32_t value, bool posted)
{
	struct { struct tp_vu_region_rw h; uint32_t v; } m = { { off, region, count }, value };
	struct step *s = add(sc, name, cmd, &m,
			     sizeof(m.h) + (cmd == TP_VU_REGION_WRITE ? count : 0));

	s->flags = posted ? TP_VU_NO_REPLY : 0;
}

/* A QEMU-like client: what it asks at start-up, a guest's first accesses,
 * interrupts, a reset, memory going away. Second: the next client. */
static void scripts(struct script *a, struct script *b)
{
	uint8_t version[64] = { 0 };
	struct tp_vu_dma_map map = { 32, 3, 0, 0x100000, 1 << 20 };
	struct tp_vu_dma_map rom = { 32, 1, 0, 0x80000000ull, 65536 };
	struct tp_vu_dma_unmap unmap = { 24, 0, 0x100000, 1 << 20 }, all = { 24, TP_VU_UNMAP_ALL, 0, 0 };
	struct tp_vu_device_info info = { .argsz = 16 };
	struct tp_vu_irq_set irqs = { 20, TP_VU_IRQ_DATA_EVENTFD | TP_VU_IRQ_ACTION_TRIGGER,
				      TP_IRQ_MSIX, 0, 2 };
	struct tp_vu_irq_set off = { 20, TP_VU_IRQ_DATA_NONE | TP_VU_IRQ_ACTION_TRIGGER,
				     TP_IRQ_MSIX, 0, 0 };
	struct { struct tp_vu_write_multi h; struct tp_vu_write_one w[2]; } wm = {
		{ 2 }, { { 0x100, 0, 4, { 1 } }, { 0x104, 0, 4, { 2 } } } };

	strcpy((char *)version + 4, "{\"capabilities\":{\"max_msg_fds\":8}}");
	add(a, "VERSION", TP_VU_VERSION, version, sizeof(version));
	add(a, "DMA_MAP memfd", TP_VU_DMA_MAP, &map, sizeof(map))->memfd = 1 << 20;
	add(a, "DMA_MAP no fd", TP_VU_DMA_MAP, &rom, sizeof(rom));
	add(a, "GET_INFO", TP_VU_DEVICE_GET_INFO, &info, sizeof(info));
	for (uint32_t i = 0; i < TP_REGION_COUNT; i++) {
		struct tp_vu_region_info ri = { .argsz = i & 1 ? 256 : 32, .index = i };

		add(a, "GET_REGION_INFO", TP_VU_DEVICE_GET_REGION_INFO, &ri, sizeof(ri));
	}
	for (uint32_t i = 0; i < TP_IRQ_INDEX_COUNT; i++) {
		struct tp_vu_irq_info ii = { .argsz = 16, .index = i };

		add(a, "GET_IRQ_INFO", TP_VU_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii));
	}
	rw(a, "config read header", TP_VU_REGION_READ, TP_REGION_CONFIG, 0, 64, 0, false);
	rw(a, "config read caps", TP_VU_REGION_READ, TP_REGION_CONFIG, 0x40, 64, 0, false);
	rw(a, "config write command", TP_VU_REGION_WRITE, TP_REGION_CONFIG, 4, 2, 0x0006, false);
	rw(a, "config BAR sizing", TP_VU_REGION_WRITE, TP_REGION_CONFIG, 0x10, 4, ~0u, false);
	rw(a, "config write posted", TP_VU_REGION_WRITE, TP_REGION_CONFIG, 4, 2, 0x0406, true);
	rw(a, "BAR0 read", TP_VU_REGION_READ, 0, 0, 4, 0, false);
	rw(a, "BAR0 write posted", TP_VU_REGION_WRITE, 0, 0x100, 4, 0x55, true);
	rw(a, "BAR0 write", TP_VU_REGION_WRITE, 0, 0x104, 4, 0x66, false);
	rw(a, "ROM read", TP_VU_REGION_READ, TP_REGION_ROM, 0, 16, 0, false);
	add(a, "WRITE_MULTI", TP_VU_REGION_WRITE_MULTI, &wm, sizeof(wm))->flags = TP_VU_NO_REPLY;
	add(a, "SET_IRQS eventfds", TP_VU_DEVICE_SET_IRQS, &irqs, sizeof(irqs))->eventfds = 2;
	add(a, "SET_IRQS off", TP_VU_DEVICE_SET_IRQS, &off, sizeof(off));
	add(a, "DEVICE_RESET", TP_VU_DEVICE_RESET, NULL, 0);
	add(a, "DMA_UNMAP", TP_VU_DMA_UNMAP, &unmap, sizeof(unmap))->unrefusable = true;
	add(a, "DMA_UNMAP ALL", TP_VU_DMA_UNMAP, &all, sizeof(all))->unrefusable = true;

	add(b, "VERSION", TP_VU_VERSION, version, sizeof(version));
	add(b, "GET_INFO", TP_VU_DEVICE_GET_INFO, &info, sizeof(info));
	rw(b, "config read", TP_VU_REGION_READ, TP_REGION_CONFIG, 0, 8, 0, false);
	rw(b, "BAR0 read", TP_VU_REGION_READ, 0, 0, 4, 0, false);
	add(b, "DMA_MAP memfd", TP_VU_DMA_MAP, &map, sizeof(map))->memfd = 1 << 20;
	add(b, "DMA_UNMAP", TP_VU_DMA_UNMAP, &unmap, sizeof(unmap))->unrefusable = true;
}

/* ---- one run ------------------------------------------------------------- */

struct run {
	int kind;          /* 0 model, 1 fake */
	uint64_t fail_at;  /* backend call */
	int err;
	uint64_t alloc_at; /* core allocation */
	int want[2][MAX_STEPS]; /* the fault-free answers (filled by the first run) */
	bool record;
	uint64_t calls, allocs; /* of the fault-free run */
};

static struct tp_backend *inner_new(int kind, struct fake_be **fb)
{
	struct tp_backend *be = NULL;

	if (kind == 0) {
		struct tp_backend_opt o = { "vram", "64M" };

		if (tp_backend_find("model")->create(&o, 1, &be))
			return NULL;
		return be;
	}
	*fb = calloc(1, sizeof(**fb));
	if (!*fb || fake_be_init(*fb, NULL))
		return NULL;
	return &(*fb)->be;
}

static int send_step(struct tp_session *s, struct sink *k, const struct step *st)
{
	struct tp_msg m = { .hdr = { .msg_id = 7, .command = st->cmd, .flags = st->flags,
				      .size = 16 + st->len }, .len = st->len };
	unsigned sends = k->sends;

	m.payload = malloc(st->len ? st->len : 1);
	if (st->len)
		memcpy(m.payload, st->p, st->len);
	memset(m.fds, -1, sizeof(m.fds));
	if (st->memfd) {
		m.fds[m.nfds] = memfd_create("fault-guest-ram", MFD_CLOEXEC);
		if (ftruncate(m.fds[m.nfds++], st->memfd) < 0)
			fail("ftruncate");
	}
	for (unsigned i = 0; i < st->eventfds; i++)
		m.fds[m.nfds++] = eventfd(0, EFD_CLOEXEC);
	if (tp_session_handle(s, &m) || m.nfds)
		fail("%s: tp_session_handle failed or kept fds", st->name);
	free(m.payload);
	if (k->sends == sends)
		return NO_REPLY_SENT;
	return (k->hdr.flags & TP_VU_ERROR) ? (int)k->hdr.error : 0;
}

/* Log lines written since pos: all, those of the injection, those naming err. */
static void log_lines(off_t pos, int err, unsigned *all, unsigned *inj, unsigned *named)
{
	char buf[16384], *line, *save = NULL;
	ssize_t n = pread(log_fd, buf, sizeof(buf) - 1, pos);

	*all = *inj = *named = 0;
	buf[n > 0 ? n : 0] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		(*all)++;
		*inj += strstr(line, "fault injection") != NULL;
		*named += err && strstr(line, strerror(err)) && !strstr(line, "fault injection");
	}
}

static void run_session(struct run *r, struct tally *t, struct tp_device *d, struct faulty_be *f,
			const struct script *sc, int which)
{
	struct sink k = { 0 };
	struct tp_session s;
	bool alloc_was = r->alloc_at && tp_alloc_failed();

	if (tp_session_init(&s, d, sink_send, &k)) {
		/* The server closes such a client; the next one is served. */
		if (!(r->alloc_at && tp_alloc_failed() && !alloc_was))
			fail("tp_session_init failed without an injected fault");
		t->in_messages++;
		site(NULL, "a new session");
		return;
	}
	for (unsigned i = 0; i < sc->n; i++) {
		const struct step *st = &sc->s[i];
		uint64_t inj = f->injected, posted = s.posted_errors;
		bool alloc_before = r->alloc_at && tp_alloc_failed();
		off_t pos = lseek(log_fd, 0, SEEK_END);
		int rc = send_step(&s, &k, st), want = r->record ? rc : r->want[which][i];
		int err = -r->err;
		unsigned all, injl, named;
		bool hit = f->injected != inj;

		if (r->alloc_at && tp_alloc_failed() && !alloc_before) {
			hit = true;
			err = ENOMEM;
		}
		if (r->record) {
			r->want[which][i] = rc;
			continue;
		}
		if (!hit) {
			if (rc != want)
				fail("%s after a fault (N=%llu): answer %d, %d without faults", st->name,
				     (unsigned long long)(r->fail_at ? r->fail_at : r->alloc_at), rc, want);
			continue;
		}
		t->in_messages++;
		site(r->alloc_at ? NULL : f->last_op, st->name);
		if (rc == NO_REPLY_SENT) {
			t->posted++;
			if (s.posted_errors != posted + 1 && !st->unrefusable)
				fail("%s: posted failure not counted", st->name);
		} else if (rc != err && !(st->unrefusable && rc == 0)) {
			fail("%s (N=%llu, %s in %s): answered %d, want %d", st->name,
			     (unsigned long long)r->fail_at, strerror(err), f->last_op, rc, err);
		}
		/* Once by the backend; the core adds at most the dispatcher's line
		 * about the failed message (the one naming the errno). */
		log_lines(pos, err, &all, &injl, &named);
		if (!r->alloc_at && (injl != 1 || all - injl > 1 || named > 1))
			fail("%s: the fault in %s logged %u times by the backend, %u lines more",
			     st->name, f->last_op, injl, all - injl);
	}
	tp_device_session_end(d);
	tp_session_fini(&s);
}

static int one_run(struct run *r, struct tally *t)
{
	static struct script a, b;
	struct fake_be *fb = NULL;
	struct tp_backend *inner;
	struct faulty_be *f = calloc(1, sizeof(*f));
	struct tp_device d;
	int fds0 = count_fds(), rc;
	uint64_t inj_open;

	if (!a.n)
		scripts(&a, &b);
	inner = inner_new(r->kind, &fb);
	if (!inner || !f) {
		fail("cannot create the inner backend");
		return -1;
	}
	faulty_be_init(f, inner, r->fail_at, r->err);
	if (r->alloc_at || r->record)
		tp_alloc_fail_at(r->alloc_at);
	t->runs++;
	rc = tp_device_open(&d, &f->be, NULL);
	inj_open = f->injected;
	if (rc) {
		bool ours = (f->injected && rc == r->err) || (r->alloc_at && tp_alloc_failed() &&
							     rc == -ENOMEM);

		if (!ours)
			fail("open failed with %d (N=%llu/%llu)", rc, (unsigned long long)r->fail_at,
			     (unsigned long long)r->alloc_at);
		t->at_open++;
		site(r->alloc_at ? NULL : f->last_op, "open");
	} else {
		unsigned long met = t->in_messages;

		if (inj_open) {
			t->absorbed++; /* a quirk probe: see the top */
			site(f->last_op, "open (absorbed)");
		}
		run_session(r, t, &d, f, &a, 0);
		run_session(r, t, &d, f, &b, 1);
		if (f->injected > inj_open && t->in_messages == met) {
			t->at_end++; /* the reset at a client's end: logged, nothing to answer */
			site(f->last_op, "a client's end");
		}
	}
	if (f->injected) {
		t->injected++;
		for (unsigned i = 0; i < 16; i++) {
			if (!t->ops[i] || !strcmp(t->ops[i], f->last_op)) {
				t->ops[i] = f->last_op;
				t->by_op[i]++;
				break;
			}
		}
	} else if (r->alloc_at && tp_alloc_failed()) {
		t->injected++;
	}
	if (r->record) {
		r->calls = f->calls;
		r->allocs = tp_alloc_calls();
	}
	tp_alloc_fail_at(0);
	tp_device_close(&d); /* destroys the wrapper's inner backend */
	free(fb);
	free(f);
	if (count_fds() != fds0)
		fail("%d fds open after the run (N=%llu/%llu), %d before", count_fds(),
		     (unsigned long long)r->fail_at, (unsigned long long)r->alloc_at, fds0);
	return 0;
}

int main(void)
{
	static const int errs[] = { -ENOMEM, -EIO, -EAGAIN };
	static const char *const kinds[] = { "model", "fake" };
	unsigned long points = 0;
	char path[] = "/tmp/tp-fault-log-XXXXXX";

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* The log lines are part of what is checked: tp_log writes to stderr,
	 * which becomes a file here (fd 2 stays: sanitizer reports go there). */
	log_fd = mkstemp(path);
	if (log_fd < 0 || !(stderr = fdopen(dup(log_fd), "w")))
		return 1;
	setvbuf(stderr, NULL, _IONBF, 0);
	unlink(path);
	tp_log_set_level(TP_LOG_WARN);
	for (int kind = 0; kind < 2; kind++) {
		struct run *r = calloc(1, sizeof(*r));
		struct tally t = { 0 };
		unsigned long before;

		r->kind = kind;
		r->record = true;
		one_run(r, &t);
		r->record = false;
		t = (struct tally){ 0 };
		for (size_t e = 0; e < sizeof(errs) / sizeof(errs[0]); e++) {
			r->err = errs[e];
			for (uint64_t n = 1; n <= r->calls; n++) {
				r->fail_at = n;
				one_run(r, &t);
			}
		}
		printf("backend faults, %s: %llu backend calls x 3 errnos: %lu runs, %lu faults "
		       "injected (%lu failed the open, %lu met by a message, %lu posted, %lu "
		       "absorbed at open, %lu at a client's end)\n",
		       kinds[kind], (unsigned long long)r->calls, t.runs, t.injected, t.at_open,
		       t.in_messages, t.posted, t.absorbed, t.at_end);
		for (unsigned i = 0; i < 16 && t.ops[i]; i++)
			printf("  %-12s %lu\n", t.ops[i], t.by_op[i]);
		points += t.injected;
		r->fail_at = 0;
		r->err = 0;
		before = t.injected;
		t = (struct tally){ 0 };
		for (uint64_t n = 1; n <= r->allocs; n++) {
			r->alloc_at = n;
			one_run(r, &t);
		}
		r->alloc_at = 0;
		printf("allocation faults, %s: %llu core allocations: %lu runs, %lu injected (%lu "
		       "failed the open, %lu met by a message or a new session)\n",
		       kinds[kind], (unsigned long long)r->allocs, t.runs, t.injected, t.at_open,
		       t.in_messages);
		points += t.injected;
		(void)before;
		free(r);
	}
	printf("fault injection: %lu faults injected, one per run, at %u distinct points (backend "
	       "op or allocation x where it was met), %d failures\n", points, nsites, failures);
	if (getenv("FAULT_SITES"))
		for (unsigned i = 0; i < nsites; i++)
			printf("  %s\n", sites[i]);
	return failures ? 1 : 0;
}
