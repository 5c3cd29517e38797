/* SPDX-License-Identifier: MIT */
/* thunderpass: the command-line entry point, a table of subcommands. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct subcommand subcommands[] = {
	{ "serve", tp_cmd_serve, "serve a device to one vfio-user client (QEMU) on a socket" },
	{ "qemu-args", tp_cmd_qemu_args, "print the QEMU options that work with a server" },
	{ "identify", tp_cmd_identify, "decode NVIDIA PMC_BOOT_0 / PMC_BOOT_42 values" },
	{ "doctor", tp_cmd_doctor, "check each stage of passthrough and say which one fails" },
	{ "stats", tp_cmd_stats, "live counters of a running server (trapped accesses, DMA, irqs)" },
	{ "list", tp_cmd_list, "the host's PCI devices: IOMMU group, driver, can it be passed" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: thunderpass COMMAND [ARGS]\n\n"
		   "Hands a PCI device (above all a Thunderbolt eGPU) to a Linux VM run by\n"
		   "stock QEMU (-device vfio-user-pci).\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(f, "\n'thunderpass COMMAND --help' describes each one.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("thunderpass %s\n", TP_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "thunderpass: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
