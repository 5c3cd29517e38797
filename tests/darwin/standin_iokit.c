/* SPDX-License-Identifier: MIT */
/*
 * TEST STAND-IN: IOKit.framework, CoreFoundation and Mach as far as the
 * darwin backend uses them, in-process. Objects are small integers (as Mach
 * port names are); the registry holds IOPCIDevice entries, the stand-in
 * dext's service under each attached one, and a user-client entry under
 * the service while a session is open. Every reference the client takes is
 * counted so a test can check it released all of them; misuse (a release of
 * nothing, a call on a closed connection) aborts the test.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "standin.h"

/* ---- CoreFoundation -------------------------------------------------------- */

#define CF_MAGIC 0x43464f42u
enum { CF_STRING = 7, CF_DICT = 18, CF_DATA = 20, CF_BOOL = 21 };

struct __CFAllocator {
	int unused;
};

struct cf {
	uint32_t magic;
	CFTypeID type;
	int refs; /* -1: immortal */
	size_t len;
	uint8_t *bytes;
	bool flag; /* CF_BOOL value; CF_DICT: a name match (else a class match) */
};

static struct cf cf_true = { CF_MAGIC, CF_BOOL, -1, 0, NULL, true };
static struct cf cf_false = { CF_MAGIC, CF_BOOL, -1, 0, NULL, false };
static const struct __CFAllocator cf_alloc;
const CFAllocatorRef kCFAllocatorDefault = &cf_alloc;
const CFBooleanRef kCFBooleanTrue = (CFBooleanRef)&cf_true;
const CFBooleanRef kCFBooleanFalse = (CFBooleanRef)&cf_false;

static void die(const char *what)
{
	fprintf(stderr, "darwin stand-in: misuse: %s\n", what);
	abort();
}

static struct cf *cf_of(CFTypeRef r)
{
	struct cf *c = (struct cf *)(uintptr_t)r;

	if (!c || c->magic != CF_MAGIC)
		die("not a CF object");
	return c;
}

static struct cf *cf_new(CFTypeID type, const void *bytes, size_t len)
{
	struct cf *c = calloc(1, sizeof(*c));

	if (!c)
		abort();
	c->magic = CF_MAGIC;
	c->type = type;
	c->refs = 1;
	c->len = len;
	c->bytes = malloc(len + 1);
	if (!c->bytes)
		abort();
	if (len)
		memcpy(c->bytes, bytes, len);
	c->bytes[len] = 0;
	return c;
}

CFTypeID CFGetTypeID(CFTypeRef r) { return cf_of(r)->type; }
CFTypeID CFStringGetTypeID(void) { return CF_STRING; }
CFTypeID CFDataGetTypeID(void) { return CF_DATA; }
CFTypeID CFBooleanGetTypeID(void) { return CF_BOOL; }

CFTypeRef CFRetain(CFTypeRef r)
{
	struct cf *c = cf_of(r);

	if (c->refs >= 0)
		c->refs++;
	return r;
}

void CFRelease(CFTypeRef r)
{
	struct cf *c = cf_of(r);

	if (c->refs < 0)
		return;
	if (--c->refs == 0) {
		c->magic = 0;
		free(c->bytes);
		free(c);
	}
}

CFStringRef CFStringCreateWithCString(CFAllocatorRef a, const char *s, CFStringEncoding e)
{
	(void)a;
	(void)e;
	return (CFStringRef)cf_new(CF_STRING, s, strlen(s));
}

Boolean CFStringGetCString(CFStringRef s, char *buf, CFIndex size, CFStringEncoding e)
{
	struct cf *c = cf_of(s);

	(void)e;
	if (c->type != CF_STRING || size <= 0 || c->len >= (size_t)size)
		return 0;
	memcpy(buf, c->bytes, c->len + 1);
	return 1;
}

CFDataRef CFDataCreate(CFAllocatorRef a, const UInt8 *bytes, CFIndex len)
{
	(void)a;
	return (CFDataRef)cf_new(CF_DATA, bytes, (size_t)len);
}

CFIndex CFDataGetLength(CFDataRef d) { return (CFIndex)cf_of(d)->len; }
const UInt8 *CFDataGetBytePtr(CFDataRef d) { return cf_of(d)->bytes; }
Boolean CFBooleanGetValue(CFBooleanRef b) { return cf_of(b)->flag; }

