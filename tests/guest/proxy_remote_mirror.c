/* SPDX-License-Identifier: MIT */
/*
 * dma=mirror against the scripted remote (proxy_remote_test.c has the remote
 * and the rest): thunderpass serves the proxy with --iommu dart and the pvdma
 * companion; this process plays QEMU's part on both sockets and the guest
 * module's part on the companion's ring. What is checked:
 *   - dma=fd with --iommu dart, and dma=mirror with identity, are refused at
 *     start (thunderpass exits non-zero, saying why);
 *   - the client's own DMA_MAP (guest physical addresses) never reaches the
 *     remote;
 *   - a pvdma MAP becomes one DMA_MAP at the remote: at the device address
 *     the DART chose (in its aperture, not the guest address), with the guest
 *     memory's fd at the offset of those guest pages, whole 16 KiB pages; the
 *     remote's own mapping of it and the guest's memory are the same bytes,
 *     both ways; the remote's DMA_READ/DMA_WRITE messages at device addresses
 *     still work (through the DART), at a guest address they fault;
 *   - the pvdma UNMAP becomes the DMA_UNMAP of exactly that region;
 *   - a DMA_MAP the remote refuses (as libvfio-user does when its map is
 *     full) fails the guest's MAP (NO_SPACE), and the next one works;
 *   - guest memory leaving (the client's DMA_UNMAP) takes the mirrored
 *     mapping off the remote before thunderpass answers the client;
 *   - nothing is left in the remote's map when the client is gone;
 *   - the remote dies with a mapping live; a MAP while it is dead is kept; a
 *     new remote gets both again at the reconnect (session end), then their
 *     DMA_UNMAPs as the session's memory goes.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../backends/pvdma/pvdma.h"
#include "proxy_remote.h"
#include "util.h"

#define APERTURE_BASE 0x10000000ull /* the dart model's default aperture */
#define APERTURE_END 0x100000000ull
#define DART_PAGE 0x4000ull
#define WINDOW (256u << 10)         /* pvdma's default window */

struct companion {
	struct tp_client c;
	uint8_t *bar2;
	uint64_t bar2_size;
	uint32_t prod;
};

static int comp_reg(struct companion *pc, uint32_t off, uint32_t v)
{
	return tp_client_region_write(&pc->c, 0, off, &v, 4, false);
}

static int comp_up(struct companion *pc, const char *psock)
{
	struct tp_vu_region_info info;
	uint8_t caps[512];
	struct stat st;
	int fd = -1, rc;

	memset(pc, 0, sizeof(*pc));
	for (int i = 0; i < 100 && stat(psock, &st); i++)
		usleep(50000);
	rc = tp_client_connect(&pc->c, psock, 3000);
	if (!rc)
		rc = tp_client_version(&pc->c, NULL);
	if (!rc)
		rc = tp_client_region_info(&pc->c, 2, &info, caps, sizeof(caps), &fd);
	if (rc || fd < 0)
		return rc ? rc : -ENODEV;
	pc->bar2 = mmap(NULL, info.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)info.offset);
	close(fd);
	if (pc->bar2 == MAP_FAILED) {
		pc->bar2 = NULL;
		return -errno;
	}
	pc->bar2_size = info.size;
	return comp_reg(pc, PVDMA_REG_CONTROL, PVDMA_CONTROL_ENABLE);
}

static void comp_down(struct companion *pc)
{
	comp_reg(pc, PVDMA_REG_CONTROL, 0);
	tp_client_close(&pc->c);
	if (pc->bar2)
		munmap(pc->bar2, pc->bar2_size);
}

/* One ring entry, then the doorbell (answered before its write completes). */
static uint32_t ring_op(struct companion *pc, uint32_t op, uint64_t gpa, uint64_t len,
			uint64_t *handle, uint64_t *dva)
{
	struct pvdma_ring_header *h = (struct pvdma_ring_header *)pc->bar2;
	struct pvdma_entry *e = (struct pvdma_entry *)(pc->bar2 + PVDMA_RING_HEADER +
		PVDMA_ENTRY_SIZE * (pc->prod % PVDMA_RING_ENTRIES));

	memset(e, 0, sizeof(*e));
	e->op = op;
	e->status = PVDMA_STATUS_PENDING;
	e->gpa = gpa;
	e->len = len;
	e->dir = PVDMA_DIR_DEV_READS | PVDMA_DIR_DEV_WRITES;
	e->handle = op == PVDMA_OP_UNMAP ? *handle : 0;
	pc->prod++;
	__atomic_store_n(&h->producer, pc->prod, __ATOMIC_RELEASE);
	if (comp_reg(pc, PVDMA_REG_DOORBELL, pc->prod))
		return PVDMA_STATUS_PENDING;
	if (op == PVDMA_OP_MAP && e->status == 0) {
		*handle = e->handle;
		*dva = e->dva;
	}
	return e->status;
}

