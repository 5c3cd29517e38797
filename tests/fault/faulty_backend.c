/* SPDX-License-Identifier: MIT */
#include "faulty_backend.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <thunderpass/log.h>

static struct faulty_be *to_faulty(struct tp_backend *be)
{
	return (struct faulty_be *)((char *)be - offsetof(struct faulty_be, be));
}

/*
 * Counts one call; true when it is the one to fail. The inner backend gets
 * the host services the core gave the wrapper (set before the first op).
 */
static bool fails(struct faulty_be *f, const char *op)
{
	f->inner->host = f->be.host;
	if (++f->calls != f->fail_at)
		return false;
	f->injected++;
	f->last_op = op;
	/* A backend logs its own failure, once (backend.h). */
	tp_warn(f->be.name, "fault injection: %s (call %llu) fails: %s", op,
		(unsigned long long)f->calls, strerror(-f->err));
	return true;
}

#define INNER(f) ((f)->inner->ops)

static int w_config_read(struct tp_backend *be, uint32_t off, void *buf, uint32_t len)
{
	struct faulty_be *f = to_faulty(be);

	return fails(f, "config_read") ? f->err : INNER(f)->config_read(f->inner, off, buf, len);
}

static int w_config_write(struct tp_backend *be, uint32_t off, const void *buf, uint32_t len)
{
	struct faulty_be *f = to_faulty(be);

	return fails(f, "config_write") ? f->err : INNER(f)->config_write(f->inner, off, buf, len);
}

static int w_region_info(struct tp_backend *be, uint32_t index, struct tp_region_desc *out)
{
	struct faulty_be *f = to_faulty(be);

	return fails(f, "region_info") ? f->err : INNER(f)->region_info(f->inner, index, out);
}

static int w_region_read(struct tp_backend *be, uint32_t index, uint64_t off, void *buf,
			 uint32_t len)
{
	struct faulty_be *f = to_faulty(be);

	return fails(f, "region_read") ? f->err
				       : INNER(f)->region_read(f->inner, index, off, buf, len);
}

static int w_region_write(struct tp_backend *be, uint32_t index, uint64_t off, const void *buf,
			  uint32_t len)
{
	struct faulty_be *f = to_faulty(be);

	return fails(f, "region_write") ? f->err
					: INNER(f)->region_write(f->inner, index, off, buf, len);
}

static int w_dma_map(struct tp_backend *be, const struct tp_dma_region *r)
{
	struct faulty_be *f = to_faulty(be);

	return fails(f, "dma_map") ? f->err : INNER(f)->dma_map(f->inner, r);
}

static int w_dma_unmap(struct tp_backend *be, const struct tp_dma_region *r)
{
	struct faulty_be *f = to_faulty(be);

	return fails(f, "dma_unmap") ? f->err : INNER(f)->dma_unmap(f->inner, r);
}

static int w_irq_count(struct tp_backend *be, uint32_t index, uint32_t *count)
{
	struct faulty_be *f = to_faulty(be);

	return fails(f, "irq_count") ? f->err : INNER(f)->irq_count(f->inner, index, count);
}

static int w_irq_set(struct tp_backend *be, uint32_t index, uint32_t start, uint32_t count,
		     const int *fds)
{
	struct faulty_be *f = to_faulty(be);

	return fails(f, "irq_set") ? f->err : INNER(f)->irq_set(f->inner, index, start, count, fds);
}

static int w_irq_mask(struct tp_backend *be, uint32_t index, uint32_t start, uint32_t count,
		      int masked)
{
	struct faulty_be *f = to_faulty(be);

	return fails(f, "irq_mask") ? f->err
				    : INNER(f)->irq_mask(f->inner, index, start, count, masked);
}

static int w_reset(struct tp_backend *be)
{
	struct faulty_be *f = to_faulty(be);

	return fails(f, "reset") ? f->err : INNER(f)->reset(f->inner);
}

static void w_destroy(struct tp_backend *be)
{
	struct faulty_be *f = to_faulty(be);

	f->inner->host = f->be.host;
	if (INNER(f)->destroy)
		INNER(f)->destroy(f->inner);
}

void faulty_be_init(struct faulty_be *f, struct tp_backend *inner, uint64_t fail_at, int err)
{
	const struct tp_backend_ops *in = inner->ops;

	memset(f, 0, sizeof(*f));
	f->inner = inner;
	f->fail_at = fail_at;
	f->err = err;
	f->ops = (struct tp_backend_ops){
		.name = "faulty",
		.config_read = w_config_read,
		.config_write = w_config_write,
		.region_info = w_region_info,
		.region_read = w_region_read,
		.region_write = w_region_write,
		.dma_map = in->dma_map ? w_dma_map : NULL,
		.dma_unmap = in->dma_unmap ? w_dma_unmap : NULL,
		.irq_count = w_irq_count,
		.irq_set = in->irq_set ? w_irq_set : NULL,
		.irq_mask = in->irq_mask ? w_irq_mask : NULL,
		.reset = in->reset ? w_reset : NULL,
		.destroy = w_destroy,
	};
	f->be.ops = &f->ops;
	memcpy(f->be.name, inner->name, sizeof(f->be.name));
}
