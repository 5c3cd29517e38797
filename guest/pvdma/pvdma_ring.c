// SPDX-License-Identifier: GPL-2.0
/*
 * pvdma: the ring (BAR2). Requests go into slots, one doorbell per batch;
 * delayed entries are waited for (sleeping or spinning), abandoned ones
 * reaped, and the completion interrupt wakes the waiters. Spec: docs/pvdma.md.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/ktime.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/wait.h>

#include "pvdma.h"

static unsigned int wait_ms = 10000;
module_param(wait_ms, uint, 0644);
MODULE_PARM_DESC(wait_ms, "longest sleeping wait for a delayed entry or ring room, ms (default 10000)");
static unsigned int spin_ms = 1000;
module_param(spin_ms, uint, 0644);
MODULE_PARM_DESC(spin_ms, "longest spin for a delayed entry in atomic context, ms (default 1000)");

static inline u32 pvdma_slot_status(struct pvdma *p, u32 slot)
{
	return le32_to_cpu(READ_ONCE(p->ent[slot].status));
}

/* ---- the ring (p->lock held) */

static bool pvdma_room_locked(struct pvdma *p, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (p->owner[(p->prod + i) & (p->nent - 1)])
			return false;
	return true;
}

static void pvdma_fill_locked(struct pvdma *p, struct pvdma_map *m)
{
	u32 slot = p->prod & (p->nent - 1);
	struct pvdma_entry *e = &p->ent[slot];

	e->op = cpu_to_le32(m->op);
	e->cookie = cpu_to_le64(p->prod);
	e->gpa = cpu_to_le64(m->gpa);
	e->len = cpu_to_le64(m->len);
	e->dir = cpu_to_le32(m->dir);
	e->align = 0;
	e->handle = cpu_to_le64(m->op == PVDMA_OP_UNMAP ? m->handle : 0);
	e->dva = 0;
	WRITE_ONCE(e->status, cpu_to_le32(PVDMA_ST_PENDING));
	p->owner[slot] = m;
	m->slot = slot;
	m->status = PVDMA_ST_PENDING;
	p->prod++;
}

/*
 * Publish the entries filled so far and ring. The doorbell is a non-posted
 * write (the companion has a mapped region, so QEMU waits for the server's
 * reply): when writel() returns, the server has processed every entry up to
 * the producer, and what it did not complete waits for room.
 */
static void pvdma_ring_locked(struct pvdma *p, unsigned int n)
{
	virt_wmb();		/* entries before the producer */
	WRITE_ONCE(p->hdr->producer, cpu_to_le32(p->prod));
	writel(p->prod, p->regs + PVDMA_REG_DOORBELL);
	p->st.doorbells++;
	if (n > p->st.max_batch)
		p->st.max_batch = n;
}

/* A completed entry: its results, then its slot is free. */
static void pvdma_harvest_locked(struct pvdma *p, struct pvdma_map *m, u32 st)
{
	struct pvdma_entry *e = &p->ent[m->slot];

	virt_rmb();		/* status (written last) before the results */
	if (m->op == PVDMA_OP_MAP && st == PVDMA_ST_OK) {
		m->handle = le64_to_cpu(READ_ONCE(e->handle));
		m->dva = le64_to_cpu(READ_ONCE(e->dva));
	}
	m->status = st;
	p->owner[m->slot] = NULL;
	m->slot = PVDMA_NO_SLOT;
	p->st.requests++;
	if (st != PVDMA_ST_OK)
		p->st.errors++;
	else if (m->op == PVDMA_OP_MAP)
		p->st.maps++, p->st.bytes_mapped += m->len;
	else
		p->st.unmaps++;
}

/*
 * Abandoned entries: a MAP the server completes after its caller gave up is
 * unmapped here at once (nobody knows its device address); anything else is
 * just freed once it left PENDING. Runs on every submission and interrupt
 * while there are any.
 */
static void pvdma_reap_locked(struct pvdma *p)
{
	struct pvdma_map *m, *t;
	u32 st;

	list_for_each_entry_safe(m, t, &p->abandoned, dead) {
		if (m->slot != PVDMA_NO_SLOT) {
			st = pvdma_slot_status(p, m->slot);
			if (st == PVDMA_ST_PENDING)
				continue;
			pvdma_harvest_locked(p, m, st);
			if (m->op != PVDMA_OP_MAP || st != PVDMA_ST_OK)
				goto done;
			m->op = PVDMA_OP_UNMAP;
		}
		/* an UNMAP to send */
		if (p->dead)
			goto done;
		if (!pvdma_room_locked(p, 1))
			continue;
		pvdma_fill_locked(p, m);
		pvdma_ring_locked(p, 1);
		st = pvdma_slot_status(p, m->slot);
		if (st == PVDMA_ST_PENDING)
			continue;
		pvdma_harvest_locked(p, m, st);
done:
		list_del(&m->dead);
		p->nabandoned--;
		p->st.reaped++;
		kmem_cache_free(pvdma_cache, m);
	}
}

static bool pvdma_past(u64 deadline)
{
	return ktime_get_mono_fast_ns() >= deadline;
}

