/* SPDX-License-Identifier: MIT */
/*
 * What ThunderpassDriver learns at Start and shares with its user client
 * (both live in the same dext process). Written once at Start, before
 * RegisterService makes the service visible, then read-only, except owner,
 * which only the driver's OpenSession/CloseSession change.
 */
#ifndef TP_DRIVER_PRIVATE_H
#define TP_DRIVER_PRIVATE_H

#include <os/log.h>

#include <thunderpass/darwin_uc.h>

#include "TPDextPolicy.h"

#define TP_LOG(fmt, ...) os_log(OS_LOG_DEFAULT, "thunderpass: " fmt, ##__VA_ARGS__)

struct ThunderpassDriver_IVars {
	IOPCIDevice *pci;         /* the provider, retained */
	IOService *owner;         /* the user client holding the session, or NULL */
	struct tp_duc_info info;
	struct tp_duc_bar bars[TP_DUC_NUM_BARS];
	uint32_t bar_flags[6];    /* bars[0..5].flags, for tp_dxp_cfg_read_fixup */
};

/* The policy's verdicts as kern_return_t. */
static inline kern_return_t tp_kr(enum tp_dxp_err e)
{
	switch (e) {
	case TP_DXP_OK: return kIOReturnSuccess;
	case TP_DXP_BADARG: return kIOReturnBadArgument;
	case TP_DXP_NOTPERMITTED: return kIOReturnNotPermitted;
	case TP_DXP_NOSPACE: return kIOReturnNoSpace;
	case TP_DXP_NOTFOUND: return kIOReturnNotFound;
	case TP_DXP_NOMEMORY: return kIOReturnNoMemory;
	case TP_DXP_TIMEOUT: return kIOReturnTimeout;
	case TP_DXP_NOTREADY: return kIOReturnNotReady;
	case TP_DXP_IOERROR: return kIOReturnIOError;
	}
	return kIOReturnError;
}

#endif
