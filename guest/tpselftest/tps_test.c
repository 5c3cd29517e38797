// SPDX-License-Identifier: GPL-2.0
/*
 * tpselftest: the tests, run once at probe: the data jobs (host -> VRAM ->
 * host, host -> host) with their checks, the interrupt latency, the fault
 * test, and the result line.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/ktime.h>
#include <linux/minmax.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/string.h>
#include <asm/unaligned.h>

#include "tpselftest.h"

static unsigned int jobs = 1000;
module_param(jobs, uint, 0444);
MODULE_PARM_DESC(jobs, "copy jobs (host->VRAM->host, every h2h_every-th also host->host)");
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

void tps_run(struct tps_dev *t, size_t max)
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
