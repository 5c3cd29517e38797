/* SPDX-License-Identifier: MIT */
/*
 * The fake PCI function of fake_backend.h: a hand-built config image and
 * in-memory BARs behind a counted ops table; and the fake client.
 */
#include "fake_backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

/* Config offsets the image needs (PCI 3.0, PCIe 4.0). */
#define CFG_COMMAND 0x04
#define CFG_STATUS 0x06
#define CFG_STATUS_CAP_LIST 0x0010
#define CFG_REVISION 0x08
#define CFG_HEADER_TYPE 0x0e
#define CFG_BAR0 0x10
#define CFG_BAR2 0x18
#define CFG_SUBSYS 0x2c
#define CFG_ROM 0x30
#define CFG_CAP_PTR 0x34
#define CFG_INT_PIN 0x3d

#define BAR_MEM_64 0x4
#define BAR_MEM_PREFETCH 0x8

#define CAP_ID_PM 0x01
#define CAP_ID_MSI 0x05
#define CAP_ID_EXP 0x10
#define CAP_ID_MSIX 0x11
#define ECAP_ID_ERR 0x0001
#define ECAP_ID_DSN 0x0003

#define MSI_FLAGS_64BIT 0x0080
#define MSI_FLAGS_MASKBIT 0x0100
#define EXP_DEVCAP_FLR 0x10000000u

static struct fake_be *to_fake(struct tp_backend *be)
{
	return (struct fake_be *)((char *)be - offsetof(struct fake_be, be));
}

void fake_cfg_put(uint8_t *cfg, uint32_t off, unsigned len, uint32_t val)
{
	for (unsigned i = 0; i < len && off + i < FAKE_CFG_SIZE; i++)
		cfg[off + i] = (uint8_t)(val >> (8 * i));
}

uint32_t fake_cfg_get(const uint8_t *cfg, uint32_t off, unsigned len)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < len && off + i < FAKE_CFG_SIZE; i++)
		v |= (uint32_t)cfg[off + i] << (8 * i);
	return v;
}

void fake_cfg_default(struct fake_cfg_spec *spec)
{
	*spec = (struct fake_cfg_spec){
		.vendor = FAKE_VENDOR,
		.device = FAKE_DEVICE,
		.subsys_vendor = FAKE_VENDOR,
		.subsys_device = 0x0001,
		.class_code = 0x0b4000, /* co-processor */
		.revision = 0x01,
		.int_pin = 1,
		.cfg_size = FAKE_CFG_SIZE,
		.pm = true,
		.msi_vectors = 4,
		.msi_64 = true,
		.msi_maskbit = true,
		.msix_vectors = 8,
		.pcie = true,
		.flr = true,
		.aer = true,
		.dsn = true,
		.serial = 0x0123456789abcdefull,
	};
}

uint32_t fake_cfg_dsn_offset(const struct fake_cfg_spec *spec)
{
	if (!spec->dsn || spec->cfg_size < FAKE_CFG_SIZE)
		return 0;
	return spec->aer ? FAKE_ECAP_AER + FAKE_ECAP_AER_LEN : FAKE_ECAP_AER;
}

