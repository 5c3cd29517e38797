/* SPDX-License-Identifier: MIT */
/*
 * thunderpass stats SOCKET-OR-PID [--watch] [--json]: the live counters of a
 * running server, read from its control socket (PATH.ctl, lib/control.c):
 * trapped accesses per BAR, posted and waited writes, mappable regions, DMA
 * maps and bytes, IOMMU faults, interrupts per vector, resets. The human
 * output ends with "poor performance" hints; --watch prints rates per second.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "commands.h"
#include "util.h"

#define READ_TIMEOUT_MS 3000
#define MAX_SNAPSHOT (1u << 20)
/* Above this many trapped accesses per second a BAR costs a good part of a
 * CPU: each is a socket round trip of about 30 us under QEMU's client. */
#define HOT_TRAPS_PER_S 5000.0

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void stats_usage(FILE *f)
{
	fprintf(f,
		"usage: thunderpass stats SOCKET-OR-PID [--watch] [--json] [--interval SECONDS]\n"
		"                         [--count N]\n\n"
		"Live counters of a running `thunderpass serve`: SOCKET is the server's\n"
		"--socket path (its stats socket is SOCKET.ctl), or the server's PID.\n"
		"  --watch         print again every interval, with rates per second\n"
		"  --json          the server's JSON snapshot (docs/doctor.md); with --watch\n"
		"                  one object per line, with a \"rates\" member\n"
		"  --interval S    seconds between samples (default 1; decimals allowed)\n"
		"  --count N       stop after N samples (default: 1, or endless with --watch)\n");
}

/* The server's --socket from its command line, made absolute with its cwd. */
static int socket_of_pid(const char *pid, char *out, size_t len)
{
	char path[64], cwd[PATH_MAX], *buf = malloc(65536), *sock = NULL;
	ssize_t n = -1;
	FILE *f;

	if (!buf)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/proc/%s/cmdline", pid);
	f = fopen(path, "re");
	if (f) {
		n = (ssize_t)fread(buf, 1, 65535, f);
		fclose(f);
	}
	if (n <= 0) {
		free(buf);
		return -ESRCH;
	}
	buf[n] = '\0';
	for (char *a = buf; a < buf + n; a += strlen(a) + 1) {
		if (!strcmp(a, "--socket") && a + strlen(a) + 1 < buf + n)
			sock = a + strlen(a) + 1;
		else if (!strncmp(a, "--socket=", 9))
			sock = a + 9;
	}
	if (!sock) {
		free(buf);
		return -ENOENT;
	}
	if (sock[0] == '/') {
		snprintf(out, len, "%s", sock);
	} else {
		snprintf(path, sizeof(path), "/proc/%s/cwd", pid);
		n = readlink(path, cwd, sizeof(cwd) - 1);
		if (n < 0) {
			free(buf);
			return -errno;
		}
		cwd[n] = '\0';
		if (snprintf(out, len, "%s/%s", cwd, sock) >= (int)len) {
			free(buf);
			return -ENAMETOOLONG;
		}
	}
	free(buf);
	return 0;
}

static int resolve(const char *arg, char *ctl, size_t len)
{
	char sock[PATH_MAX];
	size_t n = strlen(arg);
	int rc;

	if (n && strspn(arg, "0123456789") == n) {
		rc = socket_of_pid(arg, sock, sizeof(sock));
		if (rc) {
			const char *why = rc == -ESRCH ? "no such process" : strerror(-rc);

			if (rc == -ENOENT)
				why = "that process has no --socket argument (is it `thunderpass "
				      "serve`?)";
			fprintf(stderr, "thunderpass stats: %s\n", why);
			return rc;
		}
		arg = sock;
		n = strlen(arg);
	}
	if (n > 4 && !strcmp(arg + n - 4, ".ctl"))
		snprintf(ctl, len, "%s", arg);
	else
		snprintf(ctl, len, "%s.ctl", arg);
	return 0;
}

