/* SPDX-License-Identifier: MIT */
/*
 * The darwin backend (backends/darwin/) against the IOKit stand-in and the
 * stand-in dext over the model GPU: finding the service by BDF, opening,
 * the ABI and reply checks, config space through the dext's policy, BARs
 * (mapped write-combined or uncached, or through the MMIO selectors), the
 * core on top, resets, `thunderpass list`, and calls the dext must refuse.
 * DMA, the IOMMU model and interrupts: test_darwin_dma.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <thunderpass/log.h>

#include "../../backends/model/model.h"
#include "device.h"
#include "rig.h"

static uint32_t cfg32(struct tp_backend *be, uint32_t off, uint32_t len)
{
	uint32_t v = 0;

	assert_int_equal(be->ops->config_read(be, off, &v, len), 0);
	return v;
}

static void test_layout(void **state)
{
	(void)state;
	/* The numbering is ABI: a change here breaks every installed dext. */
	assert_int_equal(TP_DUC_GET_INFO, 0);
	assert_int_equal(TP_DUC_CONFIG_READ, 1);
	assert_int_equal(TP_DUC_DMA_MAP, 6);
	assert_int_equal(TP_DUC_IRQ_ARM, 11);
	assert_int_equal(TP_DUC_RESET, 13);
	assert_int_equal(TP_DUC_MEM_IRQ_PAGE, 16);
	assert_int_equal(TP_DUC_ABI, 1);
	assert_int_equal(sizeof(struct tp_duc_info), 128);
	assert_int_equal(sizeof(struct tp_duc_dma_map_out), 536);
	assert_int_equal(offsetof(struct tp_duc_irq_page, pending), 64);
	assert_int_equal(TP_DUC_MAX_DMA_BYTES, 1536ull << 20);
}

static void test_parse_bdf(void **state)
{
	unsigned b, d, f;

	(void)state;
	assert_int_equal(tp_darwin_parse_bdf("03:00.0", &b, &d, &f), 0);
	assert_true(b == 3 && d == 0 && f == 0);
	assert_int_equal(tp_darwin_parse_bdf("0000:ff:1f.7", &b, &d, &f), 0);
	assert_true(b == 0xff && d == 0x1f && f == 7);
	assert_int_equal(tp_darwin_parse_bdf("a:1.2", &b, &d, &f), 0);
	assert_true(b == 0xa && d == 1 && f == 2);
	static const char *const bad[] = { "03:00", "03:20.0", "03:00.8", "0001:03:00.0",
					   "zz:00.0", "03:00.0.1", "", "03.00.0", "100:00.0",
					   "03:00:00.0:1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(tp_darwin_parse_bdf(bad[i], &b, &d, &f), -EINVAL);
	assert_int_equal(tp_darwin_parse_bdf(NULL, &b, &d, &f), -EINVAL);
}

static void test_open_close(void **state)
{
	struct tp_backend *be;
	struct darwin_dev *d;

	(void)state;
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "03:00.0", NULL), 0);
	d = darwin_of(be);
	assert_string_equal(be->name, "darwin-03:00.0");
	assert_int_equal(d->info.vendor, 0x10de);
	assert_int_equal(d->info.device, 0x2b85);
	assert_int_equal(d->info.cfg_size, 4096);
	assert_true(d->info.flags & TP_DUC_INFO_NO_FLR);
	assert_int_equal(d->info.msix_vectors, MODEL_MSIX_VECTORS);
	assert_int_equal(d->irq_type, TP_DUC_IRQ_MSIX);
	assert_int_equal(d->irq_vectors, MODEL_MSIX_VECTORS);
	assert_int_equal(standin_stats.sessions, 1);
	rig_close(be);

	/* pcidebug as data, with more after the function, and a name. */
	standin_reset();
	{
		const struct tp_backend_type *t = tp_backend_find("model");
		struct tp_backend *m;
		io_registry_entry_t e;

		assert_int_equal(t->create(NULL, 0, &m), 0);
		e = standin_add_pci(&(struct standin_pci){ .bus = 0x10, .dev = 2, .fn = 0,
							   .vendor = 0x10de, .device = 0x2b85,
							   .class_code = 0x030000,
							   .pcidebug_as_data = true,
							   .pcidebug = "16:2:0(pci-bridge)" });
		assert_int_equal(standin_attach_dext(e, m), 0);
	}
	assert_int_equal(rig_open(&be, "10:02.0", "name=egpu", NULL), 0);
	assert_string_equal(be->name, "egpu");
	rig_close(be);
}

