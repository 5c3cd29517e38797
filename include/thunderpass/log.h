/* SPDX-License-Identifier: MIT */
/*
 * Logging. One rule for the whole project: an error is logged once, where it
 * is decided, prefixed with the name of the device (or subsystem) it concerns;
 * callers that only pass the -errno up do not log it again.
 *
 * Messages go to stderr as "thunderpass: <level>: <who>: <text>".
 */
#ifndef THUNDERPASS_LOG_H
#define THUNDERPASS_LOG_H

enum tp_log_level {
	TP_LOG_ERROR = 0,
	TP_LOG_WARN = 1,
	TP_LOG_INFO = 2,
	TP_LOG_DEBUG = 3,
};

void tp_log_set_level(enum tp_log_level level);
enum tp_log_level tp_log_get_level(void);
/* Parses "error", "warn", "info" or "debug"; returns -EINVAL otherwise. */
int tp_log_parse_level(const char *name, enum tp_log_level *out);

void tp_log(enum tp_log_level level, const char *who, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define tp_err(who, ...) tp_log(TP_LOG_ERROR, who, __VA_ARGS__)
#define tp_warn(who, ...) tp_log(TP_LOG_WARN, who, __VA_ARGS__)
#define tp_info(who, ...) tp_log(TP_LOG_INFO, who, __VA_ARGS__)
#define tp_dbg(who, ...)                                  \
	do {                                              \
		if (tp_log_get_level() >= TP_LOG_DEBUG)   \
			tp_log(TP_LOG_DEBUG, who, __VA_ARGS__); \
	} while (0)

#endif
