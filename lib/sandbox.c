/* SPDX-License-Identifier: MIT */
/*
 * Least privilege (Linux). The allow-list is what the serving loop, the
 * backends' worker threads and the logger use after start-up: socket I/O on
 * already-open sockets, eventfd writes, mmap/munmap of the client's fds,
 * futexes, time. No open, no exec, no new sockets, no ptrace, no mount: a
 * compromised server can talk to its client and its device, nothing else.
 *
 * ioctl is allowed only with the requests a backend names (the vfio
 * backend: DMA map/unmap, SET_IRQS, reset): the request is compared on the
 * 32 bits the kernel reads, so no request outside the list gets through,
 * terminal ones (TIOCSTI) and VFIO's set-up ones included.
 *
 * Opening a file fails with EACCES instead of killing: glibc opens files
 * behind our back and copes when it cannot (malloc reads
 * /proc/sys/vm/overcommit_memory the first time it shrinks a thread's arena,
 * which killed the pvdma companion on its second client session).
 */
#include <thunderpass/sandbox.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <thunderpass/log.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TP_SANITIZED 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TP_SANITIZED 1
#endif
#endif

#if defined(__linux__) && !defined(TP_SANITIZED) && defined(TP_HAVE_SECCOMP)
#include <seccomp.h>
#define TP_SECCOMP 1
#endif

int tp_sandbox_lookup_user(const char *name, uid_t *uid, gid_t *gid, const char *who)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(name);
	if (!pw) {
		tp_err(who, "--user %s: no such user%s%s", name, errno ? ": " : "",
		       errno ? strerror(errno) : "");
		return errno ? -errno : -ENOENT;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

int tp_sandbox_drop_user(uid_t uid, gid_t gid, const char *who)
{
	if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		int rc = -errno;

		tp_err(who, "cannot drop to uid %u gid %u: %s", (unsigned)uid, (unsigned)gid,
		       strerror(errno));
		return rc;
	}
	/* A drop that can be undone is no drop. */
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		tp_err(who, "root could be regained after dropping to uid %u", (unsigned)uid);
		return -EPERM;
	}
	tp_info(who, "running as uid %u gid %u", (unsigned)uid, (unsigned)gid);
	return 0;
}

#ifdef TP_SECCOMP

static const char *const base_syscalls[] = {
	/* sockets and fds already open */
	"read", "write", "readv", "writev", "recvmsg", "sendmsg", "recvfrom", "sendto",
	"accept4", "accept", "close", "poll", "ppoll", "getsockopt", "shutdown", "fcntl",
	"fstat", "newfstatat", "lseek", "pread64", "pwrite64", "unlink",
	/* memory: the client's fds, malloc */
	"mmap", "munmap", "mremap", "madvise", "brk", "mprotect",
	/* threads already running, locks, time */
	"futex", "clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday", "sched_yield",
	"getpid", "gettid", "tgkill", "rt_sigreturn", "rt_sigprocmask", "rt_sigaction",
	"restart_syscall", "exit", "exit_group", "set_robust_list", "rseq", "getrandom",
	NULL,
};

/* Refused with an errno, not a kill (see the top of this file). */
static const char *const refused_syscalls[] = { "open", "openat", "openat2", NULL };

/* Say what was refused, then die of the signal so the exit status shows it. */
static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	char line[160];
	char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, si->si_syscall);
	int n = snprintf(line, sizeof(line),
			 "thunderpass: error: seccomp: forbidden system call %d (%s): "
			 "the server is stopped\n",
			 si->si_syscall, name ? name : "?");

	(void)ctx;
	if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0)
		n = 0;
	signal(sig, SIG_DFL);
	raise(sig);
}

static int add_rules(scmp_filter_ctx ctx, uint32_t action, const char *const *names,
		     const char *who)
{
	for (; names && *names; names++) {
		int nr = seccomp_syscall_resolve_name(*names);

		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		if (seccomp_rule_add(ctx, action, nr, 0) < 0) {
			tp_err(who, "seccomp: cannot add a rule for %s", *names);
			return -EINVAL;
		}
	}
	return 0;
}

/* ioctl(fd, request, ...) for each listed request: the kernel takes the
 * request as an unsigned int, so only its low 32 bits are compared. */
static int add_ioctls(scmp_filter_ctx ctx, const unsigned long *ioctls, const char *who)
{
	for (; ioctls && *ioctls; ioctls++) {
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu,
					     (scmp_datum_t)(uint32_t)*ioctls)) < 0) {
			tp_err(who, "seccomp: cannot add a rule for ioctl %#lx", *ioctls);
			return -EINVAL;
		}
	}
	return 0;
}

int tp_sandbox_seccomp(const char *const *extra, const unsigned long *ioctls, const char *who)
{
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
	scmp_filter_ctx ctx;
	int rc;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSYS, &sa, NULL);
	ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx) {
		tp_err(who, "seccomp: cannot create a filter");
		return -ENOMEM;
	}
	rc = add_rules(ctx, SCMP_ACT_ALLOW, base_syscalls, who);
	if (!rc)
		rc = add_rules(ctx, SCMP_ACT_ALLOW, extra, who);
	if (!rc)
		rc = add_ioctls(ctx, ioctls, who);
	if (!rc)
		rc = add_rules(ctx, SCMP_ACT_ERRNO(EACCES), refused_syscalls, who);
	/* Every thread (the backends' workers run already), not only this one. */
	if (!rc && seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) < 0)
		rc = -ENOTSUP;
	if (!rc) {
		rc = seccomp_load(ctx);
		if (rc < 0)
			tp_err(who, "seccomp: cannot load the filter: %s", strerror(-rc));
	}
	seccomp_release(ctx);
	if (!rc)
		tp_info(who, "seccomp filter installed: only the serving loop's system calls");
	return rc;
}

bool tp_sandbox_available(void)
{
	return true;
}

#else

int tp_sandbox_seccomp(const char *const *extra, const unsigned long *ioctls, const char *who)
{
	(void)extra;
	(void)ioctls;
	(void)who;
	return -ENOTSUP;
}

bool tp_sandbox_available(void)
{
	return false;
}

#endif
