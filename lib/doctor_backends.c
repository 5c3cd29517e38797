/* SPDX-License-Identifier: MIT */
/*
 * What each backend contributes to `thunderpass doctor`: how it reaches the
 * device (the host stage), whether it can test DMA and interrupts without a
 * guest, its reset method, and what it knows about the link and the VRAM.
 * The generic stages (doctor.c, doctor_pci.c) work through the backend ops
 * and need nothing from here.
 *
 * model (in process: reset and DMA/interrupt tests), vfio (Linux: the sysfs
 * checks first, then the backend opens the device; no reset or DMA test on
 * real hardware), proxy (another vfio-user server: its device, through the
 * proxy), darwin (macOS). A backend that is not built into this binary says
 * so in the host stage, and the stages after it are skipped. A new backend
 * adds a row here.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "doctor_int.h"
#include "util.h"

#define MAX_OPTS 32

/*
 * Creates backend `name` with the user's -o options (plus key=o->device when
 * key is given): d->be on success. Returns 0, or -errno with the stage's
 * status and advice set; -ENOENT: the backend is not built into this binary.
 */
static int create_backend(struct tp_doctor *d, struct tp_doctor_result *r, const char *name,
			  const char *key, const char *advice)
{
	const struct tp_doctor_opts *o = d->o;
	const struct tp_backend_type *t = tp_backend_find(name);
	struct tp_backend_opt opts[MAX_OPTS + 1];
	size_t n = 0;
	int rc;

	if (!t) {
		tp_doc_status(r, TP_DOCTOR_FAIL,
			      "the %s backend is not built into this "
			      "thunderpass%s",
			      name, !strcmp(name, "darwin") ? " (it runs on macOS)" : "");
		tp_doc_unchecked(r, "everything about the device (no backend reaches it)");
		tp_doc_advice(r,
			      "Use a thunderpass built with the %s backend, or --backend model to "
			      "check the rest of the chain.",
			      name);
		return -ENOENT;
	}
	for (size_t i = 0; i < o->nopts && n < MAX_OPTS; i++)
		opts[n++] = o->opts[i];
	if (key && o->device)
		opts[n++] = (struct tp_backend_opt){ key, o->device };
	rc = t->create(opts, n, &d->be);
	if (rc) {
		d->be = NULL;
		d->usage_error = rc == -EINVAL;
		tp_doc_status(r, TP_DOCTOR_FAIL,
			      "the %s backend could not open the device: %s (its "
			      "reason is logged above)",
			      name, strerror(-rc));
		tp_doc_advice(r, "%s",
			      rc == -EINVAL ? "Check the -o options: `thunderpass serve "
					      "--help` lists what each backend takes."
					    : advice);
	}
	return rc;
}

/* ---- model ---------------------------------------------------------------- */

static const char *opt_value(const struct tp_doctor_opts *o, const char *key)
{
	for (size_t i = 0; i < o->nopts; i++)
		if (o->opts[i].key && !strcmp(o->opts[i].key, key))
			return o->opts[i].value;
	return NULL;
}

static void model_host(struct tp_doctor *d, struct tp_doctor_result *r)
{
	const char *fault = opt_value(d->o, "fault");

	if (create_backend(d, r, "model", "name",
			   "The host is short of memory or file "
			   "descriptors; try again."))
		return;
	tp_doc_fact_str(r, "device", "%s", d->be->name);
	tp_doc_fact_str(r, "fault", "%s", fault ? fault : "none");
	tp_doc_status(r, TP_DOCTOR_OK,
		      "model backend created in this process: a software GB202 "
		      "(RTX 5090) named \"%s\"",
		      d->be->name);
	if (fault && strcmp(fault, "none"))
		tp_doc_seen_add(r, "injected fault: %s", fault);
	tp_doc_unchecked(r, "driver binding, IOMMU group and other holders of the device (the "
			    "model is software, not a host device)");
	tp_doc_advice(r, "Nothing to do: `thunderpass serve --backend model` serves this device.");
}