static unsigned log2_u32(uint32_t v)
{
	unsigned n = 0;

	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

/* Standard capabilities, in the order (and at the offsets) they are chained. */
static void build_std_caps(uint8_t *cfg, const struct fake_cfg_spec *s)
{
	uint32_t at[4], n = 0, prev = CFG_CAP_PTR;

	if (s->pm) {
		at[n++] = FAKE_CAP_PM;
		cfg[FAKE_CAP_PM] = CAP_ID_PM;
		fake_cfg_put(cfg, FAKE_CAP_PM + 2, 2, 0x0003); /* PMC: version 3 */
		fake_cfg_put(cfg, FAKE_CAP_PM + 4, 2, 0x0008); /* D0, no soft reset */
	}
	if (s->msi_vectors) {
		uint32_t p = FAKE_CAP_MSI;
		uint16_t flags = (uint16_t)(log2_u32(s->msi_vectors) << 1);

		flags |= s->msi_64 ? MSI_FLAGS_64BIT : 0;
		flags |= s->msi_maskbit ? MSI_FLAGS_MASKBIT : 0;
		at[n++] = p;
		cfg[p] = CAP_ID_MSI;
		fake_cfg_put(cfg, p + 2, 2, flags);
	}
	if (s->msix_vectors) {
		uint32_t p = FAKE_CAP_MSIX;

		at[n++] = p;
		cfg[p] = CAP_ID_MSIX;
		fake_cfg_put(cfg, p + 2, 2, s->msix_vectors - 1);
		fake_cfg_put(cfg, p + 4, 4, FAKE_MSIX_TABLE | 2); /* BIR 2 */
		fake_cfg_put(cfg, p + 8, 4, FAKE_MSIX_PBA | 2);
	}
	if (s->pcie) {
		uint32_t p = FAKE_CAP_PCIE;

		at[n++] = p;
		cfg[p] = CAP_ID_EXP;
		fake_cfg_put(cfg, p + 2, 2, 0x0002); /* v2 endpoint */
		fake_cfg_put(cfg, p + 4, 4, 0x00008001u | (s->flr ? EXP_DEVCAP_FLR : 0));
		fake_cfg_put(cfg, p + 8, 2, 0x2810);      /* MPS 128, MRRS 512 */
		fake_cfg_put(cfg, p + 12, 4, 0x00400043u); /* 8 GT/s x4 */
		fake_cfg_put(cfg, p + 18, 2, 0x1043);      /* link up */
		fake_cfg_put(cfg, p + 36, 4, 0x00000010u); /* DEVCAP2 */
		fake_cfg_put(cfg, p + 44, 4, 0x0000000eu); /* LNKCAP2 */
	}
	for (uint32_t i = 0; i < n; i++) {
		cfg[prev == CFG_CAP_PTR ? prev : prev + 1] = (uint8_t)at[i];
		prev = at[i];
	}
	if (n)
		fake_cfg_put(cfg, CFG_STATUS, 2, CFG_STATUS_CAP_LIST);
}

static void build_ext_caps(uint8_t *cfg, const struct fake_cfg_spec *s)
{
	uint32_t dsn = fake_cfg_dsn_offset(s);

	if (s->cfg_size < FAKE_CFG_SIZE)
		return;
	if (s->aer)
		fake_cfg_put(cfg, FAKE_ECAP_AER, 4, ECAP_ID_ERR | 2u << 16 | dsn << 20);
	if (dsn) {
		fake_cfg_put(cfg, dsn, 4, ECAP_ID_DSN | 1u << 16);
		fake_cfg_put(cfg, dsn + 4, 4, (uint32_t)s->serial);
		fake_cfg_put(cfg, dsn + 8, 4, (uint32_t)(s->serial >> 32));
	}
}

void fake_cfg_build(uint8_t *cfg, const struct fake_cfg_spec *s)
{
	memset(cfg, 0, FAKE_CFG_SIZE);
	fake_cfg_put(cfg, 0, 2, s->vendor);
	fake_cfg_put(cfg, 2, 2, s->device);
	fake_cfg_put(cfg, CFG_REVISION, 4, s->class_code << 8 | s->revision);
	cfg[CFG_HEADER_TYPE] = 0;
	fake_cfg_put(cfg, CFG_BAR0, 4, BAR_MEM_64 | BAR_MEM_PREFETCH);
	fake_cfg_put(cfg, CFG_BAR2, 4, 0);
	fake_cfg_put(cfg, CFG_SUBSYS, 2, s->subsys_vendor);
	fake_cfg_put(cfg, CFG_SUBSYS + 2, 2, s->subsys_device);
	fake_cfg_put(cfg, CFG_ROM, 4, 0);
	cfg[CFG_INT_PIN] = s->int_pin;
	build_std_caps(cfg, s);
	build_ext_caps(cfg, s);
}

/* ---- ops ------------------------------------------------------------------ */

static int cfg_check(struct fake_be *fb, uint32_t off, uint32_t len)
{
	if ((len != 1 && len != 2 && len != 4) || off % len || off + len > fb->spec.cfg_size) {
		fb->violations++;
		return -EINVAL;
	}
	return 0;
}

static int fake_config_read(struct tp_backend *be, uint32_t off, void *buf, uint32_t len)
{
	struct fake_be *fb = to_fake(be);
	int rc = cfg_check(fb, off, len);

	fb->calls.config_read++;
	if (!rc)
		memcpy(buf, fb->cfg + off, len);
	return rc;
}

static int fake_config_write(struct tp_backend *be, uint32_t off, const void *buf, uint32_t len)
{
	struct fake_be *fb = to_fake(be);
	int rc = cfg_check(fb, off, len);

	fb->calls.config_write++;
	fb->last_config_write_off = off;
	fb->last_config_write_len = len;
	if (!rc)
		memcpy(fb->cfg + off, buf, len);
	return rc;
}

static int fake_region_info(struct tp_backend *be, uint32_t index, struct tp_region_desc *out)
{
	struct fake_be *fb = to_fake(be);

	fb->calls.region_info++;
	if (index >= TP_REGION_COUNT) {
		fb->violations++;
		return -EINVAL;
	}
	*out = fb->regions[index];
	return 0;
}

/* The bytes behind a trapped region, or NULL (and a violation) when the core
 * should not have asked. */
static uint8_t *backing(struct fake_be *fb, uint32_t index, uint64_t off, uint32_t len)
{
	uint8_t *base = NULL;
	uint64_t size = 0;

	if (index == 0) {
		base = fb->bar0;
		size = FAKE_BAR0_SIZE;
	} else if (index == 2) {
		base = fb->bar2;
		size = FAKE_BAR2_SIZE;
	} else if (index == TP_REGION_ROM) {
		base = fb->rom;
		size = FAKE_ROM_SIZE;
	}
	if (index < TP_REGION_COUNT && fb->regions[index].size < size)
		size = fb->regions[index].size;
	if (!base || !len || off > size || len > size - off) {
		fb->violations++;
		return NULL;
	}
	return base + off;
}

static int fake_region_read(struct tp_backend *be, uint32_t index, uint64_t off, void *buf,
			    uint32_t len)
{
	struct fake_be *fb = to_fake(be);
	uint8_t *p = backing(fb, index, off, len);

	fb->calls.region_read++;
	fb->last_read = (struct fake_access){ index, off, len };
	if (!p)
		return -EINVAL;
	if (fb->region_rc)
		return fb->region_rc;
	memcpy(buf, p, len);
	return 0;
}

static int fake_region_write(struct tp_backend *be, uint32_t index, uint64_t off,
			     const void *buf, uint32_t len)
{
	struct fake_be *fb = to_fake(be);
	uint8_t *p = backing(fb, index, off, len);
	uint8_t id[4];

	fb->calls.region_write++;
	fb->last_write = (struct fake_access){ index, off, len };
	if (!p)
		return -EINVAL;
	if (!fb->regions[index].writable) {
		fb->violations++;
		return -EACCES;
	}
	if (fb->region_rc)
		return fb->region_rc;
	memcpy(id, fb->bar2 + FAKE_REG_ID, sizeof(id));
	memcpy(p, buf, len);
	if (index == 2) /* the ID register is read-only */
		memcpy(fb->bar2 + FAKE_REG_ID, id, sizeof(id));
	return 0;
}

static int fake_dma_map(struct tp_backend *be, const struct tp_dma_region *r)
{
	struct fake_be *fb = to_fake(be);

	fb->calls.dma_map++;
	fb->last_dma_map = *r;
	return fb->dma_map_rc;
}

static int fake_dma_unmap(struct tp_backend *be, const struct tp_dma_region *r)
{
	struct fake_be *fb = to_fake(be);

	fb->calls.dma_unmap++;
	fb->last_dma_unmap = *r;
	return 0;
}

static int fake_irq_count(struct tp_backend *be, uint32_t index, uint32_t *count)
{
	struct fake_be *fb = to_fake(be);

	fb->calls.irq_count++;
	if (index >= TP_IRQ_INDEX_COUNT) {
		fb->violations++;
		return -EINVAL;
	}
	*count = fb->irq_counts[index];
	return *count ? 0 : -EINVAL;
}

static int fake_irq_set(struct tp_backend *be, uint32_t index, uint32_t start, uint32_t count,
			const int *fds)
{
	to_fake(be)->calls.irq_set++;
	return -EOPNOTSUPP; /* the core keeps the eventfds */
}

static void bar2_reset(struct fake_be *fb)
{
	memset(fb->bar2, 0, sizeof(fb->bar2));
	fake_cfg_put(fb->bar2, FAKE_REG_ID, 4, FAKE_REG_ID_VALUE);
}

static int fake_reset(struct tp_backend *be)
{
	struct fake_be *fb = to_fake(be);

	fb->calls.reset++;
	if (fb->reset_rc)
		return fb->reset_rc;
	bar2_reset(fb);
	fake_cfg_put(fb->cfg, CFG_COMMAND, 2, 0); /* as an FLR leaves it */
	return 0;
}

static void fake_destroy(struct tp_backend *be)
{
	struct fake_be *fb = to_fake(be);

	fb->calls.destroy++;
	fake_be_fini(fb);
}

static const struct tp_backend_ops fake_ops = {
	.name = "fake",
	.config_read = fake_config_read,
	.config_write = fake_config_write,
	.region_info = fake_region_info,
	.region_read = fake_region_read,
	.region_write = fake_region_write,
	.dma_map = fake_dma_map,
	.dma_unmap = fake_dma_unmap,
	.irq_count = fake_irq_count,
	.irq_set = fake_irq_set,
	.reset = fake_reset,
	.destroy = fake_destroy,
};

/* ---- set-up ------------------------------------------------------------- */

static void describe_regions(struct fake_be *fb)
{
	for (uint32_t i = 0; i < TP_REGION_COUNT; i++)
		fb->regions[i] = (struct tp_region_desc){ .mmap_fd = -1 };
	fb->regions[0] = (struct tp_region_desc){
		.size = FAKE_BAR0_SIZE, .readable = 1, .writable = 1, .mmap_fd = fb->bar0_fd,
		.nr_areas = 1, .areas = { { 0, FAKE_BAR0_SIZE } },
	};
	fb->regions[2] = (struct tp_region_desc){
		.size = FAKE_BAR2_SIZE, .readable = 1, .writable = 1, .mmap_fd = -1,
	};
	fb->regions[TP_REGION_ROM] = (struct tp_region_desc){
		.size = FAKE_ROM_SIZE, .readable = 1, .mmap_fd = -1,
	};
	fb->regions[TP_REGION_CONFIG] = (struct tp_region_desc){
		.size = fb->spec.cfg_size, .readable = 1, .writable = 1, .mmap_fd = -1,
	};
}

int fake_be_init(struct fake_be *fb, const struct fake_cfg_spec *spec)
{
	memset(fb, 0, sizeof(*fb));
	fb->bar0_fd = -1;
	if (spec)
		fb->spec = *spec;
	else
		fake_cfg_default(&fb->spec);
	fb->ops = fake_ops;
	fb->be.ops = &fb->ops;
	memcpy(fb->be.name, "fake", sizeof("fake"));
	fake_cfg_build(fb->cfg, &fb->spec);

	fb->bar0_fd = memfd_create("fake-bar0", MFD_CLOEXEC);
	if (fb->bar0_fd < 0)
		return -errno;
	if (ftruncate(fb->bar0_fd, FAKE_BAR0_SIZE) < 0) {
		int rc = -errno;

		fake_be_fini(fb);
		return rc;
	}
	fb->bar0 = mmap(NULL, FAKE_BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fb->bar0_fd, 0);
	if (fb->bar0 == MAP_FAILED) {
		int rc = -errno;

		fb->bar0 = NULL;
		fake_be_fini(fb);
		return rc;
	}
	for (uint32_t i = 0; i < FAKE_BAR0_SIZE / 4; i++) {
		uint32_t w = FAKE_BAR0_WORD(i); /* little-endian host (protocol.h) */

		memcpy(fb->bar0 + 4 * i, &w, sizeof(w));
	}
	bar2_reset(fb);
	for (uint32_t i = 0; i < FAKE_ROM_SIZE; i++)
		fb->rom[i] = (uint8_t)(i * 7);
	fb->rom[0] = 0x55;
	fb->rom[1] = 0xaa;
	fb->rom[2] = FAKE_ROM_SIZE / 512;
	describe_regions(fb);

	fb->irq_counts[TP_IRQ_INTX] = fb->spec.int_pin ? 1 : 0;
	fb->irq_counts[TP_IRQ_MSI] = fb->spec.msi_vectors;
	fb->irq_counts[TP_IRQ_MSIX] = fb->spec.msix_vectors;
	fb->irq_counts[TP_IRQ_ERR] = 0; /* none: an index with no vectors */
	fb->irq_counts[TP_IRQ_REQ] = 1;
	return 0;
}

void fake_be_fini(struct fake_be *fb)
{
	if (fb->bar0) {
		munmap(fb->bar0, FAKE_BAR0_SIZE);
		fb->bar0 = NULL;
	}
	if (fb->bar0_fd >= 0) {
		close(fb->bar0_fd);
		fb->bar0_fd = -1;
	}
}

/* ---- fake client -------------------------------------------------------- */

static int reply_send(void *ctx, const struct tp_vu_hdr *hdr, const void *payload, uint32_t len,
		      const int *fds, unsigned nfds)
{
	struct fake_reply *r = ctx;

	assert_int_equal(hdr->size, sizeof(*hdr) + len);
	assert_true(len <= TP_VU_MAX_MSG - sizeof(*hdr) && nfds <= 1);
	r->sends++;
	r->hdr = *hdr;
	r->len = len;
	if (len)
		memcpy(r->payload, payload, len);
	r->nfds = nfds;
	for (unsigned i = 0; i < nfds; i++)
		r->fds[i] = fds[i];
	return r->fail;
}

static const char *errno_name(int e)
{
	const char *n = e == FAKE_NO_REPLY ? "no reply" : e ? strerrorname_np(e) : "success";

	return n ? n : "?";
}

void fake_check_errno(const char *file, int line, const char *what, int got, int want)
{
	if (got != want)
		fail_msg("%s:%d: %s: expected %s (%d), got %s (%d)", file, line, what,
			 errno_name(want), want, errno_name(got), got);
}

int fake_send(struct fake_client *c, const struct fake_msg *q)
{
	struct tp_msg m = {
		.hdr = { .msg_id = c->id++, .command = q->cmd,
			 .size = q->size ? q->size : (uint32_t)sizeof(m.hdr) + q->len,
			 .flags = q->flags },
		.len = q->len, .nfds = q->nfds, .fault = q->fault,
	};
	unsigned sends = c->r.sends;
	int rc;

	m.payload = malloc(q->len ? q->len : 1);
	assert_non_null(m.payload);
	if (q->len)
		memcpy(m.payload, q->p, q->len);
	for (unsigned i = 0; i < TP_CONN_MAX_FDS; i++)
		m.fds[i] = i < q->nfds ? q->fds[i] : -1;
	rc = tp_session_handle(&c->s, &m);
	free(m.payload);
	assert_int_equal(m.nfds, 0); /* fds taken or closed */
	if (c->r.sends == sends) {
		assert_int_equal(rc, 0);
		return FAKE_NO_REPLY;
	}
	assert_int_equal(c->r.sends, sends + 1);
	assert_int_equal(rc, c->r.fail);
	assert_int_equal(c->r.hdr.msg_id, m.hdr.msg_id);
	assert_int_equal(c->r.hdr.command, q->cmd);
	assert_int_equal(c->r.hdr.flags & ~TP_VU_ERROR, TP_VU_TYPE_REPLY);
	if (!(c->r.hdr.flags & TP_VU_ERROR)) {
		assert_int_equal(c->r.hdr.error, 0);
		return 0;
	}
	assert_int_equal(c->r.hdr.size, sizeof(m.hdr));
	assert_int_equal(c->r.nfds, 0);
	assert_int_not_equal(c->r.hdr.error, 0);
	return (int)c->r.hdr.error;
}

int fake_call(struct fake_client *c, uint16_t cmd, uint32_t flags, const void *p, uint32_t len,
	      const int *fds, unsigned nfds)
{
	struct fake_msg q = { cmd, flags, 0, p, len, fds, nfds, TP_MSG_OK };

	return fake_send(c, &q);
}

int fake_version(struct fake_client *c, const char *json, uint32_t space)
{
	uint8_t buf[4 + 512] = { 0 };
	uint32_t jl = (uint32_t)strlen(json) + 1;

	space = space > jl ? space : jl;
	assert_true(space <= 512);
	memcpy(buf + 4, json, jl);
	return fake_call(c, TP_VU_VERSION, 0, buf, 4 + space, NULL, 0);
}

int fake_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = -1; /* the directory's own fd */

	assert_non_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

bool fake_fd_closed(int fd)
{
	return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

void fake_eventfds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		assert_true(fds[i] >= 0);
	}
}

