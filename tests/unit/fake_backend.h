/* SPDX-License-Identifier: MIT */
/*
 * A fake PCI function for unit tests of the core: everything in memory, every
 * op counted, nothing to set up outside the process.
 *
 *   vendor 0x1234, device 0x5678, 4 KiB config space
 *   BAR0  64-bit prefetchable memory, 1 MiB, backed by a memfd, mappable whole
 *   BAR2  32-bit memory, 4 KiB, trapped: a register file (see FAKE_REG_*)
 *   ROM   2 KiB, read-only (0x55 0xaa signature)
 *   caps  PM 0x40 -> MSI 0x50 (4 vectors, 64-bit, maskable) -> MSI-X 0x70
 *         (8 vectors, table and PBA in BAR2) -> PCIe 0x80 (v2 endpoint, FLR);
 *         extended: AER at 0x100 -> DSN at 0x148
 *
 * Use:
 *	struct fake_be fb;
 *	fake_be_init(&fb, NULL);            // or a spec from fake_cfg_default()
 *	fake_cfg_put(fb.cfg, 0x3d, 1, 0);   // optional: any byte, before the open
 *	tp_device_open(&dev, &fb.be, NULL); // tp_device_close() destroys it
 * A test that never opens a device (or whose open failed) calls fake_be_fini.
 *
 * The fake also checks the core keeps the backend contract (naturally aligned
 * config accesses of 1, 2 or 4 bytes; trapped accesses inside the region) and
 * counts each breach in `violations`: tests assert it stays 0.
 *
 * Below it, a fake client (fake_client_*) for tests above the device: the
 * function behind a session, messages built in memory and handed to
 * tp_session_handle, replies caught by an in-memory send callback.
 */
#ifndef TP_TEST_FAKE_BACKEND_H
#define TP_TEST_FAKE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <thunderpass/backend.h>
#include <thunderpass/protocol.h>

#include "session.h"

#define FAKE_VENDOR 0x1234
#define FAKE_DEVICE 0x5678
#define FAKE_CFG_SIZE 4096u
#define FAKE_BAR0_SIZE (1u << 20)
#define FAKE_BAR2_SIZE 4096u
#define FAKE_ROM_SIZE 2048u

/* Where fake_cfg_build puts the capabilities it is asked for. */
#define FAKE_CAP_PM 0x40
#define FAKE_CAP_MSI 0x50
#define FAKE_CAP_MSIX 0x70
#define FAKE_CAP_PCIE 0x80
#define FAKE_ECAP_AER 0x100 /* DSN follows it at 0x148, or takes 0x100 alone */
#define FAKE_ECAP_AER_LEN 0x48
#define FAKE_MSIX_TABLE 0x800 /* in BAR2 */
#define FAKE_MSIX_PBA 0xc00

/* BAR2 registers: ID reads FAKE_REG_ID_VALUE and ignores writes; the rest is
 * plain storage, back to zero on reset. */
#define FAKE_REG_ID 0x0
#define FAKE_REG_ID_VALUE 0xcafe0001u
#define FAKE_REG_SCRATCH 0x4

/* BAR0 holds little-endian words FAKE_BAR0_WORD(i) at 4 * i after init. */
#define FAKE_BAR0_WORD(i) (0xb0000000u | (uint32_t)(i))

struct fake_cfg_spec {
	uint16_t vendor, device;
	uint16_t subsys_vendor, subsys_device;
	uint32_t class_code; /* 24 bits: class, subclass, prog-if */
	uint8_t revision;
	uint8_t int_pin;       /* 0: no INTx */
	uint32_t cfg_size;     /* 256 or 4096: the config region's size */
	bool pm;
	uint32_t msi_vectors;  /* 0: no MSI capability; else a power of two <= 32 */
	bool msi_64, msi_maskbit;
	uint32_t msix_vectors; /* 0: no MSI-X capability; else <= 2048 */
	bool pcie, flr;
	bool aer, dsn;         /* extended capabilities (cfg_size 4096 only) */
	uint64_t serial;
};

/* Backend op calls, each counted whatever it returned. */
struct fake_calls {
	unsigned long config_read, config_write, region_info, region_read, region_write;
	unsigned long dma_map, dma_unmap, irq_count, irq_set, reset, destroy;
};

struct fake_access {
	uint32_t index;
	uint64_t off;
	uint32_t len;
};

struct fake_be {
	struct tp_backend be;      /* hand &fb.be to tp_device_open */
	struct tp_backend_ops ops; /* this instance's table: clear optional ops at will */
	struct fake_cfg_spec spec;
	uint8_t cfg[FAKE_CFG_SIZE]; /* the function's raw config space */
	struct tp_region_desc regions[TP_REGION_COUNT]; /* what region_info says */
	uint32_t irq_counts[TP_IRQ_INDEX_COUNT];        /* 0: irq_count says -EINVAL */
	int bar0_fd;
	uint8_t *bar0; /* FAKE_BAR0_SIZE bytes, shared with bar0_fd */
	uint8_t bar2[FAKE_BAR2_SIZE];
	uint8_t rom[FAKE_ROM_SIZE];

