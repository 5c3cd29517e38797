/* SPDX-License-Identifier: MIT */
/*
 * The proxy backend: thunderpass as a vfio-user *client* of another server
 * (the "physical device": QEMU's x-vfio-user-server with its nvme model,
 * libvfio-user's samples, another thunderpass), re-exported through the core.
 * docs/proxy.md has the whole story; in short:
 *
 *   proxy.c      options, connecting, what the remote device is, teardown
 *   proxy_io.c   config and region accesses, DMA maps, reset, reconnecting
 *   proxy_irq.c  the remote's vectors on our eventfds (one thread), the
 *                remote device's own MSI-X unmasked, and the remote's
 *                DMA_READ/DMA_WRITE requests served through the core
 *
 * Threads: the core's message thread calls the ops; the client's receive
 * thread (lib/client.c) delivers replies and queues the remote's requests; the
 * proxy's service thread waits on the eventfds and serves the queue.
 *
 * Every byte from the remote is checked as a hostile client's would be.
 * Errors: -errno, logged once where decided, prefixed with the backend name.
 */
#ifndef TP_PROXY_H
#define TP_PROXY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <thunderpass/backend.h>
#include <thunderpass/protocol.h>

#include "client.h"

#define PROXY_QUEUE_MAX 64     /* remote requests waiting to be served */
#define PROXY_MAX_VECTORS 2048 /* as many as MSI-X has */
#define PROXY_MAX_MAPS (1u << 20)  /* records of the remote's DMA map (fd, mirror) */

enum proxy_dma_mode {
	PROXY_DMA_AUTO,   /* (option only) fd with the identity model, mirror with others */
	PROXY_DMA_FD,     /* the client's guest memory fds handed on (identity IOMMU) */
	PROXY_DMA_MIRROR, /* the IOMMU model's mappings: device address -> fd of guest pages */
	PROXY_DMA_MSG,    /* no fds: the remote's DMA_READ/WRITE, through the IOMMU model */
};

enum proxy_posted {
	PROXY_POSTED_AUTO, /* as QEMU does: posted unless a region is mappable */
	PROXY_POSTED_ON,
	PROXY_POSTED_OFF,
};

/* The remote device's own MSI-X (or MSI) enable and masks (msix=...). */
enum proxy_msi_policy {
	PROXY_MSI_ON,     /* always on: every vector an MSI-X edge (the default) */
	PROXY_MSI_FOLLOW, /* on while the guest has INTx Disable set, else INTx */
	PROXY_MSI_OFF,    /* left as the remote has it */
};

struct proxy_opts {
	const char *socket;
	const char *name;
	int timeout_ms;      /* per call to the remote */
	int connect_wait_ms; /* how long to wait for the remote's socket */
	enum proxy_dma_mode dma;
	uint64_t win_base, win_size; /* DMA window given to the remote (msg mode) */
	enum proxy_posted posted;
	enum proxy_msi_policy msi;
	bool reconnect;
	bool intx_hold;      /* INTx level held until the next BAR access, not pulsed */
};

/* One remote region, as the remote described it (checked). */
struct proxy_region {
	uint64_t size;
	uint32_t flags;       /* TP_VU_REGION_* */
	int fd;               /* the remote's fd, owned here; -1 */
	uint64_t fd_offset;
	uint32_t nr_areas;
	struct tp_mmap_area areas[TP_MAX_MMAP_AREAS];
};

struct proxy_stats {
	_Atomic uint64_t irqs, dma_reads, dma_writes, dma_bytes, dma_errors, dma_busy;
	uint64_t errors, maps, unmaps, maps_skipped, resets, reconnects;
	uint64_t maps_refused; /* maps the remote (or our record) refused */
};

struct proxy {
	struct tp_backend be;
	struct proxy_opts o;
	struct tp_client cl;
	bool connected;             /* cl holds a socket */

	/* The remote device (fixed at create; a reconnect must find the same). */
	uint32_t dev_flags, num_regions, num_irqs;
	struct proxy_region regions[TP_REGION_COUNT];
	uint32_t irq_count[TP_IRQ_INDEX_COUNT];
	uint8_t ident[64];          /* config header as first read */
	bool posted;                /* region writes go NO_REPLY */