static void test_open_errors(void **state)
{
	struct tp_backend *be, *be2;

	(void)state;
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "04:00.0", NULL), -ENOENT);
	assert_int_equal(rig_open(&be, "03:00.1", NULL), -ENOENT); /* audio: no dext */
	assert_int_equal(rig_open(&be, "3-0-0", NULL), -EINVAL);
	assert_int_equal(rig_open(&be, "03:00.0", "colour=blue", NULL), -EINVAL);
	assert_int_equal(rig_open(&be, "03:00.0", "irq=intx", NULL), -EINVAL);
	assert_int_equal(rig_open(&be, "03:00.0", "map=maybe", NULL), -EINVAL);
	assert_null(be);
	/* One session at a time. */
	assert_int_equal(rig_open(&be, "03:00.0", NULL), 0);
	assert_int_equal(rig_open(&be2, "03:00.0", NULL), -EBUSY);
	be->ops->destroy(be);
	assert_int_equal(standin_outstanding_refs(), 0);

	/* A dext from another ABI, for another function, or whose replies
	 * are short (built from another darwin_uc.h): refused. */
	standin_knobs.info_abi = 2;
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "03:00.0", NULL), -EPROTO);
	assert_int_equal(standin_stats.sessions, 0);
	standin_reset();
	standin_knobs.info_wrong_bdf = true;
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "03:00.0", NULL), -EPROTO);
	standin_reset();
	standin_knobs.short_reply = 8;
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "03:00.0", NULL), -EPROTO);
	rig_close(NULL);
}

static void test_config(void **state)
{
	struct tp_backend *be;
	uint32_t v;

	(void)state;
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "03:00.0", NULL), 0);
	assert_int_equal(cfg32(be, 0, 4), 0x2b8510de);
	assert_int_equal(cfg32(be, 2, 2), 0x2b85);
	/* BARs read as their type bits only: the host's addresses stay hidden. */
	assert_int_equal(cfg32(be, 0x10, 4), 0x0);         /* BAR0: 32-bit */
	assert_int_equal(cfg32(be, 0x14, 4), 0xc);         /* BAR1: 64-bit prefetchable */
	assert_int_equal(cfg32(be, 0x14, 1), 0xc);
	assert_int_equal(cfg32(be, 0x18, 4), 0x0);         /* BAR1's upper half */
	assert_int_equal(cfg32(be, 0x1c, 4), 0xc);         /* BAR3 */
	/* No INTx reaches the guest: no pin. */
	assert_int_equal(cfg32(be, 0x3d, 1), 0);
	assert_int_equal(cfg32(be, 0x3c, 4) & 0xff00, 0);
	/* The session turned decode and bus mastering on. */
	assert_int_equal(cfg32(be, 4, 2) & 6, 6);
	/* Command passes; everything else is refused by the dext. */
	v = 0x0406;
	assert_int_equal(be->ops->config_write(be, 4, &v, 2), 0);
	assert_int_equal(cfg32(be, 4, 2) & 0x0406, 0x0406);
	v = 0xffffffff;
	assert_int_equal(be->ops->config_write(be, 0x10, &v, 4), -EPERM);
	assert_int_equal(be->ops->config_write(be, 4, &v, 4), -EPERM); /* would clear status */
	v = 0x8000;
	assert_int_equal(be->ops->config_write(be, MODEL_CAP_MSIX + 2, &v, 2), -EPERM);
	assert_int_equal(be->ops->config_write(be, MODEL_CAP_MSI + 2, &v, 2), -EPERM);
	assert_int_equal(be->ops->config_write(be, MODEL_CAP_PCIE + 8, &v, 2), -EPERM);
	assert_int_equal(be->ops->config_write(be, MODEL_ECAP_REBAR + 8, &v, 4), -EPERM);
	assert_int_equal(standin_stats.refused_config_writes, 6);
	assert_int_equal(cfg32(be, 0x10, 4), 0x0);
	/* The client's own checks, before any call. */
	assert_int_equal(be->ops->config_read(be, 1, &v, 2), -EINVAL);
	assert_int_equal(be->ops->config_read(be, 4096, &v, 4), -EINVAL);
	assert_int_equal(be->ops->config_read(be, 0, &v, 3), -EINVAL);
	rig_close(be);
}

