/*
 * fuzz_share_manifest.c - the share manifest, its signed envelope and the
 * organisation config on untrusted bytes.
 *
 * First byte even: the rest is an envelope ("gatekeeper-share-manifest
 * v1\nkey: ...") opened as a receiver does. First byte odd: the rest is
 * signed here with a fixed identity and opened, so the manifest and
 * config parsers behind the signature are reached. Invariants: every
 * path of a parsed manifest is safe (no "..", not absolute, no empty
 * component) and unique; a parsed config re-serialises and parses again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "share/share.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static age_identity id;
static int ready;

static void
check_manifest(gk_slice body)
{
	share_manifest m;
	char err[256];
	size_t i, j;

	if (share_manifest_parse(body, &m, err, sizeof(err)) != 0) {
		if (err[0] == '\0')
			__builtin_trap();
		return;
	}
	for (i = 0; i < m.n; i++) {
		const char *p = m.files[i].path;

		if (!share_path_ok(gk_slice_str(p)) || p[0] == '/' ||
		    strstr(p, "//") != NULL || strcmp(p, "..") == 0 ||
		    strncmp(p, "../", 3) == 0 || strstr(p, "/../") != NULL ||
		    m.files[i].mode > 0777 || !share_id_ok(m.id))
			__builtin_trap();
		for (j = 0; j < i && m.n < 64; j++)
			if (strcmp(m.files[j].path, p) == 0)
				__builtin_trap();
	}
	share_manifest_release(&m);
}

static void
check_config(gk_slice body)
{
	share_config c, c2;
	char err[256];
	gk_buf b;

	if (share_config_parse(body, &c, err, sizeof(err)) != 0)
		return;
	gk_buf_init(&b, SHARE_CONFIG_MAX * 2);
	if (share_config_json(&c, &b) != 0 ||
	    share_config_parse(gk_slice_of(b.data, b.len), &c2, err,
	    sizeof(err)) != 0)
		__builtin_trap();
	if (c2.n_recipients != c.n_recipients || c2.n_senders != c.n_senders)
		__builtin_trap();
	share_config_release(&c2);
	share_config_release(&c);
	gk_buf_release(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t pub[32], mine[32];
	gk_slice body;
	gk_buf env;

	if (!ready) {
		if (age_identity_generate(&id) != 0)
			abort();
		ready = 1;
	}
	if (size == 0)
		return 0;
	gk_buf_init(&env, SHARE_ENVELOPE_MAX);
	if ((data[0] & 1) == 0) {
		if (share_envelope_open("manifest", gk_slice_of(data + 1,
		    size - 1), pub, &body) == 0)
			check_manifest(body);
	} else {
		if (share_envelope_sign("manifest", &id, gk_slice_of(data + 1,
		    size - 1), &env) != 0 || share_envelope_open("manifest",
		    gk_slice_of(env.data, env.len), pub, &body) != 0 ||
		    share_sign_pub(&id, mine) != 0 ||
		    memcmp(pub, mine, 32) != 0 || body.len != size - 1)
			__builtin_trap();
		/* a config envelope is not a manifest envelope */
		if (share_envelope_open("config", gk_slice_of(env.data,
		    env.len), pub, &body) == 0)
			__builtin_trap();
		check_manifest(gk_slice_of(data + 1, size - 1));
		check_config(gk_slice_of(data + 1, size - 1));
	}
	gk_buf_release(&env);
	return 0;
}
