/* SPDX-License-Identifier: MIT */
/*
 * Interrupts from the dext to the core. The dext owns the function's MSI or
 * MSI-X vectors (macOS programs them; one IOInterruptDispatchSource per
 * vector). Its handler sets the vector's bit in the IRQ page, a page both
 * sides map, and completes our outstanding IRQ_ARM, an async call whose
 * completion arrives as a Mach message on our notification port.
 *
 * Our thread: arm, wait for the message (or 100 ms), take every pending bit
 * with an atomic exchange, raise each vector into the core (tp_backend_irq:
 * the core writes the client's eventfd, a pipe on macOS), arm again. One
 * completion in flight at most; interrupts that come meanwhile gather as
 * bits, so a storm costs one message per round, not one per interrupt. The
 * timeout drains the page too: a lost message delays a vector by at most
 * 100 ms instead of losing it.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include <thunderpass/log.h>

#include "darwin.h"

#define IRQ_WAIT_MS 100
#define IRQ_MSG_MAX 4096 /* an async completion is well under 1 KiB */

/* Runs on our thread, inside IODispatchCalloutFromMessage. */
static void irq_callback(void *refcon, IOReturn result, void **args, uint32_t nargs)
{
	struct darwin_dev *d = refcon;

	(void)args;
	(void)nargs;
	__atomic_store_n(&d->irq_armed, 0, __ATOMIC_SEQ_CST);
	if (result == kIOReturnAborted) {
		/* IRQ_TEARDOWN: nothing more will come; do not arm again. */
		__atomic_store_n(&d->irq_aborted, 1, __ATOMIC_SEQ_CST);
		return;
	}
	if (result != kIOReturnSuccess)
		__atomic_add_fetch(&d->irq_arm_errors, 1, __ATOMIC_RELAXED);
	else
		__atomic_add_fetch(&d->irq_notifications, 1, __ATOMIC_RELAXED);
}

static void irq_drain(struct darwin_dev *d)
{
	uint32_t words = (d->irq_vectors + 63) / 64;

	for (uint32_t w = 0; w < words; w++) {
		uint64_t bits = __atomic_exchange_n(&d->irq_page->pending[w], 0, __ATOMIC_SEQ_CST);

		while (bits) {
			uint32_t v = w * 64 + (uint32_t)__builtin_ctzll(bits);

			bits &= bits - 1;
			/* Bits past what was granted come from a confused dext. */
			if (v < d->irq_vectors) {
				__atomic_add_fetch(&d->irq_raised, 1, __ATOMIC_SEQ_CST);
				tp_backend_irq(&d->be, v);
			}
		}
	}
}

static kern_return_t irq_arm(struct darwin_dev *d)
{
	uint64_t ref[kOSAsyncRef64Count];
	kern_return_t kr;

	memset(ref, 0, sizeof(ref));
	ref[kIOAsyncCalloutFuncIndex] = (io_user_reference_t)(uintptr_t)irq_callback;
	ref[kIOAsyncCalloutRefconIndex] = (io_user_reference_t)(uintptr_t)d;
	__atomic_store_n(&d->irq_armed, 1, __ATOMIC_SEQ_CST);
	kr = IOConnectCallAsyncScalarMethod(d->conn, TP_DUC_IRQ_ARM,
					    IONotificationPortGetMachPort(d->irq_port), ref,
					    kOSAsyncRef64Count, NULL, 0, NULL, NULL);
	if (kr != KERN_SUCCESS)
		__atomic_store_n(&d->irq_armed, 0, __ATOMIC_SEQ_CST);
	return kr;
}

static void *irq_thread(void *arg)
{
	struct darwin_dev *d = arg;
	mach_port_t mp = IONotificationPortGetMachPort(d->irq_port);
	union {
		mach_msg_header_t hdr;
		uint8_t buf[IRQ_MSG_MAX];
	} msg;
	bool arm_logged = false, rcv_logged = false;

	while (!__atomic_load_n(&d->irq_stop, __ATOMIC_SEQ_CST)) {
		kern_return_t kr;

		if (!__atomic_load_n(&d->irq_armed, __ATOMIC_SEQ_CST) &&
		    !__atomic_load_n(&d->irq_aborted, __ATOMIC_SEQ_CST)) {
			kr = irq_arm(d);
			if (kr != KERN_SUCCESS) {
				__atomic_add_fetch(&d->irq_arm_errors, 1, __ATOMIC_RELAXED);
				if (!arm_logged)
					tp_err(d->be.name, "IRQ_ARM: %s (%#x); polling the IRQ page "
							   "every %d ms instead",
					       tp_darwin_krstr(kr), kr, IRQ_WAIT_MS);
				arm_logged = true;
			}
		}
		memset(&msg.hdr, 0, sizeof(msg.hdr));
		kr = mach_msg(&msg.hdr, MACH_RCV_MSG | MACH_RCV_TIMEOUT, 0,
			      (mach_msg_size_t)sizeof(msg), mp, IRQ_WAIT_MS, MACH_PORT_NULL);
		if (kr == MACH_MSG_SUCCESS) {
			IODispatchCalloutFromMessage(NULL, &msg.hdr, d->irq_port);
		} else if (kr != MACH_RCV_TIMED_OUT) {
			struct timespec ts = { 0, IRQ_WAIT_MS * 1000000L };

			if (!rcv_logged)
				tp_err(d->be.name, "waiting for interrupts: mach_msg %#x", kr);
			rcv_logged = true;
			nanosleep(&ts, NULL); /* never spin on a broken port */
		}
		irq_drain(d);
	}
	return NULL;
}

