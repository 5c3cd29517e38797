/* SPDX-License-Identifier: MIT */
/*
 * thunderpass doctor: the stages of passthrough, checked in order, each
 * reported as ok / warn / fail / skip with what was seen and one sentence of
 * advice, so that a user never has to guess which stage broke.
 *
 *   host      the device exists and the backend can hold it
 *   identity  vendor:device, class; NVIDIA PMC_BOOT_0/BOOT_42 decoded;
 *             off the bus (all-ones) and unassigned BARs recognised
 *   link      PCIe link speed and width against what the device supports
 *   bars      sizes, types, direct-mapped or trapped and why; Resizable BAR
 *   reset     the method and the quirk behind it; the device comes back
 *   dma-irq   DMA and interrupts end to end, where the backend can do it
 *             without a guest driver
 *   qemu      a QEMU >= 10.1 with vfio-user-pci
 *
 * The generic stages (identity, link, bars, reset) talk to the device only
 * through the backend ops, so every backend gets them; the host and dma-irq
 * stages are per-backend hooks (doctor_backends.c). A stage that cannot check
 * something says so in not_checked. docs/doctor.md has the JSON schema.
 *
 * Errors: -errno; the doctor logs nothing itself (it reports), the backend
 * and the core log their own failures.
 */
#ifndef TP_DOCTOR_H
#define TP_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <thunderpass/backend.h>

enum tp_doctor_status {
	TP_DOCTOR_OK = 0,
	TP_DOCTOR_WARN,
	TP_DOCTOR_FAIL,
	TP_DOCTOR_SKIP, /* not run: something before it failed, or the backend cannot */
};

enum tp_doctor_fact_kind { TP_FACT_STR, TP_FACT_INT, TP_FACT_BOOL };

struct tp_doctor_fact {
	const char *key; /* a string literal: documented per stage */
	enum tp_doctor_fact_kind kind;
	int64_t num;  /* INT, BOOL */
	char str[96]; /* STR */
};

#define TP_DOCTOR_TEXT 768
#define TP_DOCTOR_MAX_FACTS 32
#define TP_DOCTOR_STAGES 7

struct tp_doctor_result {
	const char *stage; /* "host", "identity", ... (stable ids) */
	const char *title; /* "Host", "DMA and interrupts", ... */
	enum tp_doctor_status status;
	char seen[TP_DOCTOR_TEXT];	  /* what was seen, never empty */
	char advice[TP_DOCTOR_TEXT];	  /* one sentence, never empty */
	char not_checked[TP_DOCTOR_TEXT]; /* what this stage could not check, or "" */
	unsigned nfacts;
	struct tp_doctor_fact facts[TP_DOCTOR_MAX_FACTS];
};

struct tp_doctor_opts {
	const char *backend; /* NULL: "model" */
	const char *device;  /* NULL: the backend's default (model: model0) */
	const struct tp_backend_opt *opts;
	size_t nopts;
	const char *qemu;	 /* a path or a name in PATH; NULL: search PATH */
	unsigned irq_timeout_ms; /* dma-irq: wait this long for an interrupt; 0: 2000 */
	const char *sysfs;	 /* Linux sysfs root for the host checks; NULL: /sys (tests) */
};

typedef void (*tp_doctor_report_fn)(void *ctx, const struct tp_doctor_result *r);

/*
 * Runs every stage in order, calling report after each (always all of them).
 * Returns the number of stages that failed, or -EINVAL when the backend is
 * unknown (nothing reported) or refused its options (stages reported).
 */
int tp_doctor_run(const struct tp_doctor_opts *o, tp_doctor_report_fn report, void *ctx);

const char *tp_doctor_status_name(enum tp_doctor_status s);
/* The backends doctor knows, built or planned: "model, vfio, proxy, darwin". */
const char *tp_doctor_backend_names(void);
bool tp_doctor_backend_known(const char *name);

#endif