/* ---- objects and the registry ------------------------------------------------ */

enum { OBJ_FREE = 0, OBJ_ENTRY, OBJ_ITER, OBJ_CONN };
#define MAX_OBJS 256

struct entry {
	char name[128];
	io_object_t parent;
	bool pci;
	struct standin_pci p;
	char pcidebug[64];
	struct standin_dext *dext; /* the dext's service entry */
};

struct obj {
	int kind;
	int refs; /* client references (entries), or 1 while alive */
	struct entry *e;
	io_object_t *items; /* iterator */
	size_t n, pos;
	struct standin_uc *uc; /* connection */
	io_object_t uc_entry;
};

static struct obj objs[MAX_OBJS];
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

const mach_port_t kIOMainPortDefault = 0;
struct standin_knobs standin_knobs;
struct standin_stats standin_stats;

static io_object_t obj_new(int kind)
{
	for (io_object_t i = 1; i < MAX_OBJS; i++)
		if (objs[i].kind == OBJ_FREE) {
			memset(&objs[i], 0, sizeof(objs[i]));
			objs[i].kind = kind;
			return i;
		}
	die("out of objects");
	return 0;
}

static struct obj *obj_get(io_object_t id, int kind)
{
	if (!id || id >= MAX_OBJS || objs[id].kind != kind)
		return NULL;
	return &objs[id];
}

static io_object_t entry_new(const char *name, io_object_t parent)
{
	io_object_t id = obj_new(OBJ_ENTRY);

	objs[id].e = calloc(1, sizeof(struct entry));
	if (!objs[id].e)
		abort();
	snprintf(objs[id].e->name, sizeof(objs[id].e->name), "%s", name);
	objs[id].e->parent = parent;
	return id;
}

static void entry_free(io_object_t id)
{
	free(objs[id].e);
	memset(&objs[id], 0, sizeof(objs[id]));
}

io_registry_entry_t standin_add_pci(const struct standin_pci *p)
{
	io_object_t id;

	pthread_mutex_lock(&reg_lock);
	id = entry_new("display", 0);
	objs[id].e->pci = true;
	objs[id].e->p = *p;
	if (p->pcidebug)
		snprintf(objs[id].e->pcidebug, sizeof(objs[id].e->pcidebug), "%s", p->pcidebug);
	else
		snprintf(objs[id].e->pcidebug, sizeof(objs[id].e->pcidebug), "%u:%u:%u", p->bus,
			 p->dev, p->fn);
	pthread_mutex_unlock(&reg_lock);
	return id;
}

int standin_attach_dext(io_registry_entry_t pci, struct tp_backend *be)
{
	struct obj *o = obj_get(pci, OBJ_ENTRY);
	struct standin_dext *dx;
	io_object_t id;

	if (!o || !o->e->pci)
		return -EINVAL;
	dx = standin_dext_new(be, o->e->p.bus, o->e->p.dev, o->e->p.fn);
	if (!dx)
		return -EIO;
	pthread_mutex_lock(&reg_lock);
	id = entry_new(TP_DUC_SERVICE_NAME, pci);
	objs[id].e->dext = dx;
	pthread_mutex_unlock(&reg_lock);
	return 0;
}

int standin_outstanding_refs(void)
{
	int n = 0;

	for (int i = 1; i < MAX_OBJS; i++)
		if (objs[i].kind == OBJ_ENTRY)
			n += objs[i].refs;
		else if (objs[i].kind != OBJ_FREE)
			n++;
	return n;
}

static io_object_t ref(io_object_t id)
{
	objs[id].refs++;
	return id;
}

kern_return_t IOObjectRelease(io_object_t id)
{
	struct obj *o = id && id < MAX_OBJS ? &objs[id] : NULL;

	if (!o || o->kind == OBJ_FREE || o->kind == OBJ_CONN)
		die("IOObjectRelease of nothing (or of a connection: IOServiceClose)");
	if (o->kind == OBJ_ITER) {
		free(o->items);
		memset(o, 0, sizeof(*o));
		return KERN_SUCCESS;
	}
	if (o->refs <= 0)
		die("IOObjectRelease of an entry the client does not hold");
	o->refs--;
	return KERN_SUCCESS;
}