/* MSI-X when the function has it (more vectors, what NVIDIA's driver
 * prefers), else MSI; want forces one. */
static int pick(struct darwin_dev *d, const char *want, uint32_t *type, uint32_t *count)
{
	bool msix = d->info.cap_msix && d->info.msix_vectors;
	bool msi = d->info.cap_msi && d->info.msi_vectors;
	bool want_msix = !strcmp(want, "msix"), want_msi = !strcmp(want, "msi");

	if ((want_msix && !msix) || (want_msi && !msi)) {
		tp_err(d->be.name, "irq=%s: the function has no %s capability", want,
		       want_msix ? "MSI-X" : "MSI");
		return -EINVAL;
	}
	if (!msix && !msi)
		return 1;
	if (msix && !want_msi) {
		*type = TP_DUC_IRQ_MSIX;
		*count = d->info.msix_vectors;
	} else {
		*type = TP_DUC_IRQ_MSI;
		*count = d->info.msi_vectors;
	}
	return 0;
}

int tp_darwin_irq_start(struct darwin_dev *d, const char *want)
{
	uint64_t in[2], granted = 0;
	mach_vm_address_t addr = 0;
	mach_vm_size_t size = 0;
	uint32_t type = 0, count = 0;
	const struct tp_duc_irq_page *pg;
	kern_return_t kr;
	int rc;

	rc = pick(d, want, &type, &count);
	if (rc > 0) {
		tp_warn(d->be.name, "no MSI or MSI-X capability: the device's interrupts cannot "
				    "reach the guest");
		return 0;
	}
	if (rc)
		return rc;
	in[0] = type;
	in[1] = count;
	rc = tp_darwin_call(d, TP_DUC_IRQ_SETUP, in, TP_DUC_IRQ_SETUP_IN, NULL, 0, &granted,
			    TP_DUC_IRQ_SETUP_OUT, NULL, 0);
	if (rc) {
		tp_err(d->be.name, "setting up %u %s vectors: %s", count,
		       type == TP_DUC_IRQ_MSIX ? "MSI-X" : "MSI", strerror(-rc));
		return rc;
	}
	d->irq_type = type; /* set up in the dext: tp_darwin_irq_stop tears it down */
	if (!granted || granted > count) {
		tp_err(d->be.name, "IRQ_SETUP granted %" PRIu64 " of %u vectors", granted, count);
		return -EPROTO;
	}
	d->irq_vectors = (uint32_t)granted;
	if (granted < count)
		tp_warn(d->be.name, "%" PRIu64 " of %u %s vectors granted: vectors from %" PRIu64
				    " up never fire", granted, count,
			type == TP_DUC_IRQ_MSIX ? "MSI-X" : "MSI", granted);
	kr = IOConnectMapMemory64(d->conn, TP_DUC_MEM_IRQ_PAGE, mach_task_self(), &addr, &size,
				  kIOMapAnywhere);
	if (kr != KERN_SUCCESS || !addr) {
		tp_err(d->be.name, "mapping the IRQ page: %s (%#x)", tp_darwin_krstr(kr), kr);
		return kr ? tp_darwin_errno(kr) : -EPROTO;
	}
	d->irq_page = (struct tp_duc_irq_page *)(uintptr_t)addr;
	pg = d->irq_page;
	if (size < sizeof(*pg) || pg->magic != TP_DUC_MAGIC || pg->abi != TP_DUC_ABI ||
	    pg->type != type || pg->vectors != granted) {
		tp_err(d->be.name, "the IRQ page is not what IRQ_SETUP set up (%llu bytes, type %u, "
				   "%u vectors)", (unsigned long long)size, pg->type, pg->vectors);
		return -EPROTO;
	}
	d->irq_port = IONotificationPortCreate(kIOMainPortDefault);
	if (!d->irq_port) {
		tp_err(d->be.name, "IONotificationPortCreate failed");
		return -ENOMEM;
	}
	rc = -pthread_create(&d->irq_thread, NULL, irq_thread, d);
	if (rc) {
		tp_err(d->be.name, "interrupt thread: %s", strerror(-rc));
		return rc;
	}
	d->irq_thread_started = true;
	return 0;
}

void tp_darwin_irq_stop(struct darwin_dev *d)
{
	if (d->irq_thread_started) {
		__atomic_store_n(&d->irq_stop, 1, __ATOMIC_SEQ_CST);
		pthread_join(d->irq_thread, NULL); /* within IRQ_WAIT_MS */
		d->irq_thread_started = false;
		tp_info(d->be.name, "interrupts: %" PRIu64 " notifications, %" PRIu64
				    " vectors raised, %" PRIu64 " arm errors",
			d->irq_notifications, d->irq_raised, d->irq_arm_errors);
	}
	if (d->irq_type) {
		int rc = tp_darwin_call(d, TP_DUC_IRQ_TEARDOWN, NULL, 0, NULL, 0, NULL, 0, NULL, 0);

		if (rc)
			tp_warn(d->be.name, "IRQ_TEARDOWN: %s (closing the connection ends it)",
				strerror(-rc));
		d->irq_type = 0;
	}
	if (d->irq_page) {
		IOConnectUnmapMemory64(d->conn, TP_DUC_MEM_IRQ_PAGE, mach_task_self(),
				       (mach_vm_address_t)(uintptr_t)d->irq_page);
		d->irq_page = NULL;
	}
	if (d->irq_port) {
		IONotificationPortDestroy(d->irq_port); /* drops a queued completion too */
		d->irq_port = NULL;
	}
	d->irq_vectors = 0;
}
