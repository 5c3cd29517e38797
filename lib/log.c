/* SPDX-License-Identifier: MIT */
#include <thunderpass/log.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static enum tp_log_level log_level = TP_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void tp_log_set_level(enum tp_log_level level)
{
	log_level = level;
}

enum tp_log_level tp_log_get_level(void)
{
	return log_level;
}

int tp_log_parse_level(const char *name, enum tp_log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (name && strcmp(name, level_names[i]) == 0) {
			*out = (enum tp_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void tp_log(enum tp_log_level level, const char *who, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (level > log_level)
		return;
	n = snprintf(line, sizeof(line), "thunderpass: %s: %s: ", level_names[level],
		     who ? who : "-");
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One write per line, so lines from threads do not interleave. */
	fprintf(stderr, "%s\n", line);
}
