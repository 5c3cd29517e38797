// SPDX-License-Identifier: GPL-2.0
/*
 * pvdma: debugfs tools, /sys/kernel/debug/pvdma/<companion>/: bench
 * (requests per second), stream (backpressure), ring (its state).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/scatterlist.h>
#include <linux/seq_file.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "pvdma.h"

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
void pvdma_stream_finish(struct pvdma *p)
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

/* The companion's files in its debugfs folder p->dbg (probe). */
void pvdma_debugfs_files(struct pvdma *p)
{
	debugfs_create_file("bench", 0600, p->dbg, p, &pvdma_bench_fops);
	debugfs_create_file("stream", 0600, p->dbg, p, &pvdma_stream_fops);
	debugfs_create_file("ring", 0400, p->dbg, p, &pvdma_ring_fops);
}