/* Connects, reads the snapshot to EOF; the parsed object, or NULL. */
static json_object *fetch(const char *ctl, bool quiet)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t end = tp_now_ns() + READ_TIMEOUT_MS * 1000000ull;
	char *buf = malloc(MAX_SNAPSHOT);
	json_object *o = NULL;
	size_t have = 0;
	int fd;

	if (!buf)
		return NULL;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (strlen(ctl) >= sizeof(sa.sun_path) || fd < 0) {
		if (!quiet)
			fprintf(stderr, "thunderpass stats: bad socket path %s\n", ctl);
		goto out;
	}
	strcpy(sa.sun_path, ctl);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (!quiet)
			fprintf(stderr,
				"thunderpass stats: cannot reach %s: %s (is the server "
				"running? `thunderpass serve --socket PATH` creates PATH.ctl)\n",
				ctl, strerror(errno));
		goto out;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = tp_now_ns();
		ssize_t n;

		if (now >= end || poll(&p, 1, (int)((end - now) / 1000000ull) + 1) <= 0)
			break;
		n = read(fd, buf + have, MAX_SNAPSHOT - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		if (have == MAX_SNAPSHOT - 1)
			break;
	}
	buf[have] = '\0';
	o = json_tokener_parse(buf);
	if (!o && !quiet)
		fprintf(stderr, "thunderpass stats: %s sent no valid snapshot\n", ctl);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return o;
}

static int64_t num(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	json_object_object_get_ex(o, key, &v);
	return v;
}

static const char *str(json_object *o, const char *key)
{
	json_object *v = get(o, key);

	return v ? json_object_get_string(v) : "?";
}

/* The same region in the previous snapshot. */
static json_object *prev_region(json_object *prev, int64_t index)
{
	json_object *regs = prev ? get(prev, "regions") : NULL;

	for (size_t i = 0; regs && i < json_object_array_length(regs); i++) {
		json_object *r = json_object_array_get_idx(regs, i);

		if (num(r, "index") == index)
			return r;
	}
	return NULL;
}

static double rate(json_object *cur, json_object *prev, const char *key, double dt)
{
	int64_t d = num(cur, key) - (prev ? num(prev, key) : 0);

	return dt > 0 && d > 0 ? (double)d / dt : 0;
}

/* Seconds the counters span: since the last sample, else since the client came. */
static double span(json_object *cur, json_object *prev)
{
	if (prev)
		return (double)(num(cur, "time_ns") - num(prev, "time_ns")) / 1e9;
	return (double)num(get(cur, "client"), "since_ms") / 1e3;
}

static void print_irqs(json_object *irqs, json_object *pirqs, double dt, bool watch)
{
	static const char *const idx[] = { "msix", "msi", "intx" };
	static const char *const names[] = { "MSI-X", "MSI", "INTx" };

	printf("interrupts:");
	for (int i = 0; i < 3; i++) {
		json_object *x = get(irqs, idx[i]), *px = pirqs ? get(pirqs, idx[i]) : NULL;
		json_object *v = x ? get(x, "raised") : NULL, *pv = px ? get(px, "raised") : NULL;
		bool any = false;

		if (!x || !num(x, "vectors"))
			continue;
		if (watch)
			printf(" %s %.0f/s", names[i], rate(x, px, "total", dt));
		else
			printf(" %s %" PRId64, names[i], num(x, "total"));
		printf(" (%" PRId64 " of %" PRId64 " vectors live", num(x, "live"),
		       num(x, "vectors"));
		for (size_t k = 0; v && k < json_object_array_length(v); k++) {
			int64_t c = json_object_get_int64(json_object_array_get_idx(v, k));
			int64_t pc =
				pv && k < json_object_array_length(pv)
					? json_object_get_int64(json_object_array_get_idx(pv, k))
					: 0;

			if (!c)
				continue;
			printf("%s vector %zu: ", any ? "," : ";", k);
			if (watch)
				printf("%.0f/s", dt > 0 ? (double)(c - pc) / dt : 0);
			else
				printf("%" PRId64, c);
			any = true;
		}
		printf(")");
	}
	printf("; dropped %" PRId64 "\n", num(irqs, "dropped"));
}

