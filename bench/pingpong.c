/* SPDX-License-Identifier: MIT */
/*
 * tp-pingpong: the floor under every trapped BAR access, measured on the host.
 *
 *   tp-pingpong [ITERATIONS]     (default 100000)
 *
 * A bare UNIX-socket round trip, the shape of one vfio-user REGION_READ of 4 bytes
 * without the protocol: the parent writes a 16-byte request, the child (fork, over a
 * SOCK_STREAM socketpair) reads it and writes a 20-byte reply, the parent reads it.
 * Prints
 *
 *   unix_pingpong_ns_per_rt <ns>
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REQ_SIZE 16
#define REPLY_SIZE 20

/* full-length I/O on a stream socket: 0, or -1 on error or EOF */
static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* the "server": answer every request until EOF */
static int child_loop(int fd)
{
	unsigned char req[REQ_SIZE], reply[REPLY_SIZE];

	memset(reply, 0, sizeof(reply));
	while (read_full(fd, req, sizeof(req)) == 0) {
		memcpy(reply, req, sizeof(req)); /* echo the header, then a 4-byte value */
		reply[16] = 0xa1;
		if (write_full(fd, reply, sizeof(reply)) < 0)
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned char req[REQ_SIZE], reply[REPLY_SIZE];
	unsigned long long iters = 100000;
	uint64_t t0, t1;
	int sv[2], status;
	pid_t pid;
	char *end;

	if (argc > 2 || (argc == 2 && ((iters = strtoull(argv[1], &end, 0)) == 0 || *end))) {
		fprintf(stderr, "usage: %s [ITERATIONS]\n", argv[0]);
		return 2;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		perror("tp-pingpong: socketpair");
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("tp-pingpong: fork");
		return 1;
	}
	if (pid == 0) {
		close(sv[0]);
		_exit(child_loop(sv[1]));
	}
	close(sv[1]);

	memset(req, 0, sizeof(req));
	t0 = now_ns();
	/* one warm-up round trip, then the timed ones */
	for (unsigned long long i = 0; i <= iters; i++) {
		if (i == 1)
			t0 = now_ns();
		memcpy(req, &i, sizeof(i));
		if (write_full(sv[0], req, sizeof(req)) < 0 ||
		    read_full(sv[0], reply, sizeof(reply)) < 0) {
			fprintf(stderr, "tp-pingpong: round trip %llu: %s\n", i,
				errno ? strerror(errno) : "EOF");
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return 1;
		}
	}
	t1 = now_ns();
	close(sv[0]); /* EOF: the child ends */
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "tp-pingpong: the child failed\n");
		return 1;
	}
	printf("unix_pingpong_ns_per_rt %.1f\n", (double)(t1 - t0) / (double)iters);
	return 0;
}
