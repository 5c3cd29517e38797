// SPDX-License-Identifier: GPL-2.0
/*
 * pvdma: the guest side of thunderpass's paravirtual DMA companion (7470:0001).
 *
 * Where the host IOMMU picks device addresses itself (Apple's DART behind a
 * PCIDriverKit driver), the passed-through device cannot be handed guest
 * physical addresses. This driver binds to the companion function, finds the
 * device it manages (a function of its own slot) and installs dma_map_ops on
 * it: every mapping becomes a MAP request in the companion's ring (BAR2), one
 * doorbell per batch, and the server answers with the device address.
 *
 * Spec: docs/pvdma.md. This driver: docs/guest-pvdma.md.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/completion.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/device.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/hash.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/rcupdate.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#ifndef CONFIG_DMA_OPS
#error "pvdma needs CONFIG_DMA_OPS (per-device dma_map_ops): see guest/pvdma/README"
#endif

/* BAR0 registers (docs/pvdma.md) */
#define PVDMA_REG_ID		0x000
#define PVDMA_REG_VERSION	0x004
#define PVDMA_REG_MANAGED_ID	0x008
#define PVDMA_REG_MANAGED_DEVFN	0x00c
#define PVDMA_REG_TOKEN_LO	0x010
#define PVDMA_REG_TOKEN_HI	0x014
#define PVDMA_REG_RING_ENTRIES	0x018
#define PVDMA_REG_GRANULE	0x01c
#define PVDMA_REG_WINDOW	0x020
#define PVDMA_REG_MAX_MAPPED_MB	0x024
#define PVDMA_REG_MAX_MAPPINGS	0x028
#define PVDMA_REG_DOORBELL	0x030
#define PVDMA_REG_CONSUMER	0x034
#define PVDMA_REG_CONTROL	0x038
#define PVDMA_REG_STAT_REQUESTS	0x040
#define PVDMA_REG_STAT_MAPS	0x044
#define PVDMA_REG_STAT_UNMAPS	0x048
#define PVDMA_REG_STAT_WINDOWS	0x04c
#define PVDMA_REG_STAT_BYTES_LO	0x050
#define PVDMA_REG_STAT_BYTES_HI	0x054
#define PVDMA_REG_STAT_ERRORS	0x058
#define PVDMA_REG_STAT_DELAYED	0x05c
#define PVDMA_REG_STAT_LAZY	0x060
#define PVDMA_REGS_SIZE		0x100

#define PVDMA_ID_VALUE		0x41444d50	/* "PMDA" */
#define PVDMA_VERSION		1
#define PVDMA_CTRL_ENABLE	BIT(0)

/* Ring entries: op, status */
#define PVDMA_OP_MAP		1
#define PVDMA_OP_UNMAP		2
#define PVDMA_DIR_READ		BIT(0)	/* the device reads */
#define PVDMA_DIR_WRITE		BIT(1)	/* the device writes */

#define PVDMA_ST_OK		0
#define PVDMA_ST_BAD_OP		1
#define PVDMA_ST_BAD_RANGE	2
#define PVDMA_ST_NOT_ALIGNED	3
#define PVDMA_ST_CAP		4
#define PVDMA_ST_BAD_HANDLE	5
#define PVDMA_ST_DISABLED	6
#define PVDMA_ST_NO_SPACE	7
#define PVDMA_ST_PENDING	0xffffffffU
/* Local outcomes, never in the ring. */
#define PVDMA_ST_TIMEOUT	0x100	/* not completed in time (abandoned or never sent) */
#define PVDMA_ST_DEAD		0x101	/* the ring is being torn down */

#define PVDMA_NO_SLOT		U32_MAX
#define PVDMA_HASH_BITS		12

struct pvdma_ring_header {
	__le32 producer;
	__le32 reserved[15];
};

struct pvdma_entry {
	__le32 op;
	__le32 status;
	__le64 cookie;
	__le64 gpa;
	__le64 len;
	__le32 dir;
	__le32 align;
	__le64 handle;
	__le64 dva;
	__le64 reserved;
};

static_assert(sizeof(struct pvdma_ring_header) == 64);
static_assert(sizeof(struct pvdma_entry) == 64);

static unsigned int wait_ms = 10000;
module_param(wait_ms, uint, 0644);
MODULE_PARM_DESC(wait_ms, "longest sleeping wait for a delayed entry or ring room, ms (default 10000)");
static unsigned int spin_ms = 1000;
module_param(spin_ms, uint, 0644);
MODULE_PARM_DESC(spin_ms, "longest spin for a delayed entry in atomic context, ms (default 1000)");
static unsigned int max_batch = 1024;
module_param(max_batch, uint, 0444);
MODULE_PARM_DESC(max_batch, "entries per doorbell at most (default 1024, at most half the ring)");
static bool reprobe = true;
module_param(reprobe, bool, 0444);
MODULE_PARM_DESC(reprobe, "managed device already bound at probe: unbind and bind its driver again (default) or refuse");

enum pvdma_kind { PVDMA_K_STREAM, PVDMA_K_COHERENT, PVDMA_K_PAGES, PVDMA_K_INTERNAL };

/*
 * One request, and then one live mapping (in the table, by device address).
 * While it is in the ring, the slot's owner points to it.
 */
struct pvdma_map {
	struct hlist_node node;		/* p->table */
	struct list_head batch;		/* the submitter's list */
	struct list_head dead;		/* p->abandoned */
	u64 gpa, len, dva, handle;
	u32 op, dir, status, slot;
	u8 kind;
	bool abandoned;
	void *cpu;			/* coherent: CPU address from the companion's allocator */
	dma_addr_t cdma;		/* coherent: the companion's handle (= gpa) */
	unsigned long attrs;
	struct page *page;		/* alloc_pages */
};

struct pvdma_stats {
	u64 doorbells;		/* doorbell writes (batches) */
	u64 requests;		/* entries completed by the server, ok or not */
	u64 maps, unmaps;	/* entries completed ok */
	u64 errors;		/* entries completed with a status != 0 */
	u64 delayed;		/* MAP entries still pending after their doorbell */
	u64 bytes_mapped;	/* bytes of the maps that completed ok, over time */
	u64 abandoned;		/* entries given up on after a timeout */
	u64 reaped;		/* abandoned entries cleaned up later */
	u64 sleeps, spins;	/* waits for delayed entries: slept, spun */
	u64 ring_full;		/* waits for free slots */
	u64 unknown_unmaps;	/* unmaps of a device address not mapped here */
	u64 refused;		/* mappings refused before the ring (mask, no memory) */
	u64 max_batch;		/* largest batch */
	u64 irqs;		/* completion interrupts */
};

struct pvdma_thr {
	struct pvdma_stream *s;
	struct task_struct *task;
	struct completion done;
	struct page *page;
	struct scatterlist *sgl;
	unsigned int idx, segs;
	bool atomic;
	u64 iters, errors, bytes;
};

struct pvdma_stream {
	struct pvdma *p;
	unsigned int threads, segs, count, hold_us, atomic, bind;
	size_t size;
	bool stop;
	struct pvdma_thr *thr;
	struct pvdma_stats st0;
	ktime_t t0;
};

struct pvdma {
	struct pci_dev *pdev;		/* the companion */
	struct pci_dev *gpu;		/* the managed device */
	struct list_head list;		/* pvdma_devs */
	void __iomem *regs;
	void *ring;
	struct pvdma_ring_header *hdr;
	struct pvdma_entry *ent;
	u32 nent, granule, window, max_mapped_mb, max_mappings, batch;
	u64 token;

	/*
	 * A copy per companion, not const: the managed device's dev->dma_ops points
	 * here, and container_of() finds this struct from it in every call.
	 */
	struct dma_map_ops ops;
	const struct dma_map_ops *orig_ops;
	bool active;			/* our ops belong on gpu (device lock + pvdma_devs_lock) */
	bool pinned;			/* module reference while gpu has a driver */

	spinlock_t lock;		/* ring, slots, abandoned, stats */
	u32 prod;
	struct pvdma_map **owner;	/* per slot */
	struct list_head abandoned;
	unsigned int nabandoned;
	bool dead;
	wait_queue_head_t wq;
	struct pvdma_stats st;

	spinlock_t tlock;		/* table, live, live_bytes */
	struct hlist_head *table;
	u64 live, live_bytes;

	int irq;
	struct dentry *dbg;
	struct mutex run_lock;		/* bench and stream */
	char bench_result[256];
	struct pvdma_stream *stream;
	char stream_result[384];
};

