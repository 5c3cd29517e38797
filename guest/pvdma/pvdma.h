/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pvdma: what the parts of the driver share (private to guest/pvdma). The
 * companion's registers and ring layout (docs/pvdma.md), the driver's state,
 * and the functions one part calls in another:
 *
 *   pvdma_main.c     module, probe/remove, the managed device
 *   pvdma_ring.c     the ring: slots, submission, doorbell, waits, interrupt
 *   pvdma_ops.c      mapping records (device address -> handle), dma_map_ops
 *   pvdma_sysfs.c    statistics in sysfs, the guest's model of the windows
 *   pvdma_debugfs.c  debugfs: bench, stream, ring
 */
#ifndef PVDMA_H
#define PVDMA_H

#include <linux/completion.h>
#include <linux/dma-map-ops.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/ktime.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>

#ifndef CONFIG_DMA_OPS
#error "pvdma needs CONFIG_DMA_OPS (per-device dma_map_ops): see guest/pvdma/README"
#endif

/* BAR0 registers (docs/pvdma.md) */
#define PVDMA_REG_ID		0x000
#define PVDMA_REG_VERSION	0x004
#define PVDMA_REG_MANAGED_ID	0x008
#define PVDMA_REG_MANAGED_DEVFN	0x00c
#define PVDMA_REG_TOKEN_LO	0x010
#define PVDMA_REG_TOKEN_HI	0x014
#define PVDMA_REG_RING_ENTRIES	0x018
#define PVDMA_REG_GRANULE	0x01c
#define PVDMA_REG_WINDOW	0x020
#define PVDMA_REG_MAX_MAPPED_MB	0x024
#define PVDMA_REG_MAX_MAPPINGS	0x028
#define PVDMA_REG_DOORBELL	0x030
#define PVDMA_REG_CONSUMER	0x034
#define PVDMA_REG_CONTROL	0x038
#define PVDMA_REG_STAT_REQUESTS	0x040
#define PVDMA_REG_STAT_MAPS	0x044
#define PVDMA_REG_STAT_UNMAPS	0x048
#define PVDMA_REG_STAT_WINDOWS	0x04c
#define PVDMA_REG_STAT_BYTES_LO	0x050
#define PVDMA_REG_STAT_BYTES_HI	0x054
#define PVDMA_REG_STAT_ERRORS	0x058
#define PVDMA_REG_STAT_DELAYED	0x05c
#define PVDMA_REG_STAT_LAZY	0x060
#define PVDMA_REGS_SIZE		0x100

#define PVDMA_ID_VALUE		0x41444d50	/* "PMDA" */
#define PVDMA_VERSION		1
#define PVDMA_CTRL_ENABLE	BIT(0)

/* Ring entries: op, status */
#define PVDMA_OP_MAP		1
#define PVDMA_OP_UNMAP		2
#define PVDMA_DIR_READ		BIT(0)	/* the device reads */
#define PVDMA_DIR_WRITE		BIT(1)	/* the device writes */

#define PVDMA_ST_OK		0
#define PVDMA_ST_BAD_OP		1
#define PVDMA_ST_BAD_RANGE	2
#define PVDMA_ST_NOT_ALIGNED	3
#define PVDMA_ST_CAP		4
#define PVDMA_ST_BAD_HANDLE	5
#define PVDMA_ST_DISABLED	6
#define PVDMA_ST_NO_SPACE	7
#define PVDMA_ST_PENDING	0xffffffffU
/* Local outcomes, never in the ring. */
#define PVDMA_ST_TIMEOUT	0x100	/* not completed in time (abandoned or never sent) */
#define PVDMA_ST_DEAD		0x101	/* the ring is being torn down */

#define PVDMA_NO_SLOT		U32_MAX
#define PVDMA_HASH_BITS		12

struct pvdma_ring_header {
	__le32 producer;
	__le32 reserved[15];
};

struct pvdma_entry {
	__le32 op;
	__le32 status;
	__le64 cookie;
	__le64 gpa;
	__le64 len;
	__le32 dir;
	__le32 align;
	__le64 handle;
	__le64 dva;
	__le64 reserved;
};

static_assert(sizeof(struct pvdma_ring_header) == 64);
static_assert(sizeof(struct pvdma_entry) == 64);

enum pvdma_kind { PVDMA_K_STREAM, PVDMA_K_COHERENT, PVDMA_K_PAGES, PVDMA_K_INTERNAL };

