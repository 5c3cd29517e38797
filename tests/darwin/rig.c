/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rig.h"

void rig_registry(const char *model_opt)
{
	struct standin_knobs keep = standin_knobs;
	const struct tp_backend_type *t = tp_backend_find("model");
	struct tp_backend_opt o[2] = { { "name", "gpu0" }, { NULL, NULL } };
	struct tp_backend *m = NULL;
	io_registry_entry_t gpu;
	char key[32] = "", *eq;

	standin_reset();
	standin_knobs = keep;
	if (model_opt) {
		snprintf(key, sizeof(key), "%s", model_opt);
		eq = strchr(key, '=');
		assert_non_null(eq);
		*eq = 0;
		o[1].key = key;
		o[1].value = eq + 1;
	}
	assert_non_null(t);
	assert_int_equal(t->create(o, model_opt ? 2 : 1, &m), 0);
	standin_add_pci(&(struct standin_pci){ .bus = 0, .dev = 1, .fn = 0, .vendor = 0x106b,
					       .device = 0x1003, .class_code = 0x060400 });
	gpu = standin_add_pci(&(struct standin_pci){ .bus = 3, .dev = 0, .fn = 0, .vendor = 0x10de,
						     .device = 0x2b85, .class_code = 0x030000,
						     .tunnelled = true });
	standin_add_pci(&(struct standin_pci){ .bus = 3, .dev = 0, .fn = 1, .vendor = 0x10de,
					       .device = 0x22e8, .class_code = 0x040300,
					       .tunnelled = true });
	assert_int_equal(standin_attach_dext(gpu, m), 0);
}

int rig_open(struct tp_backend **be, const char *bdf, ...)
{
	const struct tp_backend_type *t = tp_backend_find("darwin");
	struct tp_backend_opt o[8];
	char keys[8][32];
	size_t n = 0;
	const char *kv;
	va_list ap;

	/* The darwin backend is in the registry only on macOS: take it directly. */
	if (!t)
		t = &tp_backend_darwin;
	o[n].key = "device";
	o[n++].value = bdf;
	va_start(ap, bdf);
	while ((kv = va_arg(ap, const char *)) && n < 8) {
		const char *eq = strchr(kv, '=');

		assert_non_null(eq);
		snprintf(keys[n], sizeof(keys[n]), "%.*s", (int)(eq - kv), kv);
		o[n].key = keys[n];
		o[n++].value = eq + 1;
	}
	va_end(ap);
	*be = NULL;
	return t->create(o, n, be);
}

void rig_close(struct tp_backend *be)
{
	if (be)
		be->ops->destroy(be);
	assert_int_equal(standin_outstanding_refs(), 0);
	assert_int_equal(standin_stats.sessions, 0);
	assert_int_equal(standin_stats.dart_maps, 0);
	assert_int_equal(standin_stats.dart_bytes, 0);
	assert_false(standin_stats.dart_panicked);
	standin_reset();
}
