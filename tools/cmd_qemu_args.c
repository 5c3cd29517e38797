/* SPDX-License-Identifier: MIT */
/*
 * thunderpass qemu-args: the QEMU options that work with this server, so no
 * user has to rediscover them: guest RAM shared with the server (memfd,
 * share=on: without it the device cannot reach guest memory), the device
 * behind a PCIe root port (an endpoint on the root bus would lose its link
 * registers) and the JSON-only -device syntax of vfio-user-pci.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "util.h"

enum out_format { FORMAT_SHELL, FORMAT_LINES };

static void qa_usage(FILE *f)
{
	fprintf(f, "usage: thunderpass qemu-args --socket PATH [--arch aarch64|x86_64]\n"
		   "                             [--mem SIZE] [--format shell|lines]\n"
		   "                             [--pvdma-socket PATH]\n\n"
		   "Prints the QEMU options for a guest that uses the device served on PATH.\n"
		   "  --pvdma-socket PATH  the pvdma companion served on PATH too (serve\n"
		   "               --pvdma-socket): in the device's slot as function 1, the\n"
		   "               device as function 0 (multifunction=on)\n"
		   "  --mem SIZE   guest RAM (default 1G); it is shared with the server\n"
		   "  --format     shell: one line, quoted for a shell (default);\n"
		   "               lines: one argument per line, for scripts\n");
}

static void emit(enum out_format fmt, const char *arg)
{
	if (fmt == FORMAT_LINES) {
		printf("%s\n", arg);
		return;
	}
	/* Single-quote anything a shell would touch. */
	if (strpbrk(arg, " \t\"'{}$\\*?[]();&|<>`!#~")) {
		putchar('\'');
		for (const char *p = arg; *p; p++)
			*p == '\'' ? fputs("'\\''", stdout) : putchar(*p);
		putchar('\'');
	} else {
		fputs(arg, stdout);
	}
	putchar(' ');
}

static int json_path_ok(const char *p)
{
	for (; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
			return 0;
	return 1;
}

int tp_cmd_qemu_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' }, { "arch", required_argument, NULL, 'a' },
		{ "mem", required_argument, NULL, 'm' },    { "format", required_argument, NULL, 'f' },
		{ "pvdma-socket", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
	};
	const char *sock = NULL, *arch = "x86_64", *mem = "1G", *pvdma = NULL;
	enum out_format fmt = FORMAT_SHELL;
	char buf[4096];
	uint64_t bytes;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': sock = optarg; break;
		case 'a': arch = optarg; break;
		case 'm': mem = optarg; break;
		case 'P': pvdma = optarg; break;
		case 'f':
			if (!strcmp(optarg, "lines"))
				fmt = FORMAT_LINES;
			else if (strcmp(optarg, "shell")) {
				fprintf(stderr, "thunderpass qemu-args: bad --format '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h': qa_usage(stdout); return 0;
		default: qa_usage(stderr); return 2;
		}
	}
	if (!sock || optind < argc) {
		qa_usage(stderr);
		return 2;
	}
	if (strcmp(arch, "x86_64") && strcmp(arch, "aarch64")) {
		fprintf(stderr, "thunderpass qemu-args: --arch must be x86_64 or aarch64\n");
		return 2;
	}
	if (tp_parse_size(mem, &bytes) || bytes < (64u << 20) || (bytes & ((1u << 20) - 1))) {
		fprintf(stderr, "thunderpass qemu-args: --mem wants a size in MiB, 64M or more\n");
		return 2;
	}
	if (!json_path_ok(sock) || (pvdma && !json_path_ok(pvdma))) {
		fprintf(stderr, "thunderpass qemu-args: the socket path has characters JSON "
				"would need escaped; use a plainer path\n");
		return 2;
	}
	snprintf(buf, sizeof(buf), "%" PRIu64 "M", bytes >> 20);
	emit(fmt, "-m");
	emit(fmt, buf);
	snprintf(buf, sizeof(buf), "memory-backend-memfd,id=tp-mem,size=%" PRIu64 "M,share=on",
		 bytes >> 20);
	emit(fmt, "-object");
	emit(fmt, buf);
	emit(fmt, "-machine");
	emit(fmt, "memory-backend=tp-mem");
	emit(fmt, "-device");
	emit(fmt, "pcie-root-port,id=tp-rp0,chassis=1,slot=1");
	/* With the pvdma companion: one slot, the device as function 0 (so
	 * the guest module finds it at MANAGED_DEVFN 0), the companion as 1. */
	snprintf(buf, sizeof(buf),
		 "{\"driver\":\"vfio-user-pci\",\"bus\":\"tp-rp0\",%s"
		 "\"socket\":{\"type\":\"unix\",\"path\":\"%s\"}}",
		 pvdma ? "\"addr\":\"0.0\",\"multifunction\":true," : "", sock);
	emit(fmt, "-device");
	emit(fmt, buf);
	if (pvdma) {
		snprintf(buf, sizeof(buf),
			 "{\"driver\":\"vfio-user-pci\",\"bus\":\"tp-rp0\",\"addr\":\"0.1\","
			 "\"socket\":{\"type\":\"unix\",\"path\":\"%s\"}}",
			 pvdma);
		emit(fmt, "-device");
		emit(fmt, buf);
	}
	if (fmt == FORMAT_SHELL)
		putchar('\n');
	return 0;
}
