// SPDX-License-Identifier: GPL-2.0
/*
 * tpselftest: a guest driver for thunderpass's model GPU (10de:2b85) that drives
 * its copy engine (docs/copy-engine.md) end to end: guest memory -> device
 * addresses -> server -> VRAM and back, with a fence and a completion interrupt
 * (MSI-X, MSI or INTx, as asked). The test runs once, at probe; the result is a
 * printk line and the sysfs attribute "result" of the bound device.
 * See docs/guest-selftest.md.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/jiffies.h>
#include <linux/ktime.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/string.h>
#include <linux/vmalloc.h>
#include <asm/unaligned.h>

/* The copy engine: a window of BAR0 (docs/copy-engine.md). */
#define TPCE_BASE		0xf00000
#define TPCE_SIZE		0x100
#define TPCE_ID			0x00
#define TPCE_VERSION		0x04
#define TPCE_SRC_LO		0x10
#define TPCE_SRC_HI		0x14
#define TPCE_DST_LO		0x18
#define TPCE_DST_HI		0x1c
#define TPCE_LEN		0x20
#define TPCE_FLAGS		0x24
#define TPCE_FENCE_LO		0x28
#define TPCE_FENCE_HI		0x2c
#define TPCE_FENCE_VALUE	0x30
#define TPCE_DOORBELL		0x40
#define TPCE_STATUS		0x44
#define TPCE_INTR_STATUS	0x48
#define TPCE_INTR_ENABLE	0x4c
#define TPCE_COMPLETED		0x50
#define TPCE_FAULT_LO		0x54
#define TPCE_FAULT_HI		0x58
#define TPCE_VECTOR		0x5c
#define TPCE_DURATION_NS	0x60
#define TPCE_FAULTS		0x64

#define TPCE_ID_VALUE		0x54504345	/* "TPCE" */
#define TPCE_F_SRC_VRAM		BIT(0)
#define TPCE_F_DST_VRAM		BIT(1)
#define TPCE_F_FENCE		BIT(4)
#define TPCE_F_IRQ		BIT(5)
#define TPCE_S_BUSY		BIT(0)
#define TPCE_S_ERROR(s)		(((s) >> 8) & 0xff)
#define TPCE_I_DONE		BIT(0)
#define TPCE_I_ERROR		BIT(1)
#define TPCE_ERR_SRC_FAULT	1

#define TPS_MIN_SIZE		SZ_4K
#define TPS_GUARD		64	/* poison checked on each side of a copy */
#define TPS_POISON		0xa5
#define TPS_REPORT_MAX		4	/* mismatches described in the log */

static char *irq_mode = "msix";
module_param_named(irq, irq_mode, charp, 0444);
MODULE_PARM_DESC(irq, "interrupt mode: msix (default), msi or intx");
static unsigned int jobs = 1000;
module_param(jobs, uint, 0444);
MODULE_PARM_DESC(jobs, "copy jobs (host->VRAM->host, every h2h_every-th also host->host)");
static char *max_size = "8M";
module_param(max_size, charp, 0444);
MODULE_PARM_DESC(max_size, "largest job (bytes, K/M suffixes; default 8M, at least 4K)");
static ulong seed = 1;
module_param(seed, ulong, 0444);
MODULE_PARM_DESC(seed, "seed of the job sizes, offsets and data patterns");
static bool fault_test;
module_param(fault_test, bool, 0444);
MODULE_PARM_DESC(fault_test, "finish with a job whose source nothing maps (expects error 1)");
static ulong fault_addr = 0x7f0000000000UL;
module_param(fault_addr, ulong, 0444);
MODULE_PARM_DESC(fault_addr, "device address of the fault test (default 0x7f0000000000)");
static unsigned int lat_jobs = 200;
module_param(lat_jobs, uint, 0444);
MODULE_PARM_DESC(lat_jobs, "0-byte jobs for the doorbell->handler latency (0: none)");
static unsigned int h2h_every = 10;
module_param(h2h_every, uint, 0444);
MODULE_PARM_DESC(h2h_every, "every Nth job also copies host->host (0: never)");
static unsigned int timeout_ms = 5000;
module_param(timeout_ms, uint, 0444);
MODULE_PARM_DESC(timeout_ms, "wait for a completion interrupt at most this long");
static unsigned int max_job;
module_param(max_job, uint, 0444);
MODULE_PARM_DESC(max_job, "split copies into engine jobs of at most this many bytes (0: as the buffers allow)");
static char *buf_mode = "auto";
module_param_named(buf, buf_mode, charp, 0444);
MODULE_PARM_DESC(buf, "data buffers: auto (default), coherent (one dma_alloc_coherent, needs CMA above 4 MiB) or pages");

/* A run of a buffer that is contiguous in device address space. */
struct tps_run {
	size_t off;
	size_t len;
	dma_addr_t dma;
};

/* A chunk of pages (page-list buffers), each mapped on its own. */
struct tps_chunk {
	struct page *page;
	unsigned int order;
	dma_addr_t dma;
};