struct fake_client *fake_client_new(bool negotiate)
{
	struct fake_client *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->open_fds = fake_count_fds();
	assert_int_equal(fake_be_init(&c->fb, NULL), 0);
	assert_int_equal(tp_device_open(&c->dev, &c->fb.be, NULL), 0);
	c->r.payload = malloc(TP_VU_MAX_MSG);
	assert_non_null(c->r.payload);
	assert_int_equal(tp_session_init(&c->s, &c->dev, reply_send, &c->r), 0);
	c->id = 0xfff0; /* wraps within most tests */
	if (negotiate)
		FAKE_EXPECT(fake_version(c, "{\"capabilities\":{\"max_msg_fds\":8}}", 256), 0);
	return c;
}

void fake_client_restart(struct fake_client *c)
{
	tp_session_fini(&c->s);
	assert_int_equal(tp_session_init(&c->s, &c->dev, reply_send, &c->r), 0);
}

void fake_client_free(struct fake_client *c)
{
	tp_session_fini(&c->s);
	tp_device_close(&c->dev);
	assert_int_equal(c->fb.calls.destroy, 1);
	assert_int_equal(c->fb.violations, 0); /* the core kept the backend contract */
	free(c->r.payload);
	assert_int_equal(fake_count_fds(), c->open_fds); /* no fd leaked */
	free(c);
}