static void test_bars(void **state)
{
	struct tp_backend *be;
	struct tp_region_desc rd;
	uint8_t buf[16], back[16];
	uint32_t v = 0;
	uint64_t before;

	(void)state;
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "03:00.0", NULL), 0);
	for (uint32_t i = 0; i < TP_REGION_COUNT; i++) {
		static const uint64_t size[TP_REGION_COUNT] = {
			MODEL_BAR0_SIZE, MODEL_VRAM_DEFAULT, 0, MODEL_BAR3_SIZE, 0, 0,
			MODEL_ROM_SIZE, MODEL_CFG_SIZE, 0,
		};

		assert_int_equal(be->ops->region_info(be, i, &rd), 0);
		assert_int_equal(rd.size, size[i]);
		assert_int_equal(rd.mmap_fd, -1); /* every BAR is trapped on macOS for now */
		assert_int_equal(rd.nr_areas, 0);
	}
	/* Registers (uncached, and through the selectors here: the model's
	 * BAR0 is not memory); VRAM mapped write-combined. */
	assert_true(standin_stats.map_options[0] & kIOMapInhibitCache);
	assert_int_equal(standin_stats.map_options[1] & kIOMapCacheMask, kIOMapWriteCombineCache);
	assert_null(darwin_of(be)->bars[0].map);
	assert_non_null(darwin_of(be)->bars[1].map);
	assert_int_equal(be->ops->region_read(be, 0, MODEL_PMC_BOOT_0, &v, 4), 0);
	assert_int_equal(v, MODEL_BOOT_0_VALUE);
	assert_int_equal(be->ops->region_read(be, 0, MODEL_PMC_BOOT_42, &v, 4), 0);
	assert_int_equal(v, MODEL_BOOT_42_VALUE);
	/* Odd offsets and lengths split into aligned accesses; what went
	 * through the mapping is what the dext's MMIO path sees. */
	for (int i = 0; i < 16; i++)
		buf[i] = (uint8_t)(0x31 * i + 7);
	assert_int_equal(be->ops->region_write(be, 1, 0x1001, buf, 13), 0);
	assert_int_equal(be->ops->region_read(be, 1, 0x1001, back, 13), 0);
	assert_memory_equal(buf, back, 13);
	{
		uint64_t in[3] = { 1, 0x1008, 4 }, out = 0;

		assert_int_equal(tp_darwin_call(darwin_of(be), TP_DUC_MMIO_READ, in, 3, NULL, 0, &out,
						1, NULL, 0), 0);
		assert_memory_equal(&out, buf + 7, 4);
	}
	/* The ROM: VBIOS signature, read-only. */
	assert_int_equal(be->ops->region_read(be, TP_REGION_ROM, 0, buf, 2), 0);
	assert_int_equal(buf[0], 0x55);
	assert_int_equal(buf[1], 0xaa);
	assert_int_equal(be->ops->region_write(be, TP_REGION_ROM, 0, buf, 2), -EINVAL);
	assert_int_equal(be->ops->region_read(be, 2, 0, buf, 4), -EINVAL);
	assert_int_equal(be->ops->region_read(be, 0, MODEL_BAR0_SIZE - 2, buf, 4), -EINVAL);
	rig_close(be);

	/* map=off: every access through the dext. */
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "03:00.0", "map=off", NULL), 0);
	assert_null(darwin_of(be)->bars[1].map);
	before = standin_stats.calls[TP_DUC_MMIO_WRITE];
	assert_int_equal(be->ops->region_write(be, 1, 0x2000, buf, 16), 0);
	assert_int_equal(standin_stats.calls[TP_DUC_MMIO_WRITE], before + 2); /* two 8-byte */
	assert_int_equal(be->ops->region_read(be, 1, 0x2000, back, 16), 0);
	assert_memory_equal(buf, back, 16);
	rig_close(be);

	/* A dext that cannot map: the same, with a warning. */
	standin_knobs.no_bar_map = true;
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "03:00.0", NULL), 0);
	assert_null(darwin_of(be)->bars[1].map);
	assert_int_equal(be->ops->region_read(be, 0, MODEL_PMC_BOOT_0, &v, 4), 0);
	assert_int_equal(v, MODEL_BOOT_0_VALUE);
	rig_close(be);
}