/* Wait until the entry in m's slot left PENDING, or the deadline. */
static void pvdma_wait_entry(struct pvdma *p, struct pvdma_map *m, bool sleep, u64 deadline)
{
	unsigned int n = 0;

	if (sleep) {
		while (pvdma_slot_status(p, m->slot) == PVDMA_ST_PENDING && !pvdma_past(deadline))
			wait_event_timeout(p->wq,
					   pvdma_slot_status(p, m->slot) != PVDMA_ST_PENDING,
					   msecs_to_jiffies(10));
		return;
	}
	while (pvdma_slot_status(p, m->slot) == PVDMA_ST_PENDING) {
		cpu_relax();
		if (!(++n & 63) && pvdma_past(deadline))
			return;
	}
}

static void pvdma_fail_rest(struct pvdma_map *from, struct list_head *reqs, u32 st)
{
	struct pvdma_map *m = from;

	list_for_each_entry_from(m, reqs, batch)
		m->status = st;
}

/*
 * Submit the requests on reqs (linked by ->batch, op/gpa/len/dir or handle
 * set), at most p->batch per doorbell, and wait until each one completed.
 * Afterwards ->status is the server's status, or PVDMA_ST_TIMEOUT or
 * PVDMA_ST_DEAD. A request that was sent but did not complete in time is
 * ->abandoned: it belongs to the ring from then on, and the caller must not
 * free it (pvdma_reap_locked() does).
 *
 * The lock is held only while slots are filled and the doorbell rung; a
 * delayed entry is waited for without it, sleeping if the caller may sleep
 * (woken by the completion interrupt), else spinning.
 */
void pvdma_submit(struct pvdma *p, struct list_head *reqs, bool sleep)
{
	u64 deadline = ktime_get_mono_fast_ns() +
		       (u64)(sleep ? wait_ms : spin_ms) * NSEC_PER_MSEC;
	struct pvdma_map *m, *cur, *first;
	bool pending = false, freed = false;
	unsigned long flags;
	unsigned int n, i;
	u32 st;

	list_for_each_entry(m, reqs, batch) {
		m->status = PVDMA_ST_TIMEOUT;
		m->slot = PVDMA_NO_SLOT;
		m->abandoned = false;
	}
	cur = list_first_entry(reqs, struct pvdma_map, batch);
	while (!list_entry_is_head(cur, reqs, batch)) {
		n = 0;
		for (m = cur; !list_entry_is_head(m, reqs, batch) && n < p->batch;
		     m = list_next_entry(m, batch))
			n++;
		spin_lock_irqsave(&p->lock, flags);
		if (p->dead) {
			spin_unlock_irqrestore(&p->lock, flags);
			pvdma_fail_rest(cur, reqs, PVDMA_ST_DEAD);
			break;
		}
		if (p->nabandoned)
			pvdma_reap_locked(p);
		if (!pvdma_room_locked(p, n)) {
			p->st.ring_full++;
			spin_unlock_irqrestore(&p->lock, flags);
			if (pvdma_past(deadline)) {
				pvdma_fail_rest(cur, reqs, PVDMA_ST_TIMEOUT);
				break;
			}
			if (sleep)
				wait_event_timeout(p->wq, false, 1);
			else
				udelay(1);
			continue;
		}
		first = cur;
		for (i = 0; i < n; i++, cur = list_next_entry(cur, batch))
			pvdma_fill_locked(p, cur);
		pvdma_ring_locked(p, n);
		for (i = 0, m = first; i < n; i++, m = list_next_entry(m, batch)) {
			st = pvdma_slot_status(p, m->slot);
			if (st != PVDMA_ST_PENDING) {
				pvdma_harvest_locked(p, m, st);
			} else {
				p->st.delayed++;
				pending = true;
			}
		}
		spin_unlock_irqrestore(&p->lock, flags);
	}
	if (!pending)
		return;

	/* Backpressure: the server completes these when room frees. */
	list_for_each_entry(m, reqs, batch) {
		if (m->status != PVDMA_ST_PENDING)
			continue;
		pvdma_wait_entry(p, m, sleep, deadline);
		spin_lock_irqsave(&p->lock, flags);
		if (sleep)
			p->st.sleeps++;
		else
			p->st.spins++;
		st = pvdma_slot_status(p, m->slot);
		if (st != PVDMA_ST_PENDING) {
			pvdma_harvest_locked(p, m, st);
			freed = true;
		} else {
			m->abandoned = true;
			m->status = PVDMA_ST_TIMEOUT;
			list_add_tail(&m->dead, &p->abandoned);
			p->nabandoned++;
			p->st.abandoned++;
		}
		spin_unlock_irqrestore(&p->lock, flags);
	}
	if (freed && wq_has_sleeper(&p->wq))
		wake_up_all(&p->wq);
}

irqreturn_t pvdma_irq(int irq, void *data)
{
	struct pvdma *p = data;

	spin_lock(&p->lock);
	p->st.irqs++;
	if (p->nabandoned)
		pvdma_reap_locked(p);
	spin_unlock(&p->lock);
	wake_up_all(&p->wq);
	return IRQ_HANDLED;
}