static LIST_HEAD(pvdma_devs);
static DEFINE_MUTEX(pvdma_devs_lock);
static struct kmem_cache *pvdma_cache;
static struct dentry *pvdma_dbg_root;

static inline u32 pvdma_rd(struct pvdma *p, u32 reg)
{
	return readl(p->regs + reg);
}

static u64 pvdma_rd_bytes(struct pvdma *p)
{
	u32 hi, lo;

	do {
		hi = pvdma_rd(p, PVDMA_REG_STAT_BYTES_HI);
		lo = pvdma_rd(p, PVDMA_REG_STAT_BYTES_LO);
	} while (hi != pvdma_rd(p, PVDMA_REG_STAT_BYTES_HI));
	return (u64)hi << 32 | lo;
}

static inline struct pvdma *to_pvdma(struct device *dev)
{
	return container_of(get_dma_ops(dev), struct pvdma, ops);
}

/*
 * May a mapping call sleep while an entry waits for room? Only where the
 * kernel can tell (CONFIG_PREEMPT_COUNT: spinlocks raise the preempt count),
 * outside interrupts, with interrupts on and outside RCU read sections.
 * Elsewhere (Debian's arm64 kernel is PREEMPT_VOLUNTARY without a preempt
 * count) every wait spins.
 */
static bool pvdma_may_sleep(void)
{
	if (!IS_ENABLED(CONFIG_PREEMPT_COUNT))
		return false;
	return !preempt_count() && !irqs_disabled() && !rcu_preempt_depth() && !oops_in_progress;
}

static inline u32 pvdma_slot_status(struct pvdma *p, u32 slot)
{
	return le32_to_cpu(READ_ONCE(p->ent[slot].status));
}

static u32 pvdma_dir(enum dma_data_direction dir)
{
	switch (dir) {
	case DMA_TO_DEVICE:
		return PVDMA_DIR_READ;
	case DMA_FROM_DEVICE:
		return PVDMA_DIR_WRITE;
	case DMA_BIDIRECTIONAL:
		return PVDMA_DIR_READ | PVDMA_DIR_WRITE;
	default:
		return 0;
	}
}

static const char *pvdma_status_str(u32 st)
{
	static const char * const names[] = {
		"ok", "bad op", "bad range", "not aligned", "cap", "bad handle",
		"disabled", "no space",
	};

	if (st < ARRAY_SIZE(names))
		return names[st];
	if (st == PVDMA_ST_TIMEOUT)
		return "timeout";
	if (st == PVDMA_ST_DEAD)
		return "ring torn down";
	return "unknown";
}