/* Matching dictionaries: a name (IOServiceNameMatching) or a class. */
static CFMutableDictionaryRef matching(const char *s, bool by_name)
{
	struct cf *c = cf_new(CF_DICT, s, strlen(s));

	c->flag = by_name;
	return (CFMutableDictionaryRef)c;
}

CFMutableDictionaryRef IOServiceMatching(const char *name) { return matching(name, false); }
CFMutableDictionaryRef IOServiceNameMatching(const char *name) { return matching(name, true); }

static io_object_t iter_new(bool (*want)(const struct entry *, const void *), const void *arg)
{
	io_object_t it = obj_new(OBJ_ITER);

	objs[it].items = calloc(MAX_OBJS, sizeof(io_object_t));
	if (!objs[it].items)
		abort();
	for (io_object_t i = 1; i < MAX_OBJS; i++)
		if (objs[i].kind == OBJ_ENTRY && want(objs[i].e, arg))
			objs[it].items[objs[it].n++] = i;
	return it;
}

struct match_arg {
	const struct cf *dict;
	io_object_t parent;
};

static bool want_match(const struct entry *e, const void *arg)
{
	const struct cf *d = ((const struct match_arg *)arg)->dict;

	if (d->flag)
		return strcmp(e->name, (const char *)d->bytes) == 0;
	return e->pci && strcmp((const char *)d->bytes, "IOPCIDevice") == 0;
}

static bool want_child(const struct entry *e, const void *arg)
{
	return e->parent == ((const struct match_arg *)arg)->parent;
}

kern_return_t IOServiceGetMatchingServices(mach_port_t main, CFDictionaryRef m,
					   io_iterator_t *existing)
{
	struct match_arg a = { .dict = cf_of(m) };

	(void)main;
	if (a.dict->type != CF_DICT)
		die("matching is not a dictionary");
	pthread_mutex_lock(&reg_lock);
	*existing = iter_new(want_match, &a);
	pthread_mutex_unlock(&reg_lock);
	CFRelease(m); /* consumed, as IOKit does */
	return KERN_SUCCESS;
}

io_object_t IOIteratorNext(io_iterator_t it)
{
	struct obj *o = obj_get(it, OBJ_ITER);
	io_object_t id = 0;

	if (!o)
		die("IOIteratorNext of no iterator");
	pthread_mutex_lock(&reg_lock);
	while (o->pos < o->n && !id) {
		io_object_t c = o->items[o->pos++];

		if (objs[c].kind == OBJ_ENTRY) /* gone since: skip */
			id = ref(c);
	}
	pthread_mutex_unlock(&reg_lock);
	return id;
}

kern_return_t IORegistryEntryGetParentEntry(io_registry_entry_t e, const char *plane,
					    io_registry_entry_t *parent)
{
	struct obj *o = obj_get(e, OBJ_ENTRY);

	if (!o || strcmp(plane, kIOServicePlane))
		return kIOReturnBadArgument;
	if (!o->e->parent)
		return kIOReturnNoDevice;
	*parent = ref(o->e->parent);
	return KERN_SUCCESS;
}

kern_return_t IORegistryEntryGetChildIterator(io_registry_entry_t e, const char *plane,
					      io_iterator_t *it)
{
	struct match_arg a = { .parent = e };

	if (!obj_get(e, OBJ_ENTRY) || strcmp(plane, kIOServicePlane))
		return kIOReturnBadArgument;
	pthread_mutex_lock(&reg_lock);
	*it = iter_new(want_child, &a);
	pthread_mutex_unlock(&reg_lock);
	return KERN_SUCCESS;
}

kern_return_t IORegistryEntryGetName(io_registry_entry_t e, io_name_t name)
{
	struct obj *o = obj_get(e, OBJ_ENTRY);

	if (!o)
		return kIOReturnBadArgument;
	snprintf(name, sizeof(io_name_t), "%s", o->e->name);
	return KERN_SUCCESS;
}

static CFTypeRef le32(uint32_t v)
{
	UInt8 b[4] = { (UInt8)v, (UInt8)(v >> 8), (UInt8)(v >> 16), (UInt8)(v >> 24) };

	return CFDataCreate(kCFAllocatorDefault, b, 4);
}