/* The core on top: what QEMU's client will see. */
static void test_core(void **state)
{
	struct tp_device dev;
	struct tp_backend *be;
	uint32_t v = 0;

	(void)state;
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "03:00.0", NULL), 0);
	assert_int_equal(tp_device_open(&dev, be, NULL), 0);
	assert_int_equal(dev.vendor, 0x10de);
	assert_int_equal(dev.chipset, 0x1b2);
	assert_int_equal(dev.irqs.idx[TP_IRQ_MSIX].count, MODEL_MSIX_VECTORS);
	assert_int_equal(dev.irqs.idx[TP_IRQ_INTX].count, 0);
	assert_int_equal(tp_device_region_read(&dev, TP_REGION_CONFIG, 0, &v, 4), 0);
	assert_int_equal(v, 0x2b8510de);
	assert_int_equal(tp_device_region_read(&dev, 0, 0, &v, 4), 0);
	assert_int_equal(v, MODEL_BOOT_0_VALUE);
	/* A DEVICE_RESET: GB202 gets a hot reset straight away. */
	assert_int_equal(tp_device_reset(&dev), 0);
	assert_int_equal(standin_stats.resets_hot, 1);
	assert_int_equal(standin_stats.resets_flr, 0);
	tp_device_session_end(&dev);
	tp_device_close(&dev);
	rig_close(NULL);
}

static void test_reset(void **state)
{
	struct tp_backend *be;
	uint32_t cmd = 0;

	(void)state;
	/* Another NVIDIA id: FLR first, and the session's Command restored. */
	standin_knobs.fake_device = 0x2684;
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "03:00.0", NULL), 0);
	assert_false(darwin_of(be)->info.flags & TP_DUC_INFO_NO_FLR);
	assert_int_equal(be->ops->reset(be), 0);
	assert_int_equal(standin_stats.resets_flr, 1);
	assert_int_equal(standin_stats.resets_hot, 0);
	cmd = cfg32(be, 4, 2);
	assert_int_equal(cmd & 6, 6);
	rig_close(be);

	/* FLR refused: hot reset. */
	standin_knobs.fake_device = 0x2684;
	standin_knobs.flr_fails = true;
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "03:00.0", NULL), 0);
	assert_int_equal(be->ops->reset(be), 0);
	assert_int_equal(standin_stats.resets_hot, 1);
	rig_close(be);

	/* A device that never comes back (config reads CRS): a timeout, not a hang. */
	rig_registry("fault=no-flr-return");
	assert_int_equal(rig_open(&be, "03:00.0", NULL), 0);
	assert_int_equal(be->ops->reset(be), -ETIMEDOUT);
	rig_close(be);
}

static void test_list(void **state)
{
	struct tp_backend *be;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	rig_registry(NULL);
	f = open_memstream(&text, &len);
	assert_int_equal(tp_darwin_list(f), 3);
	fclose(f);
	assert_non_null(strstr(text, "00:01.0  106b:1003 060400 no     -            no\n"));
	assert_non_null(strstr(text, "03:00.0  10de:2b85 030000 yes    thunderpass  yes\n"));
	assert_non_null(strstr(text, "03:00.1  10de:22e8 040300 yes    -            no\n"));
	free(text);
	assert_int_equal(rig_open(&be, "03:00.0", NULL), 0);
	f = open_memstream(&text, &len);
	assert_int_equal(tp_darwin_list(f), 3);
	fclose(f);
	assert_non_null(strstr(text, "thunderpass  no: in use"));
	free(text);
	rig_close(be);
}

