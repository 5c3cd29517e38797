/* SPDX-License-Identifier: MIT */
/*
 * The guest memory map (lib/dma.c): lookups by binary search at region
 * starts, ends and gaps; the VFIO type1 rules (alignment, no overlap, unmap
 * removes whole regions and never cuts one); tp_dma_ptr bounds and
 * permissions; the cap on regions; fds closed on every failure.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "dma.h"
#include <thunderpass/log.h>
#include <thunderpass/protocol.h>

#define R TP_VU_DMA_READ_OK
#define W TP_VU_DMA_WRITE_OK
#define RW (R | W)

static int add(struct tp_dma_map *m, uint64_t iova, uint64_t size, uint32_t prot)
{
	return tp_dma_add(m, iova, size, -1, 0, prot, NULL);
}

static int memfd(uint64_t size)
{
	int fd = memfd_create("test_dma", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

struct seen {
	uint64_t iova[16], size[16];
	int n;
};

static void note(void *ctx, const struct tp_dma_region *r)
{
	struct seen *s = ctx;

	assert_true(s->n < 16);
	s->iova[s->n] = r->iova;
	s->size[s->n++] = r->size;
}

static void expect_found(const struct tp_dma_map *m, uint64_t iova, uint64_t region)
{
	const struct tp_dma_region *r = tp_dma_find(m, iova);

	assert_non_null(r);
	assert_int_equal(r->iova, region);
}

static void test_lookup(void **state)
{
	struct tp_dma_map m;

	tp_dma_init(&m, "test", 100);
	assert_null(tp_dma_find(&m, 0x10000));
	/* added out of order, two of them touching */
	assert_int_equal(add(&m, 0x20000, 0x1000, RW), 0);
	assert_int_equal(add(&m, 0x10000, 0x4000, RW), 0);
	assert_int_equal(add(&m, 0x14000, 0x2000, R), 0);
	assert_int_equal(m.n, 3);
	assert_int_equal(m.bytes, 0x7000);
	assert_null(tp_dma_find(&m, 0));
	assert_null(tp_dma_find(&m, 0xffff));
	expect_found(&m, 0x10000, 0x10000);
	expect_found(&m, 0x13fff, 0x10000);
	expect_found(&m, 0x14000, 0x14000);
	expect_found(&m, 0x15fff, 0x14000);
	assert_null(tp_dma_find(&m, 0x16000));
	assert_null(tp_dma_find(&m, 0x1ffff));
	expect_found(&m, 0x20000, 0x20000);
	expect_found(&m, 0x20fff, 0x20000);
	assert_null(tp_dma_find(&m, 0x21000));
	assert_null(tp_dma_find(&m, UINT64_MAX));
	tp_dma_destroy(&m);

	/* many regions: every start, last byte and gap */
	tp_dma_init(&m, "test", 1000);
	for (uint64_t i = 0; i < 500; i++)
		assert_int_equal(add(&m, (999 - i) * 0x3000, 0x1000 + (i % 2) * 0x1000, RW), 0);
	for (uint64_t i = 0; i < 500; i++) {
		uint64_t base = (500 + i) * 0x3000, size = 0x1000 + ((999 - 500 - i) % 2) * 0x1000;

		expect_found(&m, base, base);
		expect_found(&m, base + size - 1, base);
		assert_null(tp_dma_find(&m, base + size));
		assert_null(tp_dma_find(&m, base - 1));
	}
	for (uint32_t i = 1; i < m.n; i++)
		assert_true(m.r[i - 1].iova + m.r[i - 1].size <= m.r[i].iova);
	tp_dma_destroy(&m);
}

