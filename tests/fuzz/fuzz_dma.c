/* SPDX-License-Identifier: MIT */
/*
 * fuzz_dma: the guest memory map (lib/dma.c) and the IOMMU models
 * (lib/iommu_identity.c, lib/iommu_dart.c) through the device's own entry
 * points (tp_device_dma_map/unmap, tp_device_iommu_map/unmap and the
 * device's DMA, tp_device_dma_rw), checked step by step against a reference
 * model written here from the rules in dma.h, iommu.h and docs/iommu.md:
 *
 *  - DMA_MAP/UNMAP succeed or fail with the errno the rules give (alignment,
 *    wrap, overlap, cutting a region, a short fd), and the map then holds
 *    exactly the reference's regions, sorted, with their bytes counted;
 *  - an unmapped region's memory is gone from the process (mincore), its fd
 *    closed: nothing leaks;
 *  - dart: map() refuses what it must, in its order, and otherwise returns
 *    the first-fit device address (aperture, alignment, offset in page),
 *    never overlapping a live mapping; the page tables hold exactly the live
 *    mappings with their permissions; unmap() only undoes a whole map();
 *    a region's removal tears down what points into it;
 *  - the device's DMA reaches a byte exactly when the reference says so,
 *    stops at the first byte it cannot reach (reporting it), and the bytes
 *    land in (or come from) the right place of the right memfd, seen
 *    through the harness's own mapping of it;
 *  - after the session ends: no region, no mapping, one L1 table, no fd.
 *
 * Input: a setup byte (0 identity, 1 dart, 2 dart with a tiny aperture and
 * caps so they are reached), then operations (see op()).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "device.h"
#include "fake_backend.h"
#include "fuzz_common.h"
#include "util.h"

#define MAX_OPS 128
#define MAX_REF 256
#define PAGE 4096ull
#define DPAGE 16384ull
#define DMASK (DPAGE - 1)
#define MAX_FD_BYTES (64ull << 20) /* larger maps go without an fd */
#define FILL 65536u                /* bytes of a memfd given a pattern */
#define MAX_RW 65536u
#define PTE_VALID 1ull
#define PTE_NO_WRITE 4ull
#define PTE_NO_READ 8ull
#define PTE_ADDR(p) (((p) & 0x0000003ffffffc00ull) << 4)
#define RW (TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK)

struct ref_region {
	uint64_t iova, size, fd_off;
	uint32_t prot;
	int fd;        /* the harness's own copy, -1 when mapped without one */
	uint8_t *mine; /* the harness's own mapping of [fd_off, fd_off + size) */
	void *vaddr;   /* the core's, for the leak check */
};

struct ref_map {
	uint64_t dva, len, page, npages, iova_page;
	uint32_t prot;
};

struct ref {
	struct ref_region reg[MAX_REF];
	unsigned nreg;
	struct ref_map map[MAX_REF];
	unsigned nmap;
	uint64_t id_live, id_bytes; /* identity's counters (saturating) */
};

struct target {
	bool open;
	struct fake_be fb;
	struct tp_device dev;
	bool dart;
	struct tp_dart_config cfg;
};

static struct target targets[3];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_init_logging();
	return 0;
}

static struct target *target_get(unsigned which)
{
	struct target *t = &targets[which];

	if (t->open)
		return t;
	FZ_CHECK(fake_be_init(&t->fb, NULL) == 0, "fake_be_init");
	FZ_CHECK(tp_device_open(&t->dev, &t->fb.be, which ? "dart" : "identity") == 0, "open");
	t->dart = which != 0;
	tp_dart_config_default(&t->cfg);
	if (which == 2) {
		/* Small enough that caps and the aperture run out within an input. */
		t->cfg.aperture_size = 64 * DPAGE;
		t->cfg.max_bytes = 48 * DPAGE;
		t->cfg.max_mappings = 8;
		t->dev.iommu->ops->destroy(t->dev.iommu);
		FZ_CHECK(tp_iommu_dart_create(t->dev.name, &t->cfg, &t->dev.iommu) == 0, "dart");
	}
	t->open = true;
	return t;
}