/* Hints from the totals; the trap rate from prev (--watch) or over the session. */
static void hints(json_object *cur, json_object *prev, unsigned *n)
{
	double dt = span(cur, prev);
	json_object *regs = get(cur, "regions"), *dma = get(cur, "dma");
	json_object *client = get(cur, "client"), *irqs = get(cur, "irqs");
	bool connected = json_object_get_boolean(get(client, "connected"));
	int64_t faults = num(get(cur, "iommu"), "faults");

	if (!connected) {
		printf("  no client is connected: start QEMU with the options `thunderpass "
		       "qemu-args` prints\n");
		(*n)++;
		return;
	}
	for (size_t i = 0; regs && i < json_object_array_length(regs); i++) {
		json_object *r = json_object_array_get_idx(regs, i);
		json_object *p = prev_region(prev, num(r, "index"));
		int64_t traps = num(r, "trapped_reads") + num(r, "trapped_writes");
		double per_s = rate(r, p, "trapped_reads", dt) + rate(r, p, "trapped_writes", dt);
		const char *name = str(r, "name");

		if (!strcmp(name, "config"))
			continue;
		if (per_s > HOT_TRAPS_PER_S) {
			printf("  poor performance: %s takes %.0f trapped accesses/s, each a "
			       "socket round trip (about 30 us under QEMU); a driver polling a "
			       "register is the usual cause\n",
			       name, per_s);
			(*n)++;
		}
		if (traps && num(r, "mappable_bytes") == num(r, "size") && strcmp(name, "ROM")) {
			printf("  poor performance: %s could be mapped directly but %" PRId64
			       " accesses were trapped: the client did not map it\n",
			       name, traps);
			(*n)++;
		}
	}
	if (!num(dma, "maps_live")) {
		printf("  poor performance: no guest memory is mapped for DMA, so the device "
		       "cannot reach guest RAM: give QEMU shared memory (memory-backend-memfd,"
		       "share=on, as `thunderpass qemu-args` prints)\n");
		(*n)++;
	}
	if (faults) {
		printf("  %" PRId64 " DMA faults: the device used addresses the IOMMU does not map "
		       "(a guest driver bug, or --iommu dart without the pvdma guest module)\n",
		       faults);
		(*n)++;
	}
	if (num(irqs, "dropped")) {
		printf("  %" PRId64 " interrupts dropped: the device raised vectors the guest has "
		       "not enabled\n",
		       num(irqs, "dropped"));
		(*n)++;
	}
}

static void print_human(json_object *cur, json_object *prev, bool watch)
{
	json_object *client = get(cur, "client"), *regs = get(cur, "regions");
	json_object *dma = get(cur, "dma"), *mmu = get(cur, "iommu");
	double dt = span(cur, prev);
	unsigned nh = 0;
	char a[32], b[32];

	printf("%s (%s), server pid %" PRId64 ", up %.1f s, socket %s\n", str(cur, "device"),
	       str(cur, "vendor_device"), num(cur, "pid"), (double)num(cur, "uptime_ms") / 1e3,
	       str(cur, "socket"));
	if (json_object_get_boolean(get(client, "connected")))
		printf("client: pid %" PRId64 ", connected %.1f s", num(client, "pid"),
		       (double)num(client, "since_ms") / 1e3);
	else
		printf("client: none");
	printf("; sessions ended %" PRId64 "; resets %" PRId64 "\n", num(cur, "sessions_ended"),
	       num(cur, "resets"));
	printf("%-7s %9s %-10s %12s %12s %9s %9s %7s\n", "region", "size", "mapped",
	       watch ? "reads/s" : "trap reads", watch ? "writes/s" : "trap writes", "posted",
	       "waited", "errors");
	for (size_t i = 0; regs && i < json_object_array_length(regs); i++) {
		json_object *r = json_object_array_get_idx(regs, i);
		json_object *p = watch ? prev_region(prev, num(r, "index")) : NULL;
		int64_t mb = num(r, "mappable_bytes");

		tp_fmt_size((uint64_t)num(r, "size"), a, sizeof(a));
		if (mb == num(r, "size"))
			snprintf(b, sizeof(b), "all");
		else if (mb)
			tp_fmt_size((uint64_t)mb, b, sizeof(b));
		else
			snprintf(b, sizeof(b), "no");
		if (watch)
			printf("%-7s %9s %-10s %12.0f %12.0f %9.0f %9.0f %7" PRId64 "\n",
			       str(r, "name"), a, b, rate(r, p, "trapped_reads", dt),
			       rate(r, p, "trapped_writes", dt), rate(r, p, "posted_writes", dt),
			       rate(r, p, "waited_writes", dt), num(r, "errors"));
		else
			printf("%-7s %9s %-10s %12" PRId64 " %12" PRId64 " %9" PRId64 " %9" PRId64
			       " %7" PRId64 "\n",
			       str(r, "name"), a, b, num(r, "trapped_reads"),
			       num(r, "trapped_writes"), num(r, "posted_writes"),
			       num(r, "waited_writes"), num(r, "errors"));
	}
	printf("DMA: %" PRId64 " regions mapped, %s (maps %" PRId64 ", unmaps %" PRId64 "); "
	       "IOMMU %s: %" PRId64 " mappings, %" PRId64 " faults, %" PRId64 " refused\n",
	       num(dma, "maps_live"), tp_fmt_size((uint64_t)num(dma, "bytes_mapped"), a, sizeof(a)),
	       num(dma, "maps"), num(dma, "unmaps"), str(mmu, "model"), num(mmu, "maps_live"),
	       num(mmu, "faults"), num(mmu, "refused"));
	print_irqs(get(cur, "irqs"), prev ? get(prev, "irqs") : NULL, dt, watch);
	printf("hints:\n");
	hints(cur, watch ? prev : NULL, &nh);
	if (!nh)
		printf("  none: nothing here slows the device down\n");
}

