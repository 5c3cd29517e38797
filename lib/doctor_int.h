/* SPDX-License-Identifier: MIT */
/*
 * Inside the doctor (doctor.c, doctor_pci.c, doctor_backends.c,
 * doctor_qemu.c): the state the stages share and the per-backend hooks.
 */
#ifndef TP_DOCTOR_INT_H
#define TP_DOCTOR_INT_H

#include "device.h"
#include "doctor.h"

struct tp_doctor;

/*
 * What a backend contributes. host creates d->be when the device can be
 * reached (or leaves it NULL and says why); dma_irq runs an end-to-end test
 * (NULL: the backend cannot without a guest driver, and dma_irq_none says
 * what it can and cannot check).
 */
struct tp_doctor_backend {
	const char *name;
	void (*host)(struct tp_doctor *d, struct tp_doctor_result *r);
	void (*dma_irq)(struct tp_doctor *d, struct tp_doctor_result *r);
	const char *dma_irq_none;
	const char *reset_method; /* what the backend's reset op does */
	bool reset_test;	  /* doctor may reset the device to see it come back */
	/* 1: behind Thunderbolt, 0: not, -1: cannot tell. */
	int (*behind_thunderbolt)(struct tp_doctor *d);
	/* VRAM bytes if the backend knows them, else 0. */
	uint64_t (*vram_size)(struct tp_doctor *d);
};

struct tp_doctor {
	const struct tp_doctor_opts *o;
	const struct tp_doctor_backend *hooks;
	struct tp_backend *be; /* the device, once the host stage reached it */
	bool usage_error;      /* the backend refused its options */
	bool dev_opened;       /* tp_device_open was called: dev owns be */
	bool dev_ok;	       /* ... and succeeded */
	struct tp_device dev;

	/* Raw config space of the function, read by identity (and after reset). */
	uint8_t cfg[4096];
	uint32_t cfg_size;
	bool have_cfg;
	uint16_t vendor, device;
	uint16_t chipset;      /* NVIDIA, from PMC_BOOT_42; 0 unknown */
	uint8_t cap_pcie;      /* offset of the PCIe capability, 0 none */
	bool bars_unassigned;  /* a memory BAR has no address */
	const char *dead;      /* why the device cannot be talked to; NULL: it answers */
	const char *mmio_dead; /* why BAR0 cannot be used (config may still answer) */
	char dead_buf[160];
};

/* Result helpers: printf-style; seen/advice replace, unchecked appends. */
void tp_doc_status(struct tp_doctor_result *r, enum tp_doctor_status s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void tp_doc_seen_add(struct tp_doctor_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void tp_doc_advice(struct tp_doctor_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void tp_doc_unchecked(struct tp_doctor_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void tp_doc_fact_int(struct tp_doctor_result *r, const char *key, int64_t v);
void tp_doc_fact_bool(struct tp_doctor_result *r, const char *key, bool v);
void tp_doc_fact_str(struct tp_doctor_result *r, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Worse of the current status and s (ok < warn < fail). */
void tp_doc_worsen(struct tp_doctor_result *r, enum tp_doctor_status s);

/* false (and the stage skipped, saying why) when the device cannot be asked:
 * no backend, not answering, or (need_cfg) its config space not read. */
bool tp_doc_need_device(struct tp_doctor *d, struct tp_doctor_result *r, bool need_cfg);

/* Config space helpers over d->cfg (little-endian, bounds-checked: 0 past it). */
uint32_t tp_doc_cfg(const struct tp_doctor *d, uint32_t off, unsigned len);
/* Offset of standard capability id, 0 if absent; of extended id, 0 if absent. */
uint32_t tp_doc_find_cap(const struct tp_doctor *d, uint8_t id);
uint32_t tp_doc_find_ecap(const struct tp_doctor *d, uint16_t id);
/* Reads the function's config space into d->cfg through the backend. */
int tp_doc_load_cfg(struct tp_doctor *d);

/* doctor_pci.c */
void tp_doctor_link(struct tp_doctor *d, struct tp_doctor_result *r);
void tp_doctor_bars(struct tp_doctor *d, struct tp_doctor_result *r);

/* doctor_ce.c: DMA and interrupts through the thunderpass copy engine. */
void tp_doctor_ce_test(struct tp_doctor *d, struct tp_doctor_result *r);

/* doctor_backends.c */
const struct tp_doctor_backend *tp_doctor_hooks(const char *name);

/* doctor_qemu.c */
void tp_doctor_qemu(struct tp_doctor *d, struct tp_doctor_result *r);

#endif