static uint64_t gen_addr(struct fz_reader *r)
{
	uint8_t k = fz_u8(r);

	switch (k >> 6) {
	case 0: return (uint64_t)fz_u8(r) * PAGE;
	case 1: return (uint64_t)fz_u16(r) * PAGE;
	case 2: return (uint64_t)fz_u16(r) * PAGE + (k & 0x3f) * 0x101u;
	default: return fz_u64(r);
	}
}

static uint64_t gen_size(struct fz_reader *r)
{
	uint8_t k = fz_u8(r);

	switch (k >> 6) {
	case 0: return ((k & 0x3fu) + 1) * PAGE;
	case 1: return ((uint64_t)fz_u8(r) + 1) * PAGE;
	case 2: return (uint64_t)fz_u16(r) * (k & 1 ? 1 : PAGE);
	default: return fz_u64(r);
	}
}

static bool wraps(uint64_t a, uint64_t n)
{
	return a + n < a || (n && a + n == 0);
}

static struct ref_region *ref_find(struct ref *f, uint64_t iova)
{
	for (unsigned i = 0; i < f->nreg; i++)
		if (iova >= f->reg[i].iova && iova - f->reg[i].iova < f->reg[i].size)
			return &f->reg[i];
	return NULL;
}

static void ref_release(struct ref_region *g)
{
	if (g->mine)
		munmap(g->mine, g->size);
	if (g->fd >= 0)
		close(g->fd);
}

/* dart: a region goes, and every mapping with a page in it. */
static void ref_drop_maps(struct ref *f, const struct ref_region *g)
{
	unsigned keep = 0;

	for (unsigned i = 0; i < f->nmap; i++) {
		const struct ref_map *m = &f->map[i];

		if (!(m->iova_page < g->iova + g->size && g->iova < m->iova_page + m->npages * DPAGE))
			f->map[keep++] = *m;
	}
	f->nmap = keep;
}

static void check_state(struct target *t, struct ref *f)
{
	const struct tp_dma_map *dm = &t->dev.dma;
	const struct tp_iommu_stats *st = &t->dev.iommu->st;
	uint64_t bytes = 0, pages = 0;

	FZ_CHECK(dm->n == f->nreg, "%u regions, reference %u", dm->n, f->nreg);
	for (unsigned i = 0; i < f->nreg; i++) {
		const struct ref_region *g = &f->reg[i];
		const struct tp_dma_region *d = &dm->r[i];

		FZ_CHECK(d->iova == g->iova && d->size == g->size && d->prot == g->prot &&
				 (d->vaddr != NULL) == (g->fd >= 0),
			 "region %u: [%#llx +%#llx] prot %u, reference [%#llx +%#llx] prot %u", i,
			 (unsigned long long)d->iova, (unsigned long long)d->size, d->prot,
			 (unsigned long long)g->iova, (unsigned long long)g->size, g->prot);
		bytes += g->size;
	}
	FZ_CHECK(dm->bytes == bytes, "%llu bytes mapped, reference %llu",
		 (unsigned long long)dm->bytes, (unsigned long long)bytes);
	if (!t->dart) {
		FZ_CHECK(st->live == f->id_live && st->bytes == f->id_bytes, "identity counters");
		return;
	}
	for (unsigned i = 0; i < f->nmap; i++) {
		const struct ref_map *m = &f->map[i];

		pages += m->npages;
		for (uint64_t k = 0; k < m->npages; k += m->npages - 1 ? m->npages - 1 : 1) {
			uint64_t l1e, pte;
			int rc = tp_dart_read_ptes(t->dev.iommu, (m->page + k) * DPAGE, &l1e, &pte);

			FZ_CHECK(rc == 0 && (pte & PTE_VALID) &&
					 PTE_ADDR(pte) == m->iova_page + k * DPAGE &&
					 !(pte & PTE_NO_READ) == !!(m->prot & TP_VU_DMA_READ_OK) &&
					 !(pte & PTE_NO_WRITE) == !!(m->prot & TP_VU_DMA_WRITE_OK),
				 "dart page %#llx of mapping %#llx: rc %d pte %#llx",
				 (unsigned long long)(m->page + k), (unsigned long long)m->dva, rc,
				 (unsigned long long)pte);
		}
	}
	FZ_CHECK(st->live == f->nmap && st->pages == pages && st->bytes == pages * DPAGE,
		 "dart counters: %llu live, %llu pages; reference %u, %llu",
		 (unsigned long long)st->live, (unsigned long long)st->pages, f->nmap,
		 (unsigned long long)pages);
}

