/* SPDX-License-Identifier: MIT */
/*
 * IOKit plumbing of the darwin backend: finding the dext's service for a
 * bus/device/function, the user-client call wrapper, kern_return_t to
 * -errno, and `thunderpass list`. Everything read from the IORegistry is
 * checked for type and size before use: a property can be missing, have
 * another type than documented, or be short.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <thunderpass/log.h>

#include "darwin.h"

int tp_darwin_errno(kern_return_t kr)
{
	switch (kr) {
	case KERN_SUCCESS: return 0;
	case kIOReturnBadArgument:
	case kIOReturnNotAligned: return -EINVAL;
	case kIOReturnNoSpace: return -ENOSPC;
	case kIOReturnNoMemory:
	case kIOReturnNoResources: return -ENOMEM;
	case kIOReturnNotPermitted:
	case kIOReturnNotPrivileged: return -EPERM;
	case kIOReturnExclusiveAccess:
	case kIOReturnBusy: return -EBUSY;
	case kIOReturnNotFound: return -ENOENT;
	case kIOReturnTimeout: return -ETIMEDOUT;
	case kIOReturnNotReady: return -EAGAIN;
	case kIOReturnUnsupported: return -EOPNOTSUPP;
	case kIOReturnAborted: return -ECANCELED;
	/* The dext is gone (crashed, deactivated, device unplugged). */
	case kIOReturnNoDevice:
	case kIOReturnNotOpen:
	case kIOReturnNotAttached:
	case kIOReturnOffline:
	case kIOReturnIPCError:
	case MACH_SEND_INVALID_DEST: return -ENODEV;
	default: return -EIO;
	}
}

const char *tp_darwin_krstr(kern_return_t kr)
{
	switch (kr) {
	case KERN_SUCCESS: return "success";
	case kIOReturnBadArgument: return "bad argument";
	case kIOReturnNoSpace: return "no space (a DMA cap)";
	case kIOReturnNoMemory: return "no memory";
	case kIOReturnNoResources: return "no resources";
	case kIOReturnNotPermitted: return "not permitted";
	case kIOReturnNotPrivileged: return "not privileged (entitlement?)";
	case kIOReturnExclusiveAccess: return "in use by another client";
	case kIOReturnBusy: return "busy";
	case kIOReturnNotFound: return "not found";
	case kIOReturnTimeout: return "timed out";
	case kIOReturnUnsupported: return "unsupported";
	case kIOReturnNoDevice: return "no device";
	case kIOReturnIPCError: return "IPC error (driver extension gone?)";
	default: return "error";
	}
}

static int hexval(const char *s, size_t n, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (n == 0 || n > 4)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (!isxdigit(c))
			return -EINVAL;
		v = v * 16 + (unsigned)(isdigit(c) ? c - '0' : tolower(c) - 'a' + 10);
	}
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int tp_darwin_parse_bdf(const char *s, unsigned *bus, unsigned *dev, unsigned *fn)
{
	const char *c1, *c2, *dot;
	unsigned dom;

	if (!s)
		return -EINVAL;
	c1 = strchr(s, ':');
	if (!c1)
		return -EINVAL;
	c2 = strchr(c1 + 1, ':');
	if (c2) { /* a domain: macOS has one PCI domain as far as we can name it */
		if (hexval(s, (size_t)(c1 - s), 0xffff, &dom) || dom != 0)
			return -EINVAL;
		s = c1 + 1;
		c1 = c2;
	}
	dot = strchr(c1 + 1, '.');
	if (!dot || strchr(dot + 1, ':') || strchr(dot + 1, '.'))
		return -EINVAL;
	if (hexval(s, (size_t)(c1 - s), 0xff, bus) ||
	    hexval(c1 + 1, (size_t)(dot - c1 - 1), 0x1f, dev) ||
	    hexval(dot + 1, strlen(dot + 1), 7, fn))
		return -EINVAL;
	return 0;
}

/* ---- IORegistry properties ---------------------------------------------- */

static CFTypeRef prop(io_registry_entry_t e, const char *key)
{
	CFStringRef k = CFStringCreateWithCString(kCFAllocatorDefault, key, kCFStringEncodingUTF8);
	CFTypeRef v;

	if (!k)
		return NULL;
	v = IORegistryEntryCreateCFProperty(e, k, kCFAllocatorDefault, 0);
	CFRelease(k);
	return v;
}

