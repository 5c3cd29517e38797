/* SPDX-License-Identifier: MIT */
/*
 * TEST STAND-IN, not Apple's header: the IOKit.framework subset the darwin
 * backend calls, with Apple's names, types and constant values (IOReturn.h,
 * IOTypes.h, OSMessageNotification.h), so that backends/darwin/ compiles
 * unchanged on Linux. tests/darwin/standin_iokit.c implements the calls
 * against an in-process stand-in of the driver extension.
 */
#ifndef TP_STANDIN_IOKITLIB_H
#define TP_STANDIN_IOKITLIB_H

#include <stddef.h>
#include <stdint.h>

#include <CoreFoundation/CoreFoundation.h>
#include <mach/mach.h>

typedef mach_port_t io_object_t;
typedef io_object_t io_service_t;
typedef io_object_t io_connect_t;
typedef io_object_t io_iterator_t;
typedef io_object_t io_registry_entry_t;
typedef char io_name_t[128];
typedef kern_return_t IOReturn;
typedef uint32_t IOOptionBits;
typedef uint64_t io_user_reference_t;
typedef struct IONotificationPort *IONotificationPortRef;
typedef void (*IOAsyncCallback)(void *refcon, IOReturn result, void **args, uint32_t numArgs);

#define IO_OBJECT_NULL ((io_object_t)0)
#define kIOServicePlane "IOService"
extern const mach_port_t kIOMainPortDefault;

/* IOTypes.h */
enum {
	kIOMapAnywhere = 0x00000001,
	kIOMapDefaultCache = 0x00000000,
	kIOMapInhibitCache = 0x00000100,
	kIOMapWriteThruCache = 0x00000200,
	kIOMapCopybackCache = 0x00000300,
	kIOMapWriteCombineCache = 0x00000400,
	kIOMapCacheMask = 0x00000700,
};

/* OSMessageNotification.h */
enum { kOSAsyncRef64Count = 8 };
enum {
	kIOAsyncReservedIndex = 0,
	kIOAsyncReservedCount,
	kIOAsyncCalloutFuncIndex = kIOAsyncReservedCount,
	kIOAsyncCalloutRefconIndex,
	kIOAsyncCalloutCount,
};

/* IOReturn.h */
#define iokit_common_err(r) ((IOReturn)(0xe0000000u | (r)))
#define kIOReturnSuccess KERN_SUCCESS
#define kIOReturnError iokit_common_err(0x2bc)
#define kIOReturnNoMemory iokit_common_err(0x2bd)
#define kIOReturnNoResources iokit_common_err(0x2be)
#define kIOReturnIPCError iokit_common_err(0x2bf)
#define kIOReturnNoDevice iokit_common_err(0x2c0)
#define kIOReturnNotPrivileged iokit_common_err(0x2c1)
#define kIOReturnBadArgument iokit_common_err(0x2c2)
#define kIOReturnExclusiveAccess iokit_common_err(0x2c5)
#define kIOReturnUnsupported iokit_common_err(0x2c7)
#define kIOReturnInternalError iokit_common_err(0x2c9)
#define kIOReturnIOError iokit_common_err(0x2ca)
#define kIOReturnNotOpen iokit_common_err(0x2cd)
#define kIOReturnNotAligned iokit_common_err(0x2d0)
#define kIOReturnBusy iokit_common_err(0x2d5)
#define kIOReturnTimeout iokit_common_err(0x2d6)
#define kIOReturnOffline iokit_common_err(0x2d7)
#define kIOReturnNotReady iokit_common_err(0x2d8)
#define kIOReturnNotAttached iokit_common_err(0x2d9)
#define kIOReturnNoSpace iokit_common_err(0x2db)
#define kIOReturnNoInterrupt iokit_common_err(0x2df)
#define kIOReturnNotPermitted iokit_common_err(0x2e2)
#define kIOReturnAborted iokit_common_err(0x2eb)
#define kIOReturnNotFound iokit_common_err(0x2f0)

CFMutableDictionaryRef IOServiceMatching(const char *name);
CFMutableDictionaryRef IOServiceNameMatching(const char *name);
kern_return_t IOServiceGetMatchingServices(mach_port_t main, CFDictionaryRef matching,
					   io_iterator_t *existing);
io_object_t IOIteratorNext(io_iterator_t it);
kern_return_t IOObjectRelease(io_object_t o);
kern_return_t IORegistryEntryGetParentEntry(io_registry_entry_t e, const char *plane,
					    io_registry_entry_t *parent);
kern_return_t IORegistryEntryGetChildIterator(io_registry_entry_t e, const char *plane,
					      io_iterator_t *it);
kern_return_t IORegistryEntryGetName(io_registry_entry_t e, io_name_t name);
CFTypeRef IORegistryEntryCreateCFProperty(io_registry_entry_t e, CFStringRef key,
					  CFAllocatorRef a, IOOptionBits options);
kern_return_t IOServiceOpen(io_service_t s, task_port_t task, uint32_t type, io_connect_t *c);
kern_return_t IOServiceClose(io_connect_t c);
kern_return_t IOConnectCallMethod(mach_port_t c, uint32_t selector, const uint64_t *input,
				  uint32_t inputCnt, const void *inputStruct, size_t inputStructCnt,
				  uint64_t *output, uint32_t *outputCnt, void *outputStruct,
				  size_t *outputStructCnt);
kern_return_t IOConnectCallAsyncScalarMethod(mach_port_t c, uint32_t selector,
					     mach_port_t wake_port, uint64_t *reference,
					     uint32_t referenceCnt, const uint64_t *input,
					     uint32_t inputCnt, uint64_t *output,
					     uint32_t *outputCnt);
kern_return_t IOConnectMapMemory64(io_connect_t c, uint32_t memoryType, task_port_t task,
				   mach_vm_address_t *atAddress, mach_vm_size_t *ofSize,
				   IOOptionBits options);
kern_return_t IOConnectUnmapMemory64(io_connect_t c, uint32_t memoryType, task_port_t task,
				     mach_vm_address_t atAddress);
IONotificationPortRef IONotificationPortCreate(mach_port_t main);
void IONotificationPortDestroy(IONotificationPortRef notify);
mach_port_t IONotificationPortGetMachPort(IONotificationPortRef notify);
void IODispatchCalloutFromMessage(void *unused, mach_msg_header_t *msg, void *reference);

#endif