static int pvdma_errno(u32 st)
{
	return (st == PVDMA_ST_CAP || st == PVDMA_ST_NO_SPACE) ? -ENOMEM : -EIO;
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
static void pvdma_submit(struct pvdma *p, struct list_head *reqs, bool sleep)
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

static irqreturn_t pvdma_irq(int irq, void *data)
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

/* ---- mapping records */

static struct pvdma_map *pvdma_new(bool sleep)
{
	return kmem_cache_zalloc(pvdma_cache, sleep ? GFP_NOIO : GFP_ATOMIC | __GFP_NOWARN);
}

/* Free the requests on reqs that the ring does not own. */
static void pvdma_free_list(struct list_head *reqs)
{
	struct pvdma_map *m, *t;

	list_for_each_entry_safe(m, t, reqs, batch) {
		list_del(&m->batch);
		if (!m->abandoned)
			kmem_cache_free(pvdma_cache, m);
	}
}

static void pvdma_table_add(struct pvdma *p, struct pvdma_map *m)
{
	unsigned long flags;

	spin_lock_irqsave(&p->tlock, flags);
	hlist_add_head(&m->node, &p->table[hash_64(m->dva, PVDMA_HASH_BITS)]);
	p->live++;
	p->live_bytes += m->len;
	spin_unlock_irqrestore(&p->tlock, flags);
}

/*
 * The mapping at dva (one of len bytes if there are several: a page mapped
 * twice has one device address and two handles), out of the table.
 */
static struct pvdma_map *pvdma_table_take(struct pvdma *p, u64 dva, u64 len)
{
	struct pvdma_map *m, *best = NULL;
	unsigned long flags;

	spin_lock_irqsave(&p->tlock, flags);
	hlist_for_each_entry(m, &p->table[hash_64(dva, PVDMA_HASH_BITS)], node) {
		if (m->dva != dva)
			continue;
		if (!best || m->len == len)
			best = m;
		if (m->len == len)
			break;
	}
	if (best) {
		hlist_del(&best->node);
		p->live--;
		p->live_bytes -= best->len;
	}
	spin_unlock_irqrestore(&p->tlock, flags);
	return best;
}

static struct pvdma_map *pvdma_table_find(struct pvdma *p, u64 dva)
{
	struct pvdma_map *m, *found = NULL;
	unsigned long flags;

	spin_lock_irqsave(&p->tlock, flags);
	hlist_for_each_entry(m, &p->table[hash_64(dva, PVDMA_HASH_BITS)], node)
		if (m->dva == dva && m->kind == PVDMA_K_COHERENT) {
			found = m;
			break;
		}
	spin_unlock_irqrestore(&p->tlock, flags);
	return found;
}

static u64 pvdma_limit(struct device *dev, bool coherent)
{
	u64 mask = coherent ? dev->coherent_dma_mask : (dev->dma_mask ? *dev->dma_mask : 0);

	return min_not_zero(mask, dev->bus_dma_limit);
}

/* Unmap what mapped: records not in the table, on reqs (status OK ones). */
static void pvdma_undo(struct pvdma *p, struct list_head *reqs, bool sleep)
{
	struct pvdma_map *m, *t;
	LIST_HEAD(undo);

	list_for_each_entry_safe(m, t, reqs, batch) {
		if (m->status != PVDMA_ST_OK) {
			list_del(&m->batch);
			if (!m->abandoned)
				kmem_cache_free(pvdma_cache, m);
			continue;
		}
		m->op = PVDMA_OP_UNMAP;
		list_move_tail(&m->batch, &undo);
	}
	if (!list_empty(&undo))
		pvdma_submit(p, &undo, sleep);
	pvdma_free_list(&undo);
}

/*
 * Map [gpa, gpa + len) for dev: one MAP. Returns the record (now in the
 * table) or NULL.
 */
static struct pvdma_map *pvdma_map_one(struct pvdma *p, struct device *dev, u64 gpa, u64 len,
				       u32 dir, u8 kind, bool sleep)
{
	struct pvdma_map *m;
	LIST_HEAD(reqs);

	if (!len || !dir)
		return NULL;
	m = pvdma_new(sleep);
	if (!m) {
		p->st.refused++;
		return NULL;
	}
	m->op = PVDMA_OP_MAP;
	m->gpa = gpa;
	m->len = len;
	m->dir = dir;
	m->kind = kind;
	list_add_tail(&m->batch, &reqs);
	pvdma_submit(p, &reqs, sleep);
	if (m->status == PVDMA_ST_OK &&
	    m->dva + len - 1 > pvdma_limit(dev, kind == PVDMA_K_COHERENT)) {
		dev_warn_ratelimited(dev, "pvdma: device address %#llx+%#llx beyond the DMA mask %#llx\n",
				     m->dva, len, pvdma_limit(dev, kind == PVDMA_K_COHERENT));
		p->st.refused++;
		pvdma_undo(p, &reqs, sleep);
		return NULL;
	}
	if (m->status != PVDMA_ST_OK) {
		dev_warn_ratelimited(dev, "pvdma: map of %#llx+%#llx failed: %s\n", gpa, len,
				     pvdma_status_str(m->status));
		pvdma_free_list(&reqs);
		return NULL;
	}
	list_del(&m->batch);
	pvdma_table_add(p, m);
	return m;
}

/* One UNMAP for a record taken out of the table; frees it. */
static void pvdma_unmap_one(struct pvdma *p, struct device *dev, struct pvdma_map *m, bool sleep)
{
	LIST_HEAD(reqs);

	m->op = PVDMA_OP_UNMAP;
	list_add_tail(&m->batch, &reqs);
	pvdma_submit(p, &reqs, sleep);
	if (m->status != PVDMA_ST_OK)
		dev_warn_ratelimited(dev, "pvdma: unmap of %#llx+%#llx failed: %s\n", m->dva,
				     m->len, pvdma_status_str(m->status));
	pvdma_free_list(&reqs);
}

/* ---- dma_map_ops */

static dma_addr_t pvdma_map_page(struct device *dev, struct page *page, unsigned long offset,
				 size_t size, enum dma_data_direction dir, unsigned long attrs)
{
	struct pvdma *p = to_pvdma(dev);
	struct pvdma_map *m;

	m = pvdma_map_one(p, dev, page_to_phys(page) + offset, size, pvdma_dir(dir),
			  PVDMA_K_STREAM, pvdma_may_sleep());
	return m ? m->dva : DMA_MAPPING_ERROR;
}

static void pvdma_unmap_page(struct device *dev, dma_addr_t dva, size_t size,
			     enum dma_data_direction dir, unsigned long attrs)
{
	struct pvdma *p = to_pvdma(dev);
	struct pvdma_map *m = pvdma_table_take(p, dva, size);

	if (!m) {
		p->st.unknown_unmaps++;
		dev_warn_ratelimited(dev, "pvdma: unmap of %#llx+%#zx: not mapped\n",
				     (u64)dva, size);
		return;
	}
	pvdma_unmap_one(p, dev, m, pvdma_may_sleep());
}

/* Every segment in one batch (split only past p->batch entries). */
static int pvdma_map_sg(struct device *dev, struct scatterlist *sgl, int nents,
			enum dma_data_direction dir, unsigned long attrs)
{
	struct pvdma *p = to_pvdma(dev);
	bool sleep = pvdma_may_sleep();
	u64 limit = pvdma_limit(dev, false);
	u32 d = pvdma_dir(dir);
	struct scatterlist *sg;
	struct pvdma_map *m;
	int i, ret = 0;
	LIST_HEAD(reqs);

	if (nents <= 0 || !d)
		return -EINVAL;
	for_each_sg(sgl, sg, nents, i) {
		m = pvdma_new(sleep);
		if (!m) {
			p->st.refused++;
			pvdma_free_list(&reqs);
			return -ENOMEM;
		}
		m->op = PVDMA_OP_MAP;
		m->gpa = sg_phys(sg);
		m->len = sg->length;
		m->dir = d;
		m->kind = PVDMA_K_STREAM;
		list_add_tail(&m->batch, &reqs);
	}
	pvdma_submit(p, &reqs, sleep);
	list_for_each_entry(m, &reqs, batch) {
		if (m->status != PVDMA_ST_OK) {
			if (!ret)
				ret = pvdma_errno(m->status);
			dev_warn_ratelimited(dev, "pvdma: map_sg segment %#llx+%#llx failed: %s\n",
					     m->gpa, m->len, pvdma_status_str(m->status));
		} else if (m->dva + m->len - 1 > limit) {
			ret = -EIO;
			p->st.refused++;
		}
	}
	if (ret) {
		pvdma_undo(p, &reqs, sleep);
		return ret;
	}
	m = list_first_entry(&reqs, struct pvdma_map, batch);
	for_each_sg(sgl, sg, nents, i) {
		struct pvdma_map *next = list_next_entry(m, batch);

		sg->dma_address = m->dva;
		sg_dma_len(sg) = m->len;
		list_del(&m->batch);
		pvdma_table_add(p, m);
		m = next;
	}
	return nents;
}

static void pvdma_unmap_sg(struct device *dev, struct scatterlist *sgl, int nents,
			   enum dma_data_direction dir, unsigned long attrs)
{
	struct pvdma *p = to_pvdma(dev);
	struct scatterlist *sg;
	struct pvdma_map *m;
	LIST_HEAD(reqs);
	int i;

	for_each_sg(sgl, sg, nents, i) {
		m = pvdma_table_take(p, sg_dma_address(sg), sg_dma_len(sg));
		if (!m) {
			p->st.unknown_unmaps++;
			dev_warn_ratelimited(dev, "pvdma: unmap_sg of %#llx+%#x: not mapped\n",
					     (u64)sg_dma_address(sg), sg_dma_len(sg));
			continue;
		}
		m->op = PVDMA_OP_UNMAP;
		list_add_tail(&m->batch, &reqs);
	}
	if (list_empty(&reqs))
		return;
	pvdma_submit(p, &reqs, pvdma_may_sleep());
	list_for_each_entry(m, &reqs, batch)
		if (m->status != PVDMA_ST_OK)
			dev_warn_ratelimited(dev, "pvdma: unmap of %#llx+%#llx failed: %s\n",
					     m->dva, m->len, pvdma_status_str(m->status));
	pvdma_free_list(&reqs);
}

/*
 * Coherent memory: the companion's own allocator (dma-direct: the page
 * allocator, CMA where the kernel has it, the atomic pools), then one MAP of
 * the whole buffer for the managed device. The companion has no IOMMU and no
 * DMA offset, so its handle is the guest physical address.
 */
static void *pvdma_alloc(struct device *dev, size_t size, dma_addr_t *dma_handle, gfp_t gfp,
			 unsigned long attrs)
{
	struct pvdma *p = to_pvdma(dev);
	bool sleep = gfpflags_allow_blocking(gfp) || pvdma_may_sleep();
	struct pvdma_map *m;
	dma_addr_t cdma;
	void *cpu;

	/* (a DMA offset would make the companion's handle differ from the address) */
	if (WARN_ON_ONCE(p->pdev->dev.dma_range_map))
		return NULL;
	cpu = dma_alloc_attrs(&p->pdev->dev, size, &cdma, gfp, attrs);
	if (!cpu)
		return NULL;
	m = pvdma_map_one(p, dev, cdma, PAGE_ALIGN(size), PVDMA_DIR_READ | PVDMA_DIR_WRITE,
			  PVDMA_K_COHERENT, sleep);
	if (!m) {
		dma_free_attrs(&p->pdev->dev, size, cpu, cdma, attrs);
		return NULL;
	}
	m->cpu = cpu;
	m->cdma = cdma;
	m->attrs = attrs;
	*dma_handle = m->dva;
	return cpu;
}

static void pvdma_free(struct device *dev, size_t size, void *cpu, dma_addr_t dva,
		       unsigned long attrs)
{
	struct pvdma *p = to_pvdma(dev);
	struct pvdma_map *m = pvdma_table_take(p, dva, PAGE_ALIGN(size));
	dma_addr_t cdma;

	if (!m || m->cpu != cpu) {
		p->st.unknown_unmaps++;
		dev_warn(dev, "pvdma: free of %#llx (%p): not a coherent buffer of this device\n",
			 (u64)dva, cpu);
		if (m)
			pvdma_table_add(p, m);
		return;
	}
	cdma = m->cdma;
	m->op = PVDMA_OP_UNMAP;
	{
		LIST_HEAD(reqs);
		bool abandoned;

		list_add_tail(&m->batch, &reqs);
		pvdma_submit(p, &reqs, pvdma_may_sleep());
		abandoned = m->abandoned;
		pvdma_free_list(&reqs);
		if (abandoned) {
			/* the device may still reach it: never give it back */
			dev_warn(dev, "pvdma: unmap of coherent %#llx timed out: %zu bytes leaked\n",
				 (u64)dva, size);
			return;
		}
	}
	dma_free_attrs(&p->pdev->dev, size, cpu, cdma, attrs);
}

static struct page *pvdma_alloc_pages(struct device *dev, size_t size, dma_addr_t *dma_handle,
				      enum dma_data_direction dir, gfp_t gfp)
{
	struct pvdma *p = to_pvdma(dev);
	struct page *page;
	struct pvdma_map *m;

	page = alloc_pages_node(dev_to_node(dev), gfp, get_order(size));
	if (!page)
		return NULL;
	m = pvdma_map_one(p, dev, page_to_phys(page), PAGE_ALIGN(size), pvdma_dir(dir),
			  PVDMA_K_PAGES, gfpflags_allow_blocking(gfp) || pvdma_may_sleep());
	if (!m) {
		__free_pages(page, get_order(size));
		return NULL;
	}
	m->page = page;
	*dma_handle = m->dva;
	return page;
}

static void pvdma_free_pages(struct device *dev, size_t size, struct page *page, dma_addr_t dva,
			     enum dma_data_direction dir)
{
	struct pvdma *p = to_pvdma(dev);
	struct pvdma_map *m = pvdma_table_take(p, dva, PAGE_ALIGN(size));

	if (!m) {
		p->st.unknown_unmaps++;
		dev_warn(dev, "pvdma: free_pages of %#llx: not mapped\n", (u64)dva);
		return;
	}
	pvdma_unmap_one(p, dev, m, pvdma_may_sleep());
	__free_pages(page, get_order(size));
}

static int pvdma_get_sgtable(struct device *dev, struct sg_table *sgt, void *cpu, dma_addr_t dva,
			     size_t size, unsigned long attrs)
{
	struct pvdma_map *m = pvdma_table_find(to_pvdma(dev), dva);
	int ret;

	if (!m)
		return -ENXIO;
	ret = sg_alloc_table(sgt, 1, GFP_KERNEL);
	if (!ret)
		sg_set_page(sgt->sgl, pfn_to_page(PHYS_PFN(m->gpa)), PAGE_ALIGN(size), 0);
	return ret;
}

static int pvdma_mmap(struct device *dev, struct vm_area_struct *vma, void *cpu, dma_addr_t dva,
		      size_t size, unsigned long attrs)
{
	struct pvdma_map *m = pvdma_table_find(to_pvdma(dev), dva);
	unsigned long count = PAGE_ALIGN(size) >> PAGE_SHIFT;

	if (!m || vma->vm_pgoff >= count || vma_pages(vma) > count - vma->vm_pgoff)
		return -ENXIO;
	return remap_pfn_range(vma, vma->vm_start, PHYS_PFN(m->gpa) + vma->vm_pgoff,
			       vma->vm_end - vma->vm_start, vma->vm_page_prot);
}

/* The DART's aperture is 32-bit (docs/iommu.md): any mask of 32 bits or more. */
static int pvdma_dma_supported(struct device *dev, u64 mask)
{
	return mask >= DMA_BIT_MASK(32);
}

static u64 pvdma_get_required_mask(struct device *dev)
{
	return DMA_BIT_MASK(32);
}

/* A single request larger than the byte cap can never be mapped (CAP). */
static size_t pvdma_max_mapping_size(struct device *dev)
{
	struct pvdma *p = to_pvdma(dev);

	return p->max_mapped_mb ? (size_t)p->max_mapped_mb << 20 : SIZE_MAX;
}

/*
 * The sync calls are absent on purpose (the DMA API then does nothing): the
 * "device" reaches guest memory through the server's mapping of it, which is
 * coherent with the guest's caches.
 */
static const struct dma_map_ops pvdma_ops_template = {
	.alloc			= pvdma_alloc,
	.free			= pvdma_free,
	.alloc_pages		= pvdma_alloc_pages,
	.free_pages		= pvdma_free_pages,
	.mmap			= pvdma_mmap,
	.get_sgtable		= pvdma_get_sgtable,
	.map_page		= pvdma_map_page,
	.unmap_page		= pvdma_unmap_page,
	.map_sg			= pvdma_map_sg,
	.unmap_sg		= pvdma_unmap_sg,
	.dma_supported		= pvdma_dma_supported,
	.get_required_mask	= pvdma_get_required_mask,
	.max_mapping_size	= pvdma_max_mapping_size,
};

/* ---- the guest's prediction of the server's windows (docs/guest-pvdma.md) */

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/*
 * From the live records: distinct windows (requests inside one window share
 * it) plus one mapping per request that crosses a window boundary, and their
 * bytes (whole windows; large requests rounded out to granules).
 */
static int pvdma_model(struct pvdma *p, u64 *windows, u64 *bytes)
{
	u64 w = p->window, g = p->granule, n = 0, nw = 0, large = 0, lbytes = 0, cap, i;
	struct pvdma_map *m;
	unsigned long flags;
	unsigned int b;
	u64 *ids;

	if (!w || !g)
		return -EINVAL;
	for (;;) {
		cap = READ_ONCE(p->live) + 64;
		ids = kvmalloc_array(cap, sizeof(*ids), GFP_KERNEL);
		if (!ids)
			return -ENOMEM;
		spin_lock_irqsave(&p->tlock, flags);
		if (p->live <= cap)
			break;
		spin_unlock_irqrestore(&p->tlock, flags);
		kvfree(ids);
	}
	for (b = 0; b < (1U << PVDMA_HASH_BITS); b++) {
		hlist_for_each_entry(m, &p->table[b], node) {
			if (m->gpa / w == (m->gpa + m->len - 1) / w) {
				ids[n++] = m->gpa / w;
			} else {
				large++;
				lbytes += round_up(m->gpa + m->len, g) - round_down(m->gpa, g);
			}
		}
	}
	spin_unlock_irqrestore(&p->tlock, flags);
	sort(ids, n, sizeof(*ids), cmp_u64, NULL);
	for (i = 0; i < n; i++)
		if (!i || ids[i] != ids[i - 1])
			nw++;
	kvfree(ids);
	*windows = nw + large;
	*bytes = nw * w + lbytes;
	return 0;
}

/* ---- sysfs: /sys/bus/pci/devices/<companion>/pvdma/ */

#define PVDMA_STAT_ATTR(name)							\
static ssize_t name##_show(struct device *dev, struct device_attribute *attr,	\
			   char *buf)						\
{										\
	struct pvdma *p = dev_get_drvdata(dev);					\
										\
	return sysfs_emit(buf, "%llu\n", READ_ONCE(p->st.name));		\
}										\
static DEVICE_ATTR_RO(name)

