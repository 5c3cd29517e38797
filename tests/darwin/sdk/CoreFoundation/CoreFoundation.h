/* SPDX-License-Identifier: MIT */
/*
 * TEST STAND-IN, not Apple's header: the CoreFoundation subset the darwin
 * backend reads IORegistry properties with (strings, data, booleans).
 */
#ifndef TP_STANDIN_CF_H
#define TP_STANDIN_CF_H

#include <stdint.h>

typedef const void *CFTypeRef;
typedef const struct __CFString *CFStringRef;
typedef const struct __CFData *CFDataRef;
typedef const struct __CFBoolean *CFBooleanRef;
typedef const struct __CFDictionary *CFDictionaryRef;
typedef struct __CFDictionary *CFMutableDictionaryRef;
typedef const struct __CFAllocator *CFAllocatorRef;
typedef unsigned long CFTypeID;
typedef long CFIndex;
typedef uint8_t UInt8;
typedef unsigned char Boolean;
typedef uint32_t CFStringEncoding;

#define kCFStringEncodingUTF8 0x08000100u

extern const CFAllocatorRef kCFAllocatorDefault;
extern const CFBooleanRef kCFBooleanTrue;
extern const CFBooleanRef kCFBooleanFalse;

CFTypeID CFGetTypeID(CFTypeRef cf);
CFTypeID CFStringGetTypeID(void);
CFTypeID CFDataGetTypeID(void);
CFTypeID CFBooleanGetTypeID(void);
CFTypeRef CFRetain(CFTypeRef cf);
void CFRelease(CFTypeRef cf);
CFStringRef CFStringCreateWithCString(CFAllocatorRef a, const char *s, CFStringEncoding e);
Boolean CFStringGetCString(CFStringRef s, char *buf, CFIndex size, CFStringEncoding e);
CFDataRef CFDataCreate(CFAllocatorRef a, const UInt8 *bytes, CFIndex len);
CFIndex CFDataGetLength(CFDataRef d);
const UInt8 *CFDataGetBytePtr(CFDataRef d);
Boolean CFBooleanGetValue(CFBooleanRef b);

#endif
