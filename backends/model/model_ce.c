/* SPDX-License-Identifier: MIT */
/*
 * The model's copy engine (docs/copy-engine.md): one job at a time, run on a
 * thread of its own so that a long copy never blocks the server's message
 * thread. All DMA goes through the core (tp_backend_dma): the IOMMU model and
 * the guest memory map decide what is reachable, and an unmap waits for the
 * chunk in flight, so the engine never touches memory that is gone.
 *
 * Locking: the registers and the hand-over to the worker are guarded by the
 * model lock (m->lock); the worker drops it while it copies.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <thunderpass/log.h>
#include <thunderpass/protocol.h>

#include "model.h"

#define CE_ID 0x54504345u /* "TPCE" */
#define CE_VERSION 1u
#define CE_CHUNK (1u << 20) /* bytes per DMA call: bounds how long an unmap waits */

enum {
	R_ID = 0x00, R_VERSION = 0x04,
	R_SRC_LO = 0x10, R_SRC_HI = 0x14, R_DST_LO = 0x18, R_DST_HI = 0x1c,
	R_LEN = 0x20, R_FLAGS = 0x24, R_FENCE_LO = 0x28, R_FENCE_HI = 0x2c,
	R_FENCE_VALUE = 0x30, R_DOORBELL = 0x40, R_STATUS = 0x44,
	R_INTR_STATUS = 0x48, R_INTR_ENABLE = 0x4c, R_COMPLETED = 0x50,
	R_FAULT_LO = 0x54, R_FAULT_HI = 0x58, R_VECTOR = 0x5c, R_DURATION = 0x60,
	R_FAULTS = 0x64,
};

#define F_SRC_VRAM 0x1u
#define F_DST_VRAM 0x2u
#define F_FENCE 0x10u
#define F_IRQ 0x20u
#define F_ALL (F_SRC_VRAM | F_DST_VRAM | F_FENCE | F_IRQ)

#define S_BUSY 0x1u
#define I_DONE 0x1u
#define I_ERROR 0x2u

enum ce_error {
	CE_OK = 0, CE_SRC_FAULT = 1, CE_DST_FAULT = 2, CE_VRAM_RANGE = 3,
	CE_BUSY = 4, CE_BAD_FLAGS = 5, CE_FENCE_FAULT = 6, CE_CANCELLED = 7,
};

static uint64_t ce_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void set_lo(uint64_t *v, uint32_t val, uint32_t mask)
{
	*v = (*v & ~(uint64_t)mask) | (val & mask);
}

static void set_hi(uint64_t *v, uint32_t val, uint32_t mask)
{
	*v = (*v & ~((uint64_t)mask << 32)) | ((uint64_t)(val & mask) << 32);
}

static void set32(uint32_t *v, uint32_t val, uint32_t mask)
{
	*v = (*v & ~mask) | (val & mask);
}

/* INTx follows status & enable, unless the command register disables it. */
void model_ce_update_intx(struct model *m)
{
	int level = (m->ce.intr_status & m->ce.intr_enable) &&
		    !(tp_le_get(m->cfg + 0x04, 2) & 0x0400) &&
		    m->fault != MODEL_FAULT_NO_IRQ; /* injected: no interrupt at all */

	if (level != m->ce.intx_level) {
		m->ce.intx_level = level;
		tp_backend_intx(&m->be, level);
	}
}

/* Lock held. A job may start only when its parameters make sense. */
static enum ce_error ce_check(const struct model *m, const struct model_ce_job *j)
{
	if ((j->flags & ~F_ALL) || j->vector >= MODEL_MSIX_VECTORS)
		return CE_BAD_FLAGS;
	if ((j->flags & F_SRC_VRAM) && !tp_range_ok(j->src, j->len, m->vram.size))
		return CE_VRAM_RANGE;
	if ((j->flags & F_DST_VRAM) && !tp_range_ok(j->dst, j->len, m->vram.size))
		return CE_VRAM_RANGE;
	return CE_OK;
}

/* Lock held: the job is over; report it, raise the interrupt. */
static void ce_finish(struct model *m, enum ce_error err, uint64_t fault, uint64_t ns)
{
	struct model_ce *ce = &m->ce;

	ce->status = (uint32_t)err << 8;
	ce->completed++;
	ce->duration_ns = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
	if (err == CE_SRC_FAULT || err == CE_DST_FAULT || err == CE_FENCE_FAULT) {
		ce->fault_addr = fault;
		ce->faults++;
	}
	if (err == CE_CANCELLED)
		return; /* nobody is left to tell */
	if (err != CE_OK)
		ce->intr_status |= I_ERROR;
	else if (ce->job.flags & F_IRQ)
		ce->intr_status |= I_DONE;
	if ((ce->intr_status & ce->intr_enable) && m->fault != MODEL_FAULT_NO_IRQ)
		tp_backend_irq(&m->be, ce->job.vector);
	model_ce_update_intx(m);
}