PVDMA_STAT_ATTR(doorbells);
PVDMA_STAT_ATTR(requests);
PVDMA_STAT_ATTR(maps);
PVDMA_STAT_ATTR(unmaps);
PVDMA_STAT_ATTR(errors);
PVDMA_STAT_ATTR(delayed);
PVDMA_STAT_ATTR(bytes_mapped);
PVDMA_STAT_ATTR(abandoned);
PVDMA_STAT_ATTR(reaped);
PVDMA_STAT_ATTR(sleeps);
PVDMA_STAT_ATTR(spins);
PVDMA_STAT_ATTR(ring_full);
PVDMA_STAT_ATTR(unknown_unmaps);
PVDMA_STAT_ATTR(refused);
PVDMA_STAT_ATTR(max_batch);
PVDMA_STAT_ATTR(irqs);

#define PVDMA_REG_ATTR(name, reg)						\
static ssize_t name##_show(struct device *dev, struct device_attribute *attr,	\
			   char *buf)						\
{										\
	struct pvdma *p = dev_get_drvdata(dev);					\
										\
	return sysfs_emit(buf, "%u\n", pvdma_rd(p, reg));			\
}										\
static DEVICE_ATTR_RO(name)

PVDMA_REG_ATTR(server_requests, PVDMA_REG_STAT_REQUESTS);
PVDMA_REG_ATTR(server_maps, PVDMA_REG_STAT_MAPS);
PVDMA_REG_ATTR(server_unmaps, PVDMA_REG_STAT_UNMAPS);
PVDMA_REG_ATTR(server_windows, PVDMA_REG_STAT_WINDOWS);
PVDMA_REG_ATTR(server_errors, PVDMA_REG_STAT_ERRORS);
PVDMA_REG_ATTR(server_delayed, PVDMA_REG_STAT_DELAYED);
PVDMA_REG_ATTR(server_lazy, PVDMA_REG_STAT_LAZY);
PVDMA_REG_ATTR(consumer, PVDMA_REG_CONSUMER);
PVDMA_REG_ATTR(control, PVDMA_REG_CONTROL);

static ssize_t server_bytes_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", pvdma_rd_bytes(dev_get_drvdata(dev)));
}
static DEVICE_ATTR_RO(server_bytes);

static ssize_t live_maps_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct pvdma *p = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%llu\n", READ_ONCE(p->live));
}
static DEVICE_ATTR_RO(live_maps);

static ssize_t live_bytes_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct pvdma *p = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%llu\n", READ_ONCE(p->live_bytes));
}
static DEVICE_ATTR_RO(live_bytes);

static ssize_t model_windows_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	u64 w, b;
	int ret = pvdma_model(dev_get_drvdata(dev), &w, &b);

	return ret ? ret : sysfs_emit(buf, "%llu\n", w);
}
static DEVICE_ATTR_RO(model_windows);

static ssize_t model_bytes_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	u64 w, b;
	int ret = pvdma_model(dev_get_drvdata(dev), &w, &b);

	return ret ? ret : sysfs_emit(buf, "%llu\n", b);
}
static DEVICE_ATTR_RO(model_bytes);

#define PVDMA_CFG_ATTR(name)							\
static ssize_t name##_show(struct device *dev, struct device_attribute *attr,	\
			   char *buf)						\
{										\
	struct pvdma *p = dev_get_drvdata(dev);					\
										\
	return sysfs_emit(buf, "%u\n", p->name);				\
}										\
static DEVICE_ATTR_RO(name)

PVDMA_CFG_ATTR(nent);
PVDMA_CFG_ATTR(granule);
PVDMA_CFG_ATTR(window);
PVDMA_CFG_ATTR(max_mapped_mb);
PVDMA_CFG_ATTR(max_mappings);

static ssize_t managed_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct pvdma *p = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%s\n", pci_name(p->gpu));
}
static DEVICE_ATTR_RO(managed);

