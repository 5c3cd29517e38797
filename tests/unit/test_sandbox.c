/* SPDX-License-Identifier: MIT */
/*
 * The seccomp filter's ioctl rule (lib/sandbox.c): a backend's listed ioctl
 * requests pass, any other request kills the process with SIGSYS, and with
 * no list ioctl is not allowed at all. Each case runs in a child, which the
 * filter confines for good.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "thunderpass/sandbox.h"

/* What the child got as far as, on the status pipe. */
enum { REACHED_FILTER = 'f', REACHED_ALLOWED = 'a', REACHED_AFTER = 'x' };

struct outcome {
	char reached[4];
	size_t n;
	int status;
};

/*
 * Child: filter with ioctls, then ioctl(FIONREAD) (allowed or not), then
 * ioctl(request); reports each step on the pipe before taking it.
 */
static struct outcome run_child(const unsigned long *ioctls, unsigned long request)
{
	struct outcome o = { .n = 0 };
	int st[2], data[2];
	pid_t pid;

	assert_int_equal(pipe(st), 0);
	assert_int_equal(pipe(data), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int n = 0;
		char c;

		close(st[0]);
		if (tp_sandbox_seccomp(NULL, ioctls, "test") != 0)
			_exit(3);
		c = REACHED_FILTER;
		if (write(st[1], &c, 1) != 1)
			_exit(4);
		if (ioctl(data[0], FIONREAD, &n) != 0)
			_exit(5);
		c = REACHED_ALLOWED;
		if (write(st[1], &c, 1) != 1)
			_exit(4);
		(void)ioctl(data[0], request, &n);
		c = REACHED_AFTER;
		if (write(st[1], &c, 1) != 1)
			_exit(4);
		_exit(0);
	}
	close(st[1]);
	while (o.n < sizeof(o.reached) && read(st[0], &o.reached[o.n], 1) == 1)
		o.n++;
	close(st[0]);
	close(data[0]);
	close(data[1]);
	assert_int_equal(waitpid(pid, &o.status, 0), pid);
	return o;
}

static void test_listed_request_passes_other_kills(void **state)
{
	static const unsigned long allowed[] = { FIONREAD, 0 };
	struct outcome o;

	(void)state;
	if (!tp_sandbox_available())
		skip();
	o = run_child(allowed, FIONBIO);
	assert_int_equal(o.n, 2); /* the filter, then FIONREAD went through */
	assert_int_equal(o.reached[1], REACHED_ALLOWED);
	assert_true(WIFSIGNALED(o.status));
	assert_int_equal(WTERMSIG(o.status), SIGSYS); /* FIONBIO did not return */
}

static void test_request_upper_bits_ignored(void **state)
{
	static const unsigned long allowed[] = { FIONBIO, FIONREAD, 0 };
	struct outcome o;

	(void)state;
	if (!tp_sandbox_available())
		skip();
	/* The kernel reads the request's low 32 bits: upper bits change nothing. */
	o = run_child(allowed, FIONREAD | (sizeof(long) > 4 ? 1ul << 32 : 0));
	assert_int_equal(o.n, 3);
	assert_true(WIFEXITED(o.status));
	assert_int_equal(WEXITSTATUS(o.status), 0);
}

static void test_no_list_no_ioctl(void **state)
{
	struct outcome o;

	(void)state;
	if (!tp_sandbox_available())
		skip();
	o = run_child(NULL, FIONREAD);
	assert_int_equal(o.n, 1); /* the filter is in; the first ioctl killed it */
	assert_true(WIFSIGNALED(o.status));
	assert_int_equal(WTERMSIG(o.status), SIGSYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listed_request_passes_other_kills),
		cmocka_unit_test(test_request_upper_bits_ignored),
		cmocka_unit_test(test_no_list_no_ioctl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
