/* SPDX-License-Identifier: MIT */
/*
 * The scripted remote of tests/guest/proxy-remote.sh, shared by its two
 * halves: proxy_remote_test.c (the remote, the client side, dma=msg/fd,
 * death and reconnect) and proxy_remote_mirror.c (dma=mirror).
 */
#ifndef TP_PROXY_REMOTE_H
#define TP_PROXY_REMOTE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "client.h"

#define HDR ((uint32_t)sizeof(struct tp_vu_hdr))
#define NVEC 4
#define GUEST_IOVA 0x100000ull
#define GUEST_SIZE (1u << 20)
/* BAR0 registers of the fake device */
#define R_SCRATCH 0x00
#define R_DOORBELL 0x08   /* write: DMA_READ src, DMA_WRITE ~data to dst, raise vector 1 */
#define R_SRC 0x10
#define R_DST 0x18
#define R_LEN 0x20
#define R_STATUS 0x28     /* last DMA errno (0: fine) */
#define R_INTERLEAVE 0x30 /* read: a DMA_WRITE to dst first, then the reply */
#define R_HOSTILE 0x38    /* write: malformed DMA requests; their errnos in hostile[] */
#define R_BADECHO 0x40    /* read: a reply whose echo names another offset */
#define MSIX_TABLE 0x800
#define REMOTE_LOG 64     /* DMA_MAP/DMA_UNMAP kept (a ring) */

/* One DMA_MAP or DMA_UNMAP the remote got, in order. */
struct remote_map {
	uint64_t addr, size, offset;
	uint32_t flags;
	bool fd;      /* a map that came with an fd */
	bool unmap;   /* a DMA_UNMAP */
	bool refused; /* a map the remote refused (refuse_maps) */
	uint8_t *mem; /* a map with an fd, mapped here until its DMA_UNMAP */
};

struct remote {
	char path[108];
	int lfd, fd;
	pthread_t th;
	uint8_t cfg[256], bar0[4096];
	int efds[NVEC];
	uint16_t next_id;
	/* what it saw */
	int maps, maps_with_fd, unmaps, resets;
	uint64_t win_base, win_size;
	uint8_t *mapped; /* dma=fd: the client's memory, as the remote mapped it */
	uint64_t mapped_iova, mapped_size;
	bool die;        /* close the connection at the next message */
	int hostile[4];
	struct remote_map log[REMOTE_LOG];
	unsigned nlog;   /* entries logged ever (stored with release) */
	int refuse_maps; /* refuse the next N DMA_MAPs with EINVAL */
	/* Commands that came while the remote waited for a reply of its own: the
	 * spec allows them, so they are kept and handled next. */
	struct pending {
		struct tp_vu_hdr h;
		uint8_t body[64 + 4096];
	} pend[8];
	unsigned npend;
};

extern int failures;
void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int remote_start(struct remote *r);
/* Accepts thunderpass and serves it on a thread. */
int remote_accept(struct remote *r);
void remote_stop(struct remote *r);
/* The remote dies mid-session (its mappings stay until remote_stop). */
void remote_kill(struct remote *r);

/* thunderpass serve --backend proxy -o socket=RSOCK, debug log to LOG, with
 * extra arguments (NULL-terminated; NULL: none). */
pid_t start_tp(const char *bin, const char *tsock, const char *rsock, const char *log,
	       const char *const *extra);
/* QEMU's part: connect, VERSION, guest memory (a memfd) mapped at GUEST_IOVA,
 * MSI-X eventfds. */
int client_up(struct tp_client *c, const char *tsock, int *memfd, uint8_t **mem, int efds[NVEC]);
void client_down(struct tp_client *c, int memfd, uint8_t *mem, int efds[NVEC]);
int wr64(struct tp_client *c, uint32_t off, uint64_t v);
uint64_t rd64(struct tp_client *c, uint32_t off, int *rc);
bool wait_efd(int fd, int ms);

/* proxy_remote_mirror.c: dma=mirror with --iommu dart and the pvdma companion. */
void mirror_pass(const char *bin, const char *dir);

#endif