static struct attribute *pvdma_stat_attrs[] = {
	&dev_attr_doorbells.attr,
	&dev_attr_requests.attr,
	&dev_attr_maps.attr,
	&dev_attr_unmaps.attr,
	&dev_attr_errors.attr,
	&dev_attr_delayed.attr,
	&dev_attr_bytes_mapped.attr,
	&dev_attr_abandoned.attr,
	&dev_attr_reaped.attr,
	&dev_attr_sleeps.attr,
	&dev_attr_spins.attr,
	&dev_attr_ring_full.attr,
	&dev_attr_unknown_unmaps.attr,
	&dev_attr_refused.attr,
	&dev_attr_max_batch.attr,
	&dev_attr_irqs.attr,
	&dev_attr_live_maps.attr,
	&dev_attr_live_bytes.attr,
	&dev_attr_model_windows.attr,
	&dev_attr_model_bytes.attr,
	&dev_attr_server_requests.attr,
	&dev_attr_server_maps.attr,
	&dev_attr_server_unmaps.attr,
	&dev_attr_server_windows.attr,
	&dev_attr_server_bytes.attr,
	&dev_attr_server_errors.attr,
	&dev_attr_server_delayed.attr,
	&dev_attr_server_lazy.attr,
	&dev_attr_consumer.attr,
	&dev_attr_control.attr,
	&dev_attr_nent.attr,
	&dev_attr_granule.attr,
	&dev_attr_window.attr,
	&dev_attr_max_mapped_mb.attr,
	&dev_attr_max_mappings.attr,
	NULL,
};

static const struct attribute_group pvdma_stat_group = {
	.name = "pvdma",
	.attrs = pvdma_stat_attrs,
};

static struct attribute *pvdma_top_attrs[] = {
	&dev_attr_managed.attr,
	NULL,
};

static const struct attribute_group pvdma_top_group = {
	.attrs = pvdma_top_attrs,
};

static const struct attribute_group *pvdma_groups[] = {
	&pvdma_top_group,
	&pvdma_stat_group,
	NULL,
};

/* ---- debugfs: bench (requests per second) and stream (backpressure) */

/*
 * rounds x (one batch of `batch` MAPs of distinct 4 KiB pages, then one
 * batch of their UNMAPs), straight through the ring.
 */
static int pvdma_bench(struct pvdma *p, unsigned int batch, unsigned int rounds)
{
	unsigned int order = get_order((size_t)batch * PAGE_SIZE), i, r;
	u64 req0 = p->st.requests, db0 = p->st.doorbells, errs = 0, ns;
	struct pvdma_map *m;
	struct page *pool;
	LIST_HEAD(reqs);
	ktime_t t0;
	int ret = 0;

	if (!batch || batch > p->batch || order >= MAX_ORDER || !rounds)
		return -EINVAL;
	pool = alloc_pages(GFP_KERNEL, order);
	if (!pool)
		return -ENOMEM;
	for (i = 0; i < batch; i++) {
		m = pvdma_new(true);
		if (!m) {
			ret = -ENOMEM;
			goto out;
		}
		m->gpa = page_to_phys(pool) + (u64)i * PAGE_SIZE;
		m->len = PAGE_SIZE;
		m->dir = PVDMA_DIR_READ | PVDMA_DIR_WRITE;
		m->kind = PVDMA_K_INTERNAL;
		list_add_tail(&m->batch, &reqs);
	}
	t0 = ktime_get();
	for (r = 0; r < rounds; r++) {
		list_for_each_entry(m, &reqs, batch)
			m->op = PVDMA_OP_MAP;
		pvdma_submit(p, &reqs, true);
		list_for_each_entry(m, &reqs, batch)
			if (m->status != PVDMA_ST_OK)
				errs++;
		if (errs) {
			/* unmaps what mapped, frees every request */
			pvdma_undo(p, &reqs, true);
			break;
		}
		list_for_each_entry(m, &reqs, batch)
			m->op = PVDMA_OP_UNMAP;
		pvdma_submit(p, &reqs, true);
		list_for_each_entry(m, &reqs, batch)
			if (m->status != PVDMA_ST_OK)
				errs++;
		if (errs)
			break;
	}
	ns = ktime_to_ns(ktime_sub(ktime_get(), t0));
	if (!ns)
		ns = 1;
	scnprintf(p->bench_result, sizeof(p->bench_result),
		  "batch=%u rounds=%u requests=%llu doorbells=%llu errors=%llu ms=%llu req_per_s=%llu us_per_doorbell=%llu.%01llu\n",
		  batch, r, p->st.requests - req0, p->st.doorbells - db0, errs, ns / NSEC_PER_MSEC,
		  div64_u64((p->st.requests - req0) * NSEC_PER_SEC, ns),
		  div64_u64(ns, max(1ULL, p->st.doorbells - db0)) / 1000,
		  div64_u64(ns, max(1ULL, p->st.doorbells - db0)) / 100 % 10);
	if (errs)
		ret = -EIO;
out:
	pvdma_free_list(&reqs);
	__free_pages(pool, order);
	return ret;
}

static ssize_t pvdma_bench_write(struct file *f, const char __user *ubuf, size_t len, loff_t *off)
{
	struct pvdma *p = file_inode(f)->i_private;
	unsigned int batch, rounds;
	char buf[64];
	int ret;

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = 0;
	if (sscanf(buf, "%u %u", &batch, &rounds) != 2)
		return -EINVAL;
	mutex_lock(&p->run_lock);
	ret = pvdma_bench(p, batch, rounds);
	mutex_unlock(&p->run_lock);
	return ret ? ret : len;
}

static ssize_t pvdma_bench_read(struct file *f, char __user *ubuf, size_t len, loff_t *off)
{
	struct pvdma *p = file_inode(f)->i_private;
	char buf[sizeof(p->bench_result)];

	mutex_lock(&p->run_lock);
	strscpy(buf, p->bench_result, sizeof(buf));
	mutex_unlock(&p->run_lock);
	return simple_read_from_buffer(ubuf, len, off, buf, strlen(buf));
}

static const struct file_operations pvdma_bench_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.read = pvdma_bench_read,
	.write = pvdma_bench_write,
	.llseek = default_llseek,
};

/*
 * A stream thread: count times, map `size` bytes of its own buffer for the
 * managed device through the DMA API (dma_map_page, or dma_map_sg in segs
 * segments), hold it hold_us, unmap it. An atomic thread maps and unmaps
 * with preemption off (the spinning wait).
 */
static int pvdma_stream_fn(void *arg)
{
	struct pvdma_thr *t = arg;
	struct pvdma_stream *s = t->s;
	struct device *dev = &s->p->gpu->dev;
	unsigned int i;
	dma_addr_t dma;
	int n;

	for (i = 0; i < s->count && !READ_ONCE(s->stop); i++) {
		if (t->atomic)
			preempt_disable();
		if (t->segs == 1) {
			dma = dma_map_page(dev, t->page, 0, s->size, DMA_BIDIRECTIONAL);
			n = dma_mapping_error(dev, dma) ? 0 : 1;
		} else {
			n = dma_map_sg(dev, t->sgl, t->segs, DMA_BIDIRECTIONAL);
		}
		if (t->atomic)
			preempt_enable();
		t->iters++;
		if (!n) {
			t->errors++;
			msleep(20);
			continue;
		}
		t->bytes += s->size;
		if (s->hold_us)
			usleep_range(s->hold_us, s->hold_us + s->hold_us / 4 + 10);
		if (t->atomic)
			preempt_disable();
		if (t->segs == 1)
			dma_unmap_page(dev, dma, s->size, DMA_BIDIRECTIONAL);
		else
			dma_unmap_sg(dev, t->sgl, t->segs, DMA_BIDIRECTIONAL);
		if (t->atomic)
			preempt_enable();
		cond_resched();
	}
	kthread_complete_and_exit(&t->done, 0);
}

static void pvdma_stream_free(struct pvdma_stream *s)
{
	unsigned int i;

	if (!s)
		return;
	for (i = 0; i < s->threads; i++) {
		if (s->thr[i].page)
			__free_pages(s->thr[i].page, get_order(s->size));
		kfree(s->thr[i].sgl);
	}
	kfree(s->thr);
	kfree(s);
}