/* --watch --json: the snapshot with the rates since the previous one. */
static void add_rates(json_object *cur, json_object *prev)
{
	json_object *rates = json_object_new_object(), *regs = json_object_new_array();
	json_object *cregs = get(cur, "regions");
	double dt = span(cur, prev);

	json_object_object_add(rates, "interval_s", json_object_new_double(prev ? dt : 0));
	for (size_t i = 0; cregs && i < json_object_array_length(cregs); i++) {
		json_object *r = json_object_array_get_idx(cregs, i), *o = json_object_new_object();
		json_object *p = prev_region(prev, num(r, "index"));

		json_object_object_add(o, "index", json_object_new_int((int)num(r, "index")));
		json_object_object_add(
			o, "trapped_reads_per_s",
			json_object_new_double(prev ? rate(r, p, "trapped_reads", dt) : 0));
		json_object_object_add(
			o, "trapped_writes_per_s",
			json_object_new_double(prev ? rate(r, p, "trapped_writes", dt) : 0));
		json_object_array_add(regs, o);
	}
	json_object_object_add(rates, "regions", regs);
	json_object_object_add(cur, "rates", rates);
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	while (!stop && nanosleep(&ts, &ts) < 0)
		;
}

int tp_cmd_stats(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "watch", no_argument, NULL, 'w' },
		{ "json", no_argument, NULL, 'j' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool watch = false, json = false;
	double interval = 1.0;
	long count = -1, done = 0;
	json_object *prev = NULL;
	char ctl[PATH_MAX + 8], *end;
	struct sigaction sa = { .sa_handler = on_signal };
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'w': watch = true; break;
		case 'j': json = true; break;
		case 'i':
			interval = strtod(optarg, &end);
			if (*end || !(interval >= 0.05 && interval <= 3600)) {
				fprintf(stderr,
					"thunderpass stats: --interval wants 0.05..3600 s\n");
				return 2;
			}
			break;
		case 'c':
			count = strtol(optarg, &end, 10);
			if (*end || count < 1) {
				fprintf(stderr, "thunderpass stats: --count wants a number >= 1\n");
				return 2;
			}
			break;
		case 'h': stats_usage(stdout); return 0;
		default: stats_usage(stderr); return 2;
		}
	}
	if (optind + 1 != argc) {
		stats_usage(stderr);
		return 2;
	}
	if (resolve(argv[optind], ctl, sizeof(ctl)))
		return 1;
	if (count < 0)
		count = watch ? 0 : 1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	while (!stop) {
		json_object *cur = fetch(ctl, done > 0);

		if (!cur) {
			if (done)
				fprintf(stderr, "thunderpass stats: the server went away\n");
			break;
		}
		if (json) {
			if (watch)
				add_rates(cur, prev);
			printf("%s\n", json_object_to_json_string_ext(
					       cur, JSON_C_TO_STRING_PLAIN |
							    JSON_C_TO_STRING_NOSLASHESCAPE));
		} else {
			if (watch)
				printf("%s--- %s\n", done ? "\n" : "",
				       prev ? "per second since the last sample" : "totals so far");
			print_human(cur, prev, watch && prev);
		}
		fflush(stdout);
		json_object_put(prev);
		prev = cur;
		done++;
		if (count && done >= count)
			break;
		sleep_s(interval);
	}
	json_object_put(prev);
	return done ? 0 : 1;
}
