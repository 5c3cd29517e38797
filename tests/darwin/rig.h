/* SPDX-License-Identifier: MIT */
/*
 * Test rig for the darwin backend against the stand-in: a registry with a
 * bridge, a GB202 (the model GPU) on a Thunderbolt tunnel at 03:00.0 with the
 * stand-in dext attached, and its audio function 03:00.1 without one.
 */
#ifndef TP_DARWIN_RIG_H
#define TP_DARWIN_RIG_H

#include <stdint.h>

#include <thunderpass/backend.h>

#include "darwin.h"
#include "standin.h"

/* standin_reset(), then the registry; model options e.g. "fault=no-flr-return" (or NULL).
 * Set standin_knobs after standin_reset() and before this: rig_registry keeps them. */
void rig_registry(const char *model_opt);
/* The darwin backend for "device=BDF" plus extra "key=value" options (NULL-ended). */
int rig_open(struct tp_backend **be, const char *bdf, ...);
/* Destroys it and checks nothing is left: no IOKit reference, no session,
 * nothing in the DART. Then standin_reset(). */
void rig_close(struct tp_backend *be);

#endif
