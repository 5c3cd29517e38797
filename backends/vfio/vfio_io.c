/* SPDX-License-Identifier: MIT */
/*
 * Regions of a vfio-pci device: BAR0-5, ROM, config (VGA is not offered).
 * Every range the kernel lets us mmap is offered to the client as the
 * device fd at the region's offset, so the guest touches BAR memory with no
 * exit; the MSI-X table and PBA stay trapped (the client owns the table and
 * forwards PBA reads). Trapped accesses and config space go through
 * pread/pwrite on the device fd, which the kernel turns into bus cycles
 * (config space through vfio-pci's own virtualization of it).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <thunderpass/log.h>

#include "util.h"
#include "vfio.h"

static const char *const region_names[TP_REGION_COUNT] = {
	"BAR0", "BAR1", "BAR2", "BAR3", "BAR4", "BAR5", "ROM", "config", "VGA",
};

/* VFIO_DEVICE_GET_REGION_INFO with its capabilities (asked again with the
 * argsz the kernel wants, up to VFIO_INFO_MAX). */
static int probe_region(struct vfio_dev *v, uint32_t index)
{
	struct vfio_region *r = &v->regions[index];
	uint32_t argsz = sizeof(struct vfio_region_info);
	struct vfio_region_info info;
	const char *why = "";
	uint8_t *buf = NULL;
	int rc;

	memset(r, 0, sizeof(*r));
	for (int tries = 0; tries < 3; tries++) {
		uint8_t *nb = realloc(buf, argsz);

		if (!nb) {
			free(buf);
			tp_err(v->be.name, "out of memory");
			return -ENOMEM;
		}
		buf = nb;
		memset(buf, 0, argsz);
		info = (struct vfio_region_info){ .argsz = argsz, .index = index };
		memcpy(buf, &info, sizeof(info));
		if (ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, buf) < 0) {
			rc = -errno;
			free(buf);
			if (index == TP_REGION_VGA && rc == -EINVAL)
				return 0; /* no VGA region on this device */
			tp_err(v->be.name, "%s: VFIO_DEVICE_GET_REGION_INFO: %s",
			       region_names[index], strerror(-rc));
			return rc;
		}
		memcpy(&info, buf, sizeof(info));
		if (info.argsz <= argsz)
			break;
		if (info.argsz > VFIO_INFO_MAX || tries == 2) {
			free(buf);
			tp_err(v->be.name, "%s: the kernel wants %u bytes of region info",
			       region_names[index], info.argsz);
			return -EPROTO;
		}
		argsz = info.argsz;
	}
	if (info.index != index) {
		free(buf);
		tp_err(v->be.name, "%s: region info for index %u", region_names[index], info.index);
		return -EPROTO;
	}
	if (!info.size) {
		free(buf);
		return 0;
	}
	if (info.offset + info.size < info.offset) {
		free(buf);
		tp_err(v->be.name, "%s: region [%#llx +%#llx] wraps around", region_names[index],
		       (unsigned long long)info.offset, (unsigned long long)info.size);
		return -EPROTO;
	}
	r->flags = info.flags;
	r->size = info.size;
	r->offset = info.offset;
	rc = vfio_parse_region_caps(buf, TP_MIN(argsz, info.argsz), r, &why);
	free(buf);
	if (rc)
		tp_err(v->be.name, "%s: region info from the kernel: %s", region_names[index], why);
	return rc;
}

static void log_region(struct vfio_dev *v, uint32_t i)
{
	const struct vfio_region *r = &v->regions[i];
	char areas[160] = "", size[32];
	size_t n = 0;

	for (uint32_t a = 0; a < r->nr_areas && n < sizeof(areas); a++)
		n += (size_t)snprintf(areas + n, sizeof(areas) - n, " [%#" PRIx64 "+%#" PRIx64 "]",
				      r->areas[a].offset, r->areas[a].size);
	tp_info(v->be.name, "%s: %s%s%s, %s%s", region_names[i],
		tp_fmt_size(r->size, size, sizeof(size)),
		(r->flags & VFIO_REGION_INFO_FLAG_READ) ? " r" : "",
		(r->flags & VFIO_REGION_INFO_FLAG_WRITE) ? "w" : "",
		r->nr_areas ? "mapped" : "trapped", r->nr_areas ? areas : "");
}