	struct fake_calls calls;
	struct fake_access last_read, last_write; /* last trapped BAR/ROM access */
	struct tp_dma_region last_dma_map, last_dma_unmap;
	uint32_t last_config_write_off, last_config_write_len;
	int reset_rc, dma_map_rc, region_rc; /* forced op results; 0: succeed */
	unsigned violations;                  /* contract breaches by the core */
};

/* The default device above. */
void fake_cfg_default(struct fake_cfg_spec *spec);
/* Builds a raw config image (FAKE_CFG_SIZE bytes, zero beyond cfg_size). */
void fake_cfg_build(uint8_t *cfg, const struct fake_cfg_spec *spec);
/* Little-endian access to an image, len 1..4. */
void fake_cfg_put(uint8_t *cfg, uint32_t off, unsigned len, uint32_t val);
uint32_t fake_cfg_get(const uint8_t *cfg, uint32_t off, unsigned len);
/* Offset of the DSN capability fake_cfg_build placed (0: none). */
uint32_t fake_cfg_dsn_offset(const struct fake_cfg_spec *spec);

/*
 * Builds the function from spec (NULL: fake_cfg_default): config image,
 * regions, interrupt counts, BAR0's memfd. Everything stays editable until
 * tp_device_open. Returns 0 or -errno.
 */
int fake_be_init(struct fake_be *fb, const struct fake_cfg_spec *spec);
/* Releases what init took; idempotent (the destroy op calls it). */
void fake_be_fini(struct fake_be *fb);

/* ---- fake client (cmocka: call these from inside a test) ---------------- */

#define FAKE_NO_REPLY (-1) /* fake_send(): the dispatcher sent nothing */

struct fake_reply {
	unsigned sends;
	struct tp_vu_hdr hdr;
	uint8_t *payload; /* the last reply's payload (TP_VU_MAX_MSG bytes) */
	uint32_t len;
	int fds[TP_CONN_MAX_FDS]; /* not owned: the server's fds, as sent */
	unsigned nfds;
	int fail; /* what the send callback returns (-errno: the connection died) */
};

struct fake_client {
	struct fake_be fb;
	struct tp_device dev;
	struct tp_session s;
	struct fake_reply r;
	uint16_t id;  /* msg_id of the next message */
	int open_fds; /* in the process when the client was made */
};

struct fake_msg {
	uint16_t cmd;
	uint32_t flags;
	uint32_t size; /* header.size; 0: 16 + len */
	const void *p;
	uint32_t len;
	const int *fds; /* handed over to the dispatcher */
	unsigned nfds;
	enum tp_msg_fault fault;
};

/* The default function, opened; negotiate: VERSION done (with room to spare). */
struct fake_client *fake_client_new(bool negotiate);
/* Closes everything; asserts the device was destroyed once, the backend
 * contract held and no fd leaked since fake_client_new. */
void fake_client_free(struct fake_client *c);
/* A fresh session on the same device (VERSION may come again). */
void fake_client_restart(struct fake_client *c);

/*
 * Hands one message (payload copied to a heap block of exactly its length)
 * to tp_session_handle and checks the frame of the reply: msg_id and command
 * those of the request, type REPLY, an error reply 16 bytes with no fd, the
 * handler's return the send callback's. Returns the reply's errno, 0 for
 * success, FAKE_NO_REPLY when nothing was sent.
 */
int fake_send(struct fake_client *c, const struct fake_msg *m);
int fake_call(struct fake_client *c, uint16_t cmd, uint32_t flags, const void *p, uint32_t len,
	      const int *fds, unsigned nfds);
/* VERSION 0.0 with json (NUL included) in a JSON space of at least `space` bytes. */
int fake_version(struct fake_client *c, const char *json, uint32_t space);

int fake_count_fds(void);     /* open in this process */
bool fake_fd_closed(int fd);  /* fcntl says EBADF */
void fake_eventfds(int *fds, unsigned n);

/* The last reply is exactly len bytes equal to want, with nfds fds. */
void fake_reply_is(struct fake_client *c, const void *want, uint32_t len, unsigned nfds);

/* cmocka fixtures: *state is a fake_client, negotiated (or raw: no VERSION yet). */
int fake_setup(void **state);
int fake_setup_raw(void **state);
int fake_teardown(void **state);

/* A message the dispatcher must refuse, and the errno it must give. */
struct fake_reject {
	const char *name;
	uint16_t cmd;
	uint32_t flags;
	uint32_t size; /* header.size; 0: 16 + len */
	const void *p;
	uint32_t len;
	unsigned nfds; /* fresh eventfds ride along */
	enum tp_msg_fault fault;
	int err;
	void (*prep)(struct fake_client *c); /* state to set up first, or NULL */
};

/*
 * Sends each row twice (as is, then posted with NO_REPLY) to a fresh client,
 * negotiated or not, and asserts: the errno (no reply at all when posted);
 * every fd closed; no backend op called; the DMA map untouched; one error
 * counted; and the session serving on (after a VERSION if not negotiated).
 */
void fake_run_rejections(const struct fake_reject *t, size_t n, bool negotiated);

/* Fails the test unless got == want, naming both errnos. */
void fake_check_errno(const char *file, int line, const char *what, int got, int want);
#define FAKE_EXPECT(expr, want) fake_check_errno(__FILE__, __LINE__, #expr, (expr), (want))

#endif
