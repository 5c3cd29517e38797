/* SPDX-License-Identifier: MIT */
/* The backends built into this binary. */
#include <string.h>

#include <thunderpass/backend.h>

extern const struct tp_backend_type tp_backend_model;
extern const struct tp_backend_type tp_backend_proxy;
#ifdef __linux__
extern const struct tp_backend_type tp_backend_vfio; /* backends/vfio */
#endif
#ifdef __APPLE__
extern const struct tp_backend_type tp_backend_darwin; /* backends/darwin */
#endif

static const struct tp_backend_type *const backend_types[] = {
	&tp_backend_model,
	&tp_backend_proxy,
#ifdef __linux__
	&tp_backend_vfio,
#endif
#ifdef __APPLE__
	&tp_backend_darwin,
#endif
	NULL,
};

const struct tp_backend_type *const *tp_backend_types(void)
{
	return backend_types;
}

const struct tp_backend_type *tp_backend_find(const char *name)
{
	for (size_t i = 0; backend_types[i]; i++)
		if (name && strcmp(backend_types[i]->name, name) == 0)
			return backend_types[i];
	return NULL;
}