	/* The remote's own MSI-X (or MSI) capability and table, and whether the
	 * proxy has it enabled now. */
	uint8_t msix_cap;           /* 0: none */
	uint32_t msix_bir, msix_table, msix_n;
	bool remote_msi_on;

	/* Interrupts: the remote index we listen on and our eventfds for it. */
	uint32_t irq_index;         /* TP_IRQ_MSIX/MSI/INTX, or TP_IRQ_INDEX_COUNT: none */
	uint32_t nvec;
	int *efds;
	int epfd, wake_fd;
	pthread_t thread;
	bool thread_running;
	/* INTx for a guest that uses it: a pulse per remote vector, or (intx=hold)
	 * the level held until the guest's next trapped BAR access. */
	bool intx_hold;
	pthread_mutex_t intx_lock;
	atomic_bool intx_up;

	/* Remote requests for the service thread, each tagged with the
	 * connection it came on (gen): a reply never goes to a newer one. */
	pthread_mutex_t qlock;
	struct tp_client_msg *queue[PROXY_QUEUE_MAX];
	uint64_t queue_gen[PROXY_QUEUE_MAX];
	unsigned qhead, qlen;
	bool stopping;
	pthread_mutex_t cl_lock;    /* replies from the service thread vs reconnecting */
	uint64_t gen;               /* connections made, under cl_lock and qlock */

	/* What the remote's DMA map holds, replayed on a reconnect: dma=fd, the
	 * client's maps (iova = guest address); dma=mirror, the IOMMU model's
	 * mappings (iova = device address, fd and offset of the guest pages).
	 * The fds are the core's: valid until the core unmaps (dma_unmap), or
	 * tells us the mapping went (iommu_unmapped), which comes first.
	 * maps_lock: the records and every DMA_MAP/UNMAP sent for them, against
	 * a reconnect (held across it). Order: the core's DMA lock, maps_lock,
	 * cl_lock and the client's own locks. */
	enum proxy_dma_mode dma;    /* the mode in force (auto resolved at open) */
	pthread_mutex_t maps_lock;
	struct tp_dma_region *maps;
	uint32_t nmaps, maps_cap;
	uint8_t *dma_buf;           /* one DMA transfer and its reply header */

	atomic_bool dead;           /* the remote went away */
	atomic_int dead_err;
	uint64_t last_err_ns;       /* error logging, one a second */
	uint64_t quiet_errors;

	struct proxy_stats st;
};

static inline struct proxy *proxy_of(struct tp_backend *be)
{
	return (struct proxy *)be;
}

/* proxy.c */
int proxy_connect(struct proxy *p, bool again);
void proxy_destroy(struct tp_backend *be);
/* A failed exchange with the remote: counted; logged at most once a second
 * (a dead remote was logged when it died). Returns rc. */
int proxy_fail(struct proxy *p, const char *what, int rc);

/* proxy_io.c */
extern const struct tp_backend_ops proxy_ops;
int proxy_bars_program(struct proxy *p);
/* msg mode: the one fd-less DMA window the remote gets at each connection. */
int proxy_dma_window(struct proxy *p);
/* fd and mirror modes: every recorded map sent again (after a reconnect). */
int proxy_dma_replay(struct proxy *p);
/* A DMA mode in words, for the log. */
const char *proxy_dma_what(enum proxy_dma_mode m);

/* proxy_irq.c */
int proxy_irq_init(struct proxy *p);      /* eventfds, epoll, the thread */
int proxy_irq_arm(struct proxy *p);       /* SET_IRQS to the remote + MSI-X unmask */
/* The remote's MSI-X/MSI on or off as the policy says (after a command
 * register write of the guest, and at arm time with force). */
int proxy_irq_follow(struct proxy *p, bool force);
void proxy_irq_stop(struct proxy *p);     /* the service thread stops */
void proxy_irq_fini(struct proxy *p);     /* fds closed, queue freed (after the client) */
void proxy_request(void *ctx, struct tp_client_msg *m); /* client hook */
void proxy_queue_purge(struct proxy *p);
void proxy_intx_ack(struct proxy *p);     /* a trapped BAR access: INTx level down */
int proxy_find_msix(struct proxy *p);

#endif