static void op_dma_map(struct target *t, struct ref *f, struct fz_reader *r)
{
	uint64_t iova = gen_addr(r), size = gen_size(r);
	uint8_t mode = fz_u8(r);
	uint64_t off = (uint64_t)fz_u8(r) * PAGE + ((mode & 0x40) ? 0x10 : 0);
	uint32_t prot = (mode >> 2 & 3) | ((mode & 0x10) ? 4 : 0);
	unsigned kind = mode & 3;
	int fd = -1, mine = -1, want = 0, rc;
	uint8_t *map = NULL;
	const struct tp_dma_region *d;

	if (kind && (wraps(off, size) || off + size > MAX_FD_BYTES))
		kind = 0;
	if (kind == 1 || kind == 2) {
		uint64_t flen = off + size;

		mine = fz_make_fd(0, 0);
		if (kind == 2) /* a page short, when there is a page */
			flen = flen > PAGE ? flen - PAGE : 0;
		FZ_CHECK(!ftruncate(mine, (off_t)flen), "ftruncate");
		if (kind == 1 && !(size & (PAGE - 1)) && !(off & (PAGE - 1)) && size) {
			map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mine, (off_t)off);
			FZ_CHECK(map != MAP_FAILED, "mmap of the harness's copy");
			for (uint64_t i = 0; i < TP_MIN(size, (uint64_t)FILL); i++)
				map[i] = (uint8_t)(i * 7 + (iova >> 12));
		}
		fd = dup(mine);
	} else if (kind == 3) {
		fd = fz_make_fd(0xc0, 0);
	}
	/* The rules of dma.h, in the order it checks them. */
	if (!size || ((iova | size | off) & (PAGE - 1)) || wraps(iova, size) || wraps(off, size) ||
	    (prot & ~RW))
		want = -EINVAL;
	else if (f->nreg >= MAX_REF)
		want = 1; /* the harness's limit: skip below */
	else
		for (unsigned i = 0; i < f->nreg && !want; i++)
			if (f->reg[i].iova < iova + size && iova < f->reg[i].iova + f->reg[i].size)
				want = -EEXIST;
	if (want == 1) {
		if (fd >= 0)
			close(fd);
		if (map)
			munmap(map, size);
		if (mine >= 0)
			close(mine);
		return;
	}
	if (!want && kind == 2)
		want = -EINVAL; /* the file is shorter than the map */
	if (!want && kind == 3)
		want = 1; /* mmap refuses an O_PATH fd: any errno */
	if (!want && (mode & 0x20))
		t->fb.dma_map_rc = want = -EIO;
	rc = tp_device_dma_map(&t->dev, iova, size, fd, off, prot);
	t->fb.dma_map_rc = 0;
	FZ_CHECK(want == 1 ? rc < 0 : rc == want, "DMA_MAP [%#llx +%#llx] off %#llx fd kind %u: %d, want %d",
		 (unsigned long long)iova, (unsigned long long)size, (unsigned long long)off, kind, rc,
		 want);
	if (rc) {
		if (map)
			munmap(map, size);
		if (mine >= 0)
			close(mine);
		return;
	}
	d = tp_dma_find(&t->dev.dma, iova);
	FZ_CHECK(d && d->iova == iova, "new region not found");
	if (map && d->vaddr && (prot & TP_VU_DMA_READ_OK))
		FZ_CHECK(((uint8_t *)d->vaddr)[0] == map[0], "the core's mapping is not the memfd's");
	{
		unsigned i = f->nreg++;

		while (i && f->reg[i - 1].iova > iova) {
			f->reg[i] = f->reg[i - 1];
			i--;
		}
		f->reg[i] = (struct ref_region){ iova, size, off, prot, mine, map, d->vaddr };
	}
}