CFTypeRef IORegistryEntryCreateCFProperty(io_registry_entry_t e, CFStringRef key,
					  CFAllocatorRef a, IOOptionBits options)
{
	struct obj *o = obj_get(e, OBJ_ENTRY);
	const char *k = (const char *)cf_of(key)->bytes;
	const struct entry *x;

	(void)a;
	(void)options;
	if (!o || !o->e->pci)
		return NULL;
	x = o->e;
	if (!strcmp(k, "pcidebug"))
		return x->p.pcidebug_as_data
			       ? (CFTypeRef)CFDataCreate(NULL, (const UInt8 *)x->pcidebug,
							 (CFIndex)strlen(x->pcidebug) + 1)
			       : (CFTypeRef)CFStringCreateWithCString(NULL, x->pcidebug, 0);
	if (!strcmp(k, "vendor-id"))
		return le32(x->p.vendor);
	if (!strcmp(k, "device-id"))
		return le32(x->p.device);
	if (!strcmp(k, "class-code"))
		return le32(x->p.class_code);
	if (!strcmp(k, "IOPCITunnelled") && x->p.tunnelled)
		return kCFBooleanTrue;
	return NULL;
}

/* ---- connections ----------------------------------------------------------------- */

mach_port_t mach_task_self(void)
{
	return 1;
}

kern_return_t IOServiceOpen(io_service_t s, task_port_t task, uint32_t type, io_connect_t *c)
{
	struct obj *o = obj_get(s, OBJ_ENTRY);
	struct standin_uc *uc;
	io_object_t id;
	int rc;

	if (!o || !o->e->dext || task != 1)
		return kIOReturnBadArgument;
	if (type != TP_DUC_CLIENT_TYPE)
		return kIOReturnBadArgument;
	rc = standin_dext_open(o->e->dext, &uc);
	if (rc)
		return rc == -EBUSY ? kIOReturnExclusiveAccess : kIOReturnNoMemory;
	pthread_mutex_lock(&reg_lock);
	id = obj_new(OBJ_CONN);
	objs[id].refs = 1;
	objs[id].uc = uc;
	objs[id].uc_entry = entry_new("ThunderpassUserClient", s);
	pthread_mutex_unlock(&reg_lock);
	*c = id;
	return KERN_SUCCESS;
}

kern_return_t IOServiceClose(io_connect_t c)
{
	struct obj *o = obj_get(c, OBJ_CONN);

	if (!o)
		die("IOServiceClose of no connection");
	standin_dext_close(o->uc);
	pthread_mutex_lock(&reg_lock);
	entry_free(o->uc_entry);
	memset(o, 0, sizeof(*o));
	pthread_mutex_unlock(&reg_lock);
	return KERN_SUCCESS;
}

static struct standin_uc *conn_uc(mach_port_t c)
{
	struct obj *o = obj_get(c, OBJ_CONN);

	return o ? o->uc : NULL;
}

kern_return_t IOConnectCallMethod(mach_port_t c, uint32_t selector, const uint64_t *input,
				  uint32_t inputCnt, const void *inputStruct, size_t inputStructCnt,
				  uint64_t *output, uint32_t *outputCnt, void *outputStruct,
				  size_t *outputStructCnt)
{
	struct standin_uc *uc = conn_uc(c);
	struct standin_call call = {
		.selector = selector, .in = input, .nin = inputCnt, .sin = inputStruct,
		.sinlen = inputStructCnt, .out = output, .nout = outputCnt ? *outputCnt : 0,
		.sout_max = outputStructCnt ? *outputStructCnt : 0, .sout_buf = outputStruct,
	};
	kern_return_t kr;

	if (!uc)
		return MACH_SEND_INVALID_DEST;
	if ((inputCnt && !input) || (call.nout && !output) || (call.sout_max && !outputStruct))
		die("IOConnectCallMethod: a count without its buffer");
	kr = standin_dext_call(uc, &call);
	if (kr == KERN_SUCCESS && outputStructCnt)
		*outputStructCnt = call.sout_len;
	return kr;
}

