/* SPDX-License-Identifier: MIT */
/*
 * tp_nv_identify / tp_nv_describe against known register values.
 *
 * BOOT_0 values are nouveau's layout (chipset in 28:20, revision byte 7:0);
 * BOOT_42 values are NVIDIA's (architecture 29:24, implementation 23:20,
 * major rev 19:16, minor 15:12). GB202's pair is the one seen on an RTX 5090.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "thunderpass/identify.h"

struct known {
	uint32_t boot0;
	uint32_t boot42;
	uint16_t device;
	uint32_t chipset;
	const char *chip;
	const char *arch;
	const char *rev;
	const char *family;
};

static const struct known known_chips[] = {
	/* Both registers, as read from the hardware. */
	{ 0x1b2000a1, 0x1b2a1000, 0x2b85, 0x1b2, "GB202", "Blackwell", "A1", "GeForce RTX 5090" },
	/* BOOT_0 alone (boot42 = 0: not read). */
	{ 0x1b2000a1, 0,          0x2b87, 0x1b2, "GB202", "Blackwell", "A1", "GeForce RTX 5090 D" },
	{ 0x192000a1, 0,          0x2684, 0x192, "AD102", "Ada",       "A1", "GeForce RTX 4090" },
	{ 0x172000a1, 0,          0x2204, 0x172, "GA102", "Ampere",    "A1", "GeForce RTX 3090" },
	{ 0x162000a1, 0,          0x1e04, 0x162, "TU102", "Turing",    "A1", "GeForce RTX 2080 Ti" },
	{ 0x180000a1, 0,          0x2330, 0x180, "GH100", "Hopper",    "A1", "H100 SXM5 80GB" },
	{ 0x168000a1, 0,          0x2182, 0x168, "TU116", "Turing",    "A1", "GeForce GTX 1660 Ti" },
	{ 0x167000a1, 0,          0x1f82, 0x167, "TU117", "Turing",    "A1", "GeForce GTX 1650" },
	{ 0x170000a1, 0,          0x20b0, 0x170, "GA100", "Ampere",    "A1", "A100-SXM4-40GB" },
	{ 0x1a0000a1, 0,          0x2901, 0x1a0, "GB100", "Blackwell", "A1", "B200" },
	{ 0x1b3000a1, 0,          0x2c02, 0x1b3, "GB203", "Blackwell", "A1", "GeForce RTX 5080" },
	{ 0x1b7000a1, 0,          0,      0x1b7, "GB207", "Blackwell", "A1", "" },
	/* BOOT_42 alone (BOOT_0 read as 0 is "no opinion"). */
	{ 0,          0x192a1000, 0,      0x192, "AD102", "Ada",       "A1", "" },
	{ 0,          0x172a1000, 0,      0x172, "GA102", "Ampere",    "A1", "" },
	{ 0,          0x180a1000, 0,      0x180, "GH100", "Hopper",    "A1", "" },
	/* The generic GB202 range catches ids we do not list one by one. */
	{ 0x1b2000a1, 0x1b2a1000, 0x2b80, 0x1b2, "GB202", "Blackwell", "A1",
	  "GB202 (RTX 50 series / RTX PRO)" },
	{ 0x1b2000a1, 0x1b2a1000, 0x2bff, 0x1b2, "GB202", "Blackwell", "A1",
	  "GB202 (RTX 50 series / RTX PRO)" },
};

static void test_known_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(known_chips) / sizeof(known_chips[0]); i++) {
		const struct known *k = &known_chips[i];
		struct tp_nv_ident id;

		assert_int_equal(tp_nv_identify(k->boot0, k->boot42, k->device, &id), 0);
		assert_int_equal(id.state, TP_NV_OK);
		assert_int_equal(id.boot0, k->boot0);
		assert_int_equal(id.boot42, k->boot42);
		assert_int_equal(id.chipset, k->chipset);
		assert_string_equal(id.chip, k->chip);
		assert_string_equal(id.arch, k->arch);
		assert_string_equal(id.rev, k->rev);
		assert_string_equal(id.family, k->family);
	}
}