/*
 * A data buffer, virtually contiguous for the CPU either way: one coherent
 * allocation (a single run), or chunks of pages put together with vmap() and
 * mapped chunk by chunk (streaming DMA; adjacent chunks merge into one run).
 */
struct tps_buf {
	void *cpu;
	size_t size;
	bool coherent;
	dma_addr_t coh_dma;
	unsigned int nchunks;
	struct tps_chunk *chunks;
	unsigned int nruns;
	struct tps_run *runs;
};

struct tps_stats {
	u64 jobs;		/* logical jobs done (each verified) */
	u64 ce_jobs;		/* engine jobs launched (doorbells) */
	u64 bytes;		/* bytes the engine was asked to copy */
	u64 mismatches;		/* copies whose data (or guard bytes) were wrong */
	u64 lost_irqs;		/* waits that timed out */
	u64 faults;		/* engine jobs of the data test that ended in an error */
	u64 fence_errors;	/* fence not written with the job's value */
	u64 big_ns[3];		/* guest time of the max_size copies: h2v, v2h, h2h */
	u64 big_bytes[3];
	u64 big_ce_ns[3];	/* the engine's own time for them (CE_DURATION_NS) */
	u64 lat_median_ns, lat_p90_ns, lat_n;
};

struct tps_dev {
	struct pci_dev *pdev;
	void __iomem *ce;
	int irq;
	const char *mode;
	resource_size_t vram_size;
	struct tps_buf src, dst;
	u32 *fence;
	dma_addr_t fence_dma;
	u32 fence_seq;

	/* Shared with the interrupt handler. */
	struct completion done;
	u32 intr;		/* CE_INTR_STATUS bits seen since the doorbell */
	ktime_t t_irq;		/* when the handler saw them */
	atomic_t irqs;		/* handler calls */
	atomic_t spurious;	/* handler calls with nothing pending */

	struct tps_stats st;
	u32 completed0, faults0;
	const char *fault_result;
	bool aborted;
	u64 ms;
	char result[768];
};

static inline u32 ce_rd(struct tps_dev *t, u32 reg)
{
	return readl(t->ce + reg);
}

static inline void ce_wr(struct tps_dev *t, u32 reg, u32 val)
{
	writel(val, t->ce + reg);
}

static void ce_wr64(struct tps_dev *t, u32 reg_lo, u64 val)
{
	ce_wr(t, reg_lo, lower_32_bits(val));
	ce_wr(t, reg_lo + 4, upper_32_bits(val));
}

static irqreturn_t tps_irq(int irq, void *data)
{
	struct tps_dev *t = data;
	ktime_t now = ktime_get();
	u32 st;

	atomic_inc(&t->irqs);
	st = ce_rd(t, TPCE_INTR_STATUS);
	if (!st || st == ~0U) {
		atomic_inc(&t->spurious);
		return IRQ_NONE;
	}
	ce_wr(t, TPCE_INTR_STATUS, st);	/* W1C: INTx deasserts here */
	WRITE_ONCE(t->t_irq, now);
	WRITE_ONCE(t->intr, READ_ONCE(t->intr) | st);
	complete(&t->done);
	return IRQ_HANDLED;
}

/* ---- deterministic choices: splitmix64 of (seed, job, what) */

