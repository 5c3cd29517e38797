/* SPDX-License-Identifier: MIT */
/* thunderpass serve: one device on one socket until SIGINT/SIGTERM. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thunderpass/backend.h>
#include <thunderpass/log.h>
#include <thunderpass/sandbox.h>
#include <thunderpass/server.h>

#include "commands.h"
#include "serve_pvdma.h"

#define MAX_OPTS 32

static struct tp_server *running;
static struct tp_serve_pvdma *companion; /* --pvdma-socket */
/* A stop asked for before the server (or its companion) existed. */
static volatile sig_atomic_t stop_asked;

static void on_signal(int sig)
{
	(void)sig;
	stop_asked = 1;
	if (running)
		tp_server_stop(running);
	tp_serve_pvdma_stop(companion);
}

static void serve_usage(FILE *f)
{
	const struct tp_backend_type *const *t = tp_backend_types();

	fprintf(f,
		"usage: thunderpass serve --socket PATH [--backend NAME] [-o KEY=VALUE]...\n"
		"                         [--socket-mode MODE] [--allow-uid UID] [--once]\n"
		"                         [--iommu identity|dart] [--log-level error|warn|info|debug]\n"
		"                         [--record FILE] [--user NAME] [--no-seccomp]\n"
		"                         [--pvdma-socket PATH]\n\n"
		"Serves one device to one vfio-user client at a time. SIGINT/SIGTERM stop the\n"
		"server cleanly and remove the socket.\n\n"
		"  --socket PATH      the UNIX socket to create (its directory must not be\n"
		"                     world-writable)\n"
		"  --backend NAME     the host backend (default: model)\n"
		"  -o KEY=VALUE       a backend option (repeatable)\n"
		"  --socket-mode MODE socket permissions, octal (default 0600: owner only)\n"
		"  --allow-uid UID    only this user (and root) may connect\n"
		"  --once             exit when the first client disconnects\n"
		"  --iommu MODEL      how device addresses map to guest memory: identity\n"
		"                     (device address = guest physical, as kernel VFIO; the\n"
		"                     default) or dart (host-chosen addresses, as Apple's DART;\n"
		"                     needs the pvdma guest module)\n"
		"  --log-level LEVEL  default info\n"
		"  --user NAME        once the device is open and the socket listens, drop to\n"
		"                     this user and its group (the socket is handed to it)\n"
		"  --no-seccomp       do not confine the serving loop to its system calls\n"
		"                     (the filter is on by default on Linux)\n"
		"  --record FILE      write every client message to FILE (mode 0600) in the\n"
		"                     replayable form of docs/security.md (fuzzing seeds)\n"
		"  --pvdma-socket PATH  also serve the pvdma companion (docs/pvdma.md) of this\n"
		"                     device on PATH, from this process; its -o options start\n"
		"                     with pvdma- (listed below)\n"
		"\nbackends:\n");
	for (; *t; t++)
		fprintf(f, "  %-8s %s\n", (*t)->name, (*t)->help);
	fprintf(f, "  %s\n", tp_pvdma_opts_help);
}

struct serve_args {
	const char *socket, *backend, *user;
	bool no_seccomp, forbidden_call;
	struct tp_backend_opt opts[MAX_OPTS];
	size_t nopts;
	struct tp_server_opts sopts;
	const char *pvdma_socket; /* --pvdma-socket, and its pvdma-* options */
	struct tp_backend_opt pvdma_opts[MAX_OPTS];
	size_t npvdma;
};

static int add_backend_opt(struct serve_args *a, char *kv)
{
	char *eq = strchr(kv, '=');

	if (!eq || eq == kv || a->nopts == MAX_OPTS) {
		fprintf(stderr, "thunderpass serve: -o wants KEY=VALUE, got '%s'\n", kv);
		return -EINVAL;
	}
	*eq = '\0';
	a->opts[a->nopts++] = (struct tp_backend_opt){ kv, eq + 1 };
	return 0;
}

/* Returns 0 to go on, or the exit status. */
static int parse_args(int argc, char **argv, struct serve_args *a)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "backend", required_argument, NULL, 'b' },
		{ "opt", required_argument, NULL, 'o' },
		{ "socket-mode", required_argument, NULL, 'm' },
		{ "allow-uid", required_argument, NULL, 'u' },
		{ "once", no_argument, NULL, '1' },
		{ "iommu", required_argument, NULL, 'i' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "record", required_argument, NULL, 'r' },
		{ "user", required_argument, NULL, 'U' },
		{ "no-seccomp", no_argument, NULL, 'S' },
		/* Test only: after confinement, make a forbidden call (docs/security.md). */
		{ "debug-forbidden-syscall", no_argument, NULL, 'F' },
		{ "pvdma-socket", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum tp_log_level level;
	char *end;
	int c;

	a->backend = "model";
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': a->socket = optarg; break;
		case 'b': a->backend = optarg; break;
		case 'o':
			if (add_backend_opt(a, optarg))
				return 2;
			break;
		case 'm':
			a->sopts.socket_mode = (mode_t)strtoul(optarg, &end, 8);
			if (*end || !a->sopts.socket_mode || a->sopts.socket_mode > 0777) {
				fprintf(stderr, "thunderpass serve: bad --socket-mode '%s'\n", optarg);
				return 2;
			}
			break;
		case 'u':
			a->sopts.restrict_uid = true;
			a->sopts.allow_uid = (uid_t)strtoul(optarg, &end, 10);
			if (*end || !*optarg) {
				fprintf(stderr, "thunderpass serve: bad --allow-uid '%s'\n", optarg);
				return 2;
			}
			break;
		case '1': a->sopts.once = true; break;
		case 'i':
			if (strcmp(optarg, "identity") && strcmp(optarg, "dart")) {
				fprintf(stderr, "thunderpass serve: --iommu is identity or dart\n");
				return 2;
			}
			a->sopts.iommu = optarg;
			break;
		case 'l':
			if (tp_log_parse_level(optarg, &level)) {
				fprintf(stderr, "thunderpass serve: bad --log-level '%s'\n", optarg);
				return 2;
			}
			tp_log_set_level(level);
			break;
		case 'r': a->sopts.record_path = optarg; break;
		case 'U': a->user = optarg; break;
		case 'S': a->no_seccomp = true; break;
		case 'F': a->forbidden_call = true; break;
		case 'P': a->pvdma_socket = optarg; break;
		case 'h': serve_usage(stdout); return -1;
		default: serve_usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "thunderpass serve: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!a->socket) {
		fprintf(stderr, "thunderpass serve: --socket PATH is required\n\n");
		serve_usage(stderr);
		return 2;
	}
	a->npvdma = tp_serve_pvdma_split(a->opts, &a->nopts, a->pvdma_opts, MAX_OPTS);
	if (a->npvdma && !a->pvdma_socket) {
		fprintf(stderr, "thunderpass serve: pvdma-* options need --pvdma-socket\n");
		return 2;
	}
	if (a->pvdma_socket && tp_serve_pvdma_check(a->pvdma_opts, a->npvdma))
		return 2;
	return 0;
}

