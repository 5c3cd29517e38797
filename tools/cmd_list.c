/* SPDX-License-Identifier: MIT */
/*
 * thunderpass list [--json] [--root DIR]
 *
 * The host's PCI functions from sysfs: address, vendor:device, class, IOMMU
 * group, bound driver, and whether the vfio backend can take the function
 * now, or why not. A function can be passed when it is bound to vfio-pci
 * (or a vfio-pci variant driver), it is in an IOMMU group, the group is
 * viable (every function in it has no driver, vfio-pci, or a driver the
 * kernel lets share a group with VFIO: pci-stub, or pcieport on a bridge)
 * and the backend has a way in: the iommufd device cdev (sysfs vfio-dev/
 * vfioN, /dev/vfio/devices/vfioN and /dev/iommu; the backend's default
 * where the kernel has it) or /dev/vfio/<group>.
 *
 * Reads only; needs no privileges. --root DIR reads DIR/sys and DIR/dev
 * instead of /sys and /dev (tests). Exit: 0, 1 when sysfs cannot be read,
 * 2 bad usage.
 */
#include "commands.h"

#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LIST_MAX_GROUP 64 /* functions read from one group */

struct pci_fn {
	char bdf[NAME_MAX + 1];
	unsigned vendor, device, class_code;
	int group;               /* -1: none */
	char driver[64];         /* "" : none */
	char cdev[32];           /* "vfio3": the iommufd cdev the backend will use; "": none */
	bool passable;
	char why[384];
};

static const char *root = "";

/* dir/name into out; false when it does not fit. */
static bool join(char *out, size_t len, const char *dir, const char *name)
{
	int n = snprintf(out, len, "%s/%s", dir, name);

	return n > 0 && (size_t)n < len;
}

static void list_usage(FILE *f)
{
	fputs("usage: thunderpass list [--json] [--root DIR]\n"
	      "\n"
	      "The host's PCI functions with their IOMMU group and driver, and whether the\n"
	      "vfio backend can take each one (bound to vfio-pci, group viable) or why not.\n"
	      "  --json       one JSON array instead of the table\n"
	      "  --root DIR   read DIR/sys and DIR/dev instead of /sys and /dev\n"
	      "  --help       this text\n"
	      "\n"
	      "exit status: 0 listed, 1 sysfs cannot be read, 2 usage\n",
	      f);
}

