/* SPDX-License-Identifier: MIT */
/*
 * tp-rec2seed: turns a `thunderpass serve --record` file into fuzz_msg seeds.
 *
 *   tp-rec2seed RECORDING OUTDIR [MSGS]
 *
 * For each client session of the recording it writes OUTDIR/NAME-sN-full-bB
 * (the whole session, setup byte B: 0 model, 1 fake) and, cut into pieces of
 * MSGS messages (default 40), OUTDIR/NAME-sN-pK: the session's first message
 * (its VERSION) followed by piece K, alternating the identity and dart IOMMU.
 * Short seeds let the fuzzer mutate every stage of a real session cheaply.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

struct rec {
	size_t off, len;
};

static int write_seed(const char *dir, const char *name, uint8_t setup, const uint8_t *d,
		      const struct rec *first, const struct rec *r, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f) {
		fprintf(stderr, "tp-rec2seed: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fputc(setup, f);
	if (first)
		fwrite(d + first->off, 1, first->len, f);
	for (size_t i = 0; i < n; i++)
		fwrite(d + r[i].off, 1, r[i].len, f);
	if (fclose(f)) {
		fprintf(stderr, "tp-rec2seed: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Splits one session's records into seeds. */
static int emit(const char *dir, const char *base, unsigned sess, const uint8_t *d,
		const struct rec *r, size_t n, size_t per)
{
	char name[512];
	int rc = 0;

	for (uint8_t b = 0; b < 2; b++) {
		snprintf(name, sizeof(name), "%s-s%u-full-b%u", base, sess, b);
		rc |= write_seed(dir, name, b, d, NULL, r, n);
	}
	for (size_t k = 0; n > 1 && k * per < n - 1; k++) {
		size_t from = 1 + k * per, cnt = n - from < per ? n - from : per;

		snprintf(name, sizeof(name), "%s-s%u-p%zu", base, sess, k);
		rc |= write_seed(dir, name, (k & 1) ? 2 : 0, d, &r[0], &r[from], cnt);
	}
	return rc;
}

int main(int argc, char **argv)
{
	size_t per = argc > 3 ? strtoul(argv[3], NULL, 0) : 40, len = 0, cap = 1 << 20, pos, n = 0;
	uint8_t *d = malloc(cap);
	struct rec *r;
	unsigned sess = 0;
	char *base;
	FILE *f;
	int rc = 0;

	if (argc < 3 || !per || !d) {
		fprintf(stderr, "usage: tp-rec2seed RECORDING OUTDIR [MSGS]\n");
		return 2;
	}
	f = fopen(argv[1], "rb");
	if (!f) {
		fprintf(stderr, "tp-rec2seed: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (size_t got; (got = fread(d + len, 1, cap - len, f)) > 0;) {
		len += got;
		if (len == cap && !(d = realloc(d, cap *= 2)))
			return 1;
	}
	fclose(f);
	if (len < TP_REC_MAGIC_LEN || memcmp(d, TP_REC_MAGIC, TP_REC_MAGIC_LEN)) {
		fprintf(stderr, "tp-rec2seed: %s is not a recording\n", argv[1]);
		return 1;
	}
	r = calloc(len, sizeof(*r));
	base = basename(argv[1]);
	for (pos = TP_REC_MAGIC_LEN; pos < len;) {
		struct tp_vu_hdr h;
		size_t start = pos, nfds;

		if (d[pos] == TP_REC_END) {
			rc |= n ? emit(argv[2], base, sess++, d, r, n, per) : 0;
			n = 0;
			pos++;
			continue;
		}
		if (len - pos < 2 || len - pos - 2 < (nfds = d[pos + 1] & TP_REC_FD_COUNT) + sizeof(h))
			break;
		memcpy(&h, d + pos + 2 + nfds, sizeof(h));
		pos += 2 + nfds + sizeof(h);
		if (len - pos < tp_record_body_len(&h))
			break;
		pos += tp_record_body_len(&h);
		r[n++] = (struct rec){ start, pos - start };
	}
	if (pos < len)
		fprintf(stderr, "tp-rec2seed: %s: cut short at byte %zu\n", argv[1], pos);
	if (n)
		rc |= emit(argv[2], base, sess++, d, r, n, per);
	printf("tp-rec2seed: %s: %u sessions\n", argv[1], sess);
	free(r);
	free(d);
	return rc ? 1 : 0;
}