/* One side of a chunk: VRAM is ours, system memory goes through the core. */
static int ce_side(struct model *m, int vram, uint64_t addr, void *buf, uint64_t n, int write,
		   uint64_t *fault)
{
	if (vram) {
		if (write)
			memcpy(m->vram.map + addr, buf, n);
		else
			memcpy(buf, m->vram.map + addr, n);
		return 0;
	}
	return tp_backend_dma(&m->be, addr, buf, n, write, fault);
}

/* The copy itself, lock not held. Returns the error and the fault address. */
static enum ce_error ce_copy(struct model *m, const struct model_ce_job *j, uint64_t *fault)
{
	int src_vram = j->flags & F_SRC_VRAM, dst_vram = j->flags & F_DST_VRAM;

	/* Injected (model_fault.c): no DMA reaches system memory; the job
	 * faults where it would first have touched it. */
	if (m->fault == MODEL_FAULT_DMA_BROKEN) {
		if (j->len && !src_vram) {
			*fault = j->src;
			return CE_SRC_FAULT;
		}
		if (j->len && !dst_vram) {
			*fault = j->dst;
			return CE_DST_FAULT;
		}
		if (j->flags & F_FENCE) {
			*fault = j->fence;
			return CE_FENCE_FAULT;
		}
	}

	for (uint64_t done = 0; done < j->len;) {
		uint64_t n = j->len - done < CE_CHUNK ? j->len - done : CE_CHUNK;
		uint8_t *buf = m->ce.bounce;

		if (m->ce.cancel)
			return CE_CANCELLED;
		if (src_vram && dst_vram) {
			memmove(m->vram.map + j->dst + done, m->vram.map + j->src + done, n);
		} else if (src_vram) {
			/* Straight from VRAM into guest memory. */
			if (ce_side(m, 0, j->dst + done, m->vram.map + j->src + done, n, 1, fault))
				return CE_DST_FAULT;
		} else if (dst_vram) {
			if (ce_side(m, 0, j->src + done, m->vram.map + j->dst + done, n, 0, fault))
				return CE_SRC_FAULT;
		} else {
			if (ce_side(m, 0, j->src + done, buf, n, 0, fault))
				return CE_SRC_FAULT;
			if (ce_side(m, 0, j->dst + done, buf, n, 1, fault))
				return CE_DST_FAULT;
		}
		done += n;
	}
	if (j->flags & F_FENCE) {
		uint8_t v[4];

		tp_le_put(v, 4, j->fence_value);
		if (tp_backend_dma(&m->be, j->fence, v, 4, 1, fault))
			return CE_FENCE_FAULT;
	}
	return CE_OK;
}