/* Wait for a stream's threads and write its result line (run_lock held). */
static void pvdma_stream_finish(struct pvdma *p)
{
	struct pvdma_stream *s = p->stream;
	u64 iters = 0, errors = 0, bytes = 0, ms;
	unsigned int i;

	if (!s)
		return;
	for (i = 0; i < s->threads; i++) {
		if (s->thr[i].task)
			wait_for_completion(&s->thr[i].done);
		iters += s->thr[i].iters;
		errors += s->thr[i].errors;
		bytes += s->thr[i].bytes;
	}
	ms = ktime_ms_delta(ktime_get(), s->t0);
	scnprintf(p->stream_result, sizeof(p->stream_result),
		  "threads=%u atomic=%u bind=%u size=%zu sg=%u count=%u hold_us=%u iterations=%llu errors=%llu bytes=%llu ms=%llu delayed=%llu sleeps=%llu spins=%llu abandoned=%llu requests=%llu doorbells=%llu cap_bytes=%llu result=%s\n",
		  s->threads, s->atomic, s->bind, s->size, s->segs, s->count, s->hold_us, iters,
		  errors, bytes, ms, p->st.delayed - s->st0.delayed, p->st.sleeps - s->st0.sleeps,
		  p->st.spins - s->st0.spins, p->st.abandoned - s->st0.abandoned,
		  p->st.requests - s->st0.requests, p->st.doorbells - s->st0.doorbells,
		  (u64)p->max_mapped_mb << 20,
		  s->stop ? "stopped" : errors ? "fail" : "pass");
	p->stream = NULL;
	pvdma_stream_free(s);
}

/* "threads=4 atomic=1 bind=0 size=4M sg=4 count=100 hold_us=200" (all optional) */
static int pvdma_stream_start(struct pvdma *p, char *args)
{
	struct pvdma_stream *s;
	unsigned int i, j;
	char *tok, *end;
	int ret = 0;

	if (get_dma_ops(&p->gpu->dev) != &p->ops)
		return -ENODEV;
	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s)
		return -ENOMEM;
	s->p = p;
	s->threads = 4;
	s->atomic = 0;
	s->size = SZ_4M;
	s->segs = 4;
	s->count = 100;
	s->hold_us = 200;
	while ((tok = strsep(&args, " \t\n")) != NULL) {
		char *val = strchr(tok, '=');

		if (!*tok)
			continue;
		if (!val)
			goto inval;
		*val++ = 0;
		if (!strcmp(tok, "size")) {
			s->size = memparse(val, &end);
			if (*end)
				goto inval;
			continue;
		}
		if (!strcmp(tok, "threads"))
			ret = kstrtouint(val, 0, &s->threads);
		else if (!strcmp(tok, "atomic"))
			ret = kstrtouint(val, 0, &s->atomic);
		else if (!strcmp(tok, "sg"))
			ret = kstrtouint(val, 0, &s->segs);
		else if (!strcmp(tok, "count"))
			ret = kstrtouint(val, 0, &s->count);
		else if (!strcmp(tok, "hold_us"))
			ret = kstrtouint(val, 0, &s->hold_us);
		else if (!strcmp(tok, "bind"))
			ret = kstrtouint(val, 0, &s->bind);
		else
			goto inval;
		if (ret)
			goto inval;
	}
	if (!s->threads || s->threads > 64 || s->atomic > s->threads || !s->segs ||
	    s->segs > 64 || s->size < PAGE_SIZE * s->segs || get_order(s->size) >= MAX_ORDER ||
	    s->hold_us > 1000000)
		goto inval;
	s->thr = kcalloc(s->threads, sizeof(*s->thr), GFP_KERNEL);
	if (!s->thr) {
		kfree(s);
		return -ENOMEM;
	}
	for (i = 0; i < s->threads; i++) {
		struct pvdma_thr *t = &s->thr[i];
		size_t seg;

		t->s = s;
		t->idx = i;
		t->atomic = i < s->atomic;
		/* odd threads map scatterlists, even ones single pages */
		t->segs = (i & 1) ? s->segs : 1;
		init_completion(&t->done);
		t->page = alloc_pages(GFP_KERNEL, get_order(s->size));
		t->sgl = kcalloc(t->segs, sizeof(*t->sgl), GFP_KERNEL);
		if (!t->page || !t->sgl) {
			ret = -ENOMEM;
			goto err;
		}
		sg_init_table(t->sgl, t->segs);
		seg = round_down(s->size / t->segs, PAGE_SIZE);
		for (j = 0; j < t->segs; j++)
			sg_set_page(&t->sgl[j], t->page + j * (seg >> PAGE_SHIFT),
				    j == t->segs - 1 ? s->size - j * seg : seg, 0);
	}
	s->st0 = p->st;
	s->t0 = ktime_get();
	p->stream = s;
	for (i = 0; i < s->threads; i++) {
		struct task_struct *task;

		task = kthread_create(pvdma_stream_fn, &s->thr[i], "pvdma-stream/%u", i);
		if (IS_ERR(task)) {
			WRITE_ONCE(s->stop, true);
			ret = PTR_ERR(task);
			break;
		}
		/* one thread per CPU: a spinning waiter never stands in a holder's way */
		if (s->bind)
			kthread_bind(task, cpumask_nth(i % num_online_cpus(), cpu_online_mask));
		s->thr[i].task = task;
		wake_up_process(task);
	}
	if (ret)
		pvdma_stream_finish(p);
	return ret;
inval:
	ret = -EINVAL;
err:
	pvdma_stream_free(s);
	return ret;
}

static ssize_t pvdma_stream_write(struct file *f, const char __user *ubuf, size_t len,
				  loff_t *off)
{
	struct pvdma *p = file_inode(f)->i_private;
	char buf[160];
	int ret;

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = 0;
	mutex_lock(&p->run_lock);
	if (p->stream) {
		ret = -EBUSY;
	} else {
		p->stream_result[0] = 0;
		ret = pvdma_stream_start(p, buf);
	}
	mutex_unlock(&p->run_lock);
	return ret ? ret : len;
}

/* Reading waits for the stream's end, then gives its result line. */
static ssize_t pvdma_stream_read(struct file *f, char __user *ubuf, size_t len, loff_t *off)
{
	struct pvdma *p = file_inode(f)->i_private;
	char buf[sizeof(p->stream_result)];

	mutex_lock(&p->run_lock);
	pvdma_stream_finish(p);
	strscpy(buf, p->stream_result, sizeof(buf));
	mutex_unlock(&p->run_lock);
	return simple_read_from_buffer(ubuf, len, off, buf, strlen(buf));
}

static const struct file_operations pvdma_stream_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.read = pvdma_stream_read,
	.write = pvdma_stream_write,
	.llseek = default_llseek,
};

static int pvdma_ring_show(struct seq_file *sf, void *unused)
{
	struct pvdma *p = sf->private;
	unsigned int i, busy = 0;
	unsigned long flags;
	u32 prod, nab;

	spin_lock_irqsave(&p->lock, flags);
	prod = p->prod;
	nab = p->nabandoned;
	for (i = 0; i < p->nent; i++)
		busy += !!p->owner[i];
	spin_unlock_irqrestore(&p->lock, flags);
	seq_printf(sf, "entries=%u producer=%u consumer=%u in_flight=%u abandoned=%u control=%#x\n",
		   p->nent, prod, pvdma_rd(p, PVDMA_REG_CONSUMER), busy, nab,
		   pvdma_rd(p, PVDMA_REG_CONTROL));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(pvdma_ring);

/* ---- the managed device */

/*
 * The driver core calls this for every PCI device. While we are active on
 * the managed device, our ops go (back) on it before any driver probes it
 * (arm64 clears dev->dma_ops when a driver unbinds: arch_teardown_dma_ops),
 * and the module stays pinned while the device has a driver (rmmod refuses).
 */
static int pvdma_bus_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	struct device *dev = data;
	struct pvdma *p;

	mutex_lock(&pvdma_devs_lock);
	list_for_each_entry(p, &pvdma_devs, list) {
		if (&p->gpu->dev != dev || !p->active)
			continue;
		switch (action) {
		case BUS_NOTIFY_BIND_DRIVER:
			if (!p->pinned)
				p->pinned = try_module_get(THIS_MODULE);
			fallthrough;
		case BUS_NOTIFY_UNBOUND_DRIVER:
		case BUS_NOTIFY_DRIVER_NOT_BOUND:
			if (dev->dma_ops != &p->ops) {
				set_dma_ops(dev, &p->ops);
				dev_info(&p->pdev->dev, "DMA ops of %s set again\n", dev_name(dev));
			}
			if (action != BUS_NOTIFY_BIND_DRIVER) {
				if (p->live)
					dev_warn(&p->pdev->dev, "%s left without a driver with %llu mappings (%llu bytes) live\n",
						 dev_name(dev), p->live, p->live_bytes);
				if (p->pinned)
					module_put(THIS_MODULE);
				p->pinned = false;
			}
			break;
		}
	}
	mutex_unlock(&pvdma_devs_lock);
	return NOTIFY_DONE;
}

