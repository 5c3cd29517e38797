/* SPDX-License-Identifier: MIT */
/*
 * The thunderpass subcommands. Each takes the argument vector from its own
 * name on (argv[0] is the subcommand) and returns the process exit status:
 * 0 success, 1 failure, 2 bad usage.
 */
#ifndef THUNDERPASS_TOOLS_COMMANDS_H
#define THUNDERPASS_TOOLS_COMMANDS_H

/* thunderpass serve --socket PATH [--backend NAME] [-o KEY=VALUE]... */
int tp_cmd_serve(int argc, char **argv);

/* thunderpass identify [--device ID] BOOT0 [BOOT42] */
int tp_cmd_identify(int argc, char **argv);

/* thunderpass qemu-args --socket PATH [--arch ARCH] [--mem SIZE] */
int tp_cmd_qemu_args(int argc, char **argv);

/* thunderpass doctor [--backend B] [--device ID] [--json] [--qemu PATH] ... */
int tp_cmd_doctor(int argc, char **argv);

/* thunderpass stats SOCKET-OR-PID [--watch] [--json] */
int tp_cmd_stats(int argc, char **argv);

/* thunderpass list [--json] [--root DIR] */
int tp_cmd_list(int argc, char **argv);

#endif
