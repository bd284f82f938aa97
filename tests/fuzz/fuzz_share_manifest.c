/*
 * fuzz_share_manifest.c - the share manifest, its signed envelope and the
 * organisation config on untrusted bytes.
 *
 * First byte even: the rest is an envelope ("gatekeeper-share-manifest
 * v1\nkey: ...") opened as a receiver does. First byte odd: the rest is
 * signed here with a fixed identity and opened, so the manifest and
 * config parsers behind the signature are reached. The envelope opened in
 * place gives the answer the copying open gives. Invariants: every
 * path of a parsed manifest is safe (no "..", not absolute, no empty
 * component) and unique; the sizes add up to at most INT64_MAX; a
 * parsed config re-serialises and parses again.
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
	uint64_t total = 0;
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
		/* the sizes add up without wrapping (receive's totals) */
		total += m.files[i].size;
		if (total > INT64_MAX)
			__builtin_trap();
		for (j = 0; j < i && m.n < 64; j++)
			if (strcmp(m.files[j].path, p) == 0)
				__builtin_trap();
	}
	/* what was parsed is written back and parses the same */
	{
		share_manifest m2;
		gk_buf b;

		gk_buf_init(&b, SHARE_ENVELOPE_MAX);
		if (share_manifest_json(&m, &b) != 0 ||
		    share_manifest_parse(gk_slice_of(b.data, b.len), &m2, err,
		    sizeof(err)) != 0 || m2.n != m.n ||
		    m2.created != m.created || strcmp(m2.sender, m.sender) != 0)
			__builtin_trap();
		for (i = 0; i < m.n; i++)
			if (strcmp(m.files[i].path, m2.files[i].path) != 0 ||
			    m.files[i].size != m2.files[i].size ||
			    strcmp(m.files[i].object, m2.files[i].object) != 0)
				__builtin_trap();
		share_manifest_release(&m2);
		gk_buf_release(&b);
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
		/* in place (as receive opens it) the same answer and body */
		uint8_t *cp = malloc(size), pub2[32];
		gk_slice body2;
		int r, r2;

		if (cp == NULL)
			abort();
		memcpy(cp, data + 1, size - 1);
		r = share_envelope_open("manifest", gk_slice_of(data + 1,
		    size - 1), pub, &body);
		r2 = share_envelope_open_inplace("manifest", cp, size - 1,
		    pub2, &body2);
		if (r != r2 || (r == 0 && (memcmp(pub, pub2, 32) != 0 ||
		    body.len != body2.len || body2.p < cp ||
		    memcmp(body.p, body2.p, body.len) != 0)))
			__builtin_trap();
		if (r == 0)
			check_manifest(body);
		free(cp);
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
