/* SPDX-License-Identifier: MIT */
/*
 * guest_bar_read: the cost of one 32-bit BAR read, seen from inside the guest.
 *
 *   guest_bar_read /sys/bus/pci/devices/BDF/resourceN OFFSET ITERATIONS
 *
 * Maps the sysfs resource file (the BAR; the device must decode memory: echo 1 >
 * enable), does ITERATIONS volatile 32-bit reads at OFFSET, timed with
 * CLOCK_MONOTONIC, and prints
 *
 *   bar_read_ns_per_op <ns> value=0x<last value read>
 *
 * Built static for the guest (bench/run-bar-read.sh) and natively by meson (to keep
 * it compiling cleanly). Exit 1 with a message on any error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	return (errno || end == s || *end) ? -1 : 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	uint64_t offset, iters, page, base, t0, t1;
	volatile const uint32_t *reg;
	uint32_t value = 0;
	struct stat st;
	size_t len;
	void *map;
	int fd;

	if (argc != 4 || parse_u64(argv[2], &offset) || parse_u64(argv[3], &iters) || !iters) {
		fprintf(stderr, "usage: %s /sys/bus/pci/devices/BDF/resourceN OFFSET ITERATIONS\n",
			argv[0]);
		return 2;
	}
	if (offset & 3) {
		fprintf(stderr, "guest_bar_read: offset 0x%" PRIx64 " is not 4-byte aligned\n", offset);
		return 1;
	}
	fd = open(argv[1], O_RDWR | O_SYNC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "guest_bar_read: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if ((uint64_t)st.st_size < offset + 4) {
		fprintf(stderr, "guest_bar_read: offset 0x%" PRIx64 " is past the BAR (%lld bytes)\n",
			offset, (long long)st.st_size);
		return 1;
	}
	/* map only the page that holds the register */
	page = (uint64_t)sysconf(_SC_PAGESIZE);
	base = offset & ~(page - 1);
	len = (size_t)page;
	map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)base);
	if (map == MAP_FAILED) {
		fprintf(stderr, "guest_bar_read: mmap %s at 0x%" PRIx64 ": %s\n", argv[1], base,
			strerror(errno));
		return 1;
	}
	reg = (volatile const uint32_t *)((char *)map + (offset - base));

	value = *reg; /* warm up: page tables, TLB, the first access */
	t0 = now_ns();
	for (uint64_t i = 0; i < iters; i++)
		value = *reg;
	t1 = now_ns();

	printf("bar_read_ns_per_op %.1f value=0x%08" PRIx32 "\n", (double)(t1 - t0) / (double)iters,
	       value);
	munmap(map, len);
	close(fd);
	return 0;
}