/* Calls the real client never makes: the dext must refuse each. */
static void test_bad_calls(void **state)
{
	struct tp_backend *be;
	struct darwin_dev *d;
	uint64_t in[4], out[2];
	struct tp_duc_bar bar;
	uint8_t small[8];
	size_t sz;

	(void)state;
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "03:00.0", NULL), 0);
	d = darwin_of(be);
	in[0] = 0;
	assert_int_equal(tp_darwin_call(d, TP_DUC_CONFIG_READ, in, 1, NULL, 0, out, 1, NULL, 0),
			 -EINVAL);
	in[0] = 1, in[1] = 4;
	assert_int_equal(tp_darwin_call(d, TP_DUC_CONFIG_READ, in, 2, NULL, 0, out, 1, NULL, 0),
			 -EINVAL);
	in[0] = 4096, in[1] = 4;
	assert_int_equal(tp_darwin_call(d, TP_DUC_CONFIG_READ, in, 2, NULL, 0, out, 1, NULL, 0),
			 -EINVAL);
	in[0] = 4, in[1] = 2, in[2] = 0x10000; /* wider than the access */
	assert_int_equal(tp_darwin_call(d, TP_DUC_CONFIG_WRITE, in, 3, NULL, 0, NULL, 0, NULL, 0),
			 -EINVAL);
	in[0] = 2, in[1] = 0, in[2] = 4; /* BAR2: the upper half of BAR1 */
	assert_int_equal(tp_darwin_call(d, TP_DUC_MMIO_READ, in, 3, NULL, 0, out, 1, NULL, 0),
			 -EINVAL);
	in[0] = 0, in[1] = 2, in[2] = 4; /* misaligned */
	assert_int_equal(tp_darwin_call(d, TP_DUC_MMIO_READ, in, 3, NULL, 0, out, 1, NULL, 0),
			 -EINVAL);
	in[0] = TP_DUC_BAR_ROM, in[1] = 0, in[2] = 1, in[3] = 0;
	assert_int_equal(tp_darwin_call(d, TP_DUC_MMIO_WRITE, in, 4, NULL, 0, NULL, 0, NULL, 0),
			 -EINVAL);
	in[0] = 0, in[1] = 0, in[2] = 1, in[3] = 0x100;
	assert_int_equal(tp_darwin_call(d, TP_DUC_MMIO_WRITE, in, 4, NULL, 0, NULL, 0, NULL, 0),
			 -EINVAL);
	in[0] = 7;
	assert_int_equal(tp_darwin_call(d, TP_DUC_BAR_INFO, in, 1, NULL, 0, NULL, 0, &bar,
					sizeof(bar)), -EINVAL);
	/* A structure reply into too small a buffer; a short structure in. */
	sz = sizeof(small);
	assert_int_equal(IOConnectCallMethod(d->conn, TP_DUC_GET_INFO, NULL, 0, NULL, 0, NULL, NULL,
					     small, &sz), kIOReturnBadArgument);
	sz = sizeof(struct tp_duc_dma_map_out);
	{
		struct tp_duc_dma_map_out mo;

		assert_int_equal(IOConnectCallMethod(d->conn, TP_DUC_DMA_MAP, NULL, 0, small,
						     sizeof(small), NULL, NULL, &mo, &sz),
				 kIOReturnBadArgument);
	}
	/* IRQ_ARM only asynchronously; no other selector asynchronously. */
	assert_int_equal(tp_darwin_call(d, TP_DUC_IRQ_ARM, NULL, 0, NULL, 0, NULL, 0, NULL, 0),
			 -EINVAL);
	/* Interrupts are set up already; bad types and counts. */
	in[0] = TP_DUC_IRQ_MSIX, in[1] = 1;
	assert_int_equal(tp_darwin_call(d, TP_DUC_IRQ_SETUP, in, 2, NULL, 0, out, 1, NULL, 0),
			 -EBUSY);
	assert_int_equal(tp_darwin_call(d, TP_DUC_DMA_UNMAP, (uint64_t[]){ 0x100000001ull }, 1,
					NULL, 0, NULL, 0, NULL, 0), -ENOENT);
	assert_int_equal(tp_darwin_call(d, 99, NULL, 0, NULL, 0, NULL, 0, NULL, 0), -EOPNOTSUPP);
	rig_close(be);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_parse_bdf),
		cmocka_unit_test(test_open_close),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_bars),
		cmocka_unit_test(test_core),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_bad_calls),
	};

	tp_log_set_level(TP_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