/* A string property (CFString, or CFData holding text) into buf. */
static int prop_str(io_registry_entry_t e, const char *key, char *buf, size_t len)
{
	CFTypeRef v = prop(e, key);
	int rc = -ENOENT;

	if (!v)
		return rc;
	if (CFGetTypeID(v) == CFStringGetTypeID()) {
		if (CFStringGetCString((CFStringRef)v, buf, (CFIndex)len, kCFStringEncodingUTF8))
			rc = 0;
	} else if (CFGetTypeID(v) == CFDataGetTypeID()) {
		CFIndex n = CFDataGetLength((CFDataRef)v);
		const UInt8 *p = CFDataGetBytePtr((CFDataRef)v);

		if (p && n > 0 && (size_t)n < len) {
			memcpy(buf, p, (size_t)n);
			buf[n] = 0;
			rc = 0;
		}
	}
	CFRelease(v);
	return rc;
}

/* A 32-bit little-endian CFData property (vendor-id, device-id, class-code). */
static int prop_u32(io_registry_entry_t e, const char *key, uint32_t *out)
{
	CFTypeRef v = prop(e, key);
	int rc = -ENOENT;

	if (!v)
		return rc;
	if (CFGetTypeID(v) == CFDataGetTypeID() && CFDataGetLength((CFDataRef)v) >= 4) {
		const UInt8 *p = CFDataGetBytePtr((CFDataRef)v);

		if (p) {
			*out = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			       (uint32_t)p[3] << 24;
			rc = 0;
		}
	}
	CFRelease(v);
	return rc;
}

static bool prop_true(io_registry_entry_t e, const char *key)
{
	CFTypeRef v = prop(e, key);
	bool yes = false;

	if (!v)
		return false;
	if (CFGetTypeID(v) == CFBooleanGetTypeID())
		yes = CFBooleanGetValue((CFBooleanRef)v);
	CFRelease(v);
	return yes;
}

/*
 * IOPCIDevice "pcidebug": "bus:device:function" in decimal, sometimes with
 * more after the function ("3:0:0(...)"). Only the three numbers count.
 */
static int pcidebug_bdf(io_registry_entry_t pci, unsigned *bus, unsigned *dev, unsigned *fn)
{
	char buf[64], *p, *end;
	unsigned long v[3];

	if (prop_str(pci, "pcidebug", buf, sizeof(buf)))
		return -ENOENT;
	p = buf;
	for (int i = 0; i < 3; i++) {
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		v[i] = strtoul(p, &end, 10);
		if (i < 2 && *end != ':')
			return -EINVAL;
		p = end + 1;
	}
	if (v[0] > 0xff || v[1] > 0x1f || v[2] > 7)
		return -EINVAL;
	*bus = (unsigned)v[0];
	*dev = (unsigned)v[1];
	*fn = (unsigned)v[2];
	return 0;
}

int tp_darwin_find_service(unsigned bus, unsigned dev, unsigned fn, io_service_t *out)
{
	io_iterator_t it = IO_OBJECT_NULL;
	io_service_t svc;
	char seen[256] = "";
	size_t used = 0;
	kern_return_t kr;

	*out = IO_OBJECT_NULL;
	kr = IOServiceGetMatchingServices(kIOMainPortDefault,
					  IOServiceNameMatching(TP_DUC_SERVICE_NAME), &it);
	if (kr != KERN_SUCCESS) {
		tp_err(DARWIN_WHO, "IORegistry lookup failed: %s (%#x)", tp_darwin_krstr(kr), kr);
		return tp_darwin_errno(kr);
	}
	while ((svc = IOIteratorNext(it)) != IO_OBJECT_NULL) {
		io_registry_entry_t pci = IO_OBJECT_NULL;
		unsigned b, d, f;
		int rc = -ENOENT;

		if (IORegistryEntryGetParentEntry(svc, kIOServicePlane, &pci) == KERN_SUCCESS) {
			rc = pcidebug_bdf(pci, &b, &d, &f);
			IOObjectRelease(pci);
		}
		if (!rc && b == bus && d == dev && f == fn) {
			*out = svc;
			break;
		}
		if (!rc && used < sizeof(seen) - 16)
			used += (size_t)snprintf(seen + used, sizeof(seen) - used, "%s%02x:%02x.%x",
						 used ? ", " : "", b, d, f);
		IOObjectRelease(svc);
	}
	IOObjectRelease(it);
	if (*out != IO_OBJECT_NULL)
		return 0;
	tp_err(DARWIN_WHO,
	       "no thunderpass driver extension attached to %02x:%02x.%x (attached to: %s); "
	       "is it activated and the device plugged in? (thunderpass list)",
	       bus, dev, fn, used ? seen : "none");
	return -ENOENT;
}

