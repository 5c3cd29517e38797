/* SPDX-License-Identifier: MIT */
/*
 * Who may connect, and what the server may do once serving (docs/security.md):
 * the socket is owner-only by default, refused in a world-writable directory
 * and at a symlink, a live socket is never stolen, a stale one is replaced,
 * --allow-uid keeps other users out, --user drops privileges, and the seccomp
 * filter is installed and kills the server on a forbidden call.
 * Needs root (it switches users); skipped otherwise. $TP_BIN names the binary.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <thunderpass/sandbox.h>

#include "client.h"

static char dir[64], sock[128], errlog[128];
/* The server a test started and has not stopped: teardown kills it, so a
 * failed assertion cannot leave it running (and the test hanging). */
static pid_t live_server;

static int log_has(const char *needle)
{
	char buf[8192] = { 0 };
	FILE *f = fopen(errlog, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = 0;
	if (!strstr(buf, needle) && getenv("TP_ACCESS_DEBUG"))
		fprintf(stderr, "--- log without '%s':\n%s---\n", needle, buf);
	return strstr(buf, needle) != NULL;
}

/* -(exit status), or -(128 + signal). */
static int exit_code(int status)
{
	return -(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

/*
 * Forks `thunderpass serve --socket sock --log-level info` plus extra, its
 * stderr into errlog; alarm_s > 0 bounds its life. The log is emptied here,
 * not in the child: until the child ran, the previous server's "listening
 * on" would pass for this one's.
 */
static pid_t spawn(const char *const *extra, unsigned alarm_s)
{
	const char *argv[24] = { getenv("TP_BIN"), "serve", "--socket", sock, "--log-level",
				 "info" };
	int n = 6;
	pid_t pid;

	for (; extra && *extra; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	close(open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0644));
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		int fd = open(errlog, O_WRONLY | O_APPEND);

		dup2(fd, 2);
		if (alarm_s)
			alarm(alarm_s);
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	return pid;
}

/* Starts the server with extra args; returns its pid once it listens, or
 * -(exit status) if it exited first. */
static pid_t server(const char *const *extra)
{
	char listening[160];
	pid_t pid = spawn(extra, 0);

	/* Not "listening on it", which a refusal says. */
	snprintf(listening, sizeof(listening), "listening on %s", sock);
	for (int i = 0; i < 300; i++) {
		struct stat st;
		int status;

		if (stat(sock, &st) == 0 && S_ISSOCK(st.st_mode) && log_has(listening))
			return live_server = pid;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return exit_code(status);
		usleep(10000);
	}
	fail_msg("server never created its socket");
	return -1;
}

/* Runs a server that must refuse to serve; returns its exit_code. */
static int server_fails(const char *const *extra)
{
	int status;

	waitpid(spawn(extra, 10), &status, 0);
	return exit_code(status);
}

static int stop(pid_t pid)
{
	int status;

	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	if (pid == live_server)
		live_server = 0;
	return status;
}

static int setup(void **state)
{
	strcpy(dir, "/tmp/tp-access-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/tp.sock", dir);
	snprintf(errlog, sizeof(errlog), "%s.log", dir);
	return 0;
}

static int teardown(void **state)
{
	char psock[160];

	if (live_server > 0) {
		kill(live_server, SIGKILL);
		waitpid(live_server, NULL, 0);
		live_server = 0;
	}
	snprintf(psock, sizeof(psock), "%s/pvdma.sock", dir);
	unlink(psock);
	unlink(sock);
	rmdir(dir);
	unlink(errlog);
	return 0;
}

static void test_owner_only_and_removed(void **state)
{
	struct stat st;
	pid_t pid = server(NULL);

	assert_true(pid > 0);
	assert_int_equal(stat(sock, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stop(pid), 0);
	assert_int_equal(access(sock, F_OK), -1);
}

static void test_refusals(void **state)
{
	const char *mode666[] = { "--socket-mode", "0666", NULL };
	struct stat st;
	pid_t live;

	/* A world-writable directory. */
	chmod(dir, 0777);
	assert_int_equal(server_fails(NULL), -1);
	assert_true(log_has("world-writable"));
	chmod(dir, 0700);
	/* A symlink at the path. */
	assert_int_equal(symlink("/tmp/elsewhere", sock), 0);
	assert_int_equal(server_fails(NULL), -1);
	assert_true(log_has("symbolic link"));
	unlink(sock);
	/* A socket another server listens on is not stolen. */
	live = server(NULL);
	assert_true(live > 0);
	assert_int_equal(server_fails(NULL), -1);
	assert_true(log_has("another server is listening"));
	/* A stale one (its server killed) is replaced. */
	kill(live, SIGKILL);
	waitpid(live, NULL, 0);
	assert_int_equal(stat(sock, &st), 0);
	live = server(mode666);
	assert_true(live > 0);
	assert_true(log_has("replacing stale socket"));
	assert_int_equal(stat(sock, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0666);
	assert_int_equal(stop(live), 0);
}

/* A client running as uid: 0 when VERSION succeeded, else the errno. */
static int client_as(uid_t uid)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (!pid) {
		struct tp_client c;
		int rc;

		if (setgid(uid) || setuid(uid))
			_exit(100);
		rc = tp_client_connect(&c, sock, 2000);
		if (!rc)
			rc = tp_client_version(&c, NULL);
		_exit(rc ? (-rc & 0x7f) : 0);
	}
	waitpid(pid, &status, 0);
	return WEXITSTATUS(status);
}

static void test_allow_uid(void **state)
{
	const char *allow_nobody[] = { "--socket-mode", "0666", "--allow-uid", "65534", NULL };
	const char *allow_other[] = { "--socket-mode", "0666", "--allow-uid", "12345", NULL };
	pid_t pid;

	chmod(dir, 0711); /* others may reach the socket, not list or write */
	/* Owner-only socket: another user cannot even connect. */
	pid = server(NULL);
	assert_int_not_equal(client_as(65534), 0);
	assert_int_equal(stop(pid), 0);
	pid = server(allow_nobody);
	assert_int_equal(client_as(65534), 0);
	assert_int_equal(stop(pid), 0);
	pid = server(allow_other);
	assert_int_not_equal(client_as(65534), 0);
	assert_true(log_has("only uid 12345 may connect"));
	assert_true(log_has("uid 65534"));
	assert_int_equal(stop(pid), 0);
	chmod(dir, 0700);
}

static void read_status(pid_t pid, const char *field, char *out, size_t len)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	out[0] = 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)))
			snprintf(out, len, "%s", line + strlen(field));
	fclose(f);
}