kern_return_t IOConnectCallAsyncScalarMethod(mach_port_t c, uint32_t selector,
					     mach_port_t wake_port, uint64_t *reference,
					     uint32_t referenceCnt, const uint64_t *input,
					     uint32_t inputCnt, uint64_t *output,
					     uint32_t *outputCnt)
{
	struct standin_uc *uc = conn_uc(c);
	struct standin_call call = {
		.selector = selector, .in = input, .nin = inputCnt, .out = output,
		.nout = outputCnt ? *outputCnt : 0, .async = true, .wake_port = wake_port,
	};

	if (!uc)
		return MACH_SEND_INVALID_DEST;
	if (!reference || referenceCnt != kOSAsyncRef64Count || !wake_port)
		return kIOReturnBadArgument;
	memcpy(call.ref, reference, sizeof(call.ref));
	return standin_dext_call(uc, &call);
}

kern_return_t IOConnectMapMemory64(io_connect_t c, uint32_t memoryType, task_port_t task,
				   mach_vm_address_t *atAddress, mach_vm_size_t *ofSize,
				   IOOptionBits options)
{
	struct standin_uc *uc = conn_uc(c);

	if (!uc || task != 1 || !(options & kIOMapAnywhere))
		return kIOReturnBadArgument;
	return standin_dext_map(uc, memoryType, options, atAddress, ofSize);
}

kern_return_t IOConnectUnmapMemory64(io_connect_t c, uint32_t memoryType, task_port_t task,
				     mach_vm_address_t atAddress)
{
	struct standin_uc *uc = conn_uc(c);

	if (!uc || task != 1)
		return kIOReturnBadArgument;
	standin_dext_unmap(uc, memoryType, atAddress);
	return KERN_SUCCESS;
}

/* ---- Mach ports and async completions ------------------------------------------------ */

#define MAX_PORTS 16
#define PORT_BASE 0x1000u

struct qmsg {
	struct qmsg *next;
	uint64_t ref[kOSAsyncRef64Count];
	IOReturn result;
	uint32_t nargs;
	uint64_t args[16];
};

/* What mach_msg hands the client: a header and our payload. */
struct wire_msg {
	mach_msg_header_t hdr;
	uint64_t ref[kOSAsyncRef64Count];
	IOReturn result;
	uint32_t nargs;
	uint64_t args[16];
};

struct port {
	bool used;
	struct qmsg *head, *tail;
};

struct IONotificationPort {
	mach_port_t name;
};

static struct port ports[MAX_PORTS];
static pthread_mutex_t port_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t port_cond = PTHREAD_COND_INITIALIZER;

static struct port *port_get(mach_port_t name)
{
	if (name < PORT_BASE || name >= PORT_BASE + MAX_PORTS || !ports[name - PORT_BASE].used)
		return NULL;
	return &ports[name - PORT_BASE];
}

IONotificationPortRef IONotificationPortCreate(mach_port_t main)
{
	IONotificationPortRef n = calloc(1, sizeof(*n));

	(void)main;
	if (!n)
		return NULL;
	pthread_mutex_lock(&port_lock);
	for (unsigned i = 0; i < MAX_PORTS; i++)
		if (!ports[i].used) {
			ports[i].used = true;
			n->name = PORT_BASE + i;
			break;
		}
	pthread_mutex_unlock(&port_lock);
	if (!n->name) {
		free(n);
		return NULL;
	}
	return n;
}

void IONotificationPortDestroy(IONotificationPortRef n)
{
	struct port *p;

	pthread_mutex_lock(&port_lock);
	p = port_get(n->name);
	if (!p)
		die("IONotificationPortDestroy of no port");
	while (p->head) {
		struct qmsg *m = p->head;

		p->head = m->next;
		free(m);
	}
	memset(p, 0, sizeof(*p));
	pthread_mutex_unlock(&port_lock);
	free(n);
}

mach_port_t IONotificationPortGetMachPort(IONotificationPortRef n)
{
	return n->name;
}

void standin_post_completion(mach_port_t port, const uint64_t ref[kOSAsyncRef64Count],
			     IOReturn result, const uint64_t *args, uint32_t nargs)
{
	struct qmsg *m = calloc(1, sizeof(*m));
	struct port *p;

	if (!m)
		abort();
	memcpy(m->ref, ref, sizeof(m->ref));
	m->result = result;
	m->nargs = nargs > 16 ? 16 : nargs;
	memcpy(m->args, args, m->nargs * sizeof(uint64_t));
	pthread_mutex_lock(&port_lock);
	p = port_get(port);
	if (!p) { /* the client destroyed its port: the message dies, as in Mach */
		pthread_mutex_unlock(&port_lock);
		free(m);
		return;
	}
	if (p->tail)
		p->tail->next = m;
	else
		p->head = m;
	p->tail = m;
	if (result == kIOReturnAborted)
		standin_stats.aborts++;
	else
		standin_stats.completions++;
	pthread_cond_broadcast(&port_cond);
	pthread_mutex_unlock(&port_lock);
}

