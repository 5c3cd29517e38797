/* SPDX-License-Identifier: MIT */
/*
 * O_DIRECT reads or writes on a block device inside a guest, one at a time
 * (queue depth 1), sequential or at random 4 KiB-aligned offsets; built static
 * per guest arch by bench/run-proxy-bench.sh and run by tests/guest/t-proxy-nvme.sh
 * (tp.mode=bench).
 *
 *   tp_nvme_io DEVICE read|write seq|rand BLOCK OPS
 *
 * The I/O covers 64 MiB from 16 MiB on (seq wraps around). Writes are not
 * followed by a flush: they count once the device has them. (No polled mode:
 * Linux 6.1 polls only for io_uring; a RWF_HIPRI read or write here would go to a
 * poll queue that nobody polls and complete at the nvme timeout.) Prints:
 *   BENCH <seq|rand>_<read|write>_<MBps|iops> VALUE
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define ALIGN 4096
#define BASE (16ull << 20)
#define SPAN (64ull << 20)

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
	uint64_t seed = 0x9e3779b97f4a7c15ull, blocks;
	int wr, seq, fd;
	long ops, bs;
	struct iovec iov;
	void *buf;
	double t;

	if (argc < 6 || (strcmp(argv[2], "read") && strcmp(argv[2], "write")) ||
	    (strcmp(argv[3], "seq") && strcmp(argv[3], "rand"))) {
		fprintf(stderr, "usage: %s DEVICE read|write seq|rand BLOCK OPS\n", argv[0]);
		return 2;
	}
	wr = !strcmp(argv[2], "write");
	seq = !strcmp(argv[3], "seq");
	bs = atol(argv[4]);
	ops = atol(argv[5]);
	if (bs < ALIGN || bs % ALIGN || (uint64_t)bs > SPAN || ops <= 0) {
		fprintf(stderr, "%s: BLOCK must be a multiple of 4096 up to 64 MiB, OPS > 0\n", argv[0]);
		return 2;
	}
	blocks = SPAN / (uint64_t)bs;
	fd = open(argv[1], (wr ? O_WRONLY : O_RDONLY) | O_DIRECT);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	if (posix_memalign(&buf, ALIGN, (size_t)bs)) {
		fprintf(stderr, "%s: no memory\n", argv[0]);
		return 1;
	}
	memset(buf, 0x5a, (size_t)bs);
	iov = (struct iovec){ .iov_base = buf, .iov_len = (size_t)bs };
	t = now_s();
	for (long i = 0; i < ops; i++) {
		uint64_t blk = seq ? (uint64_t)i % blocks : next(&seed) % blocks;
		off_t off = (off_t)(BASE + blk * (uint64_t)bs);
		ssize_t n = wr ? pwritev(fd, &iov, 1, off) : preadv(fd, &iov, 1, off);

		if (n != bs) {
			perror(wr ? "pwritev" : "preadv");
			return 1;
		}
	}
	t = now_s() - t;
	if (seq)
		printf("BENCH seq_%s_MBps %.1f\n", wr ? "write" : "read",
		       (double)ops * (double)bs / 1048576.0 / t);
	else
		printf("BENCH rand_%s_iops %.0f\n", wr ? "write" : "read", (double)ops / t);
	free(buf);
	close(fd);
	return 0;
}
