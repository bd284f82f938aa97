/*
 * chain.c - the hash chain's canonical encoding, Ed25519 checkpoint
 * signatures, the checkpoint file line, and the instance id.
 *
 * Canonical encoding (version 1), documented in README "Proving the audit
 * log": every field in a fixed order, a string or byte field as a 4-byte
 * big-endian length followed by its bytes (NULL: length 0xffffffff and no
 * bytes), an integer as 8 bytes big-endian two's complement.
 *
 *   hash = SHA-256(prev_hash[32] ||
 *       str("gatekeeper-audit-v1") || str(instance_id) || int(seq) ||
 *       int(time_us) || str(request_id) || str(client_ip) ||
 *       str(client_addr[16]) || str(user_agent) || str(origin) ||
 *       str(protocol) || str(operation) || str(root) || str(path) ||
 *       int(status) || str(decision) || str(message) || int(bytes) ||
 *       int(duration_us) || str(country) || str(kid) || str(sub) ||
 *       str(jti) || str(token_sig))
 *
 * The first record of a chain (seq 1) has prev_hash = 32 zero bytes.
 * A checkpoint signs (Ed25519):
 *
 *   str("gatekeeper-audit-checkpoint-v1") || str(instance_id) ||
 *   int(seq) || hash[32] || int(time_us)
 */
#include "audit/audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#define TAG_RECORD "gatekeeper-audit-v1"
#define TAG_CHECKPOINT "gatekeeper-audit-checkpoint-v1"

static int
put_u32(gk_buf *b, uint32_t v)
{
	uint8_t x[4];

	gk_put_u32be(x, v);
	return gk_buf_append(b, x, sizeof(x));
}

static int
put_int(gk_buf *b, int64_t sv)
{
	uint64_t v = (uint64_t)sv;
	uint8_t x[8];
	int i;

	for (i = 7; i >= 0; i--) {
		x[i] = (uint8_t)v;
		v >>= 8;
	}
	return gk_buf_append(b, x, sizeof(x));
}

static int
put_bytes(gk_buf *b, const void *p, size_t n)
{
	if (p == NULL)
		return put_u32(b, 0xffffffffu);
	if (n > 0xfffffffeu)
		return GK_ERR_TOO_LARGE;
	if (put_u32(b, (uint32_t)n) != 0)
		return GK_ERR_TOO_LARGE;
	return gk_buf_append(b, p, n);
}

static int
put_str(gk_buf *b, const char *s)
{
	return put_bytes(b, s, s != NULL ? strlen(s) : 0);
}

/* As stored: an empty fixed-size text field is NULL. */
static const char *
fixed(const char *s)
{
	return s[0] != '\0' ? s : NULL;
}

int
audit_chain_hash(gk_buf *scratch, const char *instance, int64_t seq,
    const uint8_t prev[AUDIT_HASH_LEN], const gk_audit_record *rec,
    uint8_t out[AUDIT_HASH_LEN])
{
	int64_t bytes = rec->bytes > (uint64_t)INT64_MAX ? INT64_MAX :
	    (int64_t)rec->bytes;
	unsigned int len = 0;

	gk_buf_reset(scratch);
	if (gk_buf_append(scratch, prev, AUDIT_HASH_LEN) != 0 ||
	    put_str(scratch, TAG_RECORD) != 0 ||
	    put_str(scratch, instance) != 0 ||
	    put_int(scratch, seq) != 0 ||
	    put_int(scratch, rec->time_us) != 0 ||
	    put_str(scratch, fixed(rec->request_id)) != 0 ||
	    put_str(scratch, fixed(rec->client_ip)) != 0 ||
	    put_bytes(scratch, rec->client_addr,
	    sizeof(rec->client_addr)) != 0 ||
	    put_str(scratch, rec->user_agent) != 0 ||
	    put_str(scratch, rec->origin) != 0 ||
	    put_str(scratch, rec->protocol) != 0 ||
	    put_str(scratch, rec->operation) != 0 ||
	    put_str(scratch, rec->root) != 0 ||
	    put_str(scratch, rec->path) != 0 ||
	    put_int(scratch, rec->status) != 0 ||
	    put_str(scratch, rec->decision) != 0 ||
	    put_str(scratch, rec->message) != 0 ||
	    put_int(scratch, bytes) != 0 ||
	    put_int(scratch, rec->duration_us) != 0 ||
	    put_str(scratch, rec->country) != 0 ||
	    put_str(scratch, rec->kid) != 0 ||
	    put_str(scratch, rec->sub) != 0 ||
	    put_str(scratch, rec->jti) != 0 ||
	    put_str(scratch, rec->token_sig) != 0)
		return GK_ERR_TOO_LARGE;
	/* gk_sha256: no method lookup per record (it showed in the
	 * writer's profile) */
	if (gk_sha256() == NULL ||
	    EVP_Digest(scratch->data, scratch->len, out, &len, gk_sha256(),
	    NULL) != 1 || len != AUDIT_HASH_LEN)
		return GK_ERR_INTERNAL;
	return 0;
}

