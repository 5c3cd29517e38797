/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tpselftest: what the parts of the module share (private to guest/tpselftest).
 * The copy engine's registers (docs/copy-engine.md), the device's state, and
 * the functions one part calls in another:
 *
 *   tps_main.c   module, probe/remove, the sysfs attribute "result"
 *   tps_buf.c    data buffers (coherent, or pages mapped chunk by chunk)
 *   tps_ce.c     the copy engine: one job, its interrupt, a copy of many jobs
 *   tps_test.c   the tests: data jobs, latency, fault test, the result line
 */
#ifndef TPSELFTEST_H
#define TPSELFTEST_H

#include <linux/completion.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/ktime.h>
#include <linux/pci.h>
#include <linux/sizes.h>
#include <linux/types.h>

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

struct tps_job_out {
	u32 err;		/* CE_STATUS error code */
	u32 intr;		/* CE_INTR_STATUS bits the handler saw (or polled) */
	u64 ns;			/* doorbell -> handler, guest clock */
	u32 duration_ns;	/* CE_DURATION_NS */
	bool lost;		/* no interrupt within timeout_ms */
};

/* One side of a copy: a data buffer at off, or VRAM at off. */
struct tps_side {
	struct tps_buf *buf;	/* NULL: VRAM */
	size_t off;
};

static inline u32 ce_rd(struct tps_dev *t, u32 reg)
{
	return readl(t->ce + reg);
}

static inline void ce_wr(struct tps_dev *t, u32 reg, u32 val)
{
	writel(val, t->ce + reg);
}

/* tps_main.c */
extern char *tps_buf_mode;

/* tps_buf.c */
void tps_buf_free(struct device *dev, struct tps_buf *b);
int tps_buf_alloc(struct device *dev, struct tps_buf *b, size_t size);
size_t tps_buf_contig(const struct tps_buf *b, size_t off, dma_addr_t *dma);
void tps_buf_sync(struct device *dev, const struct tps_buf *b, size_t off, size_t len,
		  bool for_device);

/* tps_ce.c */
irqreturn_t tps_irq(int irq, void *data);
int tps_job(struct tps_dev *t, u64 src, u64 dst, u32 len, u32 flags, u32 fence_val,
	    struct tps_job_out *o);
int tps_copy(struct tps_dev *t, struct tps_side s, struct tps_side d, size_t len,
	     u64 *ns, u64 *ce_ns);

/* tps_test.c */
void tps_run(struct tps_dev *t, size_t max);

#endif /* TPSELFTEST_H */
