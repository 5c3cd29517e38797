/* SPDX-License-Identifier: MIT */
/*
 * Interrupts: the client's eventfds per index (INTx, MSI, MSI-X, ERR, REQ)
 * from DEVICE_SET_IRQS, and the routing of a device vector to whichever of
 * MSI-X, MSI or INTx the guest enabled. INTx is a level: while asserted and
 * unmasked it fires once and masks itself (VFIO's "automasked"); the client's
 * UNMASK (sent when the guest EOIs) fires again if the level is still up, so
 * no interrupt is lost.
 *
 * SET_IRQS validation follows kernel VFIO (vfio_set_irqs_validate_and_prepare).
 * Raising is thread-safe (a mutex; eventfd writes do not block).
 *
 * Errors: -errno, logged here with the device name.
 */
#ifndef TP_IRQ_H
#define TP_IRQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <thunderpass/protocol.h>

#define TP_IRQ_MAX_VECTORS 2048

struct tp_irq_index {
	uint32_t count; /* vectors the device has */
	int *fds;       /* per vector, -1 when none */
	uint32_t live;  /* vectors with an fd */
	uint64_t raised;
	uint64_t *vraised; /* per vector, for `thunderpass stats` (INTx: [0]) */
};

struct tp_irqs {
	const char *who;
	pthread_mutex_t lock;
	struct tp_irq_index idx[TP_IRQ_INDEX_COUNT];
	bool intx_level;   /* device asserts INTx */
	bool intx_masked;  /* fired and not yet unmasked by the client */
	uint64_t dropped;  /* vectors raised with nowhere to go */
};

int tp_irqs_init(struct tp_irqs *q, const char *who, const uint32_t count[TP_IRQ_INDEX_COUNT]);
void tp_irqs_destroy(struct tp_irqs *q);
/* Closes every eventfd (client gone, or reset by the core). */
void tp_irqs_clear(struct tp_irqs *q);

/*
 * DEVICE_SET_IRQS. data/len: the bytes after the fixed struct (DATA_BOOL).
 * Takes ownership of fds in every case.
 */
int tp_irqs_set(struct tp_irqs *q, const struct tp_vu_irq_set *s, const uint8_t *data,
		uint32_t len, int *fds, unsigned nfds);
uint32_t tp_irqs_info_flags(uint32_t index);

/* An edge on a device vector: to MSI-X if the client gave MSI-X eventfds,
 * else to MSI; ignored under INTx (the level below is what INTx carries). */
void tp_irqs_raise(struct tp_irqs *q, uint32_t vector);
/* The device's INTx level. */
void tp_irqs_intx(struct tp_irqs *q, int level);

/*
 * Stats (lib/control.c): copies index's per-vector raise counts into raised
 * (at most n of them), *live the vectors with an eventfd; returns the number
 * of vectors the index has. Thread-safe. reset_stats zeroes every raise
 * counter and the dropped count (a new session).
 */
uint32_t tp_irqs_stats(struct tp_irqs *q, uint32_t index, uint64_t *raised, uint32_t n,
		       uint32_t *live);
void tp_irqs_reset_stats(struct tp_irqs *q);

#endif