static struct notifier_block pvdma_nb = {
	.notifier_call = pvdma_bus_notify,
};

static void pvdma_set_active(struct pvdma *p, bool on)
{
	struct device *gdev = &p->gpu->dev;

	device_lock(gdev);
	mutex_lock(&pvdma_devs_lock);
	p->active = on;
	if (on && !gdev->driver)
		set_dma_ops(gdev, &p->ops);
	mutex_unlock(&pvdma_devs_lock);
	device_unlock(gdev);
}

/* Our ops on the managed device; a driver already bound is bound again. */
static int pvdma_take_over(struct pvdma *p)
{
	struct device *gdev = &p->gpu->dev;
	const char *drv = NULL;
	int ret;

	device_lock(gdev);
	p->orig_ops = gdev->dma_ops;
	if (gdev->driver)
		drv = gdev->driver->name;
	device_unlock(gdev);
	pvdma_set_active(p, true);
	if (!drv) {
		dev_info(&p->pdev->dev, "DMA ops installed on %s\n", pci_name(p->gpu));
		return 0;
	}
	if (!reprobe) {
		dev_err(&p->pdev->dev, "%s is bound to %s: unbind it first (or reprobe=1)\n",
			pci_name(p->gpu), drv);
		pvdma_set_active(p, false);
		return -EBUSY;
	}
	dev_warn(&p->pdev->dev, "%s is bound to %s, which may hold guest-physical DMA addresses: unbinding it, then binding it again through pvdma\n",
		 pci_name(p->gpu), drv);
	device_release_driver(gdev);
	device_lock(gdev);
	if (gdev->dma_ops != &p->ops && !gdev->driver)
		set_dma_ops(gdev, &p->ops);
	device_unlock(gdev);
	ret = device_attach(gdev);
	dev_info(&p->pdev->dev, "DMA ops installed on %s; driver bound again: %s\n",
		 pci_name(p->gpu), ret > 0 ? "yes" : "no");
	return 0;
}

/* The managed device back to its own ops, with no driver bound. */
static void pvdma_give_back(struct pvdma *p)
{
	struct device *gdev = &p->gpu->dev;
	int tries;

	pvdma_set_active(p, false);
	for (tries = 0; tries < 10; tries++) {
		if (READ_ONCE(gdev->driver)) {
			dev_warn(&p->pdev->dev, "unbinding %s from its driver first: its DMA goes through pvdma\n",
				 pci_name(p->gpu));
			device_release_driver(gdev);
		}
		device_lock(gdev);
		if (!gdev->driver) {
			if (gdev->dma_ops == &p->ops)
				set_dma_ops(gdev, p->orig_ops);
			device_unlock(gdev);
			break;
		}
		device_unlock(gdev);
	}
	mutex_lock(&pvdma_devs_lock);
	list_del(&p->list);
	if (p->pinned)
		module_put(THIS_MODULE);
	p->pinned = false;
	mutex_unlock(&pvdma_devs_lock);
}

/* The function MANAGED_DEVFN of our slot, with MANAGED_ID and DSN = TOKEN. */
static struct pci_dev *pvdma_find_managed(struct pvdma *p)
{
	struct pci_dev *pdev = p->pdev, *gpu;
	u32 id = pvdma_rd(p, PVDMA_REG_MANAGED_ID);
	u32 fn = pvdma_rd(p, PVDMA_REG_MANAGED_DEVFN);
	u64 dsn;

	if (fn > 7) {
		dev_err(&pdev->dev, "MANAGED_DEVFN %#x: want a function number 0-7\n", fn);
		return NULL;
	}
	gpu = pci_get_slot(pdev->bus, PCI_DEVFN(PCI_SLOT(pdev->devfn), fn));
	if (!gpu || gpu == pdev) {
		dev_err(&pdev->dev, "no managed device at function %u of this slot\n", fn);
		pci_dev_put(gpu);
		return NULL;
	}
	if (gpu->vendor != (id & 0xffff) || gpu->device != id >> 16) {
		dev_err(&pdev->dev, "%s is %04x:%04x, MANAGED_ID says %04x:%04x\n", pci_name(gpu),
			gpu->vendor, gpu->device, id & 0xffff, id >> 16);
		pci_dev_put(gpu);
		return NULL;
	}
	if (p->token) {
		dsn = pci_get_dsn(gpu);
		if (dsn != p->token) {
			dev_err(&pdev->dev, "%s: serial number %#llx, TOKEN %#llx\n", pci_name(gpu),
				dsn, p->token);
			pci_dev_put(gpu);
			return NULL;
		}
	}
	return gpu;
}

/* ---- probe / remove */

static void pvdma_disable_ring(struct pvdma *p)
{
	struct pvdma_map *m, *t;
	unsigned long flags;

	spin_lock_irqsave(&p->lock, flags);
	p->dead = true;
	spin_unlock_irqrestore(&p->lock, flags);
	/* The server unmaps everything this companion mapped. */
	writel(0, p->regs + PVDMA_REG_CONTROL);
	spin_lock_irqsave(&p->lock, flags);
	list_for_each_entry_safe(m, t, &p->abandoned, dead) {
		if (m->slot != PVDMA_NO_SLOT)
			p->owner[m->slot] = NULL;
		list_del(&m->dead);
		p->nabandoned--;
		kmem_cache_free(pvdma_cache, m);
	}
	spin_unlock_irqrestore(&p->lock, flags);
}

/* Records the managed device's driver never unmapped: the server dropped them. */
static void pvdma_free_table(struct pvdma *p)
{
	struct hlist_node *t;
	struct pvdma_map *m;
	unsigned int b;
	u64 n = 0, bytes = 0;

	for (b = 0; b < (1U << PVDMA_HASH_BITS); b++) {
		hlist_for_each_entry_safe(m, t, &p->table[b], node) {
			hlist_del(&m->node);
			n++;
			bytes += m->len;
			/* coherent memory a driver never freed stays allocated */
			kmem_cache_free(pvdma_cache, m);
		}
	}
	if (n)
		dev_warn(&p->pdev->dev, "%llu mappings (%llu bytes) were never unmapped\n",
			 n, bytes);
	p->live = 0;
	p->live_bytes = 0;
}

static void pvdma_log_stats(struct pvdma *p, const char *when)
{
	struct pvdma_stats *s = &p->st;

	dev_info(&p->pdev->dev, "%s: requests=%llu maps=%llu unmaps=%llu errors=%llu delayed=%llu doorbells=%llu bytes_mapped=%llu abandoned=%llu reaped=%llu sleeps=%llu spins=%llu irqs=%llu live_maps=%llu server_requests=%u server_maps=%u server_unmaps=%u server_errors=%u server_delayed=%u server_windows=%u server_bytes=%llu server_lazy=%u\n",
		 when, s->requests, s->maps, s->unmaps, s->errors, s->delayed, s->doorbells,
		 s->bytes_mapped, s->abandoned, s->reaped, s->sleeps, s->spins, s->irqs, p->live,
		 pvdma_rd(p, PVDMA_REG_STAT_REQUESTS), pvdma_rd(p, PVDMA_REG_STAT_MAPS),
		 pvdma_rd(p, PVDMA_REG_STAT_UNMAPS), pvdma_rd(p, PVDMA_REG_STAT_ERRORS),
		 pvdma_rd(p, PVDMA_REG_STAT_DELAYED), pvdma_rd(p, PVDMA_REG_STAT_WINDOWS),
		 pvdma_rd_bytes(p), pvdma_rd(p, PVDMA_REG_STAT_LAZY));
}