static void test_gb202_describe(void **state)
{
	struct tp_nv_ident id;
	char buf[128];

	(void)state;
	assert_int_equal(tp_nv_identify(0x1b2000a1, 0x1b2a1000, 0x2b85, &id), 0);
	assert_int_equal(tp_nv_describe(&id, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "GB202 (Blackwell) rev A1, chipset 0x1b2 [GeForce RTX 5090]");

	/* No device id: no brackets. */
	assert_int_equal(tp_nv_identify(0x1b2000a1, 0, 0, &id), 0);
	assert_int_equal(tp_nv_describe(&id, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "GB202 (Blackwell) rev A1, chipset 0x1b2");
}

static void test_off_bus(void **state)
{
	struct tp_nv_ident id;
	char buf[160];

	(void)state;
	/* Either register reading all-ones is enough. */
	assert_int_equal(tp_nv_identify(0xffffffff, 0xffffffff, 0x2b85, &id), 0);
	assert_int_equal(id.state, TP_NV_OFF_BUS);
	assert_int_equal(id.chipset, 0);
	assert_string_equal(id.chip, "");
	/* Config space may still name the board. */
	assert_string_equal(id.family, "GeForce RTX 5090");
	assert_int_equal(tp_nv_describe(&id, buf, sizeof(buf)), 0);
	assert_non_null(strstr(buf, "fell off the bus (0xffffffff)"));
	assert_non_null(strstr(buf, "check the link/dock and power"));

	assert_int_equal(tp_nv_identify(0xffffffff, 0, 0, &id), 0);
	assert_int_equal(id.state, TP_NV_OFF_BUS);
	assert_int_equal(tp_nv_identify(0x1b2000a1, 0xffffffff, 0, &id), 0);
	assert_int_equal(id.state, TP_NV_OFF_BUS);
	assert_int_equal(tp_nv_identify(0xffffffff, 0x1b2a1000, 0, &id), 0);
	assert_int_equal(id.state, TP_NV_OFF_BUS);
}

static void test_bus_error(void **state)
{
	struct tp_nv_ident id;
	char buf[200];

	(void)state;
	assert_int_equal(tp_nv_identify(0xbadf1100, 0, 0, &id), 0);
	assert_int_equal(id.state, TP_NV_BUS_ERROR);
	assert_int_equal(id.chipset, 0);
	assert_string_equal(id.chip, "");
	assert_int_equal(tp_nv_describe(&id, buf, sizeof(buf)), 0);
	assert_non_null(strstr(buf, "register-bus"));
	assert_non_null(strstr(buf, "BOOT_0 0xbadf1100"));

	/* In BOOT_42 only: still an error, and the line names BOOT_42. */
	assert_int_equal(tp_nv_identify(0x1b2000a1, 0xbadf5040, 0, &id), 0);
	assert_int_equal(id.state, TP_NV_BUS_ERROR);
	assert_int_equal(tp_nv_describe(&id, buf, sizeof(buf)), 0);
	assert_non_null(strstr(buf, "BOOT_42 0xbadf5040"));

	/* 0xbadf only counts in the top half. */
	assert_int_equal(tp_nv_identify(0x0000badf, 0, 0, &id), 0);
	assert_int_not_equal(id.state, TP_NV_BUS_ERROR);
	/* Off the bus beats a bus error: nothing past the link matters then. */
	assert_int_equal(tp_nv_identify(0xbadf1100, 0xffffffff, 0, &id), 0);
	assert_int_equal(id.state, TP_NV_OFF_BUS);
}

static void test_unknown(void **state)
{
	struct tp_nv_ident id;
	char buf[200];

	(void)state;
	/* Zero: no identity at all. */
	assert_int_equal(tp_nv_identify(0, 0, 0, &id), 0);
	assert_int_equal(id.state, TP_NV_UNKNOWN);
	assert_int_equal(id.chipset, 0);
	assert_string_equal(id.rev, "");
	assert_int_equal(tp_nv_describe(&id, buf, sizeof(buf)), 0);
	assert_non_null(strstr(buf, "no identity"));

	/* A sane value naming no chip we list; the architecture is known. */
	assert_int_equal(tp_nv_identify(0x1b4000a1, 0, 0, &id), 0);
	assert_int_equal(id.state, TP_NV_UNKNOWN);
	assert_int_equal(id.chipset, 0x1b4);
	assert_string_equal(id.chip, "");
	assert_string_equal(id.arch, "Blackwell");
	assert_string_equal(id.rev, "A1");
	assert_int_equal(tp_nv_describe(&id, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "unknown chipset 0x1b4 (Blackwell) rev A1 "
				 "(BOOT_0 0x1b4000a1, BOOT_42 0x00000000)");

	/* An older architecture (Volta GV100, 0x140) is out of our table. */
	assert_int_equal(tp_nv_identify(0x140000a1, 0, 0, &id), 0);
	assert_int_equal(id.state, TP_NV_UNKNOWN);
	assert_int_equal(id.chipset, 0x140);
	assert_string_equal(id.arch, "");
	assert_int_equal(tp_nv_describe(&id, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "unknown chipset 0x140 rev A1 "
				 "(BOOT_0 0x140000a1, BOOT_42 0x00000000)");

	/* BOOT_0 architecture bit 5 (bit 8) must not alias onto chipset 0x1b2. */
	assert_int_equal(tp_nv_identify(0x1b2001a1, 0, 0, &id), 0);
	assert_int_equal(id.state, TP_NV_UNKNOWN);
	assert_int_equal(id.chipset, 0x3b2);
}

static void test_disagreement(void **state)
{
	struct tp_nv_ident id;

	(void)state;
	/* BOOT_0 says AD102 A1, BOOT_42 says GB202 A1: BOOT_42 wins, both kept. */
	assert_int_equal(tp_nv_identify(0x192000a1, 0x1b2a1000, 0, &id), 0);
	assert_int_equal(id.state, TP_NV_OK);
	assert_int_equal(id.chipset, 0x1b2);
	assert_string_equal(id.chip, "GB202");
	assert_int_equal(id.boot0, 0x192000a1);
	assert_int_equal(id.boot42, 0x1b2a1000);

	/* The revision comes from the winner too. */
	assert_int_equal(tp_nv_identify(0x1b2000a1, 0x1b2b0000, 0, &id), 0);
	assert_string_equal(id.rev, "B0");

	/* BOOT_42 naming nothing we know: UNKNOWN, even if BOOT_0 is fine. */
	assert_int_equal(tp_nv_identify(0x1b2000a1, 0x1b4a1000, 0, &id), 0);
	assert_int_equal(id.state, TP_NV_UNKNOWN);
	assert_int_equal(id.chipset, 0x1b4);
}

static void test_revision_format(void **state)
{
	static const struct {
		uint32_t boot0, boot42;
		const char *rev;
	} revs[] = {
		{ 0x1b2000a1, 0, "A1" },
		{ 0x1b2000a0, 0, "A0" },
		{ 0x1b2000b1, 0, "B1" },
		{ 0x1b2000c2, 0, "C2" },
		{ 0x1b200001, 0, "01" },	/* not a stepping letter: a digit */
		{ 0x1b2000af, 0, "AF" },	/* minor past 9: a hex digit */
		{ 0, 0x1b2a1000, "A1" },
		{ 0, 0x1b2b0000, "B0" },
		{ 0, 0x1b2a1f00, "A1" },	/* minor extended rev 11:8 is ignored */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(revs) / sizeof(revs[0]); i++) {
		struct tp_nv_ident id;

		assert_int_equal(tp_nv_identify(revs[i].boot0, revs[i].boot42, 0, &id), 0);
		assert_string_equal(id.rev, revs[i].rev);
	}
}

static void test_family_lookup(void **state)
{
	static const struct {
		uint16_t device;
		const char *family;
	} fams[] = {
		{ 0x2b85, "GeForce RTX 5090" },
		{ 0x2b87, "GeForce RTX 5090 D" },
		{ 0x2b8c, "GeForce RTX 5090 D v2" },
		{ 0x2bb1, "RTX PRO 6000 Blackwell Workstation Edition" },
		{ 0x2b90, "GB202 (RTX 50 series / RTX PRO)" },
		{ 0x2b7f, "" },		/* just below the GB202 block */
		{ 0x2c00, "" },		/* just above it */
		{ 0x2684, "GeForce RTX 4090" },
		{ 0x2204, "GeForce RTX 3090" },
		{ 0x1e04, "GeForce RTX 2080 Ti" },
		{ 0x2330, "H100 SXM5 80GB" },
		{ 0x2331, "H100 PCIe" },
		{ 0x27b8, "L4" },
		{ 0x1234, "" },
		{ 0, "" },		/* 0 is "not given" */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
		struct tp_nv_ident id;

		/* The family does not depend on the chip decoding. */
		assert_int_equal(tp_nv_identify(0, 0, fams[i].device, &id), 0);
		assert_string_equal(id.family, fams[i].family);
	}
}

static void test_describe_truncation(void **state)
{
	struct tp_nv_ident id;
	char buf[8];
	char one[1];

	(void)state;
	assert_int_equal(tp_nv_identify(0x1b2000a1, 0x1b2a1000, 0x2b85, &id), 0);
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(tp_nv_describe(&id, buf, sizeof(buf)), -ENOSPC);
	assert_string_equal(buf, "GB202 (");	/* a terminated prefix */

	one[0] = 'x';
	assert_int_equal(tp_nv_describe(&id, one, sizeof(one)), -ENOSPC);
	assert_int_equal(one[0], '\0');

	/* Exactly fitting is not truncation. */
	{
		char fit[sizeof("GB202 (Blackwell) rev A1, chipset 0x1b2 [GeForce RTX 5090]")];

		assert_int_equal(tp_nv_describe(&id, fit, sizeof(fit)), 0);
		assert_int_equal(tp_nv_describe(&id, fit, sizeof(fit) - 1), -ENOSPC);
	}
}

static void test_invalid_args(void **state)
{
	struct tp_nv_ident id;
	char buf[64];

	(void)state;
	assert_int_equal(tp_nv_identify(0x1b2000a1, 0, 0, NULL), -EINVAL);
	assert_int_equal(tp_nv_identify(0x1b2000a1, 0, 0, &id), 0);
	assert_int_equal(tp_nv_describe(NULL, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(tp_nv_describe(&id, NULL, sizeof(buf)), -EINVAL);
	assert_int_equal(tp_nv_describe(&id, buf, 0), -EINVAL);
	id.state = (enum tp_nv_state)42;
	assert_int_equal(tp_nv_describe(&id, buf, sizeof(buf)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_table),
		cmocka_unit_test(test_gb202_describe),
		cmocka_unit_test(test_off_bus),
		cmocka_unit_test(test_bus_error),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_disagreement),
		cmocka_unit_test(test_revision_format),
		cmocka_unit_test(test_family_lookup),
		cmocka_unit_test(test_describe_truncation),
		cmocka_unit_test(test_invalid_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