/* After an unmap: the core's mapping is gone from the address space. */
static void check_unmapped(void *vaddr, uint64_t size)
{
	unsigned char vec;

	if (vaddr)
		FZ_CHECK(mincore(vaddr, PAGE, &vec) < 0 && errno == ENOMEM,
			 "region memory %p still mapped after its unmap", vaddr);
	(void)size;
}

static void op_dma_unmap(struct target *t, struct ref *f, struct fz_reader *r)
{
	uint64_t iova = gen_addr(r), size = gen_size(r), end = iova + size;
	unsigned keep = 0;
	int want = 0, rc;

	if (f->nreg && (fz_u8(r) & 1)) {
		const struct ref_region *g = &f->reg[fz_u8(r) % f->nreg];

		iova = g->iova;
		size = g->size;
		end = iova + size;
	}
	if (!size || end < iova)
		want = -EINVAL;
	for (unsigned i = 0; i < f->nreg && !want; i++) {
		const struct ref_region *g = &f->reg[i];

		if (g->iova < end && iova < g->iova + g->size && (g->iova < iova || g->iova + g->size > end))
			want = -EINVAL; /* would cut a region in two */
	}
	rc = tp_device_dma_unmap(&t->dev, iova, size, false);
	FZ_CHECK(rc == want, "DMA_UNMAP [%#llx +%#llx]: %d, want %d", (unsigned long long)iova,
		 (unsigned long long)size, rc, want);
	if (rc)
		return;
	for (unsigned i = 0; i < f->nreg; i++) {
		struct ref_region *g = &f->reg[i];

		if (g->iova < end && iova < g->iova + g->size) {
			check_unmapped(g->vaddr, g->size);
			ref_drop_maps(f, g);
			ref_release(g);
		} else {
			f->reg[keep++] = *g;
		}
	}
	f->nreg = keep;
}

static void ref_clear(struct ref *f, bool check)
{
	for (unsigned i = 0; i < f->nreg; i++) {
		if (check)
			check_unmapped(f->reg[i].vaddr, f->reg[i].size);
		ref_release(&f->reg[i]);
	}
	f->nreg = f->nmap = 0;
}

/* The first free aligned run of npages in the aperture, as first fit finds. */
static bool ref_fit(const struct target *t, const struct ref *f, uint64_t npages, uint64_t al,
		    uint64_t *page)
{
	uint64_t lo = t->cfg.aperture_base / DPAGE, top = lo + t->cfg.aperture_size / DPAGE;
	uint64_t at = lo;

	for (;;) {
		uint64_t a = (at + al - 1) & ~(al - 1), next = top, after = top;

		/* The lowest mapping that starts at or after `at`. */
		for (unsigned i = 0; i < f->nmap; i++) {
			if (f->map[i].page >= at && f->map[i].page < next) {
				next = f->map[i].page;
				after = next + f->map[i].npages;
			}
		}
		if (a <= next && npages <= next - a) {
			*page = a;
			return true;
		}
		if (next == top)
			return false;
		at = after;
	}
}

