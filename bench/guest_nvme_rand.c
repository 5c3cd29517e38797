/* SPDX-License-Identifier: MIT */
/*
 * 4 KiB random reads or writes with O_DIRECT, one at a time (queue depth 1), on
 * a block device inside a guest; built static per guest arch by
 * bench/run-proxy-bench.sh and run by tests/guest/t-proxy-nvme.sh (tp.mode=bench).
 *
 *   tp_nvme_rand DEVICE read|write OPS [SPAN_MIB]
 *
 * Offsets are 4 KiB aligned, uniform over the first SPAN_MIB (default 64) MiB
 * past 16 MiB (the region the sequential test writes). Prints one line:
 *   BENCH rand_read_iops N   (or rand_write_iops)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLK 4096

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64: the same offsets in every run. */
static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int main(int argc, char **argv)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull, span, blocks;
	int write_mode, fd;
	long ops;
	void *buf;
	double t0, t;

	if (argc < 4 || (strcmp(argv[2], "read") && strcmp(argv[2], "write"))) {
		fprintf(stderr, "usage: %s DEVICE read|write OPS [SPAN_MIB]\n", argv[0]);
		return 2;
	}
	write_mode = !strcmp(argv[2], "write");
	ops = atol(argv[3]);
	span = (argc > 4 ? strtoull(argv[4], NULL, 0) : 64) << 20;
	blocks = span / BLK;
	if (ops <= 0 || !blocks) {
		fprintf(stderr, "%s: bad OPS or SPAN\n", argv[0]);
		return 2;
	}
	fd = open(argv[1], (write_mode ? O_WRONLY : O_RDONLY) | O_DIRECT);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	if (posix_memalign(&buf, BLK, BLK)) {
		fprintf(stderr, "%s: no memory\n", argv[0]);
		return 1;
	}
	memset(buf, 0x5a, BLK);
	t0 = now_s();
	for (long i = 0; i < ops; i++) {
		off_t off = (off_t)((16ull << 20) + (next(&seed) % blocks) * BLK);
		ssize_t n = write_mode ? pwrite(fd, buf, BLK, off) : pread(fd, buf, BLK, off);

		if (n != BLK) {
			perror(write_mode ? "pwrite" : "pread");
			return 1;
		}
	}
	if (write_mode && fdatasync(fd)) {
		perror("fdatasync");
		return 1;
	}
	t = now_s() - t0;
	printf("BENCH rand_%s_iops %.0f\n", write_mode ? "write" : "read", (double)ops / t);
	free(buf);
	close(fd);
	return 0;
}
