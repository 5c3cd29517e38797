/* SPDX-License-Identifier: MIT */
/*
 * TEST STAND-IN, not Apple's header: the few Mach types and calls the
 * darwin backend uses, with Apple's names and values, so that
 * backends/darwin/ compiles on Linux against tests/darwin/standin_iokit.c.
 * Never on the include path of the product.
 */
#ifndef TP_STANDIN_MACH_H
#define TP_STANDIN_MACH_H

#include <stdint.h>

typedef int kern_return_t;
typedef unsigned int mach_port_t;
typedef mach_port_t mach_port_name_t;
typedef mach_port_t task_port_t;
typedef uint64_t mach_vm_address_t;
typedef uint64_t mach_vm_size_t;
typedef unsigned int mach_msg_bits_t;
typedef unsigned int mach_msg_size_t;
typedef int mach_msg_id_t;
typedef unsigned int mach_msg_timeout_t;
typedef int mach_msg_option_t;
typedef kern_return_t mach_msg_return_t;

typedef struct {
	mach_msg_bits_t msgh_bits;
	mach_msg_size_t msgh_size;
	mach_port_t msgh_remote_port;
	mach_port_t msgh_local_port;
	mach_port_name_t msgh_voucher_port;
	mach_msg_id_t msgh_id;
} mach_msg_header_t;

#define KERN_SUCCESS 0
#define KERN_FAILURE 5
#define MACH_PORT_NULL 0u
#define MACH_MSG_SUCCESS 0
#define MACH_RCV_MSG 0x00000002
#define MACH_RCV_TIMEOUT 0x00000100
#define MACH_RCV_INVALID_NAME 0x10004002
#define MACH_RCV_TIMED_OUT 0x10004003
#define MACH_RCV_TOO_LARGE 0x10004004
#define MACH_SEND_INVALID_DEST 0x10000003

mach_port_t mach_task_self(void);
mach_msg_return_t mach_msg(mach_msg_header_t *msg, mach_msg_option_t option,
			   mach_msg_size_t send_size, mach_msg_size_t rcv_size,
			   mach_port_name_t rcv_name, mach_msg_timeout_t timeout,
			   mach_port_name_t notify);

#endif