static int
cp_message(const audit_checkpoint *cp, gk_buf *b)
{
	gk_buf_reset(b);
	if (put_str(b, TAG_CHECKPOINT) != 0 || put_str(b, cp->instance) != 0 ||
	    put_int(b, cp->seq) != 0 ||
	    gk_buf_append(b, cp->hash, AUDIT_HASH_LEN) != 0 ||
	    put_int(b, cp->time_us) != 0)
		return GK_ERR_TOO_LARGE;
	return 0;
}

int
audit_cp_sign(audit_checkpoint *cp, const uint8_t seed[AUDIT_KEY_LEN])
{
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *md = NULL;
	gk_buf msg;
	size_t siglen = AUDIT_SIG_LEN;
	int r = GK_ERR_INTERNAL;

	gk_buf_init(&msg, 1024);
	if (cp_message(cp, &msg) != 0)
		goto out;
	pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed,
	    AUDIT_KEY_LEN);
	if (pk == NULL || (md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, NULL, NULL, pk) != 1 ||
	    EVP_DigestSign(md, cp->sig, &siglen, msg.data, msg.len) != 1 ||
	    siglen != AUDIT_SIG_LEN)
		goto out;
	r = 0;
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	gk_buf_release(&msg);
	return r;
}

int
audit_cp_verify(const audit_checkpoint *cp, const uint8_t pub[AUDIT_KEY_LEN])
{
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *md = NULL;
	gk_buf msg;
	int r = GK_ERR_AUTH;

	gk_buf_init(&msg, 1024);
	if (cp_message(cp, &msg) != 0)
		goto out;
	pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub,
	    AUDIT_KEY_LEN);
	if (pk == NULL || (md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) != 1)
		goto out;
	if (EVP_DigestVerify(md, cp->sig, AUDIT_SIG_LEN, msg.data,
	    msg.len) == 1)
		r = 0;
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	gk_buf_release(&msg);
	return r;
}

int
audit_key_public(const uint8_t seed[32], uint8_t pub[32])
{
	EVP_PKEY *pk;
	size_t n = AUDIT_KEY_LEN;
	int r = GK_ERR_INTERNAL;

	pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed,
	    AUDIT_KEY_LEN);
	if (pk != NULL && EVP_PKEY_get_raw_public_key(pk, pub, &n) == 1 &&
	    n == AUDIT_KEY_LEN)
		r = 0;
	EVP_PKEY_free(pk);
	return r;
}

/* ---- checkpoint file ------------------------------------------------- */

int
audit_cp_line(const audit_checkpoint *cp, gk_buf *out)
{
	char hash[2 * AUDIT_HASH_LEN + 1], sig[2 * AUDIT_SIG_LEN + 1];

	gk_hex_encode(cp->hash, AUDIT_HASH_LEN, hash);
	gk_hex_encode(cp->sig, AUDIT_SIG_LEN, sig);
	gk_buf_reset(out);
	if (gk_buf_append_str(out, "{\"instance\":") != 0 ||
	    gk_json_str(out, gk_slice_str(cp->instance)) != 0 ||
	    gk_buf_printf(out, ",\"seq\":%" PRId64 ",\"hash\":\"%s\","
	    "\"time_us\":%" PRId64 ",\"sig\":\"%s\"}\n", cp->seq, hash,
	    cp->time_us, sig) != 0)
		return GK_ERR_TOO_LARGE;
	return 0;
}

/* Finds "key": in a line and returns a pointer just past the colon. */
static const char *
json_key(const char *line, const char *key)
{
	char pat[32];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	return p != NULL ? p + strlen(pat) : NULL;
}

static int
json_hex(const char *line, const char *key, uint8_t *out, size_t n)
{
	const char *p = json_key(line, key), *end;

	if (p == NULL || *p != '"')
		return GK_ERR_INVALID;
	p++;
	if ((end = strchr(p, '"')) == NULL)
		return GK_ERR_INVALID;
	return gk_hex_decode(gk_slice_of(p, (size_t)(end - p)), out, n);
}

static int
json_int(const char *line, const char *key, int64_t *out)
{
	const char *p = json_key(line, key);
	size_t n = 0;
	uint64_t v;

	if (p == NULL)
		return GK_ERR_INVALID;
	while (p[n] >= '0' && p[n] <= '9')
		n++;
	if (gk_parse_u64(gk_slice_of(p, n), INT64_MAX, &v) != 0)
		return GK_ERR_INVALID;
	*out = (int64_t)v;
	return 0;
}

