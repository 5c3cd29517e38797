/* SPDX-License-Identifier: MIT */
/*
 * Soak and leak accounting: SOAK_SESSIONS (default 1000) client sessions
 * against one real `thunderpass serve` (model backend), each a random mix of
 * well-formed and hostile messages: DMA maps with memfds (some overlapping,
 * some with a file too short), SET_IRQS with eventfds (and with too many),
 * copy-engine jobs DMAing into the mapped memory (the session may end mid-copy),
 * region reads and writes in and out of range, undersized, oversized and
 * reply-type messages, unknown commands, a second VERSION. Each session ends
 * in a clean close, an abrupt one (a request unanswered), or a close in the
 * middle of a message.
 *
 * Before the first session and after the last, the server's open fds
 * (/proc/PID/fd), memory mappings (/proc/PID/maps) and RSS (VmRSS), and from
 * its stats socket (`thunderpass stats`, PATH.ctl) the guest memory map, the
 * IOMMU mappings and the eventfds it holds. The counts must be back to the
 * baseline, RSS within SOAK_RSS_SLACK_KB (default 8192: the allocator keeps
 * freed message buffers); every reply must carry the expected errno.
 *
 * $TP_BIN names the server; SOAK_SEED fixes the random sequence.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <thunderpass/protocol.h>

#include "client.h"
#include "util.h"
#include "record.h"

#define SLOTS 8
#define SLOT_BASE 0x40000000ull
#define SLOT_STRIDE (4ull << 20)
#define CFG_ID 0x2b8510deu

static char dir[64], sock[128], logpath[160], recpath[160];
static pid_t server;
static bool asan; /* the server is an ASan build (build-san) */
static uint64_t rng;
static unsigned long checks, hostile, dma_maps, irq_sets, ce_jobs, ends[3];

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "soak: FAILED: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (server log: %s)\n", logpath);
	if (server > 0)
		kill(server, SIGKILL);
	exit(1);
}

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n ? (uint32_t)(rng % n) : 0;
}

static void expect(const char *what, int got, int want)
{
	checks++;
	if (got != want)
		die("%s: got %d (%s), want %d (%s)", what, got, strerror(-got), want,
		    strerror(-want));
}

/* ---- the server and what it holds ---------------------------------------- */

struct figures {
	long fds, maps, rss_kb;
};

static long count_maps(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	long n = 0;

	if (!f)
		die("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		n++;
		asan |= strstr(line, "libasan") != NULL;
	}
	fclose(f);
	return n;
}

static struct figures figures(void)
{
	struct figures x = { 0 };
	char path[64], line[256];
	FILE *f;

	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)server);
	d = opendir(path);
	if (!d)
		die("%s: %s", path, strerror(errno));
	while ((de = readdir(d)))
		x.fds += de->d_name[0] != '.';
	closedir(d);
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)server);
	x.maps = count_maps(path);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)server);
	f = fopen(path, "r");
	if (!f)
		die("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &x.rss_kb) == 1)
			break;
	fclose(f);
	return x;
}

/* One snapshot from the stats socket (lib/control.h). */
static json_object *stats(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[65536];
	size_t len = 0;
	ssize_t n;
	json_object *o;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (strlen(sock) + 5 > sizeof(sa.sun_path))
		die("socket path too long");
	memcpy(sa.sun_path, sock, strlen(sock));
	memcpy(sa.sun_path + strlen(sock), ".ctl", 5);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("stats socket %s: %s", sa.sun_path, strerror(errno));
	while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	o = json_tokener_parse(buf);
	if (!o)
		die("stats: not JSON: %.200s", buf);
	return o;
}

static int64_t jget(json_object *o, const char *path)
{
	char key[128], *save = NULL, *tok;
	json_object *v = o;

	snprintf(key, sizeof(key), "%s", path);
	for (tok = strtok_r(key, ".", &save); tok; tok = strtok_r(NULL, ".", &save))
		if (!json_object_object_get_ex(v, tok, &v))
			die("stats: no %s", path);
	return json_object_get_int64(v);
}