static unsigned nlog(struct remote *r)
{
	return __atomic_load_n(&r->nlog, __ATOMIC_ACQUIRE);
}

static struct remote_map *last(struct remote *r)
{
	unsigned n = nlog(r);

	return n ? &r->log[(n - 1) % REMOTE_LOG] : NULL;
}

/* Maps with an fd minus unmaps the remote accepted: what its DMA map holds. */
static int remote_live(struct remote *r)
{
	int live = 0;

	for (unsigned i = 0; i < nlog(r) && i < REMOTE_LOG; i++)
		live += r->log[i].unmap ? -1 : r->log[i].refused ? 0 : 1;
	return live;
}

static bool log_says(const char *log, const char *what)
{
	static char buf[1 << 20];
	FILE *f = fopen(log, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	return strstr(buf, what) != NULL;
}

/* thunderpass must refuse the combination at start. */
static void refused_at_start(const char *bin, const char *tsock, const char *log,
			     const char *const *extra, const char *why, const char *what)
{
	static struct remote r;
	int status = 0, rc;
	pid_t tp;

	memset(&r, 0, sizeof(r));
	snprintf(r.path, sizeof(r.path), "%s.remote", tsock);
	check(!remote_start(&r), "remote listening");
	tp = start_tp(bin, tsock, r.path, log, extra);
	rc = remote_accept(&r); /* the proxy connects before the core opens the device */
	for (int i = 0; i < 100 && !waitpid(tp, &status, WNOHANG); i++)
		usleep(50000);
	if (kill(tp, 0) == 0) {
		kill(tp, SIGKILL);
		waitpid(tp, &status, 0);
		status = 0;
	}
	check(WIFEXITED(status) && WEXITSTATUS(status) != 0 && log_says(log, why),
	      "%s: thunderpass refuses to start (status %d), saying \"%s\"", what,
	      WIFEXITED(status) ? WEXITSTATUS(status) : -1, why);
	if (!rc)
		remote_stop(&r);
}

static void mirror_session(struct remote *r, const char *tsock, const char *psock,
			   struct companion *pc)
{
	struct tp_client c;
	struct remote_map *m;
	uint8_t *mem;
	int memfd, efds[NVEC], rc;
	uint64_t gpa = GUEST_IOVA + WINDOW + 0x5100, handle = 0, dva = 0, h2, d2, wdva;
	uint32_t st, inv;
	unsigned n0;

	rc = client_up(&c, tsock, &memfd, &mem, efds);
	check(!rc, "client connected, guest memory mapped (%d)", rc);
	if (rc)
		return;
	check(r->maps == 0 && nlog(r) == 0, "the client's own DMA_MAP (guest physical) did not "
	      "reach the remote (%d maps there)", r->maps);
	rc = comp_up(pc, psock);
	check(!rc, "pvdma companion connected, its ring mapped and enabled (%d)", rc);
	if (rc) {
		client_down(&c, memfd, mem, efds);
		return;
	}
	for (int i = 0; i < 4096; i++)
		mem[gpa - GUEST_IOVA - 0x100 + i] = (uint8_t)(i * 13 + 1);

	st = ring_op(pc, PVDMA_OP_MAP, gpa, 0x1000, &handle, &dva);
	m = last(r);
	check(st == 0 && dva >= APERTURE_BASE && dva < APERTURE_END && dva != gpa,
	      "pvdma MAP of guest %#llx: status %u, device address %#llx (the DART's)",
	      (unsigned long long)gpa, st, (unsigned long long)dva);
	check(nlog(r) == 1 && m && !m->unmap && m->fd && m->addr <= dva && dva < m->addr + m->size &&
	      !(m->addr % DART_PAGE) && !(m->size % DART_PAGE) && m->size == WINDOW &&
	      m->offset == (gpa & ~(uint64_t)(WINDOW - 1)) - GUEST_IOVA && m->flags == 3,
	      "the remote got one DMA_MAP [%#llx+%#llx] with the guest memory fd at offset %#llx "
	      "(its pvdma window, whole pages)", m ? (unsigned long long)m->addr : 0ull,
	      m ? (unsigned long long)m->size : 0ull, m ? (unsigned long long)m->offset : 0ull);
	if (!m || !m->mem || dva < m->addr || dva >= m->addr + m->size) {
		check(false, "the remote could not map what it was given");
		goto out;
	}
	check(!memcmp(m->mem + (dva - m->addr), mem + (gpa - GUEST_IOVA), 0x1000),
	      "the remote's mapping at the device address holds the guest's bytes at %#llx",
	      (unsigned long long)gpa);
	memcpy(m->mem + (dva - m->addr) + 0x800, "REMOTE!!", 8);
	check(!memcmp(mem + (gpa - GUEST_IOVA) + 0x800, "REMOTE!!", 8),
	      "what the remote writes there lands in the guest's memory");
	wdva = m->addr;

	/* The remote's DMA messages at device addresses still go through the DART. */
	wr64(&c, R_SRC, dva);
	wr64(&c, R_DST, dva + 0x100);
	wr64(&c, R_LEN, 0x100);
	wr64(&c, R_DOORBELL, 1);
	inv = mem[gpa - GUEST_IOVA] ^ 0xffu;
	check(rd64(&c, R_STATUS, &rc) == 0 && !rc && mem[gpa - GUEST_IOVA + 0x100] == inv,
	      "the remote's DMA_READ/DMA_WRITE at device "
	      "addresses reach the guest through the DART");
	wr64(&c, R_SRC, gpa);
	wr64(&c, R_DOORBELL, 1);
	check(rd64(&c, R_STATUS, &rc) == EFAULT, "at the guest address (no device address): EFAULT");

	st = ring_op(pc, PVDMA_OP_UNMAP, 0, 0, &handle, NULL);
	m = last(r);
	check(st == 0 && nlog(r) == 2 && m->unmap && m->addr == wdva && m->size == WINDOW,
	      "pvdma UNMAP: the remote got DMA_UNMAP of exactly that region (status %u)", st);

	/* The remote's map is full: the guest's MAP fails, the next one works. */
	r->refuse_maps = 1;
	n0 = nlog(r);
	st = ring_op(pc, PVDMA_OP_MAP, gpa, 0x1000, &h2, &d2);
	check(st == 7 && nlog(r) == n0 + 1 && last(r)->refused && remote_live(r) == 0,
	      "a DMA_MAP the remote refuses fails the guest's MAP (status %u, NO_SPACE 7)", st);
	st = ring_op(pc, PVDMA_OP_MAP, gpa, 0x1000, &handle, &dva);
	check(st == 0 && remote_live(r) == 1, "the next MAP works (status %u)", st);

	/* Guest memory leaves with a mapping into it: the remote loses the
	 * mapping before the client hears its DMA_UNMAP was done. */
	{
		struct tp_vu_dma_unmap u = { .argsz = sizeof(u), .addr = GUEST_IOVA,
					     .size = GUEST_SIZE };
		struct tp_client_reply rep = { 0 };

		n0 = nlog(r);
		rc = tp_client_call(&c, TP_VU_DMA_UNMAP, &u, sizeof(u), NULL, 0, &rep);
		m = last(r);
		check(!rc && nlog(r) == n0 + 1 && m->unmap && remote_live(r) == 0,
		      "the client's DMA_UNMAP of guest memory: the mirrored region left the "
		      "remote first (%d)", rc);
		st = ring_op(pc, PVDMA_OP_UNMAP, 0, 0, &handle, NULL);
		check(st == 5, "its pvdma handle is dead (status %u, BAD_HANDLE 5)", st);
	}
out:
	client_down(&c, memfd, mem, efds);
}

/* The remote dies mid-session and comes back: the mirror is replayed. The
 * companion stays connected from the first session (its ring goes on). */
static void mirror_death(struct remote *r, const char *tsock, struct companion *pc)
{
	struct tp_client c;
	uint8_t *mem;
	int memfd, efds[NVEC], rc;
	uint64_t h1, d1, h2, d2;
	uint32_t st1, st2;
	bool dead = false;

	if (!pc->bar2 || client_up(&c, tsock, &memfd, &mem, efds)) {
		check(false, "a second session with the companion");
		return;
	}
	st1 = ring_op(pc, PVDMA_OP_MAP, GUEST_IOVA + 0x100, 0x1000, &h1, &d1);
	check(st1 == 0 && remote_live(r) == 1, "second session: a mapping mirrored (status %u)", st1);
	remote_kill(r);
	for (int i = 0; i < 100 && !dead; i++) {
		rd64(&c, R_SCRATCH, &rc);
		dead = rc < 0;
		usleep(20000);
	}
	st2 = ring_op(pc, PVDMA_OP_MAP, GUEST_IOVA + 2 * WINDOW + 0x100, 0x1000, &h2, &d2);
	check(dead && st2 == 0, "the remote gone: a MAP still works, kept for the next one "
	      "(status %u)", st2);
	for (unsigned i = 0; i < REMOTE_LOG; i++)
		if (r->log[i].mem)
			munmap(r->log[i].mem, r->log[i].size);
	memset(r->log, 0, sizeof(r->log));
	r->nlog = 0;
	r->maps = r->unmaps = 0;
	r->die = false;
	check(!remote_start(r), "a new remote on the same socket");
	client_down(&c, memfd, mem, efds);
	check(!remote_accept(r), "thunderpass reconnected when the session ended");
	for (int i = 0; i < 150 && nlog(r) < 4; i++)
		usleep(20000);
	check(nlog(r) == 4 && r->log[0].fd && r->log[1].fd && !r->log[0].unmap && !r->log[1].unmap &&
	      r->log[0].addr != r->log[1].addr && r->log[2].unmap && r->log[3].unmap &&
	      remote_live(r) == 0 && (r->log[0].addr == (d1 & ~(uint64_t)(WINDOW - 1)) ||
				      r->log[1].addr == (d1 & ~(uint64_t)(WINDOW - 1))),
	      "the new remote got both mappings again, then their DMA_UNMAPs as the session's "
	      "memory went (%u messages)", nlog(r));
}

void mirror_pass(const char *bin, const char *dir)
{
	static struct remote r;
	char tsock[160], psock[160], log[160];
	const char *const fd_dart[] = { "-o", "dma=fd", "--iommu", "dart", NULL };
	const char *const mirror_identity[] = { "-o", "dma=mirror", NULL };
	const char *const mirror[] = { "--iommu", "dart", "--pvdma-socket", psock,
				       "-o", "pvdma-lazy-ms=0", NULL };
	struct companion pc = { .bar2 = NULL };
	int status;
	pid_t tp;

	printf("== dma=mirror\n");
	snprintf(tsock, sizeof(tsock), "%s/tpm.sock", dir);
	snprintf(psock, sizeof(psock), "%s/pvdma.sock", dir);
	snprintf(log, sizeof(log), "%s/tp.log", dir);
	refused_at_start(bin, tsock, log, fd_dart, "dma=fd hands the remote", "dma=fd with dart");
	refused_at_start(bin, tsock, log, mirror_identity, "dma=mirror mirrors",
			 "dma=mirror with identity");

	memset(&r, 0, sizeof(r));
	snprintf(r.path, sizeof(r.path), "%s/remote.sock", dir);
	check(!remote_start(&r), "remote listening");
	tp = start_tp(bin, tsock, r.path, log, mirror);
	check(!remote_accept(&r), "thunderpass (dart, pvdma companion) connected to the remote");
	mirror_session(&r, tsock, psock, &pc);
	usleep(200000); /* the session's end (reset, memory cleared) after the client left */
	check(remote_live(&r) == 0, "nothing left in the remote's DMA map after the session");
	mirror_death(&r, tsock, &pc);
	if (pc.bar2)
		comp_down(&pc);
	check(log_says(log, "IOMMU model dart: DMA by the IOMMU model's mappings"),
	      "thunderpass chose dma=mirror for the dart model itself (dma=auto)");
	kill(tp, SIGTERM);
	waitpid(tp, &status, 0);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "thunderpass exited 0 on SIGTERM "
	      "(status %#x)", status);
	remote_stop(&r);
}