static int pvdma_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	resource_size_t ring_len;
	struct pvdma *p;
	u32 v;
	int ret;

	p = kzalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	p->pdev = pdev;
	p->ops = pvdma_ops_template;
	spin_lock_init(&p->lock);
	spin_lock_init(&p->tlock);
	init_waitqueue_head(&p->wq);
	INIT_LIST_HEAD(&p->abandoned);
	INIT_LIST_HEAD(&p->list);
	mutex_init(&p->run_lock);
	p->irq = -1;
	pci_set_drvdata(pdev, p);

	ret = pci_enable_device(pdev);
	if (ret)
		goto err_free;
	pci_set_master(pdev);	/* MSI-X messages are memory writes */
	/* Coherent buffers for the managed device come from our allocator. */
	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
	if (ret)
		goto err_disable;
	if (!(pci_resource_flags(pdev, 0) & IORESOURCE_MEM) ||
	    pci_resource_len(pdev, 0) < PVDMA_REGS_SIZE ||
	    !(pci_resource_flags(pdev, 2) & IORESOURCE_MEM)) {
		dev_err(dev, "BAR0 or BAR2 missing\n");
		ret = -ENODEV;
		goto err_disable;
	}
	ret = pci_request_regions(pdev, KBUILD_MODNAME);
	if (ret)
		goto err_disable;
	p->regs = pci_iomap(pdev, 0, PVDMA_REGS_SIZE);
	if (!p->regs) {
		ret = -ENOMEM;
		goto err_release;
	}
	v = pvdma_rd(p, PVDMA_REG_ID);
	if (v != PVDMA_ID_VALUE || pvdma_rd(p, PVDMA_REG_VERSION) != PVDMA_VERSION) {
		dev_err(dev, "ID %#x version %u: want %#x version %u\n", v,
			pvdma_rd(p, PVDMA_REG_VERSION), PVDMA_ID_VALUE, PVDMA_VERSION);
		ret = -ENODEV;
		goto err_unmap;
	}
	p->nent = pvdma_rd(p, PVDMA_REG_RING_ENTRIES);
	p->granule = pvdma_rd(p, PVDMA_REG_GRANULE);
	p->window = pvdma_rd(p, PVDMA_REG_WINDOW);
	p->max_mapped_mb = pvdma_rd(p, PVDMA_REG_MAX_MAPPED_MB);
	p->max_mappings = pvdma_rd(p, PVDMA_REG_MAX_MAPPINGS);
	p->token = pvdma_rd(p, PVDMA_REG_TOKEN_LO) | (u64)pvdma_rd(p, PVDMA_REG_TOKEN_HI) << 32;
	ring_len = sizeof(struct pvdma_ring_header) +
		   (resource_size_t)p->nent * sizeof(struct pvdma_entry);
	if (p->nent < 2 || !is_power_of_2(p->nent) || ring_len > pci_resource_len(pdev, 2)) {
		dev_err(dev, "RING_ENTRIES %u does not fit BAR2 (%llu bytes)\n", p->nent,
			(u64)pci_resource_len(pdev, 2));
		ret = -ENODEV;
		goto err_unmap;
	}
	p->batch = clamp(max_batch, 1U, p->nent / 2);

	p->gpu = pvdma_find_managed(p);
	if (!p->gpu) {
		ret = -ENODEV;
		goto err_unmap;
	}
	/*
	 * The ring is guest RAM of the server's (a memfd shared with QEMU), not
	 * device memory: map it cacheable like any shared memory, so that guest
	 * and server see one coherent copy (a non-cacheable guest mapping of
	 * cacheable host memory is not coherent on arm64 under KVM/HVF).
	 */
	p->ring = memremap(pci_resource_start(pdev, 2), ring_len, MEMREMAP_WB);
	if (!p->ring) {
		dev_err(dev, "cannot map the ring (BAR2)\n");
		ret = -ENOMEM;
		goto err_gpu;
	}
	p->hdr = p->ring;
	p->ent = p->ring + sizeof(struct pvdma_ring_header);
	p->owner = kvcalloc(p->nent, sizeof(*p->owner), GFP_KERNEL);
	p->table = kvcalloc(1U << PVDMA_HASH_BITS, sizeof(*p->table), GFP_KERNEL);
	if (!p->owner || !p->table) {
		ret = -ENOMEM;
		goto err_ring;
	}

	ret = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSIX);
	if (ret < 0) {
		dev_err(dev, "no MSI-X vector (%d)\n", ret);
		goto err_ring;
	}
	p->irq = pci_irq_vector(pdev, 0);
	ret = request_irq(p->irq, pvdma_irq, 0, KBUILD_MODNAME, p);
	if (ret)
		goto err_vectors;

	/* Enable, then start where the server's consumer stands. */
	writel(PVDMA_CTRL_ENABLE, p->regs + PVDMA_REG_CONTROL);
	p->prod = pvdma_rd(p, PVDMA_REG_CONSUMER);
	WRITE_ONCE(p->hdr->producer, cpu_to_le32(p->prod));

	if (pvdma_dbg_root) {
		p->dbg = debugfs_create_dir(pci_name(pdev), pvdma_dbg_root);
		debugfs_create_file("bench", 0600, p->dbg, p, &pvdma_bench_fops);
		debugfs_create_file("stream", 0600, p->dbg, p, &pvdma_stream_fops);
		debugfs_create_file("ring", 0400, p->dbg, p, &pvdma_ring_fops);
	}
	dev_info(dev, "managing %s (%04x:%04x): ring %u entries, granule %u, window %u, caps %u MiB / %u mappings, producer %u\n",
		 pci_name(p->gpu), p->gpu->vendor, p->gpu->device, p->nent, p->granule, p->window,
		 p->max_mapped_mb, p->max_mappings, p->prod);

	mutex_lock(&pvdma_devs_lock);
	list_add_tail(&p->list, &pvdma_devs);
	mutex_unlock(&pvdma_devs_lock);
	ret = pvdma_take_over(p);
	if (ret)
		goto err_list;
	return 0;

err_list:
	mutex_lock(&pvdma_devs_lock);
	list_del(&p->list);
	mutex_unlock(&pvdma_devs_lock);
	debugfs_remove_recursive(p->dbg);
	pvdma_disable_ring(p);
	free_irq(p->irq, p);
err_vectors:
	pci_free_irq_vectors(pdev);
err_ring:
	kvfree(p->table);
	kvfree(p->owner);
	memunmap(p->ring);
err_gpu:
	pci_dev_put(p->gpu);
err_unmap:
	pci_iounmap(pdev, p->regs);
err_release:
	pci_release_regions(pdev);
err_disable:
	pci_clear_master(pdev);
	pci_disable_device(pdev);
err_free:
	kfree(p);
	return ret;
}

static void pvdma_remove(struct pci_dev *pdev)
{
	struct pvdma *p = pci_get_drvdata(pdev);

	debugfs_remove_recursive(p->dbg);
	mutex_lock(&p->run_lock);
	if (p->stream)
		WRITE_ONCE(p->stream->stop, true);
	pvdma_stream_finish(p);
	mutex_unlock(&p->run_lock);

	pvdma_give_back(p);
	pvdma_log_stats(p, "final");
	pvdma_disable_ring(p);
	pvdma_free_table(p);
	free_irq(p->irq, p);
	pci_free_irq_vectors(pdev);
	kvfree(p->table);
	kvfree(p->owner);
	memunmap(p->ring);
	pci_dev_put(p->gpu);
	pci_iounmap(pdev, p->regs);
	pci_release_regions(pdev);
	pci_clear_master(pdev);
	pci_disable_device(pdev);
	kfree(p);
}

static const struct pci_device_id pvdma_ids[] = {
	{ PCI_DEVICE(0x7470, 0x0001) },	/* thunderpass pvdma companion (paravirtual) */
	{ }
};
MODULE_DEVICE_TABLE(pci, pvdma_ids);

static struct pci_driver pvdma_driver = {
	.name = KBUILD_MODNAME,
	.id_table = pvdma_ids,
	.probe = pvdma_probe,
	.remove = pvdma_remove,
	.dev_groups = pvdma_groups,
};

static int __init pvdma_init(void)
{
	int ret;

	pvdma_cache = KMEM_CACHE(pvdma_map, 0);
	if (!pvdma_cache)
		return -ENOMEM;
	pvdma_dbg_root = debugfs_create_dir(KBUILD_MODNAME, NULL);
	if (IS_ERR(pvdma_dbg_root))
		pvdma_dbg_root = NULL;
	ret = bus_register_notifier(&pci_bus_type, &pvdma_nb);
	if (ret)
		goto err;
	ret = pci_register_driver(&pvdma_driver);
	if (ret) {
		bus_unregister_notifier(&pci_bus_type, &pvdma_nb);
		goto err;
	}
	return 0;
err:
	debugfs_remove_recursive(pvdma_dbg_root);
	kmem_cache_destroy(pvdma_cache);
	return ret;
}

static void __exit pvdma_exit(void)
{
	pci_unregister_driver(&pvdma_driver);
	bus_unregister_notifier(&pci_bus_type, &pvdma_nb);
	debugfs_remove_recursive(pvdma_dbg_root);
	kmem_cache_destroy(pvdma_cache);
}

module_init(pvdma_init);
module_exit(pvdma_exit);

MODULE_DESCRIPTION("thunderpass pvdma: device addresses from the host for a passed-through device");
MODULE_AUTHOR("thunderpass");
MODULE_LICENSE("GPL");