mach_msg_return_t mach_msg(mach_msg_header_t *msg, mach_msg_option_t option,
			   mach_msg_size_t send_size, mach_msg_size_t rcv_size,
			   mach_port_name_t rcv_name, mach_msg_timeout_t timeout,
			   mach_port_name_t notify)
{
	struct timespec until;
	struct port *p;
	struct qmsg *m;
	struct wire_msg *w = (struct wire_msg *)msg;

	(void)notify;
	if (!(option & MACH_RCV_MSG) || send_size)
		die("mach_msg: the stand-in only receives");
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout / 1000;
	until.tv_nsec += (long)(timeout % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&port_lock);
	for (;;) {
		p = port_get(rcv_name);
		if (!p) {
			pthread_mutex_unlock(&port_lock);
			return MACH_RCV_INVALID_NAME;
		}
		if (p->head)
			break;
		if (!(option & MACH_RCV_TIMEOUT)) {
			pthread_cond_wait(&port_cond, &port_lock);
		} else if (pthread_cond_timedwait(&port_cond, &port_lock, &until) == ETIMEDOUT) {
			pthread_mutex_unlock(&port_lock);
			return MACH_RCV_TIMED_OUT;
		}
	}
	if (rcv_size < sizeof(*w)) {
		pthread_mutex_unlock(&port_lock);
		return MACH_RCV_TOO_LARGE;
	}
	m = p->head;
	p->head = m->next;
	if (!p->head)
		p->tail = NULL;
	pthread_mutex_unlock(&port_lock);
	memset(w, 0, sizeof(*w));
	w->hdr.msgh_size = sizeof(*w);
	w->hdr.msgh_local_port = rcv_name;
	w->hdr.msgh_id = 57; /* kOSAsyncCompleteMessageID */
	memcpy(w->ref, m->ref, sizeof(w->ref));
	w->result = m->result;
	w->nargs = m->nargs;
	memcpy(w->args, m->args, sizeof(w->args));
	free(m);
	return MACH_MSG_SUCCESS;
}

void IODispatchCalloutFromMessage(void *unused, mach_msg_header_t *msg, void *reference)
{
	struct wire_msg *w = (struct wire_msg *)msg;
	IOAsyncCallback cb;
	void *args[16];

	(void)unused;
	(void)reference;
	if (w->hdr.msgh_id != 57)
		die("IODispatchCalloutFromMessage: not an async completion");
	for (uint32_t i = 0; i < w->nargs; i++)
		args[i] = (void *)(uintptr_t)w->args[i];
	cb = (IOAsyncCallback)(uintptr_t)w->ref[kIOAsyncCalloutFuncIndex];
	cb((void *)(uintptr_t)w->ref[kIOAsyncCalloutRefconIndex], w->result, args, w->nargs);
}

/* ---- teardown ---------------------------------------------------------------------- */

void standin_reset(void)
{
	for (io_object_t i = 1; i < MAX_OBJS; i++) {
		if (objs[i].kind == OBJ_CONN) {
			standin_dext_close(objs[i].uc);
			memset(&objs[i], 0, sizeof(objs[i]));
		}
	}
	for (io_object_t i = 1; i < MAX_OBJS; i++) {
		if (objs[i].kind == OBJ_ENTRY && objs[i].e->dext)
			standin_dext_free(objs[i].e->dext);
		if (objs[i].kind == OBJ_ENTRY)
			entry_free(i);
		else if (objs[i].kind == OBJ_ITER)
			free(objs[i].items);
		memset(&objs[i], 0, sizeof(objs[i]));
	}
	for (unsigned i = 0; i < MAX_PORTS; i++) {
		while (ports[i].head) {
			struct qmsg *m = ports[i].head;

			ports[i].head = m->next;
			free(m);
		}
		memset(&ports[i], 0, sizeof(ports[i]));
	}
	memset(&standin_knobs, 0, sizeof(standin_knobs));
	memset(&standin_stats, 0, sizeof(standin_stats));
}