static void test_refusals(void **state)
{
	struct tp_dma_map m;

	tp_dma_init(&m, "test", 100);
	assert_int_equal(add(&m, 0x10000, 0x10000, RW), 0);
	/* overlaps: head, tail, inside, around, identical */
	assert_int_equal(add(&m, 0xf000, 0x2000, RW), -EEXIST);
	assert_int_equal(add(&m, 0x1f000, 0x2000, RW), -EEXIST);
	assert_int_equal(add(&m, 0x12000, 0x1000, RW), -EEXIST);
	assert_int_equal(add(&m, 0x0, 0x100000, RW), -EEXIST);
	assert_int_equal(add(&m, 0x10000, 0x10000, RW), -EEXIST);
	/* alignment, size, wrap, flags */
	assert_int_equal(add(&m, 0x40800, 0x1000, RW), -EINVAL);
	assert_int_equal(add(&m, 0x40000, 0x1800, RW), -EINVAL);
	assert_int_equal(tp_dma_add(&m, 0x40000, 0x1000, -1, 0x800, RW, NULL), -EINVAL);
	assert_int_equal(add(&m, 0x40000, 0, RW), -EINVAL);
	assert_int_equal(add(&m, UINT64_MAX - 0xfff, 0x1000, RW), -EINVAL);
	assert_int_equal(add(&m, 0xfffffffffffff000ull, 0x2000, RW), -EINVAL);
	assert_int_equal(add(&m, 0x40000, 0x1000, 0x4), -EINVAL);
	assert_int_equal(m.n, 1);
	assert_int_equal(m.bytes, 0x10000);
	assert_int_equal(m.maps, 1);
	/* touching on both sides is fine */
	assert_int_equal(add(&m, 0xf000, 0x1000, RW), 0);
	assert_int_equal(add(&m, 0x20000, 0x1000, RW), 0);
	assert_int_equal(m.n, 3);
	tp_dma_destroy(&m);
}