static int ref_dart_map(const struct target *t, const struct ref *f, uint64_t iova, uint64_t len,
			uint32_t prot, uint64_t align, struct ref_map *m)
{
	const struct ref_region *g = NULL;
	uint64_t first, end, pad, need, maxb = TP_MIN(t->cfg.max_bytes, 1ull << 36), bytes = 0;

	if (!len || !prot || (prot & ~RW) || (align > 1 && !tp_is_pow2(align)))
		return -EINVAL;
	if (align > 1 && (iova & DMASK & (align - 1)))
		return -EINVAL;
	for (unsigned i = 0; i < f->nreg; i++)
		if (iova >= f->reg[i].iova && iova - f->reg[i].iova < f->reg[i].size)
			g = &f->reg[i];
	if (!g || len > g->iova + g->size - iova)
		return -EFAULT;
	first = iova & ~DMASK;
	end = iova + len;
	pad = (0 - end) & DMASK;
	if (first < g->iova || pad > g->iova + g->size - end)
		return -EINVAL;
	if ((g->prot & prot) != prot)
		return -EACCES;
	if (end + pad > (1ull << 42))
		return -ERANGE;
	for (unsigned i = 0; i < f->nmap; i++)
		bytes += f->map[i].npages * DPAGE;
	need = end + pad - first;
	if (f->nmap >= t->cfg.max_mappings || need > maxb - TP_MIN(bytes, maxb))
		return -ENOSPC;
	m->npages = need / DPAGE;
	if (!ref_fit(t, f, m->npages, align > DPAGE ? align / DPAGE : 1, &m->page))
		return -ENOMEM;
	m->iova_page = first;
	m->len = len;
	m->prot = prot;
	m->dva = m->page * DPAGE + (iova & DMASK);
	return 0;
}

static void op_iommu_map(struct target *t, struct ref *f, struct fz_reader *r)
{
	uint8_t k = fz_u8(r), a = fz_u8(r);
	uint64_t iova, len, align, dva = 0;
	uint32_t prot = (k & 0x10) ? k & 7 : (k & 3);
	struct ref_map m;
	int want, rc;

	if (f->nreg && (k & 0x80)) {
		const struct ref_region *g = &f->reg[fz_u8(r) % f->nreg];

		iova = g->iova + fz_u32(r) % g->size;
		len = (k & 0x40) ? g->iova + g->size - iova : (uint64_t)fz_u16(r) + 1;
	} else {
		iova = gen_addr(r);
		len = gen_size(r);
	}
	align = a < 48 ? (a ? 1ull << a : 0) : a * 3ull;
	if (f->nmap >= MAX_REF)
		return;
	if (t->dart) {
		want = ref_dart_map(t, f, iova, len, prot, align, &m);
	} else {
		want = !len || wraps(iova, len) ? -EINVAL : 0;
		m = (struct ref_map){ .dva = iova };
	}
	rc = tp_device_iommu_map(&t->dev, iova, len, prot, align, &dva);
	FZ_CHECK(rc == want && (rc || dva == m.dva),
		 "iommu map [%#llx +%#llx] prot %u align %#llx: %d dva %#llx, want %d dva %#llx",
		 (unsigned long long)iova, (unsigned long long)len, prot, (unsigned long long)align,
		 rc, (unsigned long long)dva, want, (unsigned long long)m.dva);
	if (rc)
		return;
	if (t->dart) {
		f->map[f->nmap++] = m;
	} else {
		f->id_live++;
		f->id_bytes += len;
	}
}

