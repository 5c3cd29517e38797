/* SPDX-License-Identifier: MIT */
/*
 * Regions: what each BAR/ROM/config region is, which of its ranges the client
 * may map directly (every range that can be mapped is: one mapped BAR saves a
 * socket round trip per access), and the GET_REGION_INFO reply.
 */
#include <errno.h>
#include <string.h>

#include <thunderpass/log.h>

#include "device.h"
#include "util.h"

static int region_check(struct tp_device *d, uint32_t i, const struct tp_region_desc *r)
{
	if (r->size && i < TP_REGION_CONFIG && i != TP_REGION_ROM && !tp_is_pow2(r->size)) {
		tp_err(d->name, "region %u: size %#llx is not a power of two", i,
		       (unsigned long long)r->size);
		return -EINVAL;
	}
	if (r->nr_areas > TP_MAX_MMAP_AREAS) {
		tp_err(d->name, "region %u: %u mappable areas (most: %u)", i, r->nr_areas,
		       TP_MAX_MMAP_AREAS);
		return -EINVAL;
	}
	for (uint32_t a = 0; a < r->nr_areas; a++) {
		if (!tp_range_ok(r->areas[a].offset, r->areas[a].size, r->size) ||
		    ((r->areas[a].offset | r->areas[a].size) & 4095)) {
			tp_err(d->name, "region %u: mappable area %u is outside the region or "
					"not page-aligned", i, a);
			return -EINVAL;
		}
	}
	if (r->nr_areas && r->mmap_fd < 0) {
		tp_err(d->name, "region %u: mappable areas but no fd", i);
		return -EINVAL;
	}
	return 0;
}

/* Cuts [lo, hi) out of the region's mappable areas (page-rounded outwards). */
static void cut_window(struct tp_region *r, uint64_t lo, uint64_t hi)
{
	struct tp_mmap_area out[TP_MAX_MMAP_AREAS];
	uint32_t n = 0;

	lo &= ~4095ull;
	hi = (hi + 4095) & ~4095ull;
	for (uint32_t a = 0; a < r->nr_areas; a++) {
		uint64_t s = r->areas[a].offset, e = s + r->areas[a].size;

		if (e <= lo || s >= hi) {
			out[n++] = r->areas[a];
			continue;
		}
		if (s < lo && n < TP_MAX_MMAP_AREAS)
			out[n++] = (struct tp_mmap_area){ s, lo - s };
		if (e > hi && n < TP_MAX_MMAP_AREAS)
			out[n++] = (struct tp_mmap_area){ hi, e - hi };
	}
	memcpy(r->areas, out, n * sizeof(*out));
	r->nr_areas = n;
}

int tp_regions_init(struct tp_device *d)
{
	for (uint32_t i = 0; i < TP_REGION_COUNT; i++) {
		struct tp_region *r = &d->regions[i];
		int rc;

		memset(r, 0, sizeof(*r));
		r->d.mmap_fd = -1;
		rc = d->be->ops->region_info(d->be, i, &r->d);
		if (rc < 0)
			return rc;
		rc = region_check(d, i, &r->d);
		if (rc)
			return rc;
		/* The client owns config and ROM accesses; never map them. */
		if (i == TP_REGION_CONFIG || i == TP_REGION_ROM || i == TP_REGION_VGA)
			r->d.nr_areas = 0;
		r->nr_areas = r->d.nr_areas;
		memcpy(r->areas, r->d.areas, sizeof(r->areas));
	}
	return 0;
}

void tp_regions_cut_traps(struct tp_device *d)
{
	for (unsigned t = 0; t < d->ntraps; t++)
		cut_window(&d->regions[d->traps[t].region], d->traps[t].offset,
			   d->traps[t].offset + d->traps[t].size);
}

int tp_regions_info(struct tp_device *d, uint32_t index, uint32_t argsz, uint8_t *out,
		    uint32_t cap, int *fd)
{
	struct tp_vu_region_info info = { .index = index };
	struct tp_vu_cap_sparse_mmap sp = { 0 };
	const struct tp_region *r;
	uint32_t need = sizeof(info), caps_len = 0;

	*fd = -1;
	if (index >= TP_REGION_COUNT)
		return -EINVAL;
	r = &d->regions[index];
	info.size = r->d.size;
	if (r->d.size) {
		info.flags = (r->d.readable ? TP_VU_REGION_READ_OK : 0) |
			     (r->d.writable ? TP_VU_REGION_WRITE_OK : 0);
	}
	if (r->d.size && r->nr_areas) {
		caps_len = (uint32_t)(sizeof(sp) + r->nr_areas * sizeof(struct tp_vu_sparse_area));
		need += caps_len;
		info.flags |= TP_VU_REGION_MMAP | TP_VU_REGION_CAPS;
		info.offset = r->d.mmap_offset;
	}
	info.argsz = need;
	if (argsz < need) {
		/* Not enough room for the caps: say how much, send nothing else.
		 * CAPS must go too: QEMU's client refuses CAPS with cap_offset 0. */
		caps_len = 0;
		info.flags &= ~TP_VU_REGION_CAPS;
	} else if (caps_len) {
		info.cap_offset = sizeof(info);
	}
	if (sizeof(info) + caps_len > cap)
		return -E2BIG;
	memcpy(out, &info, sizeof(info));
	if (caps_len) {
		sp.hdr.id = TP_VU_CAP_SPARSE_MMAP;
		sp.hdr.version = 1;
		sp.nr_areas = r->nr_areas;
		memcpy(out + sizeof(info), &sp, sizeof(sp));
		for (uint32_t a = 0; a < r->nr_areas; a++) {
			struct tp_vu_sparse_area area = { r->areas[a].offset, r->areas[a].size };

			memcpy(out + sizeof(info) + sizeof(sp) + a * sizeof(area), &area,
			       sizeof(area));
		}
		*fd = r->d.mmap_fd;
	}
	return (int)(sizeof(info) + caps_len);
}