static void test_remove(void **state)
{
	struct tp_dma_map m;
	struct seen s = { 0 };
	uint64_t removed = 99;

	tp_dma_init(&m, "test", 100);
	assert_int_equal(add(&m, 0x10000, 0x2000, RW), 0);
	assert_int_equal(add(&m, 0x12000, 0x2000, RW), 0);
	assert_int_equal(add(&m, 0x20000, 0x1000, RW), 0);
	assert_int_equal(add(&m, 0x30000, 0x3000, RW), 0);
	assert_int_equal(add(&m, 0x40000, 0x1000, RW), 0);
	/* exactly one region */
	assert_int_equal(tp_dma_remove(&m, 0x12000, 0x2000, note, &s, &removed), 0);
	assert_int_equal(removed, 0x2000);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.iova[0], 0x12000);
	assert_int_equal(m.n, 4);
	expect_found(&m, 0x11fff, 0x10000);
	assert_null(tp_dma_find(&m, 0x12000));
	/* cutting a region in two, or a range that would: nothing goes */
	s.n = 0;
	assert_int_equal(tp_dma_remove(&m, 0x31000, 0x1000, note, &s, &removed), -EINVAL);
	assert_int_equal(tp_dma_remove(&m, 0x20000, 0x11000, note, &s, &removed), -EINVAL);
	assert_int_equal(tp_dma_remove(&m, 0x30000, 0x2000, note, &s, &removed), -EINVAL);
	assert_int_equal(tp_dma_remove(&m, 0x11000, 0x10000, note, &s, &removed), -EINVAL);
	assert_int_equal(removed, 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(m.n, 4);
	assert_int_equal(m.bytes, 0x7000);
	/* empty space: nothing removed, no error */
	assert_int_equal(tp_dma_remove(&m, 0x50000, 0x10000, note, &s, &removed), 0);
	assert_int_equal(tp_dma_remove(&m, 0x21000, 0xf000, note, &s, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(tp_dma_remove(&m, 0x50000, 0, note, &s, &removed), -EINVAL);
	assert_int_equal(tp_dma_remove(&m, UINT64_MAX - 0xfff, 0x2000, note, &s, &removed),
			 -EINVAL);
	assert_int_equal(m.n, 4);
	/* a range over several regions and the gaps between them */
	assert_int_equal(tp_dma_remove(&m, 0x1f000, 0x22000, note, &s, &removed), 0);
	assert_int_equal(removed, 0x5000);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.iova[0], 0x20000);
	assert_int_equal(s.iova[1], 0x30000);
	assert_int_equal(s.iova[2], 0x40000);
	assert_int_equal(m.n, 1);
	assert_int_equal(m.bytes, 0x2000);
	assert_int_equal(m.unmaps, 4);
	expect_found(&m, 0x10000, 0x10000);
	s.n = 0;
	tp_dma_clear(&m, note, &s);
	assert_int_equal(s.n, 1);
	assert_int_equal(m.n, 0);
	assert_int_equal(m.bytes, 0);
	tp_dma_destroy(&m);
}

static void test_ptr(void **state)
{
	struct tp_dma_map m;
	struct tp_dma_region *out = NULL;
	uint8_t *p, b = 0;
	int fd = memfd(0x6000);

	tp_dma_init(&m, "test", 100);
	/* the region maps the fd from offset 0x2000 */
	assert_int_equal(tp_dma_add(&m, 0x100000, 0x4000, fd, 0x2000, RW, &out), 0);
	assert_non_null(out);
	assert_int_equal(out->iova, 0x100000);
	assert_int_equal(tp_dma_add(&m, 0x104000, 0x1000, memfd(0x1000), 0, R, NULL), 0);
	assert_int_equal(add(&m, 0x105000, 0x1000, RW), 0); /* no fd: no pointer */

	p = tp_dma_ptr(&m, 0x100010, 4, W);
	assert_non_null(p);
	memcpy(p, "abcd", 4);
	assert_int_equal(pread(fd, &b, 1, 0x2012), 1); /* shared with the client */
	assert_int_equal(b, 'c');
	assert_ptr_equal((uint8_t *)tp_dma_ptr(&m, 0x100000, 0x4000, RW) + 0x10, p);
	assert_non_null(tp_dma_ptr(&m, 0x103fff, 1, R));
	assert_null(tp_dma_ptr(&m, 0x103fff, 2, R)); /* runs into the next region */
	assert_null(tp_dma_ptr(&m, 0x100000, 0x4001, R));
	assert_null(tp_dma_ptr(&m, 0x100000, UINT64_MAX, R));
	assert_null(tp_dma_ptr(&m, 0xfffff, 1, R));   /* below */
	assert_non_null(tp_dma_ptr(&m, 0x104000, 0x1000, R));
	assert_null(tp_dma_ptr(&m, 0x104000, 1, W));  /* read-only */
	assert_null(tp_dma_ptr(&m, 0x104000, 1, RW));
	assert_null(tp_dma_ptr(&m, 0x105000, 1, R));  /* no fd */
	assert_null(tp_dma_ptr(&m, 0x106000, 1, R));  /* past the end */
	tp_dma_destroy(&m);
}

static void test_cap(void **state)
{
	struct tp_dma_map m;
	int before = open_fds();

	tp_dma_init(&m, "test", 3);
	for (uint64_t i = 0; i < 3; i++)
		assert_int_equal(tp_dma_add(&m, i * 0x1000, 0x1000, memfd(0x1000), 0, RW, NULL), 0);
	assert_int_equal(open_fds(), before + 3);
	assert_int_equal(tp_dma_add(&m, 0x10000, 0x1000, memfd(0x1000), 0, RW, NULL), -ENOSPC);
	assert_int_equal(open_fds(), before + 3);
	assert_int_equal(m.n, 3);
	tp_dma_destroy(&m);
	assert_int_equal(open_fds(), before);
}

static void test_fds(void **state)
{
	struct tp_dma_map m;
	uint64_t removed;
	int before = open_fds(), pfd[2];

	tp_dma_init(&m, "test", 100);
	assert_int_equal(tp_dma_add(&m, 0x10000, 0x2000, memfd(0x2000), 0, RW, NULL), 0);
	assert_int_equal(open_fds(), before + 1);
	/* every refusal closes the fd it was given */
	assert_int_equal(tp_dma_add(&m, 0x10800, 0x1000, memfd(0x1000), 0, RW, NULL), -EINVAL);
	assert_int_equal(tp_dma_add(&m, 0x11000, 0x1000, memfd(0x1000), 0, RW, NULL), -EEXIST);
	assert_int_equal(tp_dma_add(&m, 0x20000, 0x1000, memfd(0x1000), 0, 0x8, NULL), -EINVAL);
	assert_int_equal(open_fds(), before + 1);
	/* and so does a failed mmap (a pipe cannot be mapped) */
	assert_int_equal(pipe(pfd), 0);
	assert_true(tp_dma_add(&m, 0x20000, 0x1000, pfd[0], 0, RW, NULL) < 0);
	close(pfd[1]);
	assert_int_equal(open_fds(), before + 1);
	assert_int_equal(m.n, 1);
	/* an unmap closes it too */
	assert_int_equal(tp_dma_remove(&m, 0x10000, 0x2000, NULL, NULL, &removed), 0);
	assert_int_equal(open_fds(), before);
	assert_int_equal(tp_dma_add(&m, 0x10000, 0x2000, memfd(0x2000), 0, R, NULL), 0);
	tp_dma_clear(&m, NULL, NULL);
	assert_int_equal(open_fds(), before);
	tp_dma_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_ptr),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_fds),
	};

	tp_log_set_level(TP_LOG_ERROR + 0); /* every refusal warns, by design */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
