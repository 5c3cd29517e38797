/* SPDX-License-Identifier: MIT */
/*
 * Config-space virtualization against a fake function: BAR sizing, the
 * rebuilt capability chain, protected fields that must never reach the
 * function, pass-through bits that must, and the NVIDIA config mirror.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "device.h"
#include "fake_backend.h"
#include "pci_regs.h"
#include <thunderpass/log.h>

struct fixture {
	struct fake_be fb;
	struct tp_device dev;
};

static struct fixture *open_with(const struct fake_cfg_spec *spec,
				 void (*edit)(struct fake_be *fb))
{
	struct fixture *f = test_calloc(1, sizeof(*f));

	assert_int_equal(fake_be_init(&f->fb, spec), 0);
	if (edit)
		edit(&f->fb);
	assert_int_equal(tp_device_open(&f->dev, &f->fb.be, NULL), 0);
	return f;
}

static void close_fixture(struct fixture *f)
{
	assert_int_equal(f->fb.violations, 0);
	tp_device_close(&f->dev);
	test_free(f);
}

static uint32_t rd(struct fixture *f, uint32_t off, unsigned len)
{
	uint8_t b[4] = { 0 };

	assert_int_equal(tp_config_read(&f->dev.cfg, off, b, len), 0);
	return fake_cfg_get(b, 0, len);
}

static void wr(struct fixture *f, uint32_t off, unsigned len, uint32_t v)
{
	uint8_t b[4];

	fake_cfg_put(b, 0, len, v);
	assert_int_equal(tp_config_write(&f->dev.cfg, off, b, len), 0);
}

static void test_identity_read_only(void **state)
{
	struct fixture *f = open_with(NULL, NULL);
	unsigned long writes = f->fb.calls.config_write;
	uint64_t filtered = f->dev.cfg.filtered_writes;

	assert_int_equal(rd(f, PCI_VENDOR_ID, 4), (FAKE_DEVICE << 16) | FAKE_VENDOR);
	wr(f, PCI_VENDOR_ID, 4, 0xdeadbeef);
	wr(f, PCI_REVISION_ID, 4, 0xffffffff);
	assert_int_equal(rd(f, PCI_VENDOR_ID, 4), (FAKE_DEVICE << 16) | FAKE_VENDOR);
	assert_int_equal(f->fb.calls.config_write, writes); /* never reached the function */
	assert_true(f->dev.cfg.filtered_writes > filtered);
	close_fixture(f);
}

static void test_bar_sizing(void **state)
{
	struct fixture *f = open_with(NULL, NULL);
	unsigned long writes = f->fb.calls.config_write;

	/* BAR0: 64-bit prefetchable 1 MiB; BAR1 is its upper half. */
	assert_int_equal(rd(f, 0x10, 4), 0xc);
	wr(f, 0x10, 4, 0xffffffff);
	wr(f, 0x14, 4, 0xffffffff);
	assert_int_equal(rd(f, 0x10, 4), 0xfff0000c);
	assert_int_equal(rd(f, 0x14, 4), 0xffffffff);
	wr(f, 0x10, 4, 0xe0000000);
	wr(f, 0x14, 4, 0x1);
	assert_int_equal(rd(f, 0x10, 4), 0xe000000c);
	assert_int_equal(rd(f, 0x14, 4), 0x1);
	/* Low address bits below the size stay zero. */
	wr(f, 0x10, 4, 0xe0012345);
	assert_int_equal(rd(f, 0x10, 4), 0xe000000c);
	/* BAR2: 32-bit 4 KiB. */
	wr(f, 0x18, 4, 0xffffffff);
	assert_int_equal(rd(f, 0x18, 4), 0xfffff000);
	/* Absent BARs read 0 whatever is written. */
	for (uint32_t off = 0x1c; off <= 0x24; off += 4) {
		wr(f, off, 4, 0xffffffff);
		assert_int_equal(rd(f, off, 4), 0);
	}
	/* ROM: 2 KiB, enable bit writable. */
	wr(f, PCI_ROM_ADDRESS, 4, 0xffffffff);
	assert_int_equal(rd(f, PCI_ROM_ADDRESS, 4), 0xfffff801);
	/* The function's own BARs were never touched. */
	assert_int_equal(f->fb.calls.config_write, writes);
	assert_int_equal(fake_cfg_get(f->fb.cfg, 0x10, 4) & 0xfffffff0,
			 fake_cfg_get(f->dev.cfg.phys, 0x10, 4) & 0xfffffff0);
	/* Reset: guest addresses gone. */
	tp_config_reset(&f->dev.cfg);
	assert_int_equal(rd(f, 0x10, 4), 0xc);
	assert_int_equal(rd(f, 0x18, 4), 0);
	close_fixture(f);
}