static void op_iommu_unmap(struct target *t, struct ref *f, struct fz_reader *r)
{
	uint64_t dva, len;
	int want = -EINVAL, rc;
	unsigned hit = 0;

	if (f->nmap && (fz_u8(r) & 1)) {
		hit = fz_u8(r) % f->nmap;
		dva = f->map[hit].dva;
		len = f->map[hit].len;
	} else {
		dva = t->cfg.aperture_base + gen_addr(r);
		len = gen_size(r);
	}
	if (!t->dart) {
		rc = tp_device_iommu_unmap(&t->dev, dva, len);
		FZ_CHECK(rc == 0, "identity unmap: %d", rc);
		f->id_live -= f->id_live ? 1 : 0;
		f->id_bytes -= TP_MIN(len, f->id_bytes);
		return;
	}
	for (unsigned i = 0; i < f->nmap; i++)
		if (f->map[i].dva == dva && f->map[i].len == len) {
			want = 0;
			hit = i;
		}
	rc = tp_device_iommu_unmap(&t->dev, dva, len);
	FZ_CHECK(rc == want, "dart unmap [%#llx +%#llx]: %d, want %d", (unsigned long long)dva,
		 (unsigned long long)len, rc, want);
	if (!rc)
		f->map[hit] = f->map[--f->nmap];
}

/* Where the device's byte at dva lands, or why it cannot: 0 and the
 * harness's pointer to it; *run: bytes from there that stay in one page and
 * one region. */
static int ref_reach(struct target *t, struct ref *f, uint64_t dva, uint32_t prot, uint8_t **p,
		     uint64_t *run)
{
	uint64_t iova = dva, lim = UINT64_MAX;
	const struct ref_region *g;

	if (t->dart) {
		const struct ref_map *m = NULL;

		for (unsigned i = 0; i < f->nmap; i++)
			if (dva / DPAGE >= f->map[i].page && dva / DPAGE - f->map[i].page < f->map[i].npages)
				m = &f->map[i];
		if (!m)
			return -EFAULT;
		if ((m->prot & prot) != prot)
			return -EACCES;
		iova = m->iova_page + (dva - m->page * DPAGE);
		lim = DPAGE - (dva & DMASK);
	}
	g = ref_find(f, iova);
	if (!g || g->fd < 0 || (g->prot & prot) != prot)
		return -EFAULT;
	*run = TP_MIN(lim, g->iova + g->size - iova);
	*p = g->mine ? g->mine + (iova - g->iova) : NULL;
	return 0;
}

static void op_dma_rw(struct target *t, struct ref *f, struct fz_reader *r, uint8_t *buf)
{
	uint8_t k = fz_u8(r);
	bool write = k & 1;
	uint32_t prot = write ? TP_VU_DMA_WRITE_OK : TP_VU_DMA_READ_OK;
	uint64_t dva, len = fz_u16(r) % (MAX_RW + 1), fault = 0, pos, want_fault = 0;
	int rc, want = 0;

	if (t->dart && f->nmap && (k & 2))
		dva = f->map[fz_u8(r) % f->nmap].dva + fz_u16(r) - 0x100;
	else if (f->nreg && (k & 2))
		dva = f->reg[fz_u8(r) % f->nreg].iova + fz_u16(r) - 0x100;
	else
		dva = gen_addr(r);
	for (uint64_t i = 0; i < len; i++)
		buf[i] = write ? (uint8_t)(i * 13 + k) : 0xa5;
	rc = tp_device_dma_rw(&t->dev, dva, buf, len, write, &fault);
	/* Walk the reference over [dva, dva + len) and compare the bytes. */
	for (pos = 0; pos < len;) {
		uint8_t *p = NULL;
		uint64_t run = 0, n;
		/* Past the top of the address space nothing is reachable. */
		int e = dva + pos < dva ? -EFAULT : ref_reach(t, f, dva + pos, prot, &p, &run);

		if (e) {
			want = e;
			want_fault = dva + pos;
			break;
		}
		n = TP_MIN(run, len - pos);
		if (p)
			FZ_CHECK(!memcmp(p, buf + pos, n), "DMA %s at %#llx: wrong bytes",
				 write ? "write" : "read", (unsigned long long)(dva + pos));
		pos += n;
	}
	FZ_CHECK(rc == want && (!rc || fault == want_fault),
		 "DMA %s [%#llx +%#llx]: %d at %#llx, want %d at %#llx", write ? "write" : "read",
		 (unsigned long long)dva, (unsigned long long)len, rc, (unsigned long long)fault,
		 want, (unsigned long long)want_fault);
	if (!write)
		for (; pos < len; pos++)
			FZ_CHECK(buf[pos] == 0xa5, "DMA read wrote past its fault");
}

