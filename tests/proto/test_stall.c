/* SPDX-License-Identifier: MIT */
/*
 * Stalls and floods (docs/security.md): a client that sends half a message and
 * stalls neither blocks SIGTERM nor makes the server hold more than one
 * message; a client flooding posted writes is back-pressured by the socket,
 * never buffered without bound. $TP_BIN names the binary.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"

static char dir[64], sock[128];
static pid_t pid;

static long rss_kb(void)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = atol(line + 6);
	fclose(f);
	return kb;
}

static int start(void **state)
{
	const char *bin = getenv("TP_BIN");

	strcpy(dir, "/tmp/tp-stall-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/tp.sock", dir);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		execl(bin, bin, "serve", "--socket", sock, "--log-level", getenv("TP_STALL_LOG") ? getenv("TP_STALL_LOG") : "error", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 300 && access(sock, F_OK); i++)
		usleep(10000);
	assert_int_equal(access(sock, F_OK), 0);
	return 0;
}

static int finish(void **state)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	unlink(sock);
	rmdir(dir);
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_stall_then_sigterm(void **state)
{
	struct tp_client c;
	struct tp_vu_hdr h = { .msg_id = 1, .command = TP_VU_REGION_WRITE, .size = 1 << 20 };
	char part[4096] = { 0 };
	int status;
	double t;

	assert_int_equal(tp_client_connect(&c, sock, 3000), 0);
	assert_int_equal(tp_client_version(&c, NULL), 0);
	/* A 1 MiB write: the header and 4 KiB of it, then nothing. */
	assert_int_equal(tp_client_send_raw(&c, &h, sizeof(h), NULL, 0), 0);
	assert_int_equal(tp_client_send_raw(&c, part, sizeof(part), NULL, 0), 0);
	usleep(300000);
	t = now_s();
	kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	pid = 0;
	printf("# SIGTERM with a stalled half message: exit %d after %.3f s\n",
	       WEXITSTATUS(status), now_s() - t);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(now_s() - t < 2.0);
	assert_int_equal(access(sock, F_OK), -1);
	tp_client_close(&c);
}

static void test_posted_flood(void **state)
{
	struct tp_client c;
	struct __attribute__((packed)) {
		struct tp_vu_hdr h;
		struct tp_vu_region_rw rw;
		uint32_t v;
	} msg = { { 0, TP_VU_REGION_WRITE, sizeof(msg), TP_VU_NO_REPLY, 0 },
		  { 0x200, 0, 4 }, 0x1234 };
	long before, after;
	unsigned long sent = 0, blocked = 0;
	double t0;
	int fl;

	assert_int_equal(tp_client_connect(&c, sock, 3000), 0);
	assert_int_equal(tp_client_version(&c, NULL), 0);
	before = rss_kb();
	fl = fcntl(c.fd, F_GETFL);
	fcntl(c.fd, F_SETFL, fl | O_NONBLOCK);
	/* Three seconds of posted writes as fast as the socket takes them. */
	t0 = now_s();
	while (now_s() - t0 < 3.0) {
		ssize_t n = send(c.fd, &msg, sizeof(msg), MSG_NOSIGNAL);

		if (n == (ssize_t)sizeof(msg)) {
			sent++;
			msg.h.msg_id++;
		} else if (n < 0 && errno == EAGAIN) {
			blocked++; /* the server is behind: we wait, it does not buffer */
			usleep(100);
		} else {
			assert_true(n < 0 || n == (ssize_t)sizeof(msg)); /* never a torn write */
		}
	}
	fcntl(c.fd, F_SETFL, fl);
	after = rss_kb();
	printf("# flood: %lu posted writes sent, the socket pushed back %lu times; "
	       "server RSS %ld KiB -> %ld KiB\n", sent, blocked, before, after);
	assert_true(blocked > 0);
	assert_true(after - before < 8 * 1024);
	/* Still serving, and it answers in order after the flood. */
	{
		uint32_t v = 0;

		assert_int_equal(tp_client_region_read(&c, 0, 0x200, &v, 4), 0);
		assert_int_equal(v, 0x1234);
	}
	tp_client_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stall_then_sigterm, start, finish),
		cmocka_unit_test_setup_teardown(test_posted_flood, start, finish),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
