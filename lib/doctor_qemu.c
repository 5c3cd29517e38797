/* SPDX-License-Identifier: MIT */
/*
 * The doctor's QEMU stage: a QEMU binary (--qemu, else qemu-system-<host
 * arch> and then the other architecture from PATH), its version (the
 * vfio-user client arrived in 10.1), and `-device help` listing
 * vfio-user-pci (it is built only for Linux hosts, and distributions may
 * leave it out). Each probe runs with a timeout: a wrapper that hangs must
 * not hang the doctor.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "doctor_int.h"
#include "util.h"

#define PROBE_TIMEOUT_MS 15000
#define OUT_MAX (256u << 10)
#define NEED_MAJOR 10
#define NEED_MINOR 1

/* An executable file: the path itself if it has a '/', else searched in PATH. */
static int find_exe(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");
	const char *p;

	if (strchr(name, '/')) {
		snprintf(out, len, "%s", name);
		return access(out, X_OK) == 0 ? 0 : -errno;
	}
	for (p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t n = strcspn(p, ":");
		struct stat st;

		snprintf(out, len, "%.*s/%s", (int)n, n ? p : ".", name);
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
			return 0;
		p += n;
		if (*p == ':')
			p++;
	}
	return -ENOENT;
}

/*
 * Runs argv with stdout and stderr into buf (NUL-terminated, cut at len);
 * returns the exit status (0-255), or -ETIMEDOUT / -errno.
 */
static int run_capture(char *const argv[], char *buf, size_t len)
{
	uint64_t end = tp_now_ns() + PROBE_TIMEOUT_MS * 1000000ull;
	size_t have = 0;
	int fds[2], status = 0, rc = 0;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(fds[0]);
		close(fds[1]);
		return rc;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		if (null >= 0)
			dup2(null, 0);
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		uint64_t now = tp_now_ns();
		char tmp[4096];
		ssize_t n;

		if (now >= end) {
			rc = -ETIMEDOUT;
			break;
		}
		if (poll(&p, 1, (int)((end - now) / 1000000ull) + 1) < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		n = read(fds[0], tmp, sizeof(tmp));
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			rc = -errno;
			break;
		}
		if (have + 1 < len) {
			size_t take = TP_MIN((size_t)n, len - 1 - have);

			memcpy(buf + have, tmp, take);
			have += take;
		}
	}
	close(fds[0]);
	buf[have] = '\0';
	if (rc)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc)
		return rc;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -EINTR;
}

static const char *host_arch(void)
{
	struct utsname u;

	if (uname(&u) == 0 && (!strcmp(u.machine, "aarch64") || !strcmp(u.machine, "arm64")))
		return "aarch64";
	return "x86_64";
}

static int locate(struct tp_doctor *d, char *exe, size_t len, char *tried, size_t tlen)
{
	const char *arch = host_arch();
	const char *names[2] = { "qemu-system-aarch64", "qemu-system-x86_64" };
	int rc;

	if (d->o->qemu) {
		snprintf(tried, tlen, "%s", d->o->qemu);
		return find_exe(d->o->qemu, exe, len);
	}
	if (!strcmp(arch, "x86_64")) {
		names[0] = "qemu-system-x86_64";
		names[1] = "qemu-system-aarch64";
	}
	snprintf(tried, tlen, "%s or %s in PATH", names[0], names[1]);
	for (int i = 0; i < 2; i++) {
		rc = find_exe(names[i], exe, len);
		if (!rc)
			return 0;
	}
	return -ENOENT;
}

void tp_doctor_qemu(struct tp_doctor *d, struct tp_doctor_result *r)
{
	char exe[PATH_MAX], tried[PATH_MAX + 64];
	char *out = malloc(OUT_MAX);
	unsigned maj = 0, min = 0, mic = 0;
	const char *v;
	int rc;

	if (!out) {
		tp_doc_status(r, TP_DOCTOR_FAIL, "no memory to run QEMU");
		tp_doc_advice(r, "The host is out of memory; try again.");
		return;
	}
	rc = locate(d, exe, sizeof(exe), tried, sizeof(tried));
	if (rc) {
		tp_doc_status(r, TP_DOCTOR_FAIL, "no QEMU found (%s): %s", tried, strerror(-rc));
		tp_doc_advice(r,
			      "Install QEMU 10.1 or newer (Debian: from trixie or sid; `make "
			      "deps` unpacks QEMU 11 into .cache/testbed) or name it with --qemu.");
		goto out;
	}
	tp_doc_fact_str(r, "path", "%s", exe);
	rc = run_capture((char *const[]){ exe, "--version", NULL }, out, OUT_MAX);
	v = strstr(out, "version ");
	if (rc != 0 || !v || sscanf(v, "version %u.%u.%u", &maj, &min, &mic) < 2) {
		tp_doc_status(r, TP_DOCTOR_FAIL, "%s --version %s: %.80s", exe,
			      rc < 0 ? strerror(-rc)
			      : rc   ? "failed"
				     : "printed no version",
			      out[0] ? out : "(nothing)");
		tp_doc_advice(r, "This is not a working QEMU: install QEMU 10.1 or newer or name "
				 "another one with --qemu.");
		goto out;
	}
	tp_doc_fact_str(r, "version", "%u.%u.%u", maj, min, mic);
	tp_doc_status(r, TP_DOCTOR_OK, "%s: QEMU %u.%u.%u", exe, maj, min, mic);
	if (maj < NEED_MAJOR || (maj == NEED_MAJOR && min < NEED_MINOR)) {
		tp_doc_fact_bool(r, "vfio_user_pci", false);
		tp_doc_worsen(r, TP_DOCTOR_FAIL);
		tp_doc_seen_add(r, "older than 10.1, the first with the vfio-user client");
		tp_doc_advice(r,
			      "Install QEMU 10.1 or newer (Debian: from trixie or sid; `make "
			      "deps` unpacks QEMU 11 into .cache/testbed) or name it with --qemu.");
		goto out;
	}
	/* -machine none: an architecture without a default machine still lists. */
	rc = run_capture((char *const[]){ exe, "-machine", "none", "-device", "help", NULL }, out,
			 OUT_MAX);
	tp_doc_fact_bool(r, "vfio_user_pci", rc == 0 && strstr(out, "\"vfio-user-pci\""));
	if (rc != 0 || !strstr(out, "\"vfio-user-pci\"")) {
		tp_doc_worsen(r, TP_DOCTOR_FAIL);
		tp_doc_seen_add(r, "`-device help` %s",
				rc ? "failed" : "does not list vfio-user-pci");
		tp_doc_advice(r,
			      "This QEMU was built without the vfio-user client (it exists for "
			      "Linux hosts only): use a build with CONFIG_VFIO_USER_PCI, such as "
			      "Debian's, or the one `make deps` fetches.");
		goto out;
	}
	tp_doc_seen_add(r, "has vfio-user-pci");
	tp_doc_unchecked(r, "whether it can boot a guest here (KVM/HVF or TCG), which only a run "
			    "shows");
	tp_doc_advice(r, "Nothing to do: `thunderpass qemu-args --socket PATH` prints the options "
			 "that work with this server.");
out:
	free(out);
}
