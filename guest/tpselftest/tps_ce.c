// SPDX-License-Identifier: GPL-2.0
/*
 * tpselftest: the copy engine (docs/copy-engine.md): one job launched and
 * waited for, the completion interrupt, and a copy split into jobs along the
 * buffers' runs.
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
#include <linux/module.h>
#include <linux/string.h>

#include "tpselftest.h"

static unsigned int timeout_ms = 5000;
module_param(timeout_ms, uint, 0444);
MODULE_PARM_DESC(timeout_ms, "wait for a completion interrupt at most this long");
static unsigned int max_job;
module_param(max_job, uint, 0444);
MODULE_PARM_DESC(max_job, "split copies into engine jobs of at most this many bytes (0: as the buffers allow)");

static void ce_wr64(struct tps_dev *t, u32 reg_lo, u64 val)
{
	ce_wr(t, reg_lo, lower_32_bits(val));
	ce_wr(t, reg_lo + 4, upper_32_bits(val));
}

irqreturn_t tps_irq(int irq, void *data)
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

/* ---- one engine job */

/*
 * Launch one job and wait for its interrupt. Returns 0 when the engine went
 * idle (whatever the job's outcome, in *o), -ETIMEDOUT when it is still busy
 * seconds after a lost interrupt (the test stops there).
 */
int tps_job(struct tps_dev *t, u64 src, u64 dst, u32 len, u32 flags, u32 fence_val,
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

/*
 * Copy len bytes from s to d with as few engine jobs as the buffers' runs
 * allow (one, for a coherent buffer or VRAM). Returns the engine jobs that
 * failed (their error is counted in faults), or -ETIMEDOUT.
 */
int tps_copy(struct tps_dev *t, struct tps_side s, struct tps_side d, size_t len,
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