int
audit_cp_parse(const char *line, audit_checkpoint *cp)
{
	const char *p = json_key(line, "instance"), *end;
	size_t n;

	memset(cp, 0, sizeof(*cp));
	if (p == NULL || *p != '"')
		return GK_ERR_INVALID;
	p++;
	/* instance ids hold no quote or backslash (audit_instance_valid) */
	if ((end = strchr(p, '"')) == NULL ||
	    (n = (size_t)(end - p)) == 0 || n > AUDIT_INSTANCE_MAX)
		return GK_ERR_INVALID;
	memcpy(cp->instance, p, n);
	cp->instance[n] = '\0';
	if (!audit_instance_valid(cp->instance) ||
	    json_int(line, "seq", &cp->seq) != 0 ||
	    json_int(line, "time_us", &cp->time_us) != 0 ||
	    json_hex(line, "hash", cp->hash, AUDIT_HASH_LEN) != 0 ||
	    json_hex(line, "sig", cp->sig, AUDIT_SIG_LEN) != 0)
		return GK_ERR_INVALID;
	return 0;
}

int
audit_cp_append(const char *path, const audit_checkpoint *cp)
{
	gk_buf line;
	ssize_t w;
	int fd = -1, r = GK_ERR_IO;

	gk_buf_init(&line, 4096);
	if (audit_cp_line(cp, &line) != 0)
		goto out;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		goto out;
	w = write(fd, line.data, line.len);
	if (w < 0 || (size_t)w != line.len || fsync(fd) != 0)
		goto out;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	gk_buf_release(&line);
	return r;
}

/* ---- instance id ----------------------------------------------------- */

int
audit_instance_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];

		if (i >= AUDIT_INSTANCE_MAX)
			return 0;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    c == '.' || c == ':'))
			return 0;
	}
	return i > 0;
}

int
audit_instance_resolve(const char *configured, const char *keys_dir,
    char out[AUDIT_INSTANCE_MAX + 1])
{
	gk_buf path, b;
	uint8_t raw[8];
	char hex[2 * sizeof(raw) + 1];
	size_t n;
	int r = GK_ERR_INTERNAL;

	gk_buf_init(&path, 8192);
	gk_buf_init(&b, 4096);
	if (configured != NULL && configured[0] != '\0') {
		if (!audit_instance_valid(configured))
			return GK_ERR_CONFIG;
		snprintf(out, AUDIT_INSTANCE_MAX + 1, "%s", configured);
		return 0;
	}
	if (keys_dir == NULL || keys_dir[0] == '\0') {
		snprintf(out, AUDIT_INSTANCE_MAX + 1, "default");
		return 0;
	}
	if (gk_buf_printf(&path, "%s/instance.id", keys_dir) != 0)
		goto out;
	if (gk_file_read((const char *)path.data, 4096, &b) == 0) {
		n = b.len;
		while (n > 0 && (b.data[n - 1] == '\n' || b.data[n - 1] == ' '))
			n--;
		if (n == 0 || n > AUDIT_INSTANCE_MAX) {
			r = GK_ERR_CONFIG;
			goto out;
		}
		memcpy(out, b.data, n);
		out[n] = '\0';
		r = audit_instance_valid(out) ? 0 : GK_ERR_CONFIG;
		goto out;
	}
	if (errno != ENOENT && access((const char *)path.data, F_OK) == 0) {
		r = GK_ERR_IO;
		goto out;
	}
	if ((r = gk_random(raw, sizeof(raw))) != 0)
		goto out;
	gk_hex_encode(raw, sizeof(raw), hex);
	snprintf(out, AUDIT_INSTANCE_MAX + 1, "gk-%s", hex);
	gk_buf_reset(&b);
	if ((r = gk_mkdirs(keys_dir, 0700)) != 0 ||
	    (r = gk_buf_printf(&b, "%s\n", out)) != 0 ||
	    (r = gk_file_write_atomic((const char *)path.data, b.data, b.len,
	    0644)) != 0)
		goto out;
	r = 0;
out:
	gk_buf_release(&path);
	gk_buf_release(&b);
	return r;
}

/* ---- decoding (the journal keeps records in their canonical form) ---- */

typedef struct {
	const uint8_t *p;
	size_t n;
} dec;

static int
get_int(dec *d, int64_t *v)
{
	uint64_t x = 0;
	int i;

	if (d->n < 8)
		return GK_ERR_INTEGRITY;
	for (i = 0; i < 8; i++)
		x = x << 8 | d->p[i];
	d->p += 8;
	d->n -= 8;
	*v = (int64_t)x;
	return 0;
}

/* A length-prefixed field: *s points into the encoding, *len its bytes;
 * *s NULL for a NULL field. */