/* A sysfs file holding one hex number ("0x10de\n"). */
static int read_hex(const char *dir, const char *name, unsigned *out)
{
	char path[PATH_MAX], buf[32], *end;
	unsigned long v;
	size_t n;
	FILE *f;

	if (!join(path, sizeof(path), dir, name))
		return -ENAMETOOLONG;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	errno = 0;
	v = strtoul(buf, &end, 16);
	if (errno || end == buf || (*end && *end != '\n') || v > 0xffffffffUL)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* The last component of the link dir/name; "" when there is no link. */
static void link_name(const char *dir, const char *name, char *out, size_t len)
{
	char path[PATH_MAX], target[PATH_MAX];
	const char *base;
	ssize_t n;

	out[0] = '\0';
	if (!join(path, sizeof(path), dir, name))
		return;
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return;
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (strlen(base) < len)
		memcpy(out, base, strlen(base) + 1);
}

static bool is_vfio_driver(const char *drv)
{
	/* vfio-pci and its variant drivers (mlx5_vfio_pci, nvgrace-gpu-vfio-pci). */
	return strstr(drv, "vfio") != NULL;
}

/* Drivers the kernel lets share a group with a VFIO user (driver_managed_dma). */
static bool dma_safe_driver(const char *drv)
{
	return !drv[0] || is_vfio_driver(drv) || !strcmp(drv, "pci-stub") ||
	       !strcmp(drv, "pcieport");
}

/* Empty *why: the group is viable. */
static void group_viable(int group, char *why, size_t len)
{
	char path[PATH_MAX], dev[PATH_MAX], drv[64];
	struct dirent *e;
	int seen = 0;
	DIR *d;

	why[0] = '\0';
	snprintf(path, sizeof(path), "%s/sys/kernel/iommu_groups/%d/devices", root, group);
	d = opendir(path);
	if (!d) {
		snprintf(why, len, "group %d cannot be read", group);
		return;
	}
	while ((e = readdir(d)) && seen++ < LIST_MAX_GROUP) {
		if (e->d_name[0] == '.')
			continue;
		if (!join(dev, sizeof(dev), path, e->d_name))
			continue;
		link_name(dev, "driver", drv, sizeof(drv));
		if (!dma_safe_driver(drv)) {
			snprintf(why, len, "group %d not viable: %.32s is bound to %s", group,
				 e->d_name, drv);
			break;
		}
	}
	closedir(d);
}

/*
 * The iommufd cdev the vfio backend opens by default (iommufd=auto): sysfs
 * names the vfio device (vfio-dev/vfioN; Linux 6.1 does too, with no cdev),
 * its node /dev/vfio/devices/vfioN exists (Linux >= 6.6 with
 * VFIO_DEVICE_CDEV), and so does /dev/iommu. Otherwise p->cdev stays "".
 */
static void find_cdev(struct pci_fn *p)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/sys/bus/pci/devices/%s/vfio-dev", root, p->bdf);
	snprintf(path, sizeof(path), "%s/dev/iommu", root);
	if (access(path, F_OK) < 0 || !(d = opendir(dir)))
		return;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (strncmp(e->d_name, "vfio", 4) || n == 4 || n >= sizeof(p->cdev) ||
		    strspn(e->d_name + 4, "0123456789") != n - 4)
			continue;
		snprintf(path, sizeof(path), "%s/dev/vfio/devices/%s", root, e->d_name);
		if (access(path, F_OK) == 0)
			memcpy(p->cdev, e->d_name, n + 1);
		break;
	}
	closedir(d);
}

static void classify(struct pci_fn *p)
{
	char path[PATH_MAX];

	p->passable = false;
	if ((p->class_code >> 16) == 0x06) {
		snprintf(p->why, sizeof(p->why), "a bridge: not passed (a port driver on it may "
						 "share a group with a passed device)");
		return;
	}
	if (p->group < 0) {
		snprintf(p->why, sizeof(p->why), "no IOMMU group (the IOMMU is off: boot with "
						 "intel_iommu=on or amd_iommu=on)");
		return;
	}
	if (!p->driver[0]) {
		snprintf(p->why, sizeof(p->why), "no driver: bind it to vfio-pci");
		return;
	}
	if (!is_vfio_driver(p->driver)) {
		snprintf(p->why, sizeof(p->why), "bound to %s, not vfio-pci", p->driver);
		return;
	}
	group_viable(p->group, p->why, sizeof(p->why));
	if (p->why[0])
		return;
	find_cdev(p);
	snprintf(path, sizeof(path), "%s/dev/vfio/%d", root, p->group);
	if (!p->cdev[0] && access(path, F_OK) < 0) {
		snprintf(p->why, sizeof(p->why), "no /dev/vfio/%d (vfio module not loaded?)",
			 p->group);
		return;
	}
	p->passable = true;
	snprintf(p->why, sizeof(p->why), "ready: --backend vfio -o device=%s%s%s%s", p->bdf,
		 p->cdev[0] ? " (iommufd, /dev/vfio/devices/" : "", p->cdev,
		 p->cdev[0] ? ")" : "");
}

