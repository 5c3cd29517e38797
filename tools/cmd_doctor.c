/* SPDX-License-Identifier: MIT */
/*
 * thunderpass doctor: runs the passthrough stages (lib/doctor.c) and prints
 * them for a person (one block per stage) or as one JSON document (--json,
 * schema "thunderpass-doctor/1" in docs/doctor.md). Exit 0 when no stage
 * failed, 1 when one did, 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <thunderpass/log.h>

#include "commands.h"
#include "doctor.h"

#define MAX_OPTS 32
#define WRAP 100

struct doctor_out {
	bool json;
	json_object *stages;
	unsigned count[4];
};

static void doctor_usage(FILE *f)
{
	fprintf(f,
		"usage: thunderpass doctor [--backend NAME] [--device ID] [--json]\n"
		"                          [--qemu PATH] [-o KEY=VALUE]... [--model-fault NAME]\n\n"
		"Checks each stage of passthrough in order and says which one is failing, and\n"
		"why: host, identity, link, bars, reset, dma-irq, qemu. Each is ok, warn, fail\n"
		"or skip, with what was seen and what to do. Exit 0: nothing failed; 1: a stage\n"
		"failed; 2: bad usage.\n\n"
		"  --backend NAME      %s (default model)\n"
		"  --device ID         vfio: the PCI address (0000:01:00.0); model, proxy: a name\n"
		"  --json              one JSON document (docs/doctor.md has the schema)\n"
		"  --qemu PATH         the QEMU to check (default: qemu-system-<host arch>, then\n"
		"                      the other architecture, from PATH)\n"
		"  -o KEY=VALUE        a backend option, as for `serve` (repeatable)\n"
		"  --model-fault NAME  give the model a fault (same as -o fault=NAME): off-bus,\n"
		"                      bars-unassigned, link-x1-gen1, dma-broken, no-irq,\n"
		"                      no-flr-return\n"
		"  --irq-timeout MS    how long the DMA test waits for an interrupt (default\n"
		"                      2000)\n"
		"  --sysfs DIR         sysfs root for the host checks (default /sys; for tests)\n"
		"  --log-level LEVEL   default warn\n",
		tp_doctor_backend_names());
}

/* Prints text wrapped at WRAP columns: the first line after lead (which ends
 * in a blank), the others indented by indent. */
static void wrapped(const char *lead, unsigned indent, const char *text)
{
	unsigned col = (unsigned)printf("%s", lead);
	bool line_start = true;

	while (*text) {
		size_t word = strcspn(text, " ");

		if (!line_start && col + 1 + word > WRAP) {
			printf("\n%*s", (int)indent, "");
			col = indent;
			line_start = true;
		}
		if (!line_start) {
			putchar(' ');
			col++;
		}
		printf("%.*s", (int)word, text);
		col += (unsigned)word;
		line_start = false;
		text += word;
		while (*text == ' ')
			text++;
	}
	putchar('\n');
}

static json_object *fact_json(const struct tp_doctor_fact *f)
{
	switch (f->kind) {
	case TP_FACT_INT: return json_object_new_int64(f->num);
	case TP_FACT_BOOL: return json_object_new_boolean(f->num != 0);
	default: return json_object_new_string(f->str);
	}
}

static void report(void *ctx, const struct tp_doctor_result *r)
{
	static const char *const tags[] = { "OK", "WARN", "FAIL", "SKIP" };
	struct doctor_out *out = ctx;
	json_object *o, *facts;
	char lead[64];

	out->count[r->status]++;
	if (!out->json) {
		snprintf(lead, sizeof(lead), "%-9s %-5s ", r->stage, tags[r->status]);
		wrapped(lead, 16, r->seen);
		wrapped("                advice: ", 24, r->advice);
		if (r->not_checked[0])
			wrapped("                not checked: ", 29, r->not_checked);
		fflush(stdout); /* in step with what the backend logs on stderr */
		return;
	}
	o = json_object_new_object();
	facts = json_object_new_object();
	json_object_object_add(o, "stage", json_object_new_string(r->stage));
	json_object_object_add(o, "title", json_object_new_string(r->title));
	json_object_object_add(o, "status",
			       json_object_new_string(tp_doctor_status_name(r->status)));
	json_object_object_add(o, "seen", json_object_new_string(r->seen));
	json_object_object_add(o, "advice", json_object_new_string(r->advice));
	json_object_object_add(o, "not_checked", json_object_new_string(r->not_checked));
	for (unsigned i = 0; i < r->nfacts; i++)
		json_object_object_add(facts, r->facts[i].key, fact_json(&r->facts[i]));
	json_object_object_add(o, "facts", facts);
	json_object_array_add(out->stages, o);
}

struct doctor_args {
	struct tp_doctor_opts o;
	struct tp_backend_opt opts[MAX_OPTS + 1];
	const char *fault;
	bool json;
};

static int add_opt(struct doctor_args *a, char *kv)
{
	char *eq = strchr(kv, '=');

	if (!eq || eq == kv || a->o.nopts == MAX_OPTS) {
		fprintf(stderr, "thunderpass doctor: -o wants KEY=VALUE, got '%s'\n", kv);
		return -EINVAL;
	}
	*eq = '\0';
	a->opts[a->o.nopts++] = (struct tp_backend_opt){ kv, eq + 1 };
	return 0;
}