static void test_user_and_seccomp(void **state)
{
	const char *drop[] = { "--user", "nobody", NULL };
	char v[128];
	struct stat st;
	struct tp_client c;
	pid_t pid;

	/* The directory must be the user's (the server removes its socket as them). */
	assert_int_equal(server_fails(drop), -1);
	assert_true(log_has("must belong to nobody"));
	assert_int_equal(chown(dir, 65534, 65534), 0);
	pid = server(drop);
	assert_true(pid > 0);
	usleep(200000); /* the drop happens right after the socket appears */
	read_status(pid, "Uid:", v, sizeof(v));
	assert_int_equal(atoi(v), 65534);
	read_status(pid, "Seccomp:", v, sizeof(v));
	if (tp_sandbox_available())
		assert_int_equal(atoi(v), 2);
	assert_int_equal(stat(sock, &st), 0);
	assert_int_equal(st.st_uid, 65534);
	/* And it still serves. */
	assert_int_equal(tp_client_connect(&c, sock, 3000), 0);
	assert_int_equal(tp_client_version(&c, NULL), 0);
	tp_client_close(&c);
	assert_int_equal(stop(pid), 0);
	assert_int_equal(access(sock, F_OK), -1);
	assert_int_equal(chown(dir, 0, 0), 0);
}