static int read_fn(const char *devices, const char *name, struct pci_fn *p)
{
	char dir[PATH_MAX], grp[32], *end;
	long g;

	memset(p, 0, sizeof(*p));
	if (strlen(name) >= sizeof(p->bdf) || !join(dir, sizeof(dir), devices, name))
		return -ENAMETOOLONG;
	memcpy(p->bdf, name, strlen(name) + 1);
	if (read_hex(dir, "vendor", &p->vendor) || read_hex(dir, "device", &p->device) ||
	    read_hex(dir, "class", &p->class_code))
		return -EINVAL;
	link_name(dir, "driver", p->driver, sizeof(p->driver));
	link_name(dir, "iommu_group", grp, sizeof(grp));
	g = grp[0] ? strtol(grp, &end, 10) : -1;
	p->group = (grp[0] && !*end && g >= 0 && g <= INT_MAX) ? (int)g : -1;
	classify(p);
	return 0;
}

static const char *class_name(unsigned class_code)
{
	static const char *const names[] = {
		"other", "storage", "network", "display", "multimedia", "memory", "bridge",
		"comms", "system", "input", "dock", "cpu", "serial-bus", "wireless",
		"io", "satellite", "crypto", "signal",
	};
	unsigned base = class_code >> 16;

	return base < sizeof(names) / sizeof(names[0]) ? names[base] : "other";
}

static json_object *fn_json(const struct pci_fn *p)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "bdf", json_object_new_string(p->bdf));
	json_object_object_add(o, "vendor", json_object_new_int((int32_t)p->vendor));
	json_object_object_add(o, "device", json_object_new_int((int32_t)p->device));
	json_object_object_add(o, "class", json_object_new_int((int32_t)p->class_code));
	json_object_object_add(o, "class_name", json_object_new_string(class_name(p->class_code)));
	json_object_object_add(o, "iommu_group",
			       p->group < 0 ? NULL : json_object_new_int(p->group));
	json_object_object_add(o, "driver",
			       p->driver[0] ? json_object_new_string(p->driver) : NULL);
	json_object_object_add(o, "vfio_cdev",
			       p->cdev[0] ? json_object_new_string(p->cdev) : NULL);
	json_object_object_add(o, "passable", json_object_new_boolean(p->passable));
	json_object_object_add(o, "note", json_object_new_string(p->why));
	return o;
}

static void print_row(const struct pci_fn *p)
{
	char grp[16];

	snprintf(grp, sizeof(grp), p->group < 0 ? "-" : "%d", p->group);
	printf("%-13s %04x:%04x  %06x %-10s %5s  %-14s %-4s %s\n", p->bdf, p->vendor, p->device,
	       p->class_code, class_name(p->class_code), grp, p->driver[0] ? p->driver : "-",
	       p->passable ? "yes" : "no", p->why);
}

static int filter_dots(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

int tp_cmd_list(int argc, char **argv)
{
	char devices[PATH_MAX];
	struct dirent **names = NULL;
	json_object *arr = NULL;
	bool json = false;
	int n, shown = 0, passable = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--root") && i + 1 < argc) {
			root = argv[++i];
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			list_usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "thunderpass list: unexpected argument '%s'\n", argv[i]);
			list_usage(stderr);
			return 2;
		}
	}
	snprintf(devices, sizeof(devices), "%s/sys/bus/pci/devices", root);
	n = scandir(devices, &names, filter_dots, alphasort);
	if (n < 0) {
		fprintf(stderr, "thunderpass list: %s: %s%s\n", devices, strerror(errno),
			errno == ENOENT ? " (no PCI sysfs: not Linux, or no PCI bus)" : "");
		return 1;
	}
	if (json)
		arr = json_object_new_array();
	else
		printf("%-13s %-9s  %-17s %5s  %-14s %-4s %s\n", "BDF", "ID", "CLASS", "GROUP",
		       "DRIVER", "PASS", "NOTE");
	for (int i = 0; i < n; i++) {
		struct pci_fn p;

		if (read_fn(devices, names[i]->d_name, &p) == 0) {
			shown++;
			passable += p.passable;
			if (json)
				json_object_array_add(arr, fn_json(&p));
			else
				print_row(&p);
		}
		free(names[i]);
	}
	free(names);
	if (json) {
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
							 JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(arr);
	} else {
		printf("%d function(s), %d can be passed\n", shown, passable);
	}
	return 0;
}
