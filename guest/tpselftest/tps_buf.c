// SPDX-License-Identifier: GPL-2.0
/*
 * tpselftest: the data buffers, virtually contiguous for the CPU, and the
 * runs of them that are contiguous in device address space.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/dma-mapping.h>
#include <linux/gfp.h>
#include <linux/log2.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>

#include "tpselftest.h"

/* ---- buffers */

void tps_buf_free(struct device *dev, struct tps_buf *b)
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

int tps_buf_alloc(struct device *dev, struct tps_buf *b, size_t size)
{
	/* Without CMA, dma-direct gives no more than one buddy block. */
	bool fits = IS_ENABLED(CONFIG_DMA_CMA) || size <= (PAGE_SIZE << (MAX_ORDER - 1));

	if (!strcmp(tps_buf_mode, "coherent"))
		return tps_buf_coherent(dev, b, size);
	if (!strcmp(tps_buf_mode, "auto") && fits && !tps_buf_coherent(dev, b, size))
		return 0;
	return tps_buf_pages(dev, b, size);
}

/* Device address of buffer offset off, and how many bytes from there are contiguous. */
size_t tps_buf_contig(const struct tps_buf *b, size_t off, dma_addr_t *dma)
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
void tps_buf_sync(struct device *dev, const struct tps_buf *b, size_t off, size_t len,
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