static void test_command_pass_through(void **state)
{
	struct fixture *f = open_with(NULL, NULL);

	fake_cfg_put(f->fb.cfg, PCI_STATUS, 2, 0xf900); /* RW1C error bits set */
	wr(f, PCI_COMMAND, 4, 0xffff0000 | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | 0x0008);
	/* Memory and bus master reached the function; special cycles (bit 3) did not. */
	assert_int_equal(fake_cfg_get(f->fb.cfg, PCI_COMMAND, 2),
			 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	/* Only the command bytes were written: the status RW1C bits survived. */
	assert_int_equal(f->fb.last_config_write_off, PCI_COMMAND);
	assert_int_equal(f->fb.last_config_write_len, 2);
	assert_int_equal(fake_cfg_get(f->fb.cfg, PCI_STATUS, 2), 0xf900);
	/* Command reads live. */
	assert_int_equal(rd(f, PCI_COMMAND, 2), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	close_fixture(f);
}

static void test_status_filtered(void **state)
{
	struct fixture *f = open_with(NULL, NULL);
	unsigned long writes = f->fb.calls.config_write;

	fake_cfg_put(f->fb.cfg, PCI_STATUS, 2, 0x8000);
	wr(f, PCI_STATUS, 2, 0xffff);
	assert_int_equal(f->fb.calls.config_write, writes);
	assert_int_equal(fake_cfg_get(f->fb.cfg, PCI_STATUS, 2), 0x8000);
	/* Live bits plus the rebuilt chain's capability-list bit. */
	assert_int_equal(rd(f, PCI_STATUS, 2), 0x8000 | PCI_STATUS_CAP_LIST);
	close_fixture(f);
}

/* Walks the guest's chain; returns the ids in order. */
static unsigned guest_chain(struct fixture *f, uint8_t *ids, uint8_t *offs)
{
	unsigned n = 0;
	uint32_t p = rd(f, PCI_CAPABILITY_LIST, 1);

	while (p && n < 48) {
		ids[n] = (uint8_t)rd(f, p, 1);
		offs[n++] = (uint8_t)p;
		p = rd(f, p + 1, 1);
	}
	return n;
}

static void test_chain_intact(void **state)
{
	struct fixture *f = open_with(NULL, NULL);
	uint8_t ids[48], offs[48];
	unsigned n = guest_chain(f, ids, offs);

	assert_int_equal(n, 4);
	assert_int_equal(ids[0], PCI_CAP_ID_PM);
	assert_int_equal(ids[1], PCI_CAP_ID_MSI);
	assert_int_equal(ids[2], PCI_CAP_ID_MSIX);
	assert_int_equal(ids[3], PCI_CAP_ID_EXP);
	/* Capability headers are read-only. */
	wr(f, FAKE_CAP_PM, 2, 0);
	assert_int_equal(guest_chain(f, ids, offs), 4);
	close_fixture(f);
}

/* PM -> VPD (unsupported) -> MSI: VPD disappears from the guest's chain. */
static void insert_vpd(struct fake_be *fb)
{
	fake_cfg_put(fb->cfg, 0xe0, 1, PCI_CAP_ID_VPD);
	fake_cfg_put(fb->cfg, 0xe1, 1, FAKE_CAP_MSI);
	fake_cfg_put(fb->cfg, 0xe2, 2, 0x1234);
	fake_cfg_put(fb->cfg, FAKE_CAP_PM + 1, 1, 0xe0);
}

static void test_chain_hides_unknown(void **state)
{
	struct fixture *f = open_with(NULL, insert_vpd);
	uint8_t ids[48], offs[48];
	unsigned n = guest_chain(f, ids, offs);

	assert_int_equal(n, 4);
	for (unsigned i = 0; i < n; i++)
		assert_int_not_equal(ids[i], PCI_CAP_ID_VPD);
	assert_int_equal(rd(f, 0xe0, 4), 0); /* hidden bytes read zero */
	close_fixture(f);
}

/* MSI-X's next pointer loops back to PM: the walk ends, nothing hangs. */
static void make_loop(struct fake_be *fb)
{
	fake_cfg_put(fb->cfg, FAKE_CAP_MSIX + 1, 1, FAKE_CAP_PM);
}

static void test_chain_loop(void **state)
{
	struct fixture *f = open_with(NULL, make_loop);
	uint8_t ids[48], offs[48];
	unsigned n = guest_chain(f, ids, offs);

	assert_int_equal(n, 3); /* PM, MSI, MSI-X; PCIe was only reachable via the loop */
	close_fixture(f);
}

static void make_header_pointer(struct fake_be *fb)
{
	fake_cfg_put(fb->cfg, FAKE_CAP_MSI + 1, 1, 0x10); /* into the BARs */
}

static void test_chain_pointer_into_header(void **state)
{
	struct fixture *f = open_with(NULL, make_header_pointer);
	uint8_t ids[48], offs[48];

	assert_int_equal(guest_chain(f, ids, offs), 2);
	close_fixture(f);
}

static void test_msi_owned_by_core(void **state)
{
	struct fixture *f = open_with(NULL, NULL);
	unsigned long writes = f->fb.calls.config_write;
	uint32_t p = FAKE_CAP_MSI;

	assert_false(tp_config_msi_enabled(&f->dev.cfg));
	wr(f, p + 4, 4, 0xfee00004);
	wr(f, p + 8, 4, 0x1);
	wr(f, p + 12, 2, 0x4041);
	wr(f, p + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE | 0x0020);
	assert_true(tp_config_msi_enabled(&f->dev.cfg));
	assert_int_equal(rd(f, p + 4, 4), 0xfee00004);
	assert_int_equal(rd(f, p + 12, 2), 0x4041);
	assert_int_equal(rd(f, p + PCI_MSI_FLAGS, 2) & 0x71, 0x21);
	/* Capability bits (64-bit, maskable, vector count) did not move. */
	assert_int_equal(rd(f, p + PCI_MSI_FLAGS, 2) & 0x18e,
			 fake_cfg_get(f->fb.cfg, p + PCI_MSI_FLAGS, 2) & 0x18e);
	/* MSI-X enable, also the core's. */
	wr(f, FAKE_CAP_MSIX + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE | 0x7ff);
	assert_true(tp_config_msix_enabled(&f->dev.cfg));
	assert_int_equal(rd(f, FAKE_CAP_MSIX + PCI_MSIX_FLAGS, 2),
			 PCI_MSIX_FLAGS_ENABLE | (f->fb.spec.msix_vectors - 1));
	assert_int_equal(f->fb.calls.config_write, writes);
	close_fixture(f);
}

static void test_pcie_protected(void **state)
{
	struct fixture *f = open_with(NULL, NULL);
	unsigned long writes = f->fb.calls.config_write;
	uint32_t p = FAKE_CAP_PCIE;
	uint32_t devctl = fake_cfg_get(f->fb.cfg, p + PCI_EXP_DEVCTL, 2);

	/* Device Control: the guest sees its write; the function keeps its MPS/MRRS. */
	wr(f, p + PCI_EXP_DEVCTL, 2, 0x50a0 | PCI_EXP_DEVCTL_BCR_FLR);
	assert_int_equal(rd(f, p + PCI_EXP_DEVCTL, 2), 0x50a0);
	assert_int_equal(fake_cfg_get(f->fb.cfg, p + PCI_EXP_DEVCTL, 2), devctl);
	/* Link disable and retrain never stick. */
	wr(f, p + PCI_EXP_LNKCTL, 2, PCI_EXP_LNKCTL_LD | PCI_EXP_LNKCTL_RL | 0x3);
	assert_int_equal(rd(f, p + PCI_EXP_LNKCTL, 2) & 0x33, 0x3);
	assert_int_equal(f->fb.calls.config_write, writes);
	/* Link status is live: a retrain on the host shows at once. */
	fake_cfg_put(f->fb.cfg, p + PCI_EXP_LNKSTA, 2, 0x1041);
	assert_int_equal(rd(f, p + PCI_EXP_LNKSTA, 2), 0x1041);
	fake_cfg_put(f->fb.cfg, p + PCI_EXP_LNKSTA, 2, 0x1011);
	assert_int_equal(rd(f, p + PCI_EXP_LNKSTA, 2), 0x1011);
	close_fixture(f);
}

static void test_power_state_virtual(void **state)
{
	struct fixture *f = open_with(NULL, NULL);

	wr(f, FAKE_CAP_PM + PCI_PM_CTRL, 2, 0x3);
	assert_int_equal(rd(f, FAKE_CAP_PM + PCI_PM_CTRL, 2) & 3, 3);
	assert_int_equal(fake_cfg_get(f->fb.cfg, FAKE_CAP_PM + PCI_PM_CTRL, 2) & 3, 0);
	close_fixture(f);
}

static void test_extended_chain(void **state)
{
	struct fixture *f = open_with(NULL, NULL);
	uint32_t h = rd(f, PCI_EXT_CAP_START, 4);
	uint32_t dsn = fake_cfg_dsn_offset(&f->fb.spec);

	/* AER at 0x100 is hidden: a null header points at DSN. */
	assert_int_equal(h & 0xffff, 0);
	assert_int_equal(h >> 20, dsn);
	assert_int_equal(rd(f, dsn, 4) & 0xffff, PCI_EXT_CAP_ID_DSN);
	assert_int_equal(rd(f, dsn, 4) >> 20, 0);
	assert_int_equal(rd(f, dsn + 4, 4), (uint32_t)f->fb.spec.serial);
	assert_int_equal(rd(f, PCI_EXT_CAP_START + 4, 4), 0); /* AER body */
	close_fixture(f);
}

static void test_whole_space_read(void **state)
{
	struct fixture *f = open_with(NULL, NULL);
	uint8_t all[4096], one[4];

	assert_int_equal(tp_config_read(&f->dev.cfg, 0, all, sizeof(all)), 0);
	for (uint32_t off = 0; off < 4096; off += 4) {
		assert_int_equal(tp_config_read(&f->dev.cfg, off, one, 4), 0);
		assert_memory_equal(all + off, one, 4);
	}
	/* Odd offsets and lengths: split into aligned pieces for the function. */
	assert_int_equal(tp_config_read(&f->dev.cfg, 3, all, 7), 0);
	assert_int_equal(tp_config_read(&f->dev.cfg, 4095, one, 2), -EINVAL);
	assert_int_equal(tp_config_read(&f->dev.cfg, 0, one, 0), -EINVAL);
	assert_int_equal(tp_config_write(&f->dev.cfg, 4094, one, 4), -EINVAL);
	close_fixture(f);
}

static void make_bridge(struct fake_be *fb)
{
	fake_cfg_put(fb->cfg, PCI_HEADER_TYPE, 1, 1);
}

static void make_dead(struct fake_be *fb)
{
	memset(fb->cfg, 0xff, sizeof(fb->cfg));
}

static void make_odd_bar(struct fake_be *fb)
{
	fb->regions[2].size = 3000;
}

static void refuse(void (*edit)(struct fake_be *), int expect)
{
	struct fake_be fb;
	struct tp_device dev;

	assert_int_equal(fake_be_init(&fb, NULL), 0);
	edit(&fb);
	assert_int_equal(tp_device_open(&dev, &fb.be, NULL), expect);
	tp_device_close(&dev);
}

static void test_refused_functions(void **state)
{
	refuse(make_bridge, -ENOTSUP);
	refuse(make_dead, -ENODEV);
	refuse(make_odd_bar, -EINVAL);
}

/* NVIDIA: BAR0 0x88000 shows the guest's config, and is never mapped. */
static void make_nvidia(struct fake_be *fb)
{
	fake_cfg_put(fb->cfg, PCI_VENDOR_ID, 2, 0x10de);
}

static void test_nvidia_mirror(void **state)
{
	struct fixture *f = open_with(NULL, make_nvidia);
	uint32_t v = 0;
	const struct tp_region *r = &f->dev.regions[0];

	assert_int_equal(tp_device_region_read(&f->dev, 0, 0x88000, &v, 4), 0);
	assert_int_equal(v, (FAKE_DEVICE << 16) | 0x10de);
	/* BAR sizing through the mirror is the guest's view, not the function's. */
	v = 0xffffffff;
	assert_int_equal(tp_device_region_write(&f->dev, 0, 0x88010, &v, 4, false), 0);
	assert_int_equal(rd(f, 0x10, 4), 0xfff0000c);
	/* The mappable area of BAR0 now has a hole at 0x88000. */
	assert_int_equal(r->nr_areas, 2);
	assert_int_equal(r->areas[0].offset, 0);
	assert_int_equal(r->areas[0].size, 0x88000);
	assert_int_equal(r->areas[1].offset, 0x89000);
	assert_int_equal(r->areas[1].offset + r->areas[1].size, FAKE_BAR0_SIZE);
	/* Outside the window, BAR0 is the function's. */
	assert_int_equal(tp_device_region_read(&f->dev, 0, 0x87ffc, &v, 4), 0);
	assert_int_equal(v, FAKE_BAR0_WORD(0x87ffc / 4));
	/* An access straddling the window's edge is refused. */
	assert_int_equal(tp_device_region_read(&f->dev, 0, 0x87ffe, &v, 4), -EINVAL);
	close_fixture(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity_read_only),
		cmocka_unit_test(test_bar_sizing),
		cmocka_unit_test(test_command_pass_through),
		cmocka_unit_test(test_status_filtered),
		cmocka_unit_test(test_chain_intact),
		cmocka_unit_test(test_chain_hides_unknown),
		cmocka_unit_test(test_chain_loop),
		cmocka_unit_test(test_chain_pointer_into_header),
		cmocka_unit_test(test_msi_owned_by_core),
		cmocka_unit_test(test_pcie_protected),
		cmocka_unit_test(test_power_state_virtual),
		cmocka_unit_test(test_extended_chain),
		cmocka_unit_test(test_whole_space_read),
		cmocka_unit_test(test_refused_functions),
		cmocka_unit_test(test_nvidia_mirror),
	};

	tp_log_set_level(TP_LOG_ERROR + 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
