/* SPDX-License-Identifier: MIT */
#include "dma.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thunderpass/log.h>
#include <thunderpass/protocol.h>

#include "util.h"

#define DMA_PAGE 4096ull

void tp_dma_init(struct tp_dma_map *m, const char *who, uint32_t max)
{
	memset(m, 0, sizeof(*m));
	m->who = who;
	m->max = max;
}

/* Index of the first region whose end is above iova. */
static uint32_t lower_bound(const struct tp_dma_map *m, uint64_t iova)
{
	uint32_t lo = 0, hi = m->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct tp_dma_region *r = &m->r[mid];

		if (r->iova + r->size <= iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct tp_dma_region *tp_dma_find(const struct tp_dma_map *m, uint64_t iova)
{
	uint32_t i = lower_bound(m, iova);

	if (i < m->n && m->r[i].iova <= iova)
		return &m->r[i];
	return NULL;
}

void *tp_dma_ptr(const struct tp_dma_map *m, uint64_t iova, uint64_t len, uint32_t prot)
{
	const struct tp_dma_region *r = tp_dma_find(m, iova);

	if (!r || !r->vaddr || (r->prot & prot) != prot)
		return NULL;
	if (!tp_range_ok(iova - r->iova, len, r->size))
		return NULL;
	return (uint8_t *)r->vaddr + (iova - r->iova);
}

void *tp_dma_span(const struct tp_dma_map *m, uint64_t iova, uint64_t len, uint32_t prot,
		  uint64_t *avail)
{
	const struct tp_dma_region *r = tp_dma_find(m, iova);
	uint64_t left;

	if (!r || !r->vaddr || (r->prot & prot) != prot)
		return NULL;
	left = r->size - (iova - r->iova);
	*avail = len < left ? len : left;
	return (uint8_t *)r->vaddr + (iova - r->iova);
}

static int grow(struct tp_dma_map *m)
{
	uint32_t cap = m->cap ? m->cap * 2 : 16;
	struct tp_dma_region *r;

	if (m->n < m->cap)
		return 0;
	r = tp_realloc(m->r, (size_t)cap * sizeof(*r));
	if (!r)
		return -ENOMEM;
	m->r = r;
	m->cap = cap;
	return 0;
}

static int check_map(struct tp_dma_map *m, uint64_t iova, uint64_t size, uint64_t offset,
		     uint32_t prot)
{
	uint32_t i;

	if (!size || ((iova | size | offset) & (DMA_PAGE - 1))) {
		tp_warn(m->who, "DMA_MAP [%#llx +%#llx] offset %#llx: not 4 KiB aligned",
			(unsigned long long)iova, (unsigned long long)size,
			(unsigned long long)offset);
		return -EINVAL;
	}
	if (iova + size < iova || offset + size < offset) {
		tp_warn(m->who, "DMA_MAP [%#llx +%#llx]: wraps around", (unsigned long long)iova,
			(unsigned long long)size);
		return -EINVAL;
	}
	if (prot & ~(TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK)) {
		tp_warn(m->who, "DMA_MAP: unknown flags %#x", prot);
		return -EINVAL;
	}
	if (m->n >= m->max) {
		tp_warn(m->who, "DMA_MAP: %u regions mapped, the most allowed", m->n);
		return -ENOSPC;
	}
	i = lower_bound(m, iova);
	if (i < m->n && m->r[i].iova < iova + size) {
		tp_warn(m->who, "DMA_MAP [%#llx +%#llx] overlaps [%#llx +%#llx]",
			(unsigned long long)iova, (unsigned long long)size,
			(unsigned long long)m->r[i].iova, (unsigned long long)m->r[i].size);
		return -EEXIST;
	}
	return 0;
}

int tp_dma_add(struct tp_dma_map *m, uint64_t iova, uint64_t size, int fd, uint64_t offset,
	       uint32_t prot, struct tp_dma_region **out)
{
	struct tp_dma_region r = {
		.iova = iova, .size = size, .fd = fd, .fd_offset = offset, .prot = prot,
	};
	uint32_t i;
	int rc;

	rc = check_map(m, iova, size, offset, prot);
	if (!rc)
		rc = grow(m);
	if (rc)
		goto fail;
	if (fd >= 0) {
		struct stat st;

		/* A file shorter than the map would SIGBUS the device's first
		 * access past its end: refuse it now. */
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    (offset > (uint64_t)st.st_size || size > (uint64_t)st.st_size - offset)) {
			tp_warn(m->who, "DMA_MAP [%#llx +%#llx]: the fd holds only %lld bytes from "
					"offset %#llx", (unsigned long long)iova, (unsigned long long)size,
				(long long)st.st_size, (unsigned long long)offset);
			rc = -EINVAL;
			goto fail;
		}
	}
	if (fd >= 0) {
		int mprot = ((prot & TP_VU_DMA_READ_OK) ? PROT_READ : 0) |
			    ((prot & TP_VU_DMA_WRITE_OK) ? PROT_WRITE : 0);
		void *p = mmap(NULL, size, mprot ? mprot : PROT_NONE, MAP_SHARED, fd, (off_t)offset);

		if (p == MAP_FAILED) {
			rc = -errno;
			tp_err(m->who, "DMA_MAP [%#llx +%#llx]: cannot map the client's fd: %s",
			       (unsigned long long)iova, (unsigned long long)size, strerror(errno));
			goto fail;
		}
		r.vaddr = p;
	}
	i = lower_bound(m, iova);
	memmove(&m->r[i + 1], &m->r[i], (m->n - i) * sizeof(*m->r));
	m->r[i] = r;
	m->n++;
	m->bytes += size;
	m->maps++;
	if (out)
		*out = &m->r[i];
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	return rc;
}

static void release(struct tp_dma_region *r)
{
	if (r->vaddr)
		munmap(r->vaddr, r->size);
	if (r->fd >= 0)
		close(r->fd);
}

int tp_dma_remove(struct tp_dma_map *m, uint64_t iova, uint64_t size,
		  void (*cb)(void *ctx, const struct tp_dma_region *r), void *ctx,
		  uint64_t *removed)
{
	uint64_t end = iova + size;
	uint32_t first, last;

	*removed = 0;
	if (!size || end < iova) {
		tp_warn(m->who, "DMA_UNMAP [%#llx +%#llx]: empty or wrapping range",
			(unsigned long long)iova, (unsigned long long)size);
		return -EINVAL;
	}
	first = lower_bound(m, iova);
	last = first;
	while (last < m->n && m->r[last].iova < end)
		last++;
	/* Refuse to cut a region: a partial unmap would leave the device a
	 * window the client believes gone, or take one it believes live. */
	if (first < last && (m->r[first].iova < iova ||
			     m->r[last - 1].iova + m->r[last - 1].size > end)) {
		tp_warn(m->who, "DMA_UNMAP [%#llx +%#llx] cuts a mapped region in two",
			(unsigned long long)iova, (unsigned long long)size);
		return -EINVAL;
	}
	for (uint32_t i = first; i < last; i++) {
		if (cb)
			cb(ctx, &m->r[i]);
		*removed += m->r[i].size;
		m->bytes -= m->r[i].size;
		m->unmaps++;
		release(&m->r[i]);
	}
	/* Nothing removed: no move (m->r may still be NULL, and &NULL[i] is UB). */
	if (last > first) {
		memmove(&m->r[first], &m->r[last], (m->n - last) * sizeof(*m->r));
		m->n -= last - first;
	}
	return 0;
}

void tp_dma_clear(struct tp_dma_map *m, void (*cb)(void *ctx, const struct tp_dma_region *r),
		  void *ctx)
{
	for (uint32_t i = 0; i < m->n; i++) {
		if (cb)
			cb(ctx, &m->r[i]);
		release(&m->r[i]);
		m->unmaps++;
	}
	m->n = 0;
	m->bytes = 0;
}

void tp_dma_destroy(struct tp_dma_map *m)
{
	tp_dma_clear(m, NULL, NULL);
	free(m->r);
	m->r = NULL;
	m->cap = 0;
}