void fake_reply_is(struct fake_client *c, const void *want, uint32_t len, unsigned nfds)
{
	assert_int_equal(c->r.len, len);
	assert_int_equal(c->r.nfds, nfds);
	assert_memory_equal(c->r.payload, want, len);
}

int fake_setup(void **state)
{
	*state = fake_client_new(true);
	return 0;
}

int fake_setup_raw(void **state)
{
	*state = fake_client_new(false);
	return 0;
}

int fake_teardown(void **state)
{
	fake_client_free(*state);
	return 0;
}

void fake_run_rejections(const struct fake_reject *t, size_t n, bool negotiated)
{
	for (size_t i = 0; i < n; i++) {
		for (unsigned post = 0; post < 2; post++) {
			struct fake_client *c = fake_client_new(negotiated);
			int fds[TP_CONN_MAX_FDS];
			struct fake_msg q = { t[i].cmd, t[i].flags | (post ? TP_VU_NO_REPLY : 0),
					      t[i].size, t[i].p, t[i].len, fds, t[i].nfds,
					      t[i].fault };
			struct tp_vu_device_info info = { .argsz = sizeof(info) };
			struct fake_calls calls;
			uint32_t maps;
			char what[128];

			if (t[i].prep)
				t[i].prep(c);
			fake_eventfds(fds, t[i].nfds);
			calls = c->fb.calls;
			maps = c->dev.dma.n;
			snprintf(what, sizeof(what), "%s%s", t[i].name, post ? " (posted)" : "");
			fake_check_errno(__FILE__, __LINE__, what, fake_send(c, &q),
					 post ? FAKE_NO_REPLY : t[i].err);
			for (unsigned f = 0; f < t[i].nfds; f++)
				if (!fake_fd_closed(fds[f]))
					fail_msg("%s: fd %u of %u left open", what, f, t[i].nfds);
			if (memcmp(&calls, &c->fb.calls, sizeof(calls)))
				fail_msg("%s: reached the backend", what);
			if (c->dev.dma.n != maps)
				fail_msg("%s: changed the DMA map", what);
			assert_int_equal(c->s.errors, 1);
			assert_int_equal(c->s.posted_errors, post);
			if (!negotiated)
				FAKE_EXPECT(fake_version(c, "{}", 0), 0);
			FAKE_EXPECT(fake_call(c, TP_VU_DEVICE_GET_INFO, 0, &info, sizeof(info),
					      NULL, 0), 0);
			fake_client_free(c);
		}
	}
}
