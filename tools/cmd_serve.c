/* SPDX-License-Identifier: MIT */
/* thunderpass serve: one device on one socket until SIGINT/SIGTERM. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <thunderpass/backend.h>
#include <thunderpass/log.h>
#include <thunderpass/server.h>

#include "commands.h"

#define MAX_OPTS 32

static struct tp_server *running;

static void on_signal(int sig)
{
	(void)sig;
	if (running)
		tp_server_stop(running);
}

static void serve_usage(FILE *f)
{
	const struct tp_backend_type *const *t = tp_backend_types();

	fprintf(f,
		"usage: thunderpass serve --socket PATH [--backend NAME] [-o KEY=VALUE]...\n"
		"                         [--socket-mode MODE] [--allow-uid UID] [--once]\n"
		"                         [--iommu identity|dart] [--log-level error|warn|info|debug]\n\n"
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
		"  --log-level LEVEL  default info\n\nbackends:\n");
	for (; *t; t++)
		fprintf(f, "  %-8s %s\n", (*t)->name, (*t)->help);
}

struct serve_args {
	const char *socket, *backend;
	struct tp_backend_opt opts[MAX_OPTS];
	size_t nopts;
	struct tp_server_opts sopts;
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
	rc = type->create(a.opts, a.nopts, &be);
	if (rc)
		return rc == -EINVAL ? 2 : 1;
	a.sopts.socket_path = a.socket;
	a.sopts.backend = be;
	rc = tp_server_create(&a.sopts, &running);
	if (rc)
		return 1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = tp_server_run(running);
	tp_server_destroy(running);
	running = NULL;
	return rc ? 1 : 0;
}
