/* SPDX-License-Identifier: MIT */
/*
 * TEST STAND-IN for macOS: a fake IORegistry, Mach ports and IOKit user-client
 * calls (standin_iokit.c) routed to an in-process stand-in of thunderpass's
 * driver extension (standin_dext.c) that runs the dext's own policy
 * (darwin/dext/TPDextPolicy.h) against the model GPU (backends/model) and a
 * fake DART. The darwin backend (backends/darwin/) compiles unchanged
 * against tests/darwin/sdk/ and talks to this; nothing here is in the
 * product.
 *
 * What is faithful: the selectors, structures and argument checks of
 * darwin_uc.h, the policy, the DMA caps checked before "PrepareForDMA", the
 * IRQ page and the arm/fire protocol, async completions as messages on a
 * port. What is not: BAR0 of the model is a register file, not memory, so
 * only the model's memory BARs (BAR1, BAR3) can be "mapped"; BAR0 goes
 * through the MMIO selectors (the fallback path of the real client).
 */
#ifndef TP_STANDIN_H
#define TP_STANDIN_H

#include <stdbool.h>
#include <stdint.h>

#include <IOKit/IOKitLib.h>

#include <thunderpass/backend.h>
#include <thunderpass/darwin_uc.h>

/* ---- the registry ---- */

struct standin_pci {
	unsigned bus, dev, fn;
	uint32_t vendor, device, class_code; /* class_code: 24 bits */
	bool tunnelled;
	bool pcidebug_as_data;               /* "pcidebug" as CFData, not CFString */
	const char *pcidebug;                /* override the text (NULL: "b:d:f") */
};

/* Adds an IOPCIDevice entry; returns its registry id (never released). */
io_registry_entry_t standin_add_pci(const struct standin_pci *p);
/* Attaches the stand-in dext to a PCI entry, backed by be (the stand-in
 * owns it from now on and destroys it at standin_reset). 0 or -errno. */
int standin_attach_dext(io_registry_entry_t pci, struct tp_backend *be);
/* Frees the registry, the dexts and their backends, the ports. */
void standin_reset(void);
/* IOKit object references the client still holds (0 after a clean close). */
int standin_outstanding_refs(void);

/* ---- knobs (set before the client opens; standin_reset clears them) ---- */

enum standin_dart_mode {
	STANDIN_DART_NORMAL = 0,  /* one segment, bump allocation in 16 KiB pages */
	STANDIN_DART_SPLIT,       /* `split` segments, device-contiguous */
	STANDIN_DART_FRAGMENT,    /* `split` segments with a page gap between them */
	STANDIN_DART_FRAGMENT_ONCE, /* the first answer fragmented, then NORMAL */
	STANDIN_DART_MISALIGN,    /* one segment, always at an odd page */
	STANDIN_DART_FAIL,        /* PrepareForDMA fails (no resources) */
	STANDIN_DART_BOGUS,       /* segments that do not add up to the request */
};

struct standin_knobs {
	bool no_bar_map;          /* CopyClientMemoryForType fails for BARs */
	enum standin_dart_mode dart_mode;
	uint32_t split;           /* segments for SPLIT/FRAGMENT (2..32) */
	uint64_t max_bytes;       /* the dext's caps; 0: darwin_uc.h's */
	uint32_t max_maps;
	uint32_t irq_grant;       /* vectors the dext can set up at most (0: all) */
	uint16_t fake_device;     /* non-zero: the function's device id reads this */
	bool flr_fails;           /* Reset(FunctionReset) returns an error */
	uint32_t info_abi;        /* non-zero: GET_INFO reports this ABI */
	bool info_wrong_bdf;      /* GET_INFO reports another function */
	uint32_t short_reply;     /* struct replies come this many bytes short */
};
extern struct standin_knobs standin_knobs;

/* ---- observations ---- */

struct standin_stats {
	uint64_t calls[TP_DUC_SELECTOR_COUNT];
	uint64_t prepare_calls;    /* PrepareForDMA equivalents that ran */
	uint64_t dart_bytes, dart_maps;            /* live in the fake DART */
	uint64_t dart_peak_bytes, dart_peak_maps;
	bool dart_panicked;        /* PrepareForDMA past the caps: the host would be gone */
	uint32_t resets_flr, resets_hot;
	uint32_t map_options[6];   /* the last IOConnectMapMemory64 options per BAR */
	uint64_t refused_config_writes;
	uint64_t completions, aborts;
	uint32_t sessions;         /* open user clients */
};
extern struct standin_stats standin_stats;

/* ---- used by standin_iokit.c (the glue) to reach the dext ---- */

struct standin_dext;
struct standin_uc;

struct standin_call {
	uint32_t selector;
	const uint64_t *in;
	uint32_t nin;
	const void *sin;
	size_t sinlen;
	uint64_t *out;
	uint32_t nout;            /* the caller's capacity */
	uint64_t sout_max;        /* the caller's buffer size */
	void *sout_buf;           /* where the reply structure goes */
	size_t sout_len;          /* set by the dext */
	bool async;
	mach_port_t wake_port;    /* async: where completions go */
	uint64_t ref[kOSAsyncRef64Count];
};

struct standin_dext *standin_dext_new(struct tp_backend *be, unsigned bus, unsigned dev,
				      unsigned fn);
int standin_dext_open(struct standin_dext *dx, struct standin_uc **out);
void standin_dext_close(struct standin_uc *uc);
kern_return_t standin_dext_call(struct standin_uc *uc, struct standin_call *c);
kern_return_t standin_dext_map(struct standin_uc *uc, uint32_t type, IOOptionBits opt,
			       mach_vm_address_t *addr, mach_vm_size_t *size);
void standin_dext_unmap(struct standin_uc *uc, uint32_t type, mach_vm_address_t addr);
void standin_dext_free(struct standin_dext *dx);

/* Mach ports of standin_iokit.c: an async completion to deliver. */
void standin_post_completion(mach_port_t port, const uint64_t ref[kOSAsyncRef64Count],
			     IOReturn result, const uint64_t *args, uint32_t nargs);

/* Fires a vector as the device would (tests of the notification path). */
void standin_fire(struct standin_uc *uc, uint32_t vector);
/* The open session of the first dext, or NULL. */
struct standin_uc *standin_session(void);

#endif
