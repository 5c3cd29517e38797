/* SPDX-License-Identifier: MIT */
/*
 * VERSION: protocol 0.0 and the JSON capabilities, parsed with json-c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include <thunderpass/log.h>
#include <thunderpass/protocol.h>

#include "session.h"
#include "util.h"

static int get_u64(json_object *caps, const char *key, uint64_t *out, bool *present)
{
	json_object *v;

	*present = json_object_object_get_ex(caps, key, &v);
	if (!*present)
		return 0;
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return -EINVAL;
	*out = (uint64_t)json_object_get_int64(v);
	return 0;
}

static int parse_caps(json_object *caps, struct tp_client_caps *out, const char *who)
{
	uint64_t v;
	bool has;
	json_object *b;

	if (get_u64(caps, "max_msg_fds", &v, &has))
		goto bad;
	if (has)
		out->max_msg_fds = (uint32_t)TP_MIN(v, 1024u);
	if (get_u64(caps, "max_data_xfer_size", &v, &has) || (has && !v))
		goto bad;
	if (has)
		out->max_data_xfer = v;
	if (get_u64(caps, "pgsizes", &v, &has))
		goto bad;
	if (has)
		out->pgsizes = v;
	if (get_u64(caps, "max_dma_maps", &v, &has))
		goto bad;
	if (has)
		out->max_dma_maps = (uint32_t)TP_MIN(v, UINT32_MAX);
	if (json_object_object_get_ex(caps, "write_multiple", &b)) {
		if (!json_object_is_type(b, json_type_boolean))
			goto bad;
		out->write_multiple = json_object_get_boolean(b);
	}
	return 0;
bad:
	tp_warn(who, "VERSION: malformed capabilities");
	return -EINVAL;
}

/* The whole string must be one JSON value (trailing blanks aside): a parser
 * that stops at the first value would accept "{}garbage". */
static json_object *parse_whole(const char *json)
{
	json_tokener *tok = json_tokener_new();
	json_object *root;
	size_t len = strlen(json), used;

	if (!tok)
		return NULL;
	root = json_tokener_parse_ex(tok, json, (int)len);
	used = json_tokener_get_parse_end(tok);
	if (json_tokener_get_error(tok) != json_tokener_success)
		root = (json_object_put(root), NULL);
	json_tokener_free(tok);
	if (root && json[used + strspn(json + used, " \t\r\n")]) {
		json_object_put(root);
		root = NULL;
	}
	return root;
}

int tp_version_parse(const uint8_t *payload, uint32_t len, struct tp_client_caps *out,
		     const char *who)
{
	const struct tp_vu_version *v = (const void *)payload;
	const char *json = (const char *)payload + sizeof(*v);
	uint32_t jlen = len - (uint32_t)sizeof(*v);
	json_object *root, *caps;
	int rc = 0;

	/* The spec's defaults, for a client that names nothing. */
	*out = (struct tp_client_caps){
		.max_msg_fds = 1, .max_data_xfer = TP_VU_MAX_DATA_XFER, .pgsizes = 4096,
		.max_dma_maps = TP_VU_MAX_DMA_MAPS,
	};
	if (v->major != TP_VU_MAJOR) {
		tp_warn(who, "VERSION %u.%u: only major version %u is spoken", v->major, v->minor,
			TP_VU_MAJOR);
		return -ENOTSUP;
	}
	if (!jlen)
		return 0;
	if (!memchr(json, '\0', jlen)) {
		tp_warn(who, "VERSION: capabilities are not NUL-terminated");
		return -EINVAL;
	}
	if (!json[0])
		return 0;
	root = parse_whole(json);
	if (!root || !json_object_is_type(root, json_type_object)) {
		tp_warn(who, "VERSION: capabilities are not a JSON object");
		json_object_put(root);
		return -EINVAL;
	}
	if (json_object_object_get_ex(root, "capabilities", &caps)) {
		if (json_object_is_type(caps, json_type_object))
			rc = parse_caps(caps, out, who);
		else
			rc = -EINVAL;
	}
	json_object_put(root);
	return rc;
}

int tp_version_reply(uint8_t *out, uint32_t max)
{
	/* Longest first; QEMU's request leaves room for the first. */
	static const char *const caps[] = {
		"{\"capabilities\":{\"max_msg_fds\":%u,\"max_data_xfer_size\":%u,"
		"\"pgsizes\":%u,\"max_dma_maps\":%u,\"write_multiple\":true}}",
		"{\"capabilities\":{\"max_msg_fds\":%u,\"max_data_xfer_size\":%u}}",
	};
	struct tp_vu_version v = { .major = TP_VU_MAJOR, .minor = TP_VU_MINOR };
	char json[256];

	if (max < sizeof(v))
		return -EINVAL;
	memcpy(out, &v, sizeof(v));
	for (size_t i = 0; i < TP_ARRAY_SIZE(caps); i++) {
		int n = snprintf(json, sizeof(json), caps[i], TP_VU_MAX_MSG_FDS,
				 TP_VU_MAX_DATA_XFER, TP_VU_PGSIZES, TP_VU_MAX_DMA_MAPS);

		if (n > 0 && sizeof(v) + (uint32_t)n + 1 <= max) {
			memcpy(out + sizeof(v), json, (size_t)n + 1);
			return (int)sizeof(v) + n + 1;
		}
	}
	/* No room for any JSON: the defaults of the spec apply. */
	return (int)sizeof(v);
}