/*
 * One request, and then one live mapping (in the table, by device address).
 * While it is in the ring, the slot's owner points to it.
 */
struct pvdma_map {
	struct hlist_node node;		/* p->table */
	struct list_head batch;		/* the submitter's list */
	struct list_head dead;		/* p->abandoned */
	u64 gpa, len, dva, handle;
	u32 op, dir, status, slot;
	u8 kind;
	bool abandoned;
	void *cpu;			/* coherent: CPU address from the companion's allocator */
	dma_addr_t cdma;		/* coherent: the companion's handle (= gpa) */
	unsigned long attrs;
	struct page *page;		/* alloc_pages */
};

struct pvdma_stats {
	u64 doorbells;		/* doorbell writes (batches) */
	u64 requests;		/* entries completed by the server, ok or not */
	u64 maps, unmaps;	/* entries completed ok */
	u64 errors;		/* entries completed with a status != 0 */
	u64 delayed;		/* MAP entries still pending after their doorbell */
	u64 bytes_mapped;	/* bytes of the maps that completed ok, over time */
	u64 abandoned;		/* entries given up on after a timeout */
	u64 reaped;		/* abandoned entries cleaned up later */
	u64 sleeps, spins;	/* waits for delayed entries: slept, spun */
	u64 ring_full;		/* waits for free slots */
	u64 unknown_unmaps;	/* unmaps of a device address not mapped here */
	u64 refused;		/* mappings refused before the ring (mask, no memory) */
	u64 max_batch;		/* largest batch */
	u64 irqs;		/* completion interrupts */
};

struct pvdma_thr {
	struct pvdma_stream *s;
	struct task_struct *task;
	struct completion done;
	struct page *page;
	struct scatterlist *sgl;
	unsigned int idx, segs;
	bool atomic;
	u64 iters, errors, bytes;
};

struct pvdma_stream {
	struct pvdma *p;
	unsigned int threads, segs, count, hold_us, atomic, bind;
	size_t size;
	bool stop;
	struct pvdma_thr *thr;
	struct pvdma_stats st0;
	ktime_t t0;
};

struct pvdma {
	struct pci_dev *pdev;		/* the companion */
	struct pci_dev *gpu;		/* the managed device */
	struct list_head list;		/* pvdma_devs */
	void __iomem *regs;
	void *ring;
	struct pvdma_ring_header *hdr;
	struct pvdma_entry *ent;
	u32 nent, granule, window, max_mapped_mb, max_mappings, batch;
	u64 token;

	/*
	 * A copy per companion, not const: the managed device's dev->dma_ops points
	 * here, and container_of() finds this struct from it in every call.
	 */
	struct dma_map_ops ops;
	const struct dma_map_ops *orig_ops;
	bool active;			/* our ops belong on gpu (device lock + pvdma_devs_lock) */
	bool pinned;			/* module reference while gpu has a driver */

	spinlock_t lock;		/* ring, slots, abandoned, stats */
	u32 prod;
	struct pvdma_map **owner;	/* per slot */
	struct list_head abandoned;
	unsigned int nabandoned;
	bool dead;
	wait_queue_head_t wq;
	struct pvdma_stats st;

	spinlock_t tlock;		/* table, live, live_bytes */
	struct hlist_head *table;
	u64 live, live_bytes;

	int irq;
	struct dentry *dbg;
	struct mutex run_lock;		/* bench and stream */
	char bench_result[256];
	struct pvdma_stream *stream;
	char stream_result[384];
};

/* pvdma_main.c */
extern struct kmem_cache *pvdma_cache;

static inline u32 pvdma_rd(struct pvdma *p, u32 reg)
{
	return readl(p->regs + reg);
}

/* pvdma_ring.c */
void pvdma_submit(struct pvdma *p, struct list_head *reqs, bool sleep);
irqreturn_t pvdma_irq(int irq, void *data);

/* pvdma_ops.c */
extern const struct dma_map_ops pvdma_ops_template;
struct pvdma_map *pvdma_new(bool sleep);
void pvdma_free_list(struct list_head *reqs);
void pvdma_undo(struct pvdma *p, struct list_head *reqs, bool sleep);

/* pvdma_sysfs.c */
extern const struct attribute_group *pvdma_groups[];
u64 pvdma_rd_bytes(struct pvdma *p);

/* pvdma_debugfs.c */
void pvdma_debugfs_files(struct pvdma *p);
void pvdma_stream_finish(struct pvdma *p);

#endif /* PVDMA_H */