static void op_lookup(struct target *t, struct ref *f, struct fz_reader *r)
{
	uint64_t iova = gen_addr(r), len = gen_size(r), avail = 0;
	uint32_t prot = fz_u8(r) & 3;
	const struct tp_dma_region *d = tp_dma_find(&t->dev.dma, iova);
	const struct ref_region *g = ref_find(f, iova);
	uint8_t *p, *q;
	bool ok;

	FZ_CHECK((d == NULL) == (g == NULL) && (!d || d->iova == g->iova),
		 "tp_dma_find(%#llx) disagrees", (unsigned long long)iova);
	p = tp_dma_ptr(&t->dev.dma, iova, len, prot);
	ok = g && g->fd >= 0 && (g->prot & prot) == prot;
	q = ok ? (uint8_t *)g->vaddr + (iova - g->iova) : NULL;
	FZ_CHECK(p == (ok && len <= g->iova + g->size - iova ? q : NULL),
		 "tp_dma_ptr(%#llx, %#llx) = %p", (unsigned long long)iova, (unsigned long long)len,
		 (void *)p);
	p = tp_dma_span(&t->dev.dma, iova, len, prot, &avail);
	FZ_CHECK(p == q && (!p || avail == TP_MIN(len, g->iova + g->size - iova)),
		 "tp_dma_span(%#llx, %#llx) = %p, %#llx", (unsigned long long)iova,
		 (unsigned long long)len, (void *)p, (unsigned long long)avail);
}

static void session_end(struct target *t, struct ref *f)
{
	tp_device_session_end(&t->dev);
	ref_clear(f, true);
	f->id_live = f->id_bytes = 0;
	FZ_CHECK(t->dev.dma.n == 0 && t->dev.iommu->st.live == 0, "left after the session");
	if (t->dart)
		FZ_CHECK(t->dev.iommu->st.tables == 1, "%llu page tables after the session",
			 (unsigned long long)t->dev.iommu->st.tables);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_reader r = { data, size };
	struct target *t;
	struct ref *f;
	uint8_t *buf;
	int fds0;

	if (!size)
		return 0;
	t = target_get(fz_u8(&r) % 3);
	f = calloc(1, sizeof(*f));
	buf = malloc(MAX_RW);
	FZ_CHECK(f && buf, "malloc");
	fds0 = fz_count_fds();
	for (unsigned i = 0; i < MAX_OPS && r.n; i++) {
		switch (fz_u8(&r) % 8) {
		case 0: case 1: op_dma_map(t, f, &r); break;
		case 2: op_dma_unmap(t, f, &r); break;
		case 3: op_iommu_map(t, f, &r); break;
		case 4: op_iommu_unmap(t, f, &r); break;
		case 5: op_dma_rw(t, f, &r, buf); break;
		case 6: op_lookup(t, f, &r); break;
		default:
			if (fz_u8(&r) & 1) {
				session_end(t, f);
			} else {
				tp_device_dma_unmap(&t->dev, 0, 0, true); /* DMA_UNMAP ALL */
				for (unsigned j = 0; j < f->nreg; j++)
					ref_drop_maps(f, &f->reg[j]);
				ref_clear(f, true);
			}
			break;
		}
		check_state(t, f);
	}
	session_end(t, f);
	FZ_CHECK(fz_count_fds() == fds0, "%d fds open after the input, %d before", fz_count_fds(),
		 fds0);
	free(buf);
	free(f);
	return 0;
}