static int
get_bytes(dec *d, const uint8_t **s, size_t *len)
{
	uint32_t l;

	if (d->n < 4)
		return GK_ERR_INTEGRITY;
	l = (uint32_t)d->p[0] << 24 | (uint32_t)d->p[1] << 16 |
	    (uint32_t)d->p[2] << 8 | d->p[3];
	d->p += 4;
	d->n -= 4;
	if (l == 0xffffffffu) {
		*s = NULL;
		*len = 0;
		return 0;
	}
	if (l > d->n)
		return GK_ERR_INTEGRITY;
	*s = d->p;
	*len = l;
	d->p += l;
	d->n -= l;
	return 0;
}

int
audit_chain_decode(const uint8_t *enc, size_t n,
    char instance[AUDIT_INSTANCE_MAX + 1], int64_t *seq,
    gk_audit_record *rec, char **block)
{
	/* the string fields after client_addr, in encoding order */
	enum { NSTR = 13 };
	const uint8_t *s[NSTR], *t;
	size_t len[NSTR], tl, total = 0, i;
	int64_t status, bytes;
	const char **dst[NSTR] = { &rec->user_agent, &rec->origin,
	    &rec->protocol, &rec->operation, &rec->root, &rec->path,
	    &rec->decision, &rec->message, &rec->country, &rec->kid,
	    &rec->sub, &rec->jti, &rec->token_sig };
	dec d = { enc, n };
	char *cur;

	memset(rec, 0, sizeof(*rec));
	*block = NULL;
	/* tag, instance, seq, time, request id, client ip, address */
	if (get_bytes(&d, &t, &tl) != 0 || t == NULL ||
	    tl != strlen(TAG_RECORD) || memcmp(t, TAG_RECORD, tl) != 0 ||
	    get_bytes(&d, &t, &tl) != 0 || t == NULL || tl == 0 ||
	    tl > AUDIT_INSTANCE_MAX)
		return GK_ERR_INTEGRITY;
	memcpy(instance, t, tl);
	instance[tl] = '\0';
	if (memchr(t, '\0', tl) != NULL || !audit_instance_valid(instance))
		return GK_ERR_INTEGRITY;
	/* the fixed-size fields are never empty (empty is stored NULL) */
	if (get_int(&d, seq) != 0 || get_int(&d, &rec->time_us) != 0 ||
	    get_bytes(&d, &t, &tl) != 0 || tl >= sizeof(rec->request_id) ||
	    (t != NULL && (tl == 0 || memchr(t, '\0', tl) != NULL)))
		return GK_ERR_INTEGRITY;
	if (t != NULL)
		memcpy(rec->request_id, t, tl);
	if (get_bytes(&d, &t, &tl) != 0 || tl >= sizeof(rec->client_ip) ||
	    (t != NULL && (tl == 0 || memchr(t, '\0', tl) != NULL)))
		return GK_ERR_INTEGRITY;
	if (t != NULL)
		memcpy(rec->client_ip, t, tl);
	if (get_bytes(&d, &t, &tl) != 0 || t == NULL ||
	    tl != sizeof(rec->client_addr))
		return GK_ERR_INTEGRITY;
	memcpy(rec->client_addr, t, tl);
	/* user_agent .. path, status, decision, message, bytes, duration,
	 * country, kid, sub, jti, token_sig */
	for (i = 0; i < 6; i++)
		if (get_bytes(&d, &s[i], &len[i]) != 0)
			return GK_ERR_INTEGRITY;
	if (get_int(&d, &status) != 0 || get_bytes(&d, &s[6], &len[6]) != 0 ||
	    get_bytes(&d, &s[7], &len[7]) != 0 || get_int(&d, &bytes) != 0 ||
	    get_int(&d, &rec->duration_us) != 0)
		return GK_ERR_INTEGRITY;
	for (i = 8; i < NSTR; i++)
		if (get_bytes(&d, &s[i], &len[i]) != 0)
			return GK_ERR_INTEGRITY;
	if (d.n != 0 || status < INT32_MIN || status > INT32_MAX || bytes < 0)
		return GK_ERR_INTEGRITY;
	for (i = 0; i < NSTR; i++)
		if (s[i] != NULL)
			total += len[i] + 1;
	if ((*block = malloc(total + 1)) == NULL)
		return GK_ERR_NOMEM;
	cur = *block;
	for (i = 0; i < NSTR; i++) {
		const char *v = NULL;

		if (s[i] != NULL) {
			if (memchr(s[i], '\0', len[i]) != NULL) {
				free(*block);
				*block = NULL;
				return GK_ERR_INTEGRITY;
			}
			memcpy(cur, s[i], len[i]);
			cur[len[i]] = '\0';
			v = cur;
			cur += len[i] + 1;
		}
		*dst[i] = v;
	}
	rec->status = (int)status;
	rec->bytes = bytes < 0 ? 0 : (uint64_t)bytes;
	return 0;
}