int vfio_regions_probe(struct vfio_dev *v)
{
	uint8_t cfg[256];
	const char *why = "";
	int rc;

	for (uint32_t i = 0; i < TP_REGION_COUNT && i < v->num_regions; i++) {
		rc = probe_region(v, i);
		if (rc)
			return rc;
	}
	if (v->regions[TP_REGION_CONFIG].size < 256) {
		tp_err(v->be.name, "config region of %" PRIu64 " bytes (at least 256 expected)",
		       v->regions[TP_REGION_CONFIG].size);
		return -EPROTO;
	}
	/* The MSI-X table and PBA are the client's: find them, keep them out
	 * of every mappable range. */
	for (uint32_t off = 0; off < sizeof(cfg); off += 4) {
		rc = vfio_config_read(&v->be, off, cfg + off, 4);
		if (rc)
			return rc;
	}
	v->vendor = (uint16_t)tp_le_get(cfg, 2);
	v->devid = (uint16_t)tp_le_get(cfg + 2, 2);
	if (v->vendor == 0xffff) {
		tp_err(v->be.name, "config space reads all-ones: the device is not answering "
				   "(powered off, or fell off the bus)");
		return -ENODEV;
	}
	rc = vfio_find_msix(cfg, sizeof(cfg), &v->msix, &why);
	if (rc) {
		tp_err(v->be.name, "config space: %s", why);
		return rc;
	}
	if (v->msix.present &&
	    (!tp_range_ok(v->msix.table_off, v->msix.table_size,
			  v->regions[v->msix.table_bar].size) ||
	     !tp_range_ok(v->msix.pba_off, v->msix.pba_size, v->regions[v->msix.pba_bar].size))) {
		tp_err(v->be.name, "MSI-X table (BAR%u %#" PRIx64 ") or PBA (BAR%u %#" PRIx64
				   ") lies outside its BAR", v->msix.table_bar, v->msix.table_off,
		       v->msix.pba_bar, v->msix.pba_off);
		return -EPROTO;
	}
	for (uint32_t i = 0; i <= TP_REGION_BAR5; i++) {
		struct vfio_region *r = &v->regions[i];

		if (vfio_mappable_areas(r, i, &v->msix, (uint64_t)v->page) == -ENOSPC)
			tp_warn(v->be.name, "BAR%u: more than %u mappable ranges; the rest is "
				"trapped", i, TP_MAX_MMAP_AREAS);
	}
	for (uint32_t i = 0; i < TP_REGION_COUNT; i++)
		if (v->regions[i].size && i != TP_REGION_VGA)
			log_region(v, i);
	if (v->msix.present)
		tp_info(v->be.name, "MSI-X: %u vectors, table BAR%u+%#" PRIx64 ", PBA BAR%u+%#"
			PRIx64 " (trapped: the client owns them)", v->msix.vectors,
			v->msix.table_bar, v->msix.table_off, v->msix.pba_bar, v->msix.pba_off);
	return 0;
}

/*
 * One access at [off, off + len) of region index through the device fd.
 * Checked here too: the core checks, the kernel checks, and we do not lean
 * on either.
 */
static int region_io(struct vfio_dev *v, uint32_t index, uint64_t off, void *rbuf,
		     const void *wbuf, uint32_t len)
{
	const struct vfio_region *r;
	ssize_t n;

	if (index >= TP_REGION_COUNT || index == TP_REGION_VGA || (!rbuf && !wbuf) || !len) {
		tp_err(v->be.name, "access to region %u: invalid", index);
		return -EINVAL;
	}
	r = &v->regions[index];
	if (!r->size || !tp_range_ok(off, len, r->size) ||
	    !(r->flags & (rbuf ? VFIO_REGION_INFO_FLAG_READ : VFIO_REGION_INFO_FLAG_WRITE))) {
		tp_err(v->be.name, "%s %s of %u bytes at %#" PRIx64 ": invalid",
		       region_names[index], rbuf ? "read" : "write", len, off);
		return -EINVAL;
	}
	do {
		n = rbuf ? pread(v->device, rbuf, len, (off_t)(r->offset + off))
			 : pwrite(v->device, wbuf, len, (off_t)(r->offset + off));
	} while (n < 0 && errno == EINTR);
	if (n == (ssize_t)len)
		return 0;
	/* A device that stopped answering is worth saying each time. */
	tp_err(v->be.name, "%s %s of %u bytes at %#" PRIx64 ": %s", region_names[index],
	       rbuf ? "read" : "write", len, off, n < 0 ? strerror(errno) : "short transfer");
	return n < 0 ? -errno : -EIO;
}

static bool cfg_len_ok(uint32_t off, uint32_t len)
{
	return (len == 1 || len == 2 || len == 4) && !(off & (len - 1));
}

int vfio_config_read(struct tp_backend *be, uint32_t off, void *buf, uint32_t len)
{
	struct vfio_dev *v = vfio_of(be);

	if (!cfg_len_ok(off, len)) {
		tp_err(be->name, "config read of %u bytes at %#x: not a config cycle", len, off);
		return -EINVAL;
	}
	return region_io(v, TP_REGION_CONFIG, off, buf, NULL, len);
}

int vfio_config_write(struct tp_backend *be, uint32_t off, const void *buf, uint32_t len)
{
	struct vfio_dev *v = vfio_of(be);

	if (!cfg_len_ok(off, len)) {
		tp_err(be->name, "config write of %u bytes at %#x: not a config cycle", len, off);
		return -EINVAL;
	}
	return region_io(v, TP_REGION_CONFIG, off, NULL, buf, len);
}

int vfio_region_info(struct tp_backend *be, uint32_t index, struct tp_region_desc *out)
{
	struct vfio_dev *v = vfio_of(be);
	const struct vfio_region *r;

	if (!out || index >= TP_REGION_COUNT) {
		tp_err(be->name, "region %u info: no such region", index);
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	out->mmap_fd = -1;
	r = &v->regions[index];
	if (index == TP_REGION_VGA || !r->size)
		return 0; /* absent (VGA: legacy ranges are not offered) */
	out->size = r->size;
	out->readable = !!(r->flags & VFIO_REGION_INFO_FLAG_READ);
	out->writable = !!(r->flags & VFIO_REGION_INFO_FLAG_WRITE);
	if (r->nr_areas) {
		out->mmap_fd = v->device;
		out->mmap_offset = r->offset;
		out->nr_areas = r->nr_areas;
		memcpy(out->areas, r->areas, r->nr_areas * sizeof(r->areas[0]));
	}
	return 0;
}

int vfio_region_read(struct tp_backend *be, uint32_t index, uint64_t off, void *buf,
		     uint32_t len)
{
	return region_io(vfio_of(be), index, off, buf, NULL, len);
}

int vfio_region_write(struct tp_backend *be, uint32_t index, uint64_t off, const void *buf,
		      uint32_t len)
{
	return region_io(vfio_of(be), index, off, NULL, buf, len);
}