static void *ce_worker(void *arg)
{
	struct model *m = arg;
	struct model_ce *ce = &m->ce;

	pthread_mutex_lock(&m->lock);
	for (;;) {
		struct model_ce_job j;
		uint64_t fault = 0, t0;
		enum ce_error err;

		while (!ce->pending && !ce->stop)
			pthread_cond_wait(&ce->kick, &m->lock);
		if (ce->stop)
			break;
		ce->pending = 0;
		ce->busy = 1;
		j = ce->job;
		pthread_mutex_unlock(&m->lock);

		t0 = ce_now_ns();
		err = ce_copy(m, &j, &fault);

		pthread_mutex_lock(&m->lock);
		ce->busy = 0;
		ce_finish(m, ce->cancel ? CE_CANCELLED : err, fault, ce_now_ns() - t0);
		pthread_cond_broadcast(&ce->idle);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* Lock held: the doorbell. */
static void ce_launch(struct model *m)
{
	struct model_ce *ce = &m->ce;
	enum ce_error err;

	if (ce->busy || ce->pending) {
		/* The running job goes on; this doorbell is dropped. */
		ce->status = (ce->status & S_BUSY) | (uint32_t)CE_BUSY << 8;
		return;
	}
	ce->job = ce->regs;
	err = ce_check(m, &ce->job);
	if (err != CE_OK) {
		ce_finish(m, err, 0, 0);
		return;
	}
	ce->cancel = 0;
	ce->pending = 1;
	pthread_cond_signal(&ce->kick);
}

uint32_t model_ce_read(const struct model *m, uint32_t reg)
{
	const struct model_ce *ce = &m->ce;

	switch (reg - MODEL_CE_BASE) {
	case R_ID: return CE_ID;
	case R_VERSION: return CE_VERSION;
	case R_SRC_LO: return (uint32_t)ce->regs.src;
	case R_SRC_HI: return (uint32_t)(ce->regs.src >> 32);
	case R_DST_LO: return (uint32_t)ce->regs.dst;
	case R_DST_HI: return (uint32_t)(ce->regs.dst >> 32);
	case R_LEN: return ce->regs.len;
	case R_FLAGS: return ce->regs.flags;
	case R_FENCE_LO: return (uint32_t)ce->regs.fence;
	case R_FENCE_HI: return (uint32_t)(ce->regs.fence >> 32);
	case R_FENCE_VALUE: return ce->regs.fence_value;
	case R_STATUS: return (ce->status & 0xff00u) | (ce->busy || ce->pending ? S_BUSY : 0);
	case R_INTR_STATUS: return ce->intr_status;
	case R_INTR_ENABLE: return ce->intr_enable;
	case R_COMPLETED: return ce->completed;
	case R_FAULT_LO: return (uint32_t)ce->fault_addr;
	case R_FAULT_HI: return (uint32_t)(ce->fault_addr >> 32);
	case R_VECTOR: return ce->regs.vector;
	case R_DURATION: return ce->duration_ns;
	case R_FAULTS: return ce->faults;
	default: return MODEL_BAR0_BADF;
	}
}

void model_ce_write(struct model *m, uint32_t reg, uint32_t val, uint32_t mask)
{
	struct model_ce *ce = &m->ce;

	switch (reg - MODEL_CE_BASE) {
	case R_SRC_LO: set_lo(&ce->regs.src, val, mask); break;
	case R_SRC_HI: set_hi(&ce->regs.src, val, mask); break;
	case R_DST_LO: set_lo(&ce->regs.dst, val, mask); break;
	case R_DST_HI: set_hi(&ce->regs.dst, val, mask); break;
	case R_LEN: set32(&ce->regs.len, val, mask); break;
	case R_FLAGS: set32(&ce->regs.flags, val, mask); break;
	case R_FENCE_LO: set_lo(&ce->regs.fence, val & ~3u, mask); break;
	case R_FENCE_HI: set_hi(&ce->regs.fence, val, mask); break;
	case R_FENCE_VALUE: set32(&ce->regs.fence_value, val, mask); break;
	case R_VECTOR: set32(&ce->regs.vector, val, mask); break;
	case R_INTR_ENABLE:
		set32(&ce->intr_enable, val, mask & (I_DONE | I_ERROR));
		model_ce_update_intx(m);
		break;
	case R_INTR_STATUS:
		ce->intr_status &= ~(val & mask);
		model_ce_update_intx(m);
		break;
	case R_DOORBELL:
		ce_launch(m);
		break;
	default:
		break; /* read-only and absent registers drop writes */
	}
}

void model_ce_stop(struct model *m)
{
	struct model_ce *ce = &m->ce;

	ce->pending = 0;
	if (ce->busy) {
		ce->cancel = 1;
		while (ce->busy)
			pthread_cond_wait(&ce->idle, &m->lock);
	}
	ce->cancel = 0;
	memset(&ce->regs, 0, sizeof(ce->regs));
	ce->status = 0;
	ce->intr_status = ce->intr_enable = 0;
	ce->completed = ce->faults = 0;
	ce->fault_addr = 0;
	ce->duration_ns = 0;
	model_ce_update_intx(m);
}

int model_ce_start(struct model *m)
{
	struct model_ce *ce = &m->ce;
	int rc;

	ce->bounce = malloc(CE_CHUNK);
	if (!ce->bounce)
		return -ENOMEM;
	pthread_cond_init(&ce->kick, NULL);
	pthread_cond_init(&ce->idle, NULL);
	rc = -pthread_create(&ce->thread, NULL, ce_worker, m);
	if (rc) {
		tp_err(m->be.name, "copy engine thread: %s", strerror(-rc));
		return rc;
	}
	ce->thread_started = 1;
	return 0;
}

void model_ce_shutdown(struct model *m)
{
	struct model_ce *ce = &m->ce;

	if (ce->thread_started) {
		pthread_mutex_lock(&m->lock);
		ce->cancel = 1;
		ce->stop = 1;
		pthread_cond_signal(&ce->kick);
		pthread_mutex_unlock(&m->lock);
		pthread_join(ce->thread, NULL);
		ce->thread_started = 0;
		pthread_cond_destroy(&ce->kick);
		pthread_cond_destroy(&ce->idle);
	}
	free(ce->bounce);
	ce->bounce = NULL;
}