static void start_server(void)
{
	const char *bin = getenv("TP_BIN");
	int fd;

	if (!bin)
		die("TP_BIN is not set");
	strcpy(dir, "/tmp/tp-soak-XXXXXX");
	if (!mkdtemp(dir))
		die("mkdtemp: %s", strerror(errno));
	snprintf(sock, sizeof(sock), "%s/tp.sock", dir);
	snprintf(logpath, sizeof(logpath), "%s/server.log", dir);
	snprintf(recpath, sizeof(recpath), "%s/soak.rec", dir);
	server = fork();
	if (server < 0)
		die("fork: %s", strerror(errno));
	if (!server) {
		fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 2);
			close(fd);
		}
		execl(bin, bin, "serve", "--socket", sock, "-o", "vram=64M", "--log-level", "info",
		      "--record", recpath, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		char ctl[160];
		struct stat st;

		snprintf(ctl, sizeof(ctl), "%s.ctl", sock);
		if (stat(sock, &st) == 0 && stat(ctl, &st) == 0)
			return;
		usleep(10000);
	}
	die("the server did not create %s and its .ctl", sock);
}

/* ---- one session --------------------------------------------------------- */

static int call(struct tp_client *c, uint16_t cmd, const void *p, uint32_t len, const int *fds,
		unsigned nfds)
{
	uint8_t rep[512];
	struct tp_client_reply r = { .data = rep, .cap = sizeof(rep) };
	int rc = tp_client_call(c, cmd, p, len, fds, nfds, &r);

	for (unsigned i = 0; i < r.nfds; i++)
		close(r.fds[i]);
	return rc;
}

/* A raw message; the reply's status, or 1 when none is expected. */
static int raw(struct tp_client *c, uint16_t cmd, uint32_t size, uint32_t flags, const void *p,
	       uint32_t len, const int *fds, unsigned nfds, bool reply)
{
	uint8_t *buf = malloc(16 + len), rep[64];
	struct tp_vu_hdr h = { .msg_id = 0x5151, .command = cmd, .size = size, .flags = flags };
	struct tp_client_reply r = { .data = rep, .cap = sizeof(rep) };
	int rc;

	if (!buf)
		die("malloc");
	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + 16, p, len);
	rc = tp_client_send_raw(c, buf, 16 + len, fds, nfds);
	free(buf);
	if (rc)
		die("raw send: %s", strerror(-rc));
	if (!reply)
		return 1;
	rc = tp_client_recv(c, &r);
	if (rc)
		die("raw reply: %s", strerror(-rc));
	for (unsigned i = 0; i < r.nfds; i++)
		close(r.fds[i]);
	if (r.hdr.msg_id != 0x5151)
		die("reply to id %u", r.hdr.msg_id);
	return (r.hdr.flags & TP_VU_ERROR) ? -(int)r.hdr.error : 0;
}