int tp_darwin_call(struct darwin_dev *d, uint32_t sel, const uint64_t *in, uint32_t nin,
		   const void *sin, size_t sinlen, uint64_t *out, uint32_t nout, void *sout,
		   size_t soutlen)
{
	uint32_t on = nout;
	size_t os = soutlen;
	kern_return_t kr;

	kr = IOConnectCallMethod(d->conn, sel, in, nin, sin, sinlen, nout ? out : NULL,
				 nout ? &on : NULL, soutlen ? sout : NULL, soutlen ? &os : NULL);
	if (kr != KERN_SUCCESS)
		return tp_darwin_errno(kr);
	if (on != nout || os != soutlen) {
		tp_err(d->be.name,
		       "selector %u: reply of %u scalars and %zu bytes, expected %u and %zu: "
		       "the driver extension was built from another darwin_uc.h",
		       sel, on, os, nout, soutlen);
		return -EPROTO;
	}
	return 0;
}

/* ---- thunderpass list -------------------------------------------------------- */

/* "free", "in use" (a user client is attached), or NULL: no thunderpass dext. */
static const char *dext_state(io_registry_entry_t pci)
{
	io_iterator_t it = IO_OBJECT_NULL;
	io_registry_entry_t child;
	const char *state = NULL;

	if (IORegistryEntryGetChildIterator(pci, kIOServicePlane, &it) != KERN_SUCCESS)
		return NULL;
	while (!state && (child = IOIteratorNext(it)) != IO_OBJECT_NULL) {
		io_name_t name;

		if (IORegistryEntryGetName(child, name) == KERN_SUCCESS &&
		    strcmp(name, TP_DUC_SERVICE_NAME) == 0) {
			io_iterator_t uc = IO_OBJECT_NULL;
			io_registry_entry_t u;

			state = "free";
			if (IORegistryEntryGetChildIterator(child, kIOServicePlane, &uc) ==
			    KERN_SUCCESS) {
				if ((u = IOIteratorNext(uc)) != IO_OBJECT_NULL) {
					state = "in use";
					IOObjectRelease(u);
				}
				IOObjectRelease(uc);
			}
		}
		IOObjectRelease(child);
	}
	IOObjectRelease(it);
	return state;
}

int tp_darwin_list(FILE *out)
{
	io_iterator_t it = IO_OBJECT_NULL;
	io_registry_entry_t pci;
	kern_return_t kr;
	int n = 0;

	kr = IOServiceGetMatchingServices(kIOMainPortDefault, IOServiceMatching("IOPCIDevice"), &it);
	if (kr != KERN_SUCCESS) {
		tp_err(DARWIN_WHO, "IORegistry lookup failed: %s (%#x)", tp_darwin_krstr(kr), kr);
		return tp_darwin_errno(kr);
	}
	fprintf(out, "%-8s %-9s %-6s %-6s %-12s %s\n", "DEVICE", "ID", "CLASS", "TUNNEL", "DRIVER",
		"PASS");
	while ((pci = IOIteratorNext(it)) != IO_OBJECT_NULL) {
		uint32_t ven = 0xffff, dev = 0xffff, cls = 0;
		unsigned b, d, f;
		const char *state;
		bool display;

		if (pcidebug_bdf(pci, &b, &d, &f)) {
			IOObjectRelease(pci);
			continue;
		}
		prop_u32(pci, "vendor-id", &ven);
		prop_u32(pci, "device-id", &dev);
		prop_u32(pci, "class-code", &cls);
		state = dext_state(pci);
		display = ((cls >> 16) & 0xff) == 0x03;
		fprintf(out, "%02x:%02x.%x  %04x:%04x %06x %-6s %-12s %s\n", b, d, f, ven & 0xffff,
			dev & 0xffff, cls & 0xffffff, prop_true(pci, "IOPCITunnelled") ? "yes" : "no",
			state ? "thunderpass" : "-",
			state ? (strcmp(state, "free") == 0 ? "yes" : "no: in use")
			      : display ? "no: dext not attached" : "no");
		n++;
		IOObjectRelease(pci);
	}
	IOObjectRelease(it);
	return n;
}
