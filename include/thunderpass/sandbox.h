/* SPDX-License-Identifier: MIT */
/*
 * Least privilege for the serving process, once the device is open and the
 * socket listens: drop to an unprivileged user, then confine the process to
 * the system calls the serving loop needs (Linux: a seccomp filter built with
 * libseccomp, applied to every thread). A forbidden call does not return: the
 * process reports the call's name on stderr and dies of SIGSYS.
 *
 * Errors: -errno, logged here.
 */
#ifndef THUNDERPASS_SANDBOX_H
#define THUNDERPASS_SANDBOX_H

#include <stdbool.h>
#include <sys/types.h>

/* Looks the user up (before any confinement: it reads /etc/passwd). */
int tp_sandbox_lookup_user(const char *name, uid_t *uid, gid_t *gid, const char *who);
/* setgroups/setgid/setuid, then checks root cannot be regained. */
int tp_sandbox_drop_user(uid_t uid, gid_t gid, const char *who);
/*
 * Installs the filter on every thread. extra: more syscall names a backend
 * needs (NULL-terminated, may be NULL); ioctls: the ioctl requests allowed
 * (0-terminated, may be NULL: no ioctl at all). Returns -ENOTSUP where the
 * platform or the build (sanitizers) has no filter.
 */
int tp_sandbox_seccomp(const char *const *extra, const unsigned long *ioctls, const char *who);
bool tp_sandbox_available(void);

#endif
