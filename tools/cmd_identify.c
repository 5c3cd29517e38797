/* SPDX-License-Identifier: MIT */
/*
 * thunderpass identify [--device ID] BOOT0 [BOOT42]
 *
 * Decodes register values someone already read (from a dump, a log, or
 * `setpci`/devmem by hand), so it needs no device and no privileges.
 * Exit: 0 a known chip; 1 the values say the device is unhealthy or name no
 * chip we know; 2 bad usage.
 */
#include "commands.h"

#include "thunderpass/identify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDENTIFY_EXIT_OK	0
#define IDENTIFY_EXIT_BAD	1
#define IDENTIFY_EXIT_USAGE	2

static void identify_usage(FILE *f)
{
	fputs("usage: thunderpass identify [--device ID] BOOT0 [BOOT42]\n"
	      "\n"
	      "Decode an NVIDIA GPU's identity registers (values in hex, 0x optional).\n"
	      "  BOOT0        PMC_BOOT_0, BAR0 + 0x0\n"
	      "  BOOT42       PMC_BOOT_42, BAR0 + 0xa00; wins where the two disagree\n"
	      "  --device ID  PCI device id (hex), for the board's marketing name\n"
	      "  --help       this text\n"
	      "\n"
	      "exit status: 0 known chip, 1 device not healthy or unknown, 2 usage\n",
	      f);
}

/* Strict hex: optional 0x, at least one digit, nothing after, fits in max. */
static int identify_parse_hex(const char *s, uint32_t max, uint32_t *out)
{
	const char *p = s;
	char *end;
	unsigned long long v;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	/* strtoull would take a sign, spaces or a second 0x: refuse them here. */
	if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
	      (*p >= 'A' && *p <= 'F')))
		return -EINVAL;
	errno = 0;
	v = strtoull(p, &end, 16);
	if (errno || *end != '\0' || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

__attribute__((format(printf, 1, 2)))
static int identify_bad_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("thunderpass identify: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	identify_usage(stderr);
	return IDENTIFY_EXIT_USAGE;
}

int tp_cmd_identify(int argc, char **argv)
{
	const char *pos[2];
	int npos = 0;
	uint32_t device = 0, boot0 = 0, boot42 = 0;
	struct tp_nv_ident id, id0;
	char line[256];
	int i, opts_done = 0;

	/* Hand-rolled: main may already have run getopt over the global options. */
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;

		if (!opts_done && strcmp(a, "--") == 0) {
			opts_done = 1;
			continue;
		}
		if (!opts_done && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
			identify_usage(stdout);
			return IDENTIFY_EXIT_OK;
		}
		if (!opts_done && strcmp(a, "--device") == 0) {
			if (i + 1 >= argc)
				return identify_bad_usage("--device needs a value");
			val = argv[++i];
		} else if (!opts_done && strncmp(a, "--device=", 9) == 0) {
			val = a + 9;
		} else if (!opts_done && a[0] == '-' && a[1] != '\0') {
			return identify_bad_usage("unknown option '%s'", a);
		} else {
			if (npos == 2)
				return identify_bad_usage("unexpected argument '%s'", a);
			pos[npos++] = a;
			continue;
		}
		if (identify_parse_hex(val, 0xffff, &device))
			return identify_bad_usage("--device: '%s' is not a hex PCI device id", val);
	}

	if (npos == 0)
		return identify_bad_usage("missing BOOT0");
	if (identify_parse_hex(pos[0], 0xffffffffu, &boot0))
		return identify_bad_usage("BOOT0: '%s' is not a 32-bit hex value", pos[0]);
	if (npos == 2 && identify_parse_hex(pos[1], 0xffffffffu, &boot42))
		return identify_bad_usage("BOOT42: '%s' is not a 32-bit hex value", pos[1]);

	if (tp_nv_identify(boot0, boot42, (uint16_t)device, &id))
		return IDENTIFY_EXIT_USAGE;	/* cannot happen: id is not NULL */
	/* A cut-short line is still worth printing; the buffer is ample anyway. */
	(void)tp_nv_describe(&id, line, sizeof(line));
	puts(line);

	/*
	 * BOOT_42 won; say so when BOOT_0 alone would have named another chip,
	 * since that points at a wrong dump or a chip the tables misfile.
	 */
	if (id.state == TP_NV_OK && boot42 != 0 && boot0 != 0 &&
	    tp_nv_identify(boot0, 0, 0, &id0) == 0 && id0.state != TP_NV_OFF_BUS &&
	    id0.state != TP_NV_BUS_ERROR && id0.chipset != id.chipset)
		printf("note: BOOT_0 0x%08x names chipset 0x%03x%s%s; using BOOT_42\n",
		       (unsigned int)boot0, (unsigned int)id0.chipset,
		       id0.chip[0] ? " " : "", id0.chip);

	return id.state == TP_NV_OK ? IDENTIFY_EXIT_OK : IDENTIFY_EXIT_BAD;
}