static int memfd(uint64_t size)
{
	int fd = memfd_create("soak-guest-ram", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		die("memfd: %s", strerror(errno));
	return fd;
}

static void eventfds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if ((fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
			die("eventfd: %s", strerror(errno));
}

static void close_all(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}

struct session {
	struct tp_client c;
	uint64_t slot_size[SLOTS]; /* 0: free */
};

static void op_dma_map(struct session *s)
{
	unsigned k = rnd(SLOTS);
	uint64_t size = (1 + rnd(32)) * 65536ull;
	struct tp_vu_dma_map m = { sizeof(m), TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK, 0,
				   SLOT_BASE + k * SLOT_STRIDE, size };
	int fd = memfd(size), short_file = !rnd(8);

	if (short_file) { /* hostile: the file is smaller than the map */
		if (ftruncate(fd, (off_t)(size / 2)) < 0)
			die("ftruncate");
		hostile++;
	}
	expect("DMA_MAP", call(&s->c, TP_VU_DMA_MAP, &m, sizeof(m), &fd, 1),
	       s->slot_size[k] ? -EEXIST : short_file ? -EINVAL : 0); /* overlap is checked first */
	close(fd);
	if (!short_file && !s->slot_size[k]) {
		s->slot_size[k] = size;
		dma_maps++;
	}
}

static void op_dma_unmap(struct session *s)
{
	unsigned k = rnd(SLOTS);
	struct tp_vu_dma_unmap u = { sizeof(u), 0, SLOT_BASE + k * SLOT_STRIDE, s->slot_size[k] };

	if (!s->slot_size[k]) {
		u.size = 65536; /* nothing there: a no-op */
		expect("DMA_UNMAP nothing", call(&s->c, TP_VU_DMA_UNMAP, &u, sizeof(u), NULL, 0), 0);
		return;
	}
	if (s->slot_size[k] > 65536 && !rnd(4)) { /* hostile: cuts the region */
		u.size = 65536;
		hostile++;
		expect("DMA_UNMAP cut", call(&s->c, TP_VU_DMA_UNMAP, &u, sizeof(u), NULL, 0), -EINVAL);
		return;
	}
	expect("DMA_UNMAP", call(&s->c, TP_VU_DMA_UNMAP, &u, sizeof(u), NULL, 0), 0);
	s->slot_size[k] = 0;
}

static void op_set_irqs(struct session *s)
{
	struct tp_vu_irq_set q = { sizeof(q), TP_VU_IRQ_DATA_EVENTFD | TP_VU_IRQ_ACTION_TRIGGER,
				   TP_IRQ_MSIX, 0, 1 + rnd(TP_VU_MAX_MSG_FDS) };
	int fds[20];
	unsigned n = q.count;

	switch (rnd(4)) {
	case 0: /* de-assign the whole index */
		q.flags = TP_VU_IRQ_DATA_NONE | TP_VU_IRQ_ACTION_TRIGGER;
		q.count = 0;
		expect("SET_IRQS off", call(&s->c, TP_VU_DEVICE_SET_IRQS, &q, sizeof(q), NULL, 0), 0);
		return;
	case 1: /* hostile: more fds than a message may carry */
		n = 17 + rnd(3);
		q.count = n;
		hostile++;
		eventfds(fds, n);
		expect("SET_IRQS too many fds",
		       raw(&s->c, TP_VU_DEVICE_SET_IRQS, 16 + sizeof(q), 0, &q, sizeof(q), fds, n, true),
		       -EINVAL);
		close_all(fds, n);
		return;
	default:
		eventfds(fds, n);
		expect("SET_IRQS", call(&s->c, TP_VU_DEVICE_SET_IRQS, &q, sizeof(q), fds, n), 0);
		close_all(fds, n);
		irq_sets++;
		return;
	}
}

static void op_region(struct session *s)
{
	uint32_t v = 0, cmd = 0x0006;
	struct tp_vu_region_info info;
	uint8_t caps[256];
	int fd = -1;

	switch (rnd(5)) {
	case 0:
		expect("config read", tp_client_region_read(&s->c, TP_REGION_CONFIG, 0, &v, 4), 0);
		if (v != CFG_ID)
			die("config id %#x", v);
		break;
	case 1:
		expect("command write",
		       tp_client_region_write(&s->c, TP_REGION_CONFIG, 4, &cmd, 2, false), 0);
		break;
	case 2:
		expect("region info", tp_client_region_info(&s->c, rnd(2) ? 1 : 3, &info, caps,
							  sizeof(caps), &fd), 0);
		if (fd >= 0)
			close(fd);
		break;
	case 3: /* hostile: past the end of the config space */
		hostile++;
		expect("config read out of range",
		       tp_client_region_read(&s->c, TP_REGION_CONFIG, 4094, &v, 4), -EINVAL);
		break;
	default: /* posted writes, as QEMU's BAR writes are */
		v = rnd(0x10000);
		expect("posted write",
		       tp_client_region_write(&s->c, TP_REGION_CONFIG, 0x3c, &v, 1, true), 0);
		break;
	}
}

/* A copy-engine job (docs/copy-engine.md) from VRAM into a mapped slot: the
 * device DMAs into the client's memory, and the session may end mid-copy. */
static void op_copy_engine(struct session *s)
{
	static const uint32_t base = 0xf00000;
	unsigned k = rnd(SLOTS);
	uint64_t dst = SLOT_BASE + k * SLOT_STRIDE;
	uint32_t regs[][2] = {
		{ 0x10, 0 }, { 0x14, 0 }, { 0x18, (uint32_t)dst }, { 0x1c, (uint32_t)(dst >> 32) },
		{ 0x20, (uint32_t)TP_MIN(s->slot_size[k], 65536u * (1 + rnd(8))) },
		{ 0x24, 0x1 | 0x20 }, { 0x4c, 3 }, { 0x40, 1 },
	};
	uint32_t cmd = 0x0006, st = 0;

	if (!s->slot_size[k])
		return;
	expect("command: bus master", tp_client_region_write(&s->c, TP_REGION_CONFIG, 4, &cmd, 2,
							     false), 0);
	for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
		expect("copy engine register",
		       tp_client_region_write(&s->c, 0, base + regs[i][0], &regs[i][1], 4, false), 0);
	expect("copy engine status", tp_client_region_read(&s->c, 0, base + 0x44, &st, 4), 0);
	ce_jobs++;
}

static void op_hostile(struct session *s)
{
	static uint8_t big[TP_VU_MAX_MSG];
	struct tp_vu_device_info info = { .argsz = sizeof(info) };
	struct tp_vu_dma_map m = { sizeof(m), 3, 0, SLOT_BASE + 0x1001, 65536 };
	uint8_t v[8] = { 0 };
	int fd;

	hostile++;
	switch (rnd(7)) {
	case 0:
		expect("undersized", raw(&s->c, TP_VU_DEVICE_GET_INFO, 8, 0, NULL, 0, NULL, 0, true),
		       -EINVAL);
		break;
	case 1:
		expect("unknown command", raw(&s->c, 99, 16, 0, NULL, 0, NULL, 0, true), -ENOSYS);
		break;
	case 2:
		fd = memfd(65536);
		expect("DMA_MAP misaligned", call(&s->c, TP_VU_DMA_MAP, &m, sizeof(m), &fd, 1),
		       -EINVAL);
		close(fd);
		break;
	case 3:
		expect("second VERSION", call(&s->c, TP_VU_VERSION, v, sizeof(v), NULL, 0), -EINVAL);
		break;
	case 4: /* a reply from the client: dropped without an answer */
		raw(&s->c, TP_VU_DEVICE_GET_INFO, 32, TP_VU_TYPE_REPLY, &info, sizeof(info), NULL, 0,
		    false);
		break;
	case 5:
		if (rnd(20)) { /* a REGION_READ larger than the data limit */
			struct tp_vu_region_rw rw = { 0, TP_REGION_CONFIG, TP_VU_MAX_DATA_XFER + 1 };

			expect("REGION_READ too big",
			       call(&s->c, TP_VU_REGION_READ, &rw, sizeof(rw), NULL, 0), -E2BIG);
		} else { /* a message over the limit, body and all (1 MiB) */
			expect("oversized", raw(&s->c, TP_VU_REGION_WRITE, 16 + sizeof(big), 0, big,
						sizeof(big), NULL, 0, true), -E2BIG);
		}
		break;
	default:
		fd = memfd(4096);
		expect("GET_INFO + fd",
		       raw(&s->c, TP_VU_DEVICE_GET_INFO, 32, 0, &info, sizeof(info), &fd, 1, true),
		       -EINVAL);
		close(fd);
		break;
	}
}

static void connect_ok(struct tp_client *c)
{
	for (int i = 0; i < 500; i++) {
		int rc = tp_client_connect(c, sock, 5000);

		if (rc)
			die("connect: %s", strerror(-rc));
		rc = tp_client_version(c, NULL);
		if (rc == 0)
			return;
		if (rc != -EBUSY)
			die("VERSION: %s", strerror(-rc));
		tp_client_close(c); /* the previous session is still being ended */
		usleep(2000);
	}
	die("the server stayed busy");
}

static void session(void)
{
	struct session s = { 0 };
	unsigned ops = 5 + rnd(36), how = rnd(3);

	connect_ok(&s.c);
	for (unsigned i = 0; i < ops; i++) {
		switch (rnd(10)) {
		case 0: case 1: case 2: op_dma_map(&s); break;
		case 3: case 4: op_dma_unmap(&s); break;
		case 5: case 6: op_set_irqs(&s); break;
		case 7: op_region(&s); break;
		case 8: op_copy_engine(&s); break;
		default: op_hostile(&s); break;
		}
	}
	ends[how]++;
	if (how == 1) { /* abrupt: a request the client never reads the answer of */
		struct tp_vu_device_info info = { .argsz = sizeof(info) };
		uint8_t buf[32];
		struct tp_vu_hdr h = { .msg_id = 9, .command = TP_VU_DEVICE_GET_INFO, .size = 32 };

		memcpy(buf, &h, 16);
		memcpy(buf + 16, &info, 16);
		tp_client_send_raw(&s.c, buf, sizeof(buf), NULL, 0);
	} else if (how == 2) { /* in the middle of a message: a header, part of a body */
		uint8_t buf[26] = { 0 };
		struct tp_vu_hdr h = { .msg_id = 9, .command = TP_VU_DMA_MAP, .size = 48 };
		int fd = memfd(65536);

		memcpy(buf, &h, 16);
		tp_client_send_raw(&s.c, buf, rnd(2) ? sizeof(buf) : 7, &fd, 1);
		close(fd);
	}
	tp_client_close(&s.c);
}

/* The server recorded every session (--record, lib/record.h): the file
 * parses to the end, with one end-of-session record per session. */
static void check_recording(unsigned sessions)
{
	FILE *f = fopen(recpath, "rb");
	uint8_t magic[TP_REC_MAGIC_LEN], info, desc[32];
	unsigned long msgs = 0, ends_seen = 0;
	struct tp_vu_hdr h;
	int tag;

	if (!f || fread(magic, 1, sizeof(magic), f) != sizeof(magic) ||
	    memcmp(magic, TP_REC_MAGIC, sizeof(magic)))
		die("%s: not a recording", recpath);
	while ((tag = fgetc(f)) != EOF) {
		if (tag == TP_REC_END) {
			ends_seen++;
			continue;
		}
		if (tag != TP_REC_MSG || fread(&info, 1, 1, f) != 1 ||
		    fread(desc, 1, info & TP_REC_FD_COUNT, f) != (info & TP_REC_FD_COUNT) ||
		    fread(&h, 1, sizeof(h), f) != sizeof(h) ||
		    fseek(f, tp_record_body_len(&h), SEEK_CUR))
			die("%s: broken record after %lu messages", recpath, msgs);
		msgs++;
	}
	fclose(f);
	if (ends_seen != sessions)
		die("%s: %lu sessions recorded, %u served", recpath, ends_seen, sessions);
	printf("soak: recording: %lu messages in %lu sessions, well-formed\n", msgs, ends_seen);
	unlink(recpath);
}

/* ---- main ----------------------------------------------------------------- */

static void wait_sessions(int64_t want)
{
	for (int i = 0; i < 1000; i++) {
		json_object *o = stats();
		int64_t n = jget(o, "sessions_ended"), conn = jget(o, "client.connected");

		json_object_put(o);
		if (n >= want && !conn)
			return;
		usleep(10000);
	}
	die("the server did not end %lld sessions", (long long)want);
}

static void check_released(json_object *o)
{
	static const char *const zero[] = { "dma.maps_live", "dma.bytes_mapped", "iommu.maps_live",
					    "irqs.intx.live", "irqs.msi.live", "irqs.msix.live",
					    "irqs.err.live", "irqs.req.live" };

	for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
		if (jget(o, zero[i]))
			die("%s is %lld after the last session", zero[i],
			    (long long)jget(o, zero[i]));
	if (jget(o, "dma.maps") != jget(o, "dma.unmaps"))
		die("dma maps %lld != unmaps %lld", (long long)jget(o, "dma.maps"),
		    (long long)jget(o, "dma.unmaps"));
}

int main(void)
{
	const char *e = getenv("SOAK_SESSIONS");
	unsigned n = e ? (unsigned)atoi(e) : 1000;
	long slack = getenv("SOAK_RSS_SLACK_KB") ? atol(getenv("SOAK_RSS_SLACK_KB")) : 8192;
	struct figures a, b;
	json_object *o;
	int64_t ended0;
	struct timespec t0, t1;
	int status;

	setvbuf(stdout, NULL, _IOLBF, 0);
	rng = getenv("SOAK_SEED") ? strtoull(getenv("SOAK_SEED"), NULL, 0) : (uint64_t)time(NULL);
	rng = rng ? rng : 1;
	printf("soak: %u sessions, seed %llu\n", n, (unsigned long long)rng);
	signal(SIGPIPE, SIG_IGN);
	start_server();
	o = stats();
	ended0 = jget(o, "sessions_ended");
	json_object_put(o);
	a = figures();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; i < n; i++)
		session();
	wait_sessions(ended0 + n);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	b = figures();
	o = stats();
	printf("soak: %u sessions in %.1f s: %lu DMA maps, %lu SET_IRQS with eventfds, %lu copy-engine "
	       "jobs, %lu hostile messages, %lu replies checked; ends: %lu clean, %lu abrupt, %lu "
	       "mid-message\n",
	       n, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       dma_maps, irq_sets, ce_jobs, hostile, checks, ends[0], ends[1], ends[2]);
	printf("soak: server fds %ld -> %ld, mappings %ld -> %ld, RSS %ld -> %ld KiB; "
	       "guest memory map %lld entries (%lld maps, %lld unmaps), IOMMU %lld live, "
	       "eventfds %lld\n",
	       a.fds, b.fds, a.maps, b.maps, a.rss_kb, b.rss_kb, (long long)jget(o, "dma.maps_live"),
	       (long long)jget(o, "dma.maps"), (long long)jget(o, "dma.unmaps"),
	       (long long)jget(o, "iommu.maps_live"),
	       (long long)(jget(o, "irqs.msix.live") + jget(o, "irqs.msi.live") +
			   jget(o, "irqs.intx.live")));
	check_released(o);
	json_object_put(o);
	if (b.fds != a.fds)
		die("the server holds %ld fds, %ld before", b.fds, a.fds);
	/* ASan's allocator maps memory of its own and keeps freed blocks in
	 * quarantine: mappings and RSS are its, not the server's. LeakSanitizer
	 * checks the heap when the server exits instead (status below). */
	if (asan)
		printf("soak: ASan build: mappings and RSS not compared; LeakSanitizer runs at exit\n");
	if (!asan && b.maps != a.maps)
		die("the server has %ld mappings, %ld before", b.maps, a.maps);
	if (!asan && b.rss_kb > a.rss_kb + slack)
		die("the server's RSS grew by %ld KiB (more than %ld)", b.rss_kb - a.rss_kb, slack);
	kill(server, SIGTERM);
	if (waitpid(server, &status, 0) != server || !WIFEXITED(status) || WEXITSTATUS(status))
		die("the server did not exit cleanly on SIGTERM (status %#x)", status);
	server = 0;
	check_recording(n);
	unlink(logpath);
	rmdir(dir);
	printf("soak: PASS\n");
	return 0;
}
