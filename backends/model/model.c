/* SPDX-License-Identifier: MIT */
/*
 * The model backend: a software NVIDIA GB202 (GeForce RTX 5090) behind the
 * tp_backend_ops table. This file holds the ops, the options, creation and
 * teardown, and the routing of region accesses; config space, BAR0 and the
 * VBIOS live in their own files (see model.h).
 *
 * Regions:
 *   BAR0   16 MiB registers, trapped only (model_bar0.c)
 *   BAR1   VRAM aperture: a memfd, or vram-file=PATH; mappable as one area
 *   BAR3   32 MiB memfd, mappable as one area
 *   ROM    128 KiB VBIOS, read-only
 *   config 4096 bytes, trapped (model_config.c)
 * BAR2, BAR4, BAR5 and VGA are absent.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <thunderpass/log.h>
#include <thunderpass/protocol.h>

#include "model.h"

#define MODEL_WHO "model"

/* ---- options ---------------------------------------------------------- */

struct model_opts {
	uint64_t vram;
	const char *vram_file;
	const char *name;
	enum model_fault fault;
	const char *fault_name;
};

/* "256M", "4G", "65536": decimal, an optional K/M/G suffix (powers of 1024). */
static int opt_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	uint64_t mul = 1;
	char *end;

	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'K': case 'k': mul = 1ull << 10; end++; break;
	case 'M': case 'm': mul = 1ull << 20; end++; break;
	case 'G': case 'g': mul = 1ull << 30; end++; break;
	default: break;
	}
	if (*end || v > UINT64_MAX / mul)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

static int opt_vram(const char *value, struct model_opts *o)
{
	uint64_t v;

	if (opt_size(value, &v) || v < MODEL_VRAM_MIN || v > MODEL_VRAM_MAX || (v & (v - 1)))
		return -EINVAL;
	o->vram = v;
	return 0;
}

static int opt_vram_file(const char *value, struct model_opts *o)
{
	if (!value || !value[0])
		return -EINVAL;
	o->vram_file = value;
	return 0;
}

static int opt_name(const char *value, struct model_opts *o)
{
	size_t n = value ? strlen(value) : 0;

	/* It prefixes log lines: keep it short and free of blanks. */
	if (n == 0 || n >= sizeof(((struct tp_backend *)0)->name))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)value[i]))
			return -EINVAL;
	o->name = value;
	return 0;
}

/* The faults are in model_fault.c (and docs/model.md). */
static int opt_fault(const char *value, struct model_opts *o)
{
	o->fault_name = value;
	return model_fault_parse(value, &o->fault);
}

/* The options: one row each; expect says what a good value looks like. */
static const struct model_opt_spec {
	const char *key;
	int (*parse)(const char *value, struct model_opts *o);
	const char *expect;
} model_opt_specs[] = {
	{ "vram", opt_vram, "a power of two from 64M to 4G (suffix K, M or G)" },
	{ "vram-file", opt_vram_file, "a file path" },
	{ "name", opt_name, "1 to 63 printable characters, no blanks" },
	{ "fault", opt_fault, "a fault name: none, off-bus, bars-unassigned, link-x1-gen1, "
			      "dma-broken, no-irq, no-flr-return" },
};

#define MODEL_NOPTS (sizeof(model_opt_specs) / sizeof(model_opt_specs[0]))

static int model_parse_opts(const struct tp_backend_opt *opts, size_t nopts,
			    struct model_opts *o)
{
	int seen[MODEL_NOPTS] = { 0 };