/* The model's link is modelled as behind a Thunderbolt 4 dock (docs/model.md). */
static int model_behind_tb(struct tp_doctor *d)
{
	return 1;
}

/* The model's VRAM is its BAR1 aperture's backing memory. */
static uint64_t model_vram(struct tp_doctor *d)
{
	struct tp_region_desc rd;

	memset(&rd, 0, sizeof(rd));
	if (!d->be || d->be->ops->region_info(d->be, 1, &rd) < 0)
		return 0;
	return rd.size;
}

/* ---- vfio: what the Linux host must have ready, then the backend's open --- */

static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	int rc = -ENOENT;

	if (!f)
		return -errno;
	if (fgets(buf, (int)len, f)) {
		buf[strcspn(buf, "\n")] = '\0';
		rc = 0;
	}
	fclose(f);
	return rc;
}

/* The name a sysfs link points to ("vfio-pci" for .../drivers/vfio-pci). */
static int link_name(const char *path, char *buf, size_t len)
{
	char target[PATH_MAX];
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	const char *base;

	if (n < 0)
		return -errno;
	target[n] = '\0';
	base = strrchr(target, '/');
	if (snprintf(buf, len, "%s", base ? base + 1 : target) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

static const char *sysfs_root(const struct tp_doctor *d)
{
	return d->o->sysfs ? d->o->sysfs : "/sys";
}

/* Every member of the group bound to vfio-pci, to nothing, or a bridge's
 * pcieport: otherwise VFIO refuses the group ("not viable"). */
static int group_viable(struct tp_doctor *d, const char *group, char *bad, size_t len,
			unsigned *members)
{
	char path[PATH_MAX], drv[64];
	struct dirent *e;
	DIR *dir;

	snprintf(path, sizeof(path), "%s/kernel/iommu_groups/%s/devices", sysfs_root(d), group);
	dir = opendir(path);
	if (!dir)
		return -errno;
	*members = 0;
	bad[0] = '\0';
	while ((e = readdir(dir))) {
		char link[PATH_MAX];

		if (e->d_name[0] == '.')
			continue;
		(*members)++;
		if (snprintf(link, sizeof(link), "%s/%s/driver", path, e->d_name) >=
			    (int)sizeof(link) ||
		    link_name(link, drv, sizeof(drv)) < 0)
			continue; /* no driver: fine */
		if (strcmp(drv, "vfio-pci") && strcmp(drv, "pcieport") && !bad[0] &&
		    snprintf(bad, len, "%s is bound to %s", e->d_name, drv) >= (int)len)
			bad[len - 1] = '\0';
	}
	closedir(dir);
	return 0;
}

static void vfio_host(struct tp_doctor *d, struct tp_doctor_result *r)
{
	/* --device, or the backend's own -o device= */
	const char *dev = d->o->device ? d->o->device : opt_value(d->o, "device");
	char base[PATH_MAX], path[PATH_MAX + 32], ven[16] = "", did[16] = "", drv[64] = "-";
	char group[32], bad[160];
	unsigned members = 0;
	struct stat st;

	if (!dev) {
		d->usage_error = true;
		tp_doc_status(r, TP_DOCTOR_FAIL, "no device named");
		tp_doc_advice(r, "Name the device with --device 0000:01:00.0 (`lspci -D` lists "
				 "them).");
		return;
	}
	snprintf(base, sizeof(base), "%s/bus/pci/devices/%s", sysfs_root(d), dev);
	if (stat(base, &st) < 0) {
		tp_doc_status(r, TP_DOCTOR_FAIL, "no PCI device %s on this host", dev);
		tp_doc_advice(r,
			      "`lspci -D` lists the devices; a Thunderbolt eGPU appears only once "
			      "the dock is authorised (`boltctl list`).");
		return;
	}
	snprintf(path, sizeof(path), "%s/vendor", base);
	read_line(path, ven, sizeof(ven));
	snprintf(path, sizeof(path), "%s/device", base);
	read_line(path, did, sizeof(did));
	snprintf(path, sizeof(path), "%s/driver", base);
	link_name(path, drv, sizeof(drv));
	tp_doc_fact_str(r, "device", "%s", dev);
	tp_doc_fact_str(r, "driver", "%s", drv);
	tp_doc_status(r, TP_DOCTOR_OK, "%s (%s:%s) is bound to %s", dev,
		      ven[0] ? ven + (ven[1] == 'x' ? 2 : 0) : "?",
		      did[0] ? did + (did[1] == 'x' ? 2 : 0) : "?", drv);
	if (strcmp(drv, "vfio-pci")) {
		tp_doc_worsen(r, TP_DOCTOR_FAIL);
		tp_doc_seen_add(r, "the vfio backend needs vfio-pci");
		tp_doc_advice(r,
			      "Bind it to vfio-pci: `driverctl set-override %s vfio-pci` (or "
			      "write vfio-pci to its driver_override, unbind it and write it to "
			      "/sys/bus/pci/drivers_probe).",
			      dev);
		return;
	}
	snprintf(path, sizeof(path), "%s/iommu_group", base);
	if (link_name(path, group, sizeof(group)) < 0) {
		tp_doc_worsen(r, TP_DOCTOR_FAIL);
		tp_doc_seen_add(r, "no IOMMU group: the IOMMU is off");
		tp_doc_advice(r, "Turn the IOMMU on: intel_iommu=on or amd_iommu=on on the kernel "
				 "command line, and VT-d / AMD-Vi in the firmware.");
		return;
	}
	tp_doc_fact_str(r, "iommu_group", "%s", group);
	if (group_viable(d, group, bad, sizeof(bad), &members) == 0 && bad[0]) {
		tp_doc_worsen(r, TP_DOCTOR_FAIL);
		tp_doc_seen_add(r, "IOMMU group %s is not viable: %s", group, bad);
		tp_doc_advice(r,
			      "Bind every endpoint of IOMMU group %s to vfio-pci (driverctl "
			      "set-override ADDRESS vfio-pci), or leave it without a driver.",
			      group);
		return;
	}
	tp_doc_seen_add(r, "IOMMU group %s is viable (%u device%s)", group, members,
			members == 1 ? "" : "s");
	if (!tp_backend_find("vfio")) {
		tp_doc_worsen(r, TP_DOCTOR_WARN);
		tp_doc_seen_add(r, "but the vfio backend is not built into this thunderpass: the "
				   "later stages cannot reach the device");
		tp_doc_unchecked(r, "everything after the host checks (no backend reaches the "
				    "device)");
		tp_doc_advice(
			r, "The host side is ready; use a thunderpass built with the vfio "
			   "backend (Linux), or --backend model to check the rest of the chain.");
		return;
	}
	{
		struct tp_doctor_result tmp = *r;

		/* The host checks passed; the open says whether VFIO agrees. */
		if (create_backend(
			    d, &tmp, "vfio", "device",
			    "The group may be held by another process (a running VM or "
			    "thunderpass), or /dev/vfio/<group> is not accessible to this "
			    "user: stop the other holder or run as a user that may open it.")) {
			tp_doc_worsen(r, TP_DOCTOR_FAIL);
			tp_doc_seen_add(r, "%s", tmp.seen);
			memcpy(r->advice, tmp.advice, sizeof(r->advice));
			return;
		}
	}
	tp_doc_seen_add(r, "the vfio backend opened it (container, group %s, device fd)", group);
	tp_doc_unchecked(r, "the reset and the DMA/interrupt test: doctor leaves real hardware "
			    "alone (a GB202 would not come back from an FLR)");
	tp_doc_advice(r,
		      "Nothing to do: `thunderpass serve --backend vfio -o device=%s` serves "
		      "this device.",
		      dev);
}

static int vfio_behind_tb(struct tp_doctor *d)
{
	char path[PATH_MAX], v[32];

	const char *dev = d->o->device ? d->o->device : opt_value(d->o, "device");

	if (!dev)
		return -1;
	/* Linux marks devices behind an external-facing (Thunderbolt) port. */
	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/removable", sysfs_root(d), dev);
	if (read_line(path, v, sizeof(v)) < 0)
		return -1;
	return !strcmp(v, "removable") ? 1 : !strcmp(v, "fixed") ? 0 : -1;
}

/* ---- proxy and darwin: whatever their options say ---------------------------- */

static void proxy_host(struct tp_doctor *d, struct tp_doctor_result *r)
{
	if (create_backend(d, r, "proxy", "name",
			   "Start the other vfio-user server first and "
			   "name its socket with -o socket=PATH."))
		return;
	tp_doc_status(r, TP_DOCTOR_OK,
		      "the proxy backend connected to the other server; its "
		      "device \"%s\" is reached through it",
		      d->be->name);
	tp_doc_unchecked(r, "the host device behind the other server (run doctor there)");
	tp_doc_advice(r, "Nothing to do: `thunderpass serve --backend proxy` re-exports this "
			 "device.");
}

static void darwin_host(struct tp_doctor *d, struct tp_doctor_result *r)
{
	if (create_backend(d, r, "darwin", "device",
			   "Check that the thunderpass driver "
			   "extension is enabled (System Settings, "
			   "Login Items & Extensions) and the eGPU is "
			   "connected."))
		return;
	tp_doc_status(r, TP_DOCTOR_OK,
		      "the darwin backend opened the device through the driver "
		      "extension");
	tp_doc_advice(r, "Nothing to do: `thunderpass serve --backend darwin` serves this "
			 "device.");
}

static const struct tp_doctor_backend hooks[] = {
	{
		.name = "model",
		.host = model_host,
		.dma_irq = tp_doctor_ce_test,
		.reset_method = "the model's function-level reset (config to defaults, the "
				"host's BAR addresses restored, the copy engine stopped)",
		.reset_test = true,
		.behind_thunderbolt = model_behind_tb,
		.vram_size = model_vram,
	},
	{
		.name = "vfio",
		.host = vfio_host,
		.dma_irq_none = "a real GPU has no engine doctor can drive without its own "
				"driver",
		.reset_method = "VFIO_DEVICE_RESET (the kernel picks FLR, PM or bus reset; a "
				"no-FLR quirk rules FLR out)",
		.behind_thunderbolt = vfio_behind_tb,
	},
	{
		/* The thunderpass copy engine, if the other server's device has one
		 * (a thunderpass model): the test skips itself otherwise. */
		.name = "proxy",
		.host = proxy_host,
		.dma_irq = tp_doctor_ce_test,
		.reset_method = "DEVICE_RESET to the other server",
	},
	{
		.name = "darwin",
		.host = darwin_host,
		.dma_irq_none = "a real GPU has no engine doctor can drive without its own "
				"driver",
		.reset_method = "PCIDriverKit Reset (FLR, else hot reset)",
	},
};

const struct tp_doctor_backend *tp_doctor_hooks(const char *name)
{
	for (size_t i = 0; i < TP_ARRAY_SIZE(hooks); i++)
		if (name && !strcmp(hooks[i].name, name))
			return &hooks[i];
	return NULL;
}

bool tp_doctor_backend_known(const char *name)
{
	return tp_doctor_hooks(name) != NULL;
}

const char *tp_doctor_backend_names(void)
{
	static char names[160];

	if (!names[0]) {
		size_t n = 0;

		for (size_t i = 0; i < TP_ARRAY_SIZE(hooks) && n < sizeof(names); i++)
			n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s%s", i ? ", " : "",
					      hooks[i].name,
					      tp_backend_find(hooks[i].name) ? "" : " (not built)");
	}
	return names;
}