/* The server removes its socket at exit, as the user it dropped to. */
static int check_user_dir(const char *socket_path, const char *user, uid_t uid)
{
	char dir[4096];
	struct stat st;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", socket_path);
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	if (stat(dir, &st) < 0 || st.st_uid != uid) {
		tp_err("serve", "--user %s: the socket directory %s must belong to %s (the server "
				"removes its socket as that user); e.g. install -d -m 700 -o %s %s",
		       user, dir, user, user, dir);
		return -EPERM;
	}
	return 0;
}

/*
 * Least privilege once the device is open and the socket listens: the user
 * first (the socket becomes theirs, so they can still remove it), then the
 * seccomp filter on every thread.
 */
static int confine(const struct serve_args *a, const struct tp_backend_type *type)
{
	uid_t uid;
	gid_t gid;
	int rc;

	if (a->user) {
		rc = tp_sandbox_lookup_user(a->user, &uid, &gid, "serve");
		if (!rc)
			rc = check_user_dir(a->socket, a->user, uid);
		if (!rc && chown(a->socket, uid, gid) < 0) {
			rc = -errno;
			tp_err("serve", "cannot hand %s to %s: %s", a->socket, a->user, strerror(errno));
		}
		if (!rc)
			rc = tp_sandbox_drop_user(uid, gid, "serve");
		if (rc)
			return rc;
	}
	if (a->no_seccomp) {
		tp_info("serve", "seccomp filter off (--no-seccomp)");
	} else {
		rc = tp_sandbox_seccomp(type->syscalls, type->ioctls, "serve");
		if (rc == -ENOTSUP)
			tp_info("serve", "no seccomp filter in this build (sanitizers, or not Linux)");
		else if (rc)
			return rc;
	}
	if (a->forbidden_call) {
		/* Opening a file is refused with EACCES (lib/sandbox.c); a call
		 * the filter forbids outright kills the process with SIGSYS. */
		int fd = open("/proc/sys/vm/overcommit_memory", O_RDONLY);

		if (tp_sandbox_available()) {
			if (fd >= 0 || errno != EACCES) {
				tp_err("serve", "--debug-forbidden-syscall: open() was not refused "
				       "with EACCES (fd %d)", fd);
				return -EPERM;
			}
			tp_info("serve", "--debug-forbidden-syscall: open() refused with EACCES");
		}
		if (fd >= 0)
			close(fd);
		fd = socket(AF_INET, SOCK_STREAM, 0);

		tp_err("serve", "--debug-forbidden-syscall: socket() was allowed (fd %d)", fd);
		return -EPERM;
	}
	return 0;
}

int tp_cmd_serve(int argc, char **argv)
{
	struct serve_args a = { 0 };
	const struct tp_backend_type *type;
	struct tp_backend *be;
	struct sigaction sa = { .sa_handler = on_signal };
	int rc = parse_args(argc, argv, &a);

	if (rc)
		return rc < 0 ? 0 : rc;
	type = tp_backend_find(a.backend);
	if (!type) {
		fprintf(stderr, "thunderpass serve: unknown backend '%s'\n", a.backend);
		return 2;
	}
	/* Before the socket exists: whoever sees it may stop us at once, and a
	 * stop must still end cleanly (socket removed, device reset). */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = type->create(a.opts, a.nopts, &be);
	if (rc)
		return rc == -EINVAL ? 2 : 1;
	a.sopts.socket_path = a.socket;
	a.sopts.backend = be;
	rc = tp_server_create(&a.sopts, &running);
	if (rc)
		return 1;
	/* The companion's thread starts before confinement, which covers it. */
	if (a.pvdma_socket && tp_serve_pvdma_start(running, a.pvdma_socket, &a.sopts,
						    a.pvdma_opts, a.npvdma, &companion)) {
		tp_server_destroy(running);
		return 1;
	}
	if (stop_asked) {
		/* It came while they were being made: run ends at once. */
		tp_server_stop(running);
		tp_serve_pvdma_stop(companion);
	}
	if (confine(&a, type)) {
		tp_serve_pvdma_end(companion);
		tp_server_destroy(running);
		return 1;
	}
	rc = tp_server_run(running);
	tp_serve_pvdma_end(companion); /* before the device it maps into goes */
	companion = NULL;
	tp_server_destroy(running);
	running = NULL;
	return rc ? 1 : 0;
}