	for (size_t i = 0; i < nopts; i++) {
		const char *key = opts[i].key ? opts[i].key : "";
		const char *value = opts[i].value;
		size_t k;

		for (k = 0; k < MODEL_NOPTS; k++)
			if (strcmp(key, model_opt_specs[k].key) == 0)
				break;
		if (k == MODEL_NOPTS) {
			tp_err(MODEL_WHO, "unknown option '%s' (options: vram, vram-file, name, fault)",
			       key);
			return -EINVAL;
		}
		if (seen[k]++) {
			tp_err(MODEL_WHO, "option %s given twice", key);
			return -EINVAL;
		}
		if (model_opt_specs[k].parse(value, o)) {
			tp_err(MODEL_WHO, "bad value '%s' for %s: expected %s", value ? value : "(none)",
			       key, model_opt_specs[k].expect);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- memory BARs ------------------------------------------------------- */

/* A file (created or truncated, mode 0600) or a memfd, sized and mapped. */
static int model_mem_open(struct model *m, struct model_mem *mem, uint64_t size, const char *path,
			  const char *what)
{
	int rc;

	if (path)
		mem->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	else
		mem->fd = memfd_create(what, MFD_CLOEXEC);
	if (mem->fd < 0) {
		rc = -errno;
		tp_err(m->be.name, "%s: %s: %s", what, path ? path : "memfd_create", strerror(-rc));
		return rc;
	}
	if (ftruncate(mem->fd, (off_t)size) < 0) {
		rc = -errno;
		tp_err(m->be.name, "%s: cannot size to %llu bytes: %s", what,
		       (unsigned long long)size, strerror(-rc));
		return rc;
	}
	mem->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mem->fd, 0);
	if (mem->map == MAP_FAILED) {
		rc = -errno;
		mem->map = NULL;
		tp_err(m->be.name, "%s: mmap of %llu bytes: %s", what, (unsigned long long)size,
		       strerror(-rc));
		return rc;
	}
	mem->size = size;
	return 0;
}

static void model_mem_close(struct model_mem *mem)
{
	if (mem->map)
		munmap(mem->map, mem->size);
	if (mem->fd >= 0)
		close(mem->fd);
	mem->map = NULL;
	mem->fd = -1;
}

static void model_mem_desc(const struct model_mem *mem, struct tp_region_desc *out)
{
	out->size = mem->size;
	out->readable = 1;
	out->writable = 1;
	out->mmap_fd = mem->fd;
	out->mmap_offset = 0;
	out->nr_areas = 1;
	out->areas[0].offset = 0;
	out->areas[0].size = mem->size;
}

/* ---- ops ---------------------------------------------------------------- */

static const char *const model_region_names[] = {
	"BAR0", "BAR1", "BAR2", "BAR3", "BAR4", "BAR5", "ROM", "config",
};

/* Access sizes a region takes: registers and config space have rules. */
static int model_len_ok(uint32_t index, uint32_t len)
{
	if (index == TP_REGION_BAR0)
		return len == 1 || len == 2 || len == 4 || len == 8;
	if (index == TP_REGION_CONFIG)
		return len == 1 || len == 2 || len == 4;
	return 1;
}

/*
 * Every access goes through here: rbuf for a read, wbuf for a write. Checks
 * what the caller gave (the core checks too; we do not rely on it) and logs a
 * failure once.
 */
static int model_access(struct model *m, uint32_t index, uint64_t off, void *rbuf,
			const void *wbuf, uint32_t len)
{
	const char *dir = rbuf ? "read" : "write";
	const struct model_mem *mem = index == 1 ? &m->vram : &m->bar3;
	uint64_t size;
	int rc = 0;

	switch (index) {
	case TP_REGION_BAR0: size = MODEL_BAR0_SIZE; break;
	case 1: case 3: size = mem->size; break;
	case TP_REGION_ROM: size = MODEL_ROM_SIZE; break;
	case TP_REGION_CONFIG: size = MODEL_CFG_SIZE; break;
	default:
		tp_err(m->be.name, "%s of region %u: no such region", dir, index);
		return -EINVAL;
	}
	if ((!rbuf && !wbuf) || !model_len_ok(index, len) || !tp_range_ok(off, len, size)) {
		tp_err(m->be.name, "%s %s of %u bytes at 0x%llx: invalid", model_region_names[index],
		       dir, len, (unsigned long long)off);
		return -EINVAL;
	}
	/* An injected fault (model_fault.c) answers first: a dead device
	 * reads all-ones whatever the window. */
	if (rbuf && model_fault_read(m, index, off, rbuf, len))
		return 0;
	if (wbuf && model_fault_writes_dropped(m, index))
		return 0;

	switch (index) {
	case TP_REGION_BAR0:
		pthread_mutex_lock(&m->lock);
		rc = rbuf ? model_bar0_read(m, off, rbuf, len) : model_bar0_write(m, off, wbuf, len);
		if (wbuf)
			model_ce_update_intx(m); /* the config mirror may flip INTx disable */
		pthread_mutex_unlock(&m->lock);
		break;
	case TP_REGION_CONFIG:
		pthread_mutex_lock(&m->lock);
		rc = rbuf ? model_cfg_read(m, (uint32_t)off, rbuf, len) :
			    model_cfg_write(m, (uint32_t)off, wbuf, len);
		if (wbuf)
			model_ce_update_intx(m); /* INTx disable is in the command register */
		pthread_mutex_unlock(&m->lock);
		break;
	case TP_REGION_ROM:
		/*
		 * A ROM drops writes: a bus write to a read-only BAR completes
		 * and changes nothing. region_info says "not writable", so the
		 * core should not send one; if it does, nothing breaks.
		 */
		if (rbuf)
			memcpy(rbuf, m->rom + off, len);
		break;
	default:
		/* BAR1/BAR3 for clients that trap: through our own mapping. */
		if (rbuf)
			memcpy(rbuf, mem->map + off, len);
		else
			memcpy(mem->map + off, wbuf, len);
		break;
	}
	return rc;
}

static int model_config_read(struct tp_backend *be, uint32_t off, void *buf, uint32_t len)
{
	return model_access(model_of(be), TP_REGION_CONFIG, off, buf, NULL, len);
}

static int model_config_write(struct tp_backend *be, uint32_t off, const void *buf, uint32_t len)
{
	return model_access(model_of(be), TP_REGION_CONFIG, off, NULL, buf, len);
}

static int model_region_info(struct tp_backend *be, uint32_t index, struct tp_region_desc *out)
{
	struct model *m = model_of(be);

	if (!out) {
		tp_err(be->name, "region %u info: no descriptor", index);
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	out->mmap_fd = -1;
	switch (index) {
	case TP_REGION_BAR0:
		/* Never mappable: every register access needs the model. */
		out->size = MODEL_BAR0_SIZE;
		out->readable = out->writable = 1;
		return 0;
	case 1:
	case 3:
		model_mem_desc(index == 1 ? &m->vram : &m->bar3, out);
		if (!model_fault_mappable(m))
			out->nr_areas = 0; /* must read all-ones: trap it */
		return 0;
	case 2: case 4: case TP_REGION_BAR5: case TP_REGION_VGA:
		return 0; /* absent */
	case TP_REGION_ROM:
		out->size = MODEL_ROM_SIZE;
		out->readable = 1;
		return 0;
	case TP_REGION_CONFIG:
		out->size = MODEL_CFG_SIZE;
		out->readable = out->writable = 1;
		return 0;
	default:
		tp_err(be->name, "region %u info: no such region", index);
		return -EINVAL;
	}
}

static int model_region_read(struct tp_backend *be, uint32_t index, uint64_t off, void *buf,
			     uint32_t len)
{
	return model_access(model_of(be), index, off, buf, NULL, len);
}

static int model_region_write(struct tp_backend *be, uint32_t index, uint64_t off, const void *buf,
			      uint32_t len)
{
	return model_access(model_of(be), index, off, NULL, buf, len);
}

static int model_irq_count(struct tp_backend *be, uint32_t index, uint32_t *count)
{
	static const uint32_t counts[TP_IRQ_INDEX_COUNT] = {
		[TP_IRQ_INTX] = 1,
		[TP_IRQ_MSI] = 1,
		[TP_IRQ_MSIX] = MODEL_MSIX_VECTORS,
		[TP_IRQ_ERR] = 1,
		[TP_IRQ_REQ] = 1,
	};

	if (!count || index >= TP_IRQ_INDEX_COUNT) {
		tp_err(be->name, "irq index %u: no such index", index);
		return -EINVAL;
	}
	*count = counts[index];
	return 0;
}

void model_flr(struct model *m)
{
	model_cfg_flr(m);
	model_bar0_reset(m);
	model_fault_after_reset(m);
}

/*
 * The reset op is what a host's "reset this function" does: FLR the device
 * (config registers to defaults, BARs to 0, sticky and link bits kept; BAR0
 * state reset; VRAM untouched, as DRAM is not cleared by a reset), then put
 * the host-assigned BAR and ROM addresses back, as Linux's
 * pci_dev_save_and_disable/pci_dev_restore does around an FLR. The Command
 * register stays 0 (decode off) until someone enables it, and so does the
 * ROM enable bit.
 */
static int model_reset(struct tp_backend *be)
{
	static const uint32_t bars[] = { 0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x30 };
	struct model *m = model_of(be);

	pthread_mutex_lock(&m->lock);
	/* The engine stops touching guest memory before the reset returns:
	 * the core unmaps that memory right after. */
	model_ce_stop(m);
	model_flr(m);
	for (size_t i = 0; i < sizeof(bars) / sizeof(bars[0]); i++)
		memcpy(m->cfg + bars[i], m->cfg_boot + bars[i], 4);
	pthread_mutex_unlock(&m->lock);
	if (m->fault == MODEL_FAULT_NO_FLR_RETURN)
		tp_warn(be->name, "injected fault no-flr-return: the device does not come back "
				  "from this reset (config reads CRS, BARs all-ones)");
	return 0;
}

static void model_free(struct model *m)
{
	model_ce_shutdown(m);
	model_mem_close(&m->vram);
	model_mem_close(&m->bar3);
	free(m->rom);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static void model_destroy(struct tp_backend *be)
{
	if (be)
		model_free(model_of(be));
}

static const struct tp_backend_ops model_ops = {
	.name = "model",
	.config_read = model_config_read,
	.config_write = model_config_write,
	.region_info = model_region_info,
	.region_read = model_region_read,
	.region_write = model_region_write,
	.dma_map = NULL,   /* a later issue adds a copy engine */
	.dma_unmap = NULL,
	.irq_count = model_irq_count,
	.reset = model_reset,
	.destroy = model_destroy,
};

static int model_create(const struct tp_backend_opt *opts, size_t nopts, struct tp_backend **out)
{
	struct model_opts o = {
		.vram = MODEL_VRAM_DEFAULT,
		.name = "model0",
		.fault = MODEL_FAULT_NONE,
	};
	struct model *m;
	int rc;

	if (!out || (nopts && !opts)) {
		tp_err(MODEL_WHO, "create: no options array or result pointer");
		return -EINVAL;
	}
	*out = NULL;
	rc = model_parse_opts(opts, nopts, &o);
	if (rc)
		return rc;

	m = calloc(1, sizeof(*m));
	if (!m) {
		tp_err(o.name, "out of memory");
		return -ENOMEM;
	}
	m->vram.fd = m->bar3.fd = -1;
	rc = -pthread_mutex_init(&m->lock, NULL);
	if (rc) {
		tp_err(o.name, "mutex: %s", strerror(-rc));
		free(m);
		return rc;
	}
	m->be.ops = &model_ops;
	snprintf(m->be.name, sizeof(m->be.name), "%s", o.name);
	m->fault = o.fault;

	rc = model_mem_open(m, &m->vram, o.vram, o.vram_file, "vram");
	if (!rc)
		rc = model_mem_open(m, &m->bar3, MODEL_BAR3_SIZE, NULL, "bar3");
	if (!rc && !(m->rom = malloc(MODEL_ROM_SIZE))) {
		tp_err(m->be.name, "out of memory");
		rc = -ENOMEM;
	}
	if (rc) {
		model_free(m);
		return rc;
	}
	m->rom_image_len = model_vbios_build(m->rom, MODEL_ROM_SIZE);
	model_cfg_init(m);
	model_fault_init(m);
	model_bar0_init(m);
	rc = model_ce_start(m);
	if (rc) {
		model_free(m);
		return rc;
	}

	tp_info(m->be.name, "model GB202 %04x:%04x, BAR1 %llu MiB%s%s%s%s", MODEL_VENDOR,
		MODEL_DEVICE, (unsigned long long)(o.vram >> 20), o.vram_file ? " in " : "",
		o.vram_file ? o.vram_file : "", o.fault ? ", injected fault: " : "",
		o.fault ? o.fault_name : "");
	*out = &m->be;
	return 0;
}

const struct tp_backend_type tp_backend_model = {
	.name = "model",
	.help = "software NVIDIA GB202 (RTX 5090); vram=SIZE (64M..4G, default 256M), "
		"vram-file=PATH, name=NAME (default model0), fault=NAME (none, off-bus, "
		"bars-unassigned, link-x1-gen1, dma-broken, no-irq, no-flr-return)",
	.create = model_create,
};