/* 0 to go on, -1 after --help, or the exit status 2. */
static int parse(int argc, char **argv, struct doctor_args *a)
{
	static const struct option longopts[] = {
		{ "backend", required_argument, NULL, 'b' },
		{ "device", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "qemu", required_argument, NULL, 'q' },
		{ "opt", required_argument, NULL, 'o' },
		{ "model-fault", required_argument, NULL, 'f' },
		{ "irq-timeout", required_argument, NULL, 't' },
		{ "sysfs", required_argument, NULL, 's' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum tp_log_level level;
	char *end;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b': a->o.backend = optarg; break;
		case 'd': a->o.device = optarg; break;
		case 'j': a->json = true; break;
		case 'q': a->o.qemu = optarg; break;
		case 'o':
			if (add_opt(a, optarg))
				return 2;
			break;
		case 'f': a->fault = optarg; break;
		case 't':
			a->o.irq_timeout_ms = (unsigned)strtoul(optarg, &end, 10);
			if (*end || !*optarg || !a->o.irq_timeout_ms ||
			    a->o.irq_timeout_ms > 60000) {
				fprintf(stderr,
					"thunderpass doctor: --irq-timeout wants 1..60000 ms\n");
				return 2;
			}
			break;
		case 's': a->o.sysfs = optarg; break;
		case 'l':
			if (tp_log_parse_level(optarg, &level)) {
				fprintf(stderr, "thunderpass doctor: bad --log-level '%s'\n",
					optarg);
				return 2;
			}
			tp_log_set_level(level);
			break;
		case 'h': doctor_usage(stdout); return -1;
		default: doctor_usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "thunderpass doctor: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!a->o.backend)
		a->o.backend = "model";
	if (!tp_doctor_backend_known(a->o.backend)) {
		fprintf(stderr, "thunderpass doctor: unknown backend '%s' (known: %s)\n",
			a->o.backend, tp_doctor_backend_names());
		return 2;
	}
	if (a->fault) {
		if (strcmp(a->o.backend, "model")) {
			fprintf(stderr,
				"thunderpass doctor: --model-fault needs --backend model\n");
			return 2;
		}
		for (size_t i = 0; i < a->o.nopts; i++) {
			if (!strcmp(a->opts[i].key, "fault")) {
				fprintf(stderr, "thunderpass doctor: --model-fault and -o fault= "
						"both given\n");
				return 2;
			}
		}
		a->opts[a->o.nopts++] = (struct tp_backend_opt){ "fault", a->fault };
	}
	a->o.opts = a->opts;
	return 0;
}

static const char *worst(const struct doctor_out *out)
{
	return out->count[TP_DOCTOR_FAIL] ? "fail" : out->count[TP_DOCTOR_WARN] ? "warn" : "ok";
}

int tp_cmd_doctor(int argc, char **argv)
{
	struct doctor_args a;
	struct doctor_out out = { 0 };
	json_object *doc = NULL;
	int rc, status;

	memset(&a, 0, sizeof(a));
	/* Doctor reports; the core's info lines would only get in the way. */
	tp_log_set_level(TP_LOG_WARN);
	rc = parse(argc, argv, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	out.json = a.json;
	if (a.json)
		out.stages = json_object_new_array();
	else
		printf("thunderpass doctor %s: backend %s%s%s\n\n", TP_VERSION, a.o.backend,
		       a.o.device ? ", device " : "", a.o.device ? a.o.device : "");
	fflush(stdout);
	rc = tp_doctor_run(&a.o, report, &out);
	status = rc < 0 ? 2 : rc > 0 ? 1 : 0;
	if (rc == -ENOMEM)
		status = 1;
	if (a.json) {
		json_object *sum = json_object_new_object();

		doc = json_object_new_object();
		json_object_object_add(doc, "schema",
				       json_object_new_string("thunderpass-doctor/1"));
		json_object_object_add(doc, "version", json_object_new_string(TP_VERSION));
		json_object_object_add(doc, "backend", json_object_new_string(a.o.backend));
		json_object_object_add(doc, "device",
				       a.o.device ? json_object_new_string(a.o.device) : NULL);
		json_object_object_add(doc, "result", json_object_new_string(worst(&out)));
		json_object_object_add(doc, "exit", json_object_new_int(status));
		for (int s = 0; s < 4; s++)
			json_object_object_add(sum, tp_doctor_status_name(s),
					       json_object_new_int((int)out.count[s]));
		json_object_object_add(doc, "summary", sum);
		json_object_object_add(doc, "stages", out.stages);
		printf("%s\n",
		       json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
								   JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(doc);
	} else {
		printf("\nsummary: %u ok, %u warn, %u fail, %u skipped: %s\n",
		       out.count[TP_DOCTOR_OK], out.count[TP_DOCTOR_WARN],
		       out.count[TP_DOCTOR_FAIL], out.count[TP_DOCTOR_SKIP],
		       status == 2 ? "bad usage (see the messages above)"
		       : status	   ? "a stage failed: start with the first FAIL above"
		       : out.count[TP_DOCTOR_WARN] ? "nothing failed; read the warnings"
						   : "nothing failed");
	}
	if (rc == -EINVAL && !out.count[0] && !out.count[1] && !out.count[2] && !out.count[3])
		fprintf(stderr, "thunderpass doctor: unknown backend '%s'\n", a.o.backend);
	return status;
}