static void test_forbidden_call_kills(void **state)
{
	const char *bad[] = { "--debug-forbidden-syscall", NULL };

	if (!tp_sandbox_available())
		skip();
	assert_int_equal(server_fails(bad), -(128 + SIGSYS));
	assert_true(log_has("open() refused with EACCES"));
	assert_true(log_has("forbidden system call"));
	assert_true(log_has("(socket)"));
}

/* Whether signal sig is blocked in every thread, in some, or in none of pid:
 * returns the count of threads that block it, *threads their number. */
static int threads_blocking(pid_t pid, int sig, int *threads)
{
	char path[64], v[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	assert_non_null(d);
	*threads = 0;
	while ((e = readdir(d))) {
		pid_t tid = atoi(e->d_name);

		if (tid <= 0)
			continue;
		read_status(tid, "SigBlk:", v, sizeof(v));
		(*threads)++;
		if (strtoull(v, NULL, 16) & (1ull << (sig - 1)))
			n++;
	}
	closedir(d);
	return n;
}

/*
 * The pvdma companion's thread blocks the signals meant for the main
 * thread, never SIGSYS: blocked, the seccomp report never printed and the
 * server died without a word (its second client session hit glibc's open
 * of /proc/sys/vm/overcommit_memory, then killed; now refused with EACCES).
 */
static void test_companion_keeps_sigsys(void **state)
{
	char psock[160];
	const char *pv[] = { "--iommu", "dart", "--pvdma-socket", psock, NULL };
	int threads = 0, sys_blocking = -1, term_blocking = -1;
	pid_t pid;

	snprintf(psock, sizeof(psock), "%s/pvdma.sock", dir);
	pid = server(pv);
	assert_true(pid > 0);
	for (int i = 0; i < 100 && access(psock, F_OK); i++)
		usleep(10000);
	assert_int_equal(access(psock, F_OK), 0);
	/* The companion's thread may still be starting: glibc blocks every
	 * signal around thread creation. Its settled state is what counts. */
	for (int i = 0; i < 300; i++) {
		sys_blocking = threads_blocking(pid, SIGSYS, &threads);
		term_blocking = threads_blocking(pid, SIGTERM, &threads);
		if (!sys_blocking && term_blocking >= 1 && threads >= 2)
			break;
		usleep(10000);
	}
	assert_int_equal(sys_blocking, 0);
	assert_true(threads >= 2);
	/* The companion blocks SIGTERM; the main thread takes it (its handler
	 * only writes the stop eventfds, so any thread that does not block it
	 * would do). */
	assert_true(term_blocking >= 1);
	assert_true(term_blocking < threads);
	assert_int_equal(stop(pid), 0);
}

/*
 * The socket file appears only once the server listens (made under a
 * temporary name, then linked): a client that connects the instant it sees
 * the file gets in, and a SIGTERM sent at that instant still ends the server
 * cleanly (its handler is in place before the socket exists). Nothing is
 * left behind, no temporary name either.
 */
static void test_socket_listens_when_it_appears(void **state)
{
	(void)state;
	for (int round = 0; round < 10; round++) {
		struct tp_client c;
		struct dirent *e;
		struct stat st;
		pid_t pid = spawn(NULL, 10);
		DIR *d;
		int i;

		for (i = 0; i < 30000; i++) {
			if (stat(sock, &st) == 0 && S_ISSOCK(st.st_mode))
				break;
			usleep(100);
		}
		assert_true(i < 30000);
		assert_int_equal(tp_client_connect(&c, sock, 3000), 0);
		tp_client_close(&c);
		assert_int_equal(stop(pid), 0);
		/* Everything it made is gone: the sockets, and no temporary name. */
		d = opendir(dir);
		assert_non_null(d);
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				fail_msg("left in the socket directory: %s", e->d_name);
		closedir(d);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_owner_only_and_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_listens_when_it_appears, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allow_uid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_and_seccomp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forbidden_call_kills, setup, teardown),
		cmocka_unit_test_setup_teardown(test_companion_keeps_sigsys, setup, teardown),
	};

	if (geteuid() != 0) {
		printf("test_access: needs root (it switches users); skipped\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