static u64 mix64(u64 x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static u64 pick(u64 job, u64 what)
{
	return mix64(mix64(seed ^ (job << 8) ^ what));
}

/*
 * Job sizes, 4 KiB .. max: every 100th job (job % 100 == 50) exactly max, one in
 * ten of the others 64 KiB..1 MiB and the rest 4..64 KiB, log-uniform in each
 * band (an octave, then a size within it), any byte count.
 */
static size_t job_size(u64 job, size_t max)
{
	u64 r = pick(job, 1);
	unsigned int lo_shift, oct;
	size_t sz;

	if (job % 100 == 50)
		return max;
	lo_shift = (r % 10 == 0) ? 16 : 12;
	oct = (r >> 8) % 4;
	sz = ((size_t)1 << (lo_shift + oct));
	sz += (r >> 16) % sz;
	return clamp_t(size_t, sz, TPS_MIN_SIZE, max);
}

/* The pattern of a job: 64-bit words, each distinct, per (seed, job, copy). */
static void pat_fill(u8 *p, size_t len, u64 base)
{
	size_t i, n = len / 8;

	for (i = 0; i < n; i++)
		put_unaligned_le64(base ^ ((i + 1) * 0x9e3779b97f4a7c15ULL), p + 8 * i);
	if (len % 8) {
		u64 v = base ^ ((n + 1) * 0x9e3779b97f4a7c15ULL);

		for (i = 0; i < len % 8; i++)
			p[8 * n + i] = (u8)(v >> (8 * i));
	}
}

/* Offset of the first byte that differs from the pattern, or len if none. */
static size_t pat_check(const u8 *p, size_t len, u64 base)
{
	size_t i, n = len / 8;

	for (i = 0; i < n; i++) {
		u64 want = base ^ ((i + 1) * 0x9e3779b97f4a7c15ULL);
		u64 got = get_unaligned_le64(p + 8 * i);

		if (got != want)
			return 8 * i + __ffs64(got ^ want) / 8;
	}
	if (len % 8) {
		u64 v = base ^ ((n + 1) * 0x9e3779b97f4a7c15ULL);

		for (i = 0; i < len % 8; i++)
			if (p[8 * n + i] != (u8)(v >> (8 * i)))
				return 8 * n + i;
	}
	return len;
}

/* ---- buffers */

static void tps_buf_free(struct device *dev, struct tps_buf *b)
{
	unsigned int i;

	if (b->coherent && b->cpu)
		dma_free_coherent(dev, b->size, b->cpu, b->coh_dma);
	if (!b->coherent) {
		if (b->cpu)
			vunmap(b->cpu);
		for (i = 0; i < b->nchunks; i++) {
			size_t len = PAGE_SIZE << b->chunks[i].order;

			if (!dma_mapping_error(dev, b->chunks[i].dma))
				dma_unmap_page(dev, b->chunks[i].dma, len, DMA_BIDIRECTIONAL);
			__free_pages(b->chunks[i].page, b->chunks[i].order);
		}
	}
	kfree(b->chunks);
	kfree(b->runs);
	memset(b, 0, sizeof(*b));
}

static int tps_buf_coherent(struct device *dev, struct tps_buf *b, size_t size)
{
	b->runs = kzalloc(sizeof(*b->runs), GFP_KERNEL);
	if (!b->runs)
		return -ENOMEM;
	b->cpu = dma_alloc_coherent(dev, size, &b->coh_dma, GFP_KERNEL | __GFP_NOWARN);
	if (!b->cpu) {
		kfree(b->runs);
		b->runs = NULL;
		return -ENOMEM;
	}
	b->coherent = true;
	b->size = size;
	b->nruns = 1;
	b->runs[0].len = size;
	b->runs[0].dma = b->coh_dma;
	return 0;
}

/* Chunks of up to MAX_ORDER-1 pages (4 MiB with 4 KiB pages), vmap()ed. */
static int tps_buf_pages(struct device *dev, struct tps_buf *b, size_t size)
{
	unsigned int npages = PAGE_ALIGN(size) >> PAGE_SHIFT, done = 0, i, j;
	struct page **pages;
	int ret = -ENOMEM;

	b->size = size;
	b->chunks = kcalloc(npages, sizeof(*b->chunks), GFP_KERNEL);
	b->runs = kcalloc(npages, sizeof(*b->runs), GFP_KERNEL);
	pages = kvmalloc_array(npages, sizeof(*pages), GFP_KERNEL);
	if (!b->chunks || !b->runs || !pages)
		goto out;
	while (done < npages) {
		unsigned int order = min_t(unsigned int, ilog2(npages - done), MAX_ORDER - 1);
		struct page *pg;

		for (;;) {
			pg = alloc_pages(GFP_KERNEL | __GFP_NOWARN | __GFP_NORETRY, order);
			if (pg || !order)
				break;
			order--;
		}
		if (!pg)
			goto out;
		b->chunks[b->nchunks].page = pg;
		b->chunks[b->nchunks].order = order;
		b->chunks[b->nchunks].dma = DMA_MAPPING_ERROR;
		b->nchunks++;
		for (j = 0; j < (1U << order); j++)
			pages[done + j] = pg + j;
		done += 1U << order;
	}
	b->cpu = vmap(pages, npages, VM_MAP, PAGE_KERNEL);
	if (!b->cpu)
		goto out;
	for (i = 0, done = 0; i < b->nchunks; i++) {
		struct tps_chunk *c = &b->chunks[i];
		size_t len = PAGE_SIZE << c->order;
		struct tps_run *r = b->nruns ? &b->runs[b->nruns - 1] : NULL;

		c->dma = dma_map_page(dev, c->page, 0, len, DMA_BIDIRECTIONAL);
		if (dma_mapping_error(dev, c->dma))
			goto out;
		if (r && r->dma + r->len == c->dma) {
			r->len += len;
		} else {
			r = &b->runs[b->nruns++];
			r->off = (size_t)done << PAGE_SHIFT;
			r->len = len;
			r->dma = c->dma;
		}
		done += 1U << c->order;
	}
	ret = 0;
out:
	kvfree(pages);
	if (ret)
		tps_buf_free(dev, b);
	return ret;
}

static int tps_buf_alloc(struct device *dev, struct tps_buf *b, size_t size)
{
	/* Without CMA, dma-direct gives no more than one buddy block. */
	bool fits = IS_ENABLED(CONFIG_DMA_CMA) || size <= (PAGE_SIZE << (MAX_ORDER - 1));

	if (!strcmp(buf_mode, "coherent"))
		return tps_buf_coherent(dev, b, size);
	if (!strcmp(buf_mode, "auto") && fits && !tps_buf_coherent(dev, b, size))
		return 0;
	return tps_buf_pages(dev, b, size);
}

/* Device address of buffer offset off, and how many bytes from there are contiguous. */
static size_t tps_buf_contig(const struct tps_buf *b, size_t off, dma_addr_t *dma)
{
	unsigned int i;

	for (i = 0; i < b->nruns; i++) {
		const struct tps_run *r = &b->runs[i];

		if (off >= r->off && off < r->off + r->len) {
			*dma = r->dma + (off - r->off);
			return r->off + r->len - off;
		}
	}
	*dma = 0;
	return 0;
}

/* Streaming DMA ownership for [off, off + len) (nothing to do when coherent). */
static void tps_buf_sync(struct device *dev, const struct tps_buf *b, size_t off, size_t len,
			 bool for_device)
{
	size_t pos = 0;
	unsigned int i;

	if (b->coherent)
		return;
	for (i = 0; i < b->nchunks; i++) {
		size_t clen = PAGE_SIZE << b->chunks[i].order;

		if (pos < off + len && off < pos + clen) {
			if (for_device)
				dma_sync_single_for_device(dev, b->chunks[i].dma, clen,
							   DMA_BIDIRECTIONAL);
			else
				dma_sync_single_for_cpu(dev, b->chunks[i].dma, clen,
							DMA_BIDIRECTIONAL);
		}
		pos += clen;
	}
}

/* ---- one engine job */

struct tps_job_out {
	u32 err;		/* CE_STATUS error code */
	u32 intr;		/* CE_INTR_STATUS bits the handler saw (or polled) */
	u64 ns;			/* doorbell -> handler, guest clock */
	u32 duration_ns;	/* CE_DURATION_NS */
	bool lost;		/* no interrupt within timeout_ms */
};

/*
 * Launch one job and wait for its interrupt. Returns 0 when the engine went
 * idle (whatever the job's outcome, in *o), -ETIMEDOUT when it is still busy
 * seconds after a lost interrupt (the test stops there).
 */
static int tps_job(struct tps_dev *t, u64 src, u64 dst, u32 len, u32 flags, u32 fence_val,
		   struct tps_job_out *o)
{
	unsigned long left;
	ktime_t t0;
	u32 st;
	int i;

	memset(o, 0, sizeof(*o));
	if (flags & TPCE_F_FENCE)
		WRITE_ONCE(*t->fence, 0);
	reinit_completion(&t->done);
	WRITE_ONCE(t->intr, 0);
	ce_wr64(t, TPCE_SRC_LO, src);
	ce_wr64(t, TPCE_DST_LO, dst);
	ce_wr(t, TPCE_LEN, len);
	ce_wr(t, TPCE_FLAGS, flags);
	if (flags & TPCE_F_FENCE) {
		ce_wr64(t, TPCE_FENCE_LO, t->fence_dma);
		ce_wr(t, TPCE_FENCE_VALUE, fence_val);
	}
	t->st.ce_jobs++;
	t->st.bytes += len;
	t0 = ktime_get();
	ce_wr(t, TPCE_DOORBELL, 1);
	left = wait_for_completion_timeout(&t->done, msecs_to_jiffies(timeout_ms));
	if (left) {
		o->ns = ktime_to_ns(ktime_sub(READ_ONCE(t->t_irq), t0));
		o->intr = READ_ONCE(t->intr);
	} else {
		o->lost = true;
		t->st.lost_irqs++;
		/* Did the job end without telling us? Poll for a while. */
		for (i = 0; i < 250 && (ce_rd(t, TPCE_STATUS) & TPCE_S_BUSY); i++)
			msleep(20);
		if (ce_rd(t, TPCE_STATUS) & TPCE_S_BUSY) {
			pr_err("%s: engine still busy %u ms after the doorbell\n",
			       pci_name(t->pdev), timeout_ms + 5000);
			return -ETIMEDOUT;
		}
		st = ce_rd(t, TPCE_INTR_STATUS);
		ce_wr(t, TPCE_INTR_STATUS, st);
		o->intr = st | READ_ONCE(t->intr);
		pr_warn("%s: no interrupt within %u ms (intr status 0x%x, len %u, flags 0x%x)\n",
			pci_name(t->pdev), timeout_ms, st, len, flags);
	}
	dma_rmb();
	o->err = TPCE_S_ERROR(ce_rd(t, TPCE_STATUS));
	o->duration_ns = ce_rd(t, TPCE_DURATION_NS);
	if ((flags & TPCE_F_FENCE) && !o->err && READ_ONCE(*t->fence) != fence_val) {
		t->st.fence_errors++;
		if (t->st.fence_errors <= TPS_REPORT_MAX)
			pr_warn("%s: fence 0x%x, want 0x%x\n", pci_name(t->pdev),
				READ_ONCE(*t->fence), fence_val);
	}
	return 0;
}

/* One side of a copy: a data buffer at off, or VRAM at off. */
struct tps_side {
	struct tps_buf *buf;	/* NULL: VRAM */
	size_t off;
};

/*
 * Copy len bytes from s to d with as few engine jobs as the buffers' runs
 * allow (one, for a coherent buffer or VRAM). Returns the engine jobs that
 * failed (their error is counted in faults), or -ETIMEDOUT.
 */
static int tps_copy(struct tps_dev *t, struct tps_side s, struct tps_side d, size_t len,
		    u64 *ns, u64 *ce_ns)
{
	struct device *dev = &t->pdev->dev;
	struct tps_side s0 = s, d0 = d;
	size_t len0 = len;
	struct tps_job_out o;
	int bad = 0, ret;
	ktime_t t0;

	if (s.buf)
		tps_buf_sync(dev, s.buf, s.off, len, true);
	if (d.buf)
		tps_buf_sync(dev, d.buf, d.off, len, true);
	t0 = ktime_get();
	*ce_ns = 0;
	while (len) {
		size_t n = len;
		dma_addr_t sa = s.off, da = d.off;
		u32 flags = TPCE_F_FENCE | TPCE_F_IRQ;

		if (s.buf)
			n = min(n, tps_buf_contig(s.buf, s.off, &sa));
		else
			flags |= TPCE_F_SRC_VRAM;
		if (d.buf)
			n = min(n, tps_buf_contig(d.buf, d.off, &da));
		else
			flags |= TPCE_F_DST_VRAM;
		if (max_job)
			n = min_t(size_t, n, max_job);
		if (WARN_ON_ONCE(!n))
			return -EINVAL;
		ret = tps_job(t, sa, da, n, flags, ++t->fence_seq, &o);
		if (ret)
			return ret;
		*ce_ns += o.duration_ns;
		if (o.err || (o.intr & TPCE_I_ERROR)) {
			t->st.faults++;
			bad++;
			if (t->st.faults <= TPS_REPORT_MAX)
				pr_warn("%s: job %llx -> %llx len %zu flags 0x%x: error %u intr 0x%x\n",
					pci_name(t->pdev), (u64)sa, (u64)da, n, flags, o.err,
					o.intr);
		}
		s.off += n;
		d.off += n;
		len -= n;
	}
	*ns = ktime_to_ns(ktime_sub(ktime_get(), t0));
	if (s0.buf)
		tps_buf_sync(dev, s0.buf, s0.off, len0, false);
	if (d0.buf)
		tps_buf_sync(dev, d0.buf, d0.off, len0, false);
	return bad;
}

/* Poison [off - guard, off + len + guard) of the destination before a copy. */
static void tps_poison(struct tps_buf *b, size_t off, size_t len)
{
	size_t lo = off > TPS_GUARD ? off - TPS_GUARD : 0;
	size_t hi = min(b->size, off + len + TPS_GUARD);

	memset(b->cpu + lo, TPS_POISON, hi - lo);
}

/* Check the copy and its guard bytes; counts and reports a mismatch. */
static bool tps_verify(struct tps_dev *t, u64 job, const char *what, size_t off, size_t len,
		       u64 base)
{
	struct tps_buf *b = &t->dst;
	size_t lo = off > TPS_GUARD ? off - TPS_GUARD : 0;
	size_t hi = min(b->size, off + len + TPS_GUARD);
	size_t bad = pat_check(b->cpu + off, len, base);
	const u8 *p = b->cpu;
	size_t i;

	if (bad == len) {
		for (i = lo; i < off && p[i] == TPS_POISON; i++)
			;
		if (i == off)
			for (i = off + len; i < hi && p[i] == TPS_POISON; i++)
				;
		if (i == hi)
			return true;
		t->st.mismatches++;
		if (t->st.mismatches <= TPS_REPORT_MAX)
			pr_warn("%s: job %llu %s: guard byte %zu bytes %s the copy overwritten\n",
				pci_name(t->pdev), job, what, i < off ? off - i : i - off - len + 1,
				i < off ? "before" : "after");
		return false;
	}
	t->st.mismatches++;
	if (t->st.mismatches <= TPS_REPORT_MAX)
		pr_warn("%s: job %llu %s: %zu bytes, first difference at offset %zu (0x%02x)\n",
			pci_name(t->pdev), job, what, len, bad, p[off + bad]);
	return false;
}

/* One logical job: host -> VRAM -> host (and host -> host every h2h_every-th). */
static int tps_one(struct tps_dev *t, u64 job, size_t max)
{
	size_t len = job_size(job, max), room = max - len;
	size_t so = room ? pick(job, 2) % (room + 1) : 0;
	size_t dof = room ? pick(job, 3) % (room + 1) : 0;
	u64 vo = pick(job, 4) % (t->vram_size - len + 1);
	u64 base = pick(job, 5);
	bool big = len == max;
	struct tps_side host_s = { &t->src, so }, host_d = { &t->dst, dof };
	struct tps_side vram = { NULL, vo };
	u64 ns, ce_ns;
	int ret;

	pat_fill(t->src.cpu + so, len, base);

	tps_poison(&t->dst, dof, len);
	ret = tps_copy(t, host_s, vram, len, &ns, &ce_ns);
	if (ret < 0)
		return ret;
	if (big) {
		t->st.big_ns[0] += ns;
		t->st.big_bytes[0] += len;
		t->st.big_ce_ns[0] += ce_ns;
	}
	ret = tps_copy(t, vram, host_d, len, &ns, &ce_ns);
	if (ret < 0)
		return ret;
	if (big) {
		t->st.big_ns[1] += ns;
		t->st.big_bytes[1] += len;
		t->st.big_ce_ns[1] += ce_ns;
	}
	tps_verify(t, job, "host->vram->host", dof, len, base);

	if (h2h_every && job % h2h_every == 0) {
		tps_poison(&t->dst, dof, len);
		ret = tps_copy(t, host_s, host_d, len, &ns, &ce_ns);
		if (ret < 0)
			return ret;
		if (big) {
			t->st.big_ns[2] += ns;
			t->st.big_bytes[2] += len;
			t->st.big_ce_ns[2] += ce_ns;
		}
		tps_verify(t, job, "host->host", dof, len, base);
	}
	t->st.jobs++;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/* Doorbell -> handler for 0-byte jobs that only interrupt. */
static int tps_latency(struct tps_dev *t)
{
	struct tps_job_out o;
	unsigned int i, n = 0;
	u64 *ns;
	int ret = 0;

	if (!lat_jobs)
		return 0;
	ns = kcalloc(lat_jobs, sizeof(*ns), GFP_KERNEL);
	if (!ns)
		return -ENOMEM;
	for (i = 0; i < lat_jobs; i++) {
		ret = tps_job(t, 0, 0, 0, TPCE_F_IRQ, 0, &o);
		if (ret)
			break;
		if (o.err || !(o.intr & TPCE_I_DONE)) {
			t->st.faults++;
			continue;
		}
		if (!o.lost)
			ns[n++] = o.ns;
	}
	if (n) {
		sort(ns, n, sizeof(*ns), cmp_u64, NULL);
		t->st.lat_median_ns = ns[n / 2];
		t->st.lat_p90_ns = ns[min(n - 1, n * 9 / 10)];
		t->st.lat_n = n;
	}
	kfree(ns);
	return ret;
}

/*
 * A source nothing maps: error 1, CE_FAULT = the address, the ERROR interrupt;
 * then an ordinary 64 KiB job must still pass.
 */
static int tps_fault_test(struct tps_dev *t, size_t max)
{
	struct tps_side host_s = { &t->src, 0 }, host_d = { &t->dst, 0 };
	struct tps_side vram = { NULL, 0 };
	size_t len = min_t(size_t, SZ_64K, max);
	u64 fault, base = pick(~0ULL, 5), ns, ce_ns;
	u64 faults0 = t->st.faults, mism0 = t->st.mismatches;
	struct tps_job_out o;
	bool ok = true;
	int ret;

	ret = tps_job(t, fault_addr, 0, SZ_4K, TPCE_F_DST_VRAM | TPCE_F_IRQ, 0, &o);
	if (ret)
		return ret;
	fault = ce_rd(t, TPCE_FAULT_LO) | (u64)ce_rd(t, TPCE_FAULT_HI) << 32;
	if (o.err != TPCE_ERR_SRC_FAULT || fault != fault_addr || !(o.intr & TPCE_I_ERROR) ||
	    o.lost) {
		pr_warn("%s: fault test: error %u (want 1), CE_FAULT 0x%llx (want 0x%lx), intr 0x%x%s\n",
			pci_name(t->pdev), o.err, fault, fault_addr, o.intr,
			o.lost ? ", no interrupt" : "");
		ok = false;
	}
	/* The engine still works. */
	pat_fill(t->src.cpu, len, base);
	tps_poison(&t->dst, 0, len);
	ret = tps_copy(t, host_s, vram, len, &ns, &ce_ns);
	if (ret >= 0)
		ret = tps_copy(t, vram, host_d, len, &ns, &ce_ns);
	if (ret < 0)
		return ret;
	if (!tps_verify(t, ~0ULL, "after the fault", 0, len, base) || t->st.faults != faults0)
		ok = false;
	/* The job after the fault is part of the fault test, not of the data test. */
	t->st.faults = faults0;
	t->st.mismatches = mism0;
	t->fault_result = ok ? "pass" : "fail";
	return 0;
}

/* MiB/s, 0 when nothing was measured */
static u64 mibs(u64 bytes, u64 ns)
{
	return ns ? div64_u64((bytes >> 10) * 1000000000ULL, ns) >> 10 : 0;
}

static void tps_format(struct tps_dev *t)
{
	static const char * const dir[] = { "h2v", "v2h", "h2h" };
	struct tps_stats *s = &t->st;
	bool pass = !t->aborted && s->jobs == jobs && !s->mismatches && !s->lost_irqs &&
		    !s->faults && !s->fence_errors && strcmp(t->fault_result, "fail");
	size_t n = 0, sz = sizeof(t->result);
	int i;

	n += scnprintf(t->result + n, sz - n,
		       "dev=%s irq=%s irqno=%d jobs=%llu ce_jobs=%llu bytes=%llu mismatches=%llu lost_irqs=%llu faults=%llu fence_errors=%llu spurious=%d irqs=%d fault_test=%s",
		       pci_name(t->pdev), t->mode, t->irq, s->jobs, s->ce_jobs, s->bytes,
		       s->mismatches, s->lost_irqs, s->faults, s->fence_errors,
		       atomic_read(&t->spurious), atomic_read(&t->irqs), t->fault_result);
	n += scnprintf(t->result + n, sz - n,
		       " latency_us_median=%llu.%01llu latency_us_p90=%llu.%01llu latency_n=%llu",
		       s->lat_median_ns / 1000, s->lat_median_ns / 100 % 10,
		       s->lat_p90_ns / 1000, s->lat_p90_ns / 100 % 10, s->lat_n);
	for (i = 0; i < 3; i++)
		n += scnprintf(t->result + n, sz - n, " bw_%s_mibs=%llu", dir[i],
			       mibs(s->big_bytes[i], s->big_ns[i]));
	for (i = 0; i < 3; i++)
		n += scnprintf(t->result + n, sz - n, " ce_bw_%s_mibs=%llu", dir[i],
			       mibs(s->big_bytes[i], s->big_ce_ns[i]));
	n += scnprintf(t->result + n, sz - n,
		       " max_size=%zu buf=%s runs=%u+%u ce_completed=%u ce_faults=%u time_ms=%llu result=%s",
		       t->src.size, t->src.coherent ? "coherent" : "pages", t->src.nruns,
		       t->dst.nruns, ce_rd(t, TPCE_COMPLETED) - t->completed0,
		       ce_rd(t, TPCE_FAULTS) - t->faults0, t->ms,
		       t->aborted ? "aborted" : pass ? "pass" : "fail");
}

static void tps_run(struct tps_dev *t, size_t max)
{
	ktime_t t0 = ktime_get();
	u64 j;
	int ret = 0;

	t->fault_result = fault_test ? "fail" : "skip";
	t->completed0 = ce_rd(t, TPCE_COMPLETED);
	t->faults0 = ce_rd(t, TPCE_FAULTS);
	for (j = 0; j < jobs && !ret; j++) {
		ret = tps_one(t, j, max);
		cond_resched();
	}
	if (!ret)
		ret = tps_latency(t);
	if (!ret && fault_test)
		ret = tps_fault_test(t, max);
	if (ret)
		t->aborted = true;
	t->ms = ktime_ms_delta(ktime_get(), t0);
	tps_format(t);
	pr_info("%s\n", t->result);
}

static ssize_t result_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct tps_dev *t = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%s\n", t->result);
}
static DEVICE_ATTR_RO(result);

static struct attribute *tps_attrs[] = {
	&dev_attr_result.attr,
	NULL,
};
ATTRIBUTE_GROUPS(tps);

static int tps_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	unsigned int irq_flags;
	struct tps_dev *t;
	size_t max;
	char *end;
	u32 v;
	int ret, nvec;

	max = memparse(max_size, &end);
	if (*end || max < TPS_MIN_SIZE || max > SZ_1G) {
		dev_err(dev, "max_size=%s: want 4K..1G\n", max_size);
		return -EINVAL;
	}
	if (!strcmp(irq_mode, "msix")) {
		irq_flags = PCI_IRQ_MSIX;
	} else if (!strcmp(irq_mode, "msi")) {
		irq_flags = PCI_IRQ_MSI;
	} else if (!strcmp(irq_mode, "intx")) {
		irq_flags = PCI_IRQ_LEGACY;
	} else {
		dev_err(dev, "irq=%s: want msix, msi or intx\n", irq_mode);
		return -EINVAL;
	}
	if (strcmp(buf_mode, "auto") && strcmp(buf_mode, "coherent") && strcmp(buf_mode, "pages")) {
		dev_err(dev, "buf=%s: want auto, coherent or pages\n", buf_mode);
		return -EINVAL;
	}

	t = kzalloc(sizeof(*t), GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	t->pdev = pdev;
	t->mode = irq_mode;
	init_completion(&t->done);
	pci_set_drvdata(pdev, t);

	ret = pci_enable_device(pdev);
	if (ret)
		goto err_free;
	pci_set_master(pdev);
	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
	if (ret) {
		dev_err(dev, "no 64-bit DMA\n");
		goto err_disable;
	}
	t->vram_size = pci_resource_len(pdev, 1);
	if (pci_resource_len(pdev, 0) < TPCE_BASE + TPCE_SIZE || t->vram_size < max) {
		dev_err(dev, "BAR0 (%llu bytes) or BAR1 (%llu bytes) too small\n",
			(u64)pci_resource_len(pdev, 0), (u64)t->vram_size);
		ret = -ENODEV;
		goto err_disable;
	}
	ret = pci_request_region(pdev, 0, KBUILD_MODNAME);
	if (ret)
		goto err_disable;
	t->ce = ioremap(pci_resource_start(pdev, 0) + TPCE_BASE, TPCE_SIZE);
	if (!t->ce) {
		ret = -ENOMEM;
		goto err_release;
	}
	v = ce_rd(t, TPCE_ID);
	if (v != TPCE_ID_VALUE) {
		dev_err(dev, "no copy engine: CE_ID 0x%08x (want 0x%08x)\n", v, TPCE_ID_VALUE);
		ret = -ENODEV;
		goto err_unmap;
	}
	dev_info(dev, "copy engine version %u\n", ce_rd(t, TPCE_VERSION));

	t->fence = dma_alloc_coherent(dev, PAGE_SIZE, &t->fence_dma, GFP_KERNEL);
	if (!t->fence) {
		ret = -ENOMEM;
		goto err_unmap;
	}
	ret = tps_buf_alloc(dev, &t->src, max);
	if (!ret)
		ret = tps_buf_alloc(dev, &t->dst, max);
	if (ret) {
		dev_err(dev, "no memory for 2 x %zu byte buffers (buf=%s)\n", max, buf_mode);
		goto err_bufs;
	}

	nvec = pci_alloc_irq_vectors(pdev, 1, 1, irq_flags);
	if (nvec < 0) {
		dev_err(dev, "irq=%s: no vector (%d)\n", irq_mode, nvec);
		ret = nvec;
		goto err_bufs;
	}
	t->irq = pci_irq_vector(pdev, 0);
	/* Quiet engine before the handler goes in. */
	ce_wr(t, TPCE_INTR_ENABLE, 0);
	ce_wr(t, TPCE_INTR_STATUS, ~0U);
	ce_wr(t, TPCE_VECTOR, 0);
	ret = request_irq(t->irq, tps_irq, irq_flags == PCI_IRQ_LEGACY ? IRQF_SHARED : 0,
			  KBUILD_MODNAME, t);
	if (ret)
		goto err_vectors;
	ce_wr(t, TPCE_INTR_ENABLE, TPCE_I_DONE | TPCE_I_ERROR);
	dev_info(dev, "irq=%s (irq %d, msix %d msi %d), buffers %s (%u+%u runs)\n", irq_mode,
		 t->irq, pdev->msix_enabled, pdev->msi_enabled,
		 t->src.coherent ? "coherent" : "pages", t->src.nruns, t->dst.nruns);

	tps_run(t, max);
	return 0;

err_vectors:
	pci_free_irq_vectors(pdev);
err_bufs:
	tps_buf_free(dev, &t->dst);
	tps_buf_free(dev, &t->src);
	dma_free_coherent(dev, PAGE_SIZE, t->fence, t->fence_dma);
err_unmap:
	iounmap(t->ce);
err_release:
	pci_release_region(pdev, 0);
err_disable:
	pci_clear_master(pdev);
	pci_disable_device(pdev);
err_free:
	kfree(t);
	return ret;
}

static void tps_remove(struct pci_dev *pdev)
{
	struct tps_dev *t = pci_get_drvdata(pdev);
	struct device *dev = &pdev->dev;

	ce_wr(t, TPCE_INTR_ENABLE, 0);
	ce_wr(t, TPCE_INTR_STATUS, ~0U);
	free_irq(t->irq, t);
	pci_free_irq_vectors(pdev);
	tps_buf_free(dev, &t->dst);
	tps_buf_free(dev, &t->src);
	dma_free_coherent(dev, PAGE_SIZE, t->fence, t->fence_dma);
	iounmap(t->ce);
	pci_release_region(pdev, 0);
	pci_clear_master(pdev);
	pci_disable_device(pdev);
	kfree(t);
}

static const struct pci_device_id tps_ids[] = {
	{ PCI_DEVICE(0x10de, 0x2b85) },	/* thunderpass model GB202 (RTX 5090) */
	{ }
};
MODULE_DEVICE_TABLE(pci, tps_ids);

static struct pci_driver tps_driver = {
	.name = KBUILD_MODNAME,
	.id_table = tps_ids,
	.probe = tps_probe,
	.remove = tps_remove,
	.dev_groups = tps_groups,
};
module_pci_driver(tps_driver);

MODULE_DESCRIPTION("thunderpass model GPU copy-engine self-test (DMA, fence, MSI-X/MSI/INTx)");
MODULE_AUTHOR("thunderpass");
MODULE_LICENSE("GPL");
