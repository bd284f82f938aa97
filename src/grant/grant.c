/*
 * grant.c - grants: the stored document (JSON, jansson), the secret's
 * encryption (AES-256-GCM, OpenSSL) and the operations on them.
 *
 * Document: {"v":1,"id","name","prefix","ops","created","expires",
 * "revoked","rotated","ip":[...],"rate","access_key","secret"} where
 * secret is base64(nonce[12] || ciphertext[40] || tag[16]) with AAD
 * "gk-grant-v1\0" id "\0" access_key.
 */
#include "grant/grant.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "policy/policy.h"

#define NONCE_LEN 12
#define TAG_LEN 16
#define DOC_CAP (64u * 1024)

struct gk_grants {
	gk_audit_grants *db;
	uint8_t key[GK_KEY_LEN];
};

static _Thread_local char last_err[256];

const char *
grant_error(void)
{
	return last_err;
}

int
grant_open(const grant_settings *cfg, gk_grants **out, char *err,
    size_t errlen)
{
	gk_grants *gs;
	int r;

	*out = NULL;
	if (cfg->key.p == NULL || cfg->key.len != GK_KEY_LEN) {
		snprintf(err, errlen, "%s: no grant key (run 'gatekeeper "
		    "keygen')", cfg->key_file);
		return GK_ERR_CONFIG;
	}
	if ((gs = calloc(1, sizeof(*gs))) == NULL)
		return GK_ERR_NOMEM;
	memcpy(gs->key, cfg->key.p, GK_KEY_LEN);
	if ((r = audit_grants_open(cfg->audit_target, &gs->db, err,
	    errlen)) != 0) {
		grant_close(gs);
		return r;
	}
	*out = gs;
	return 0;
}

void
grant_close(gk_grants *gs)
{
	if (gs == NULL)
		return;
	audit_grants_close(gs->db);
	OPENSSL_cleanse(gs->key, sizeof(gs->key));
	free(gs);
}

/* ---- small parsers ------------------------------------------------------ */

static const char *const op_names[] = { "get", "list", "put", "delete" };

int
grant_ops_parse(const char *s, unsigned *ops)
{
	const char *p = s, *e;
	unsigned bits = 0, bit;
	size_t i, n;

	if (s == NULL || *s == '\0')
		return GK_ERR_INVALID;
	for (;;) {
		e = strchr(p, ',');
		n = e != NULL ? (size_t)(e - p) : strlen(p);
		bit = 0;
		for (i = 0; i < GK_ARRAY_LEN(op_names); i++) {
			if (strlen(op_names[i]) == n &&
			    strncmp(op_names[i], p, n) == 0)
				bit = 1u << i;
		}
		if (bit == 0 || (bits & bit) != 0)
			return GK_ERR_INVALID;
		bits |= bit;
		if (e == NULL)
			break;
		p = e + 1;
	}
	*ops = bits;
	return 0;
}

void
grant_ops_str(unsigned ops, char *out, size_t outlen)
{
	size_t i, n = 0;

	if (outlen == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < GK_ARRAY_LEN(op_names); i++) {
		if ((ops & (1u << i)) == 0)
			continue;
		n += (size_t)snprintf(out + n, n < outlen ? outlen - n : 0,
		    "%s%s", n > 0 ? "," : "", op_names[i]);
		if (n >= outlen)
			return;
	}
}

int
grant_duration_parse(const char *s, int64_t *secs)
{
	size_t n = s != NULL ? strlen(s) : 0;
	uint64_t v, mult = 1;

	if (n == 0)
		return GK_ERR_INVALID;
	switch (s[n - 1]) {
	case 'd': mult = 86400; n--; break;
	case 'h': mult = 3600; n--; break;
	case 'm': mult = 60; n--; break;
	case 's': n--; break;
	default: break;
	}
	if (n == 0 || gk_parse_u64(gk_slice_of(s, n), 100ull * 366 * 86400,
	    &v) != 0 || v == 0 || v * mult > 100ull * 366 * 86400)
		return GK_ERR_INVALID;
	*secs = (int64_t)(v * mult);
	return 0;
}

int
grant_covers(const gk_grant *g, gk_slice key)
{
	return gk_slice_has_prefix(key, gk_slice_str(g->prefix));
}

/* ---- the secret ----------------------------------------------------------- */

static int
aad_make(const char *id, const char *akid, uint8_t *aad, size_t cap,
    size_t *len)
{
	int n = snprintf((char *)aad, cap, "gk-grant-v1%c%s%c%s", 0, id, 0,
	    akid);

	if (n < 0 || (size_t)n >= cap)
		return GK_ERR_INTERNAL;
	*len = (size_t)n;
	return 0;
}

/* base64(nonce || ct || tag) of g->secret into out. */
static int
secret_seal(const gk_grants *gs, const gk_grant *g, gk_buf *out)
{
	uint8_t blob[NONCE_LEN + GRANT_SECRET_LEN + TAG_LEN], aad[96];
	EVP_CIPHER_CTX *ctx = NULL;
	size_t aadlen;
	int n, r = GK_ERR_INTERNAL;

	if (aad_make(g->id, g->access_key, aad, sizeof(aad), &aadlen) != 0 ||
	    gk_random(blob, NONCE_LEN) != 0 ||
	    (ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, gs->key,
	    blob) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aadlen) != 1 ||
	    EVP_EncryptUpdate(ctx, blob + NONCE_LEN, &n,
	    (const uint8_t *)g->secret, GRANT_SECRET_LEN) != 1 ||
	    n != GRANT_SECRET_LEN ||
	    EVP_EncryptFinal_ex(ctx, blob + NONCE_LEN + n, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
	    blob + NONCE_LEN + GRANT_SECRET_LEN) != 1)
		goto out;
	r = gk_b64_encode(blob, sizeof(blob), out);
out:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(blob, sizeof(blob));
	return r;
}

static int
secret_open(const gk_grants *gs, gk_grant *g, const char *b64)
{
	uint8_t aad[96], pt[GRANT_SECRET_LEN];
	EVP_CIPHER_CTX *ctx = NULL;
	gk_buf blob;
	size_t aadlen;
	int n, r = GK_ERR_INTEGRITY;

	gk_buf_init(&blob, 256);
	if (gk_b64_decode(gk_slice_str(b64), &blob) != 0 ||
	    blob.len != NONCE_LEN + GRANT_SECRET_LEN + TAG_LEN ||
	    aad_make(g->id, g->access_key, aad, sizeof(aad), &aadlen) != 0 ||
	    (ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, gs->key,
	    blob.data) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aadlen) != 1 ||
	    EVP_DecryptUpdate(ctx, pt, &n, blob.data + NONCE_LEN,
	    GRANT_SECRET_LEN) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
	    blob.data + NONCE_LEN + GRANT_SECRET_LEN) != 1 ||
	    EVP_DecryptFinal_ex(ctx, pt + n, &n) != 1)
		goto out;
	memcpy(g->secret, pt, GRANT_SECRET_LEN);
	g->secret[GRANT_SECRET_LEN] = '\0';
	r = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(pt, sizeof(pt));
	gk_buf_release(&blob);
	return r;
}

/* A fresh access key id and secret into g. */
static int
new_credentials(gk_grant *g)
{
	static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
	    "qrstuvwxyz0123456789+/";
	uint8_t rnd[GRANT_AKID_LEN + GRANT_SECRET_LEN];
	size_t i;

	if (gk_random(rnd, sizeof(rnd)) != 0)
		return GK_ERR_INTERNAL;
	g->access_key[0] = 'G';
	g->access_key[1] = 'K';
	for (i = 2; i < GRANT_AKID_LEN; i++)
		g->access_key[i] = b32[rnd[i] & 31];
	g->access_key[GRANT_AKID_LEN] = '\0';
	for (i = 0; i < GRANT_SECRET_LEN; i++)
		g->secret[i] = b64[rnd[GRANT_AKID_LEN + i] & 63];
	g->secret[GRANT_SECRET_LEN] = '\0';
	OPENSSL_cleanse(rnd, sizeof(rnd));
	return 0;
}

/* ---- the document ----------------------------------------------------------- */

static int
copy_str(char *dst, size_t cap, json_t *v)
{
	const char *s = json_string_value(v);

	if (s == NULL || strlen(s) >= cap)
		return GK_ERR_INTEGRITY;
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

/* Parses a stored document; the secret stays sealed in *sealed (a
 * pointer into root, valid while root lives). */
static int
doc_parse(const char *doc, gk_grant *g, json_t **root_out,
    const char **sealed)
{
	json_t *root, *ips, *v;
	size_t i;
	int r = GK_ERR_INTEGRITY;

	memset(g, 0, sizeof(*g));
	*root_out = NULL;
	if ((root = json_loads(doc, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return GK_ERR_INTEGRITY;
	if (json_integer_value(json_object_get(root, "v")) != 1 ||
	    copy_str(g->id, sizeof(g->id), json_object_get(root, "id")) ||
	    copy_str(g->name, sizeof(g->name),
	    json_object_get(root, "name")) ||
	    copy_str(g->prefix, sizeof(g->prefix),
	    json_object_get(root, "prefix")) ||
	    copy_str(g->access_key, sizeof(g->access_key),
	    json_object_get(root, "access_key")) ||
	    !json_is_integer(json_object_get(root, "ops")))
		goto out;
	g->ops = (unsigned)json_integer_value(json_object_get(root, "ops")) &
	    GRANT_OP_ALL;
	g->created_s = json_integer_value(json_object_get(root, "created"));
	g->expires_s = json_integer_value(json_object_get(root, "expires"));
	g->revoked_s = json_integer_value(json_object_get(root, "revoked"));
	g->rotated_s = json_integer_value(json_object_get(root, "rotated"));
	g->rate = (unsigned)json_integer_value(json_object_get(root, "rate"));
	ips = json_object_get(root, "ip");
	if (!json_is_array(ips) || json_array_size(ips) > GRANT_IPS_MAX)
		goto out;
	json_array_foreach(ips, i, v) {
		if (copy_str(g->ips[i], sizeof(g->ips[i]), v) != 0)
			goto out;
	}
	g->n_ips = json_array_size(ips);
	if ((*sealed = json_string_value(json_object_get(root,
	    "secret"))) == NULL)
		goto out;
	*root_out = root;
	root = NULL;
	r = 0;
out:
	json_decref(root);
	return r;
}

/* The document of g; its secret sealed anew, or kept as the stored
 * keep_sealed when not NULL (a revocation need not decrypt it). */
static int
doc_make(const gk_grants *gs, const gk_grant *g, const char *keep_sealed,
    char **out)
{
	json_t *root = NULL, *ips = NULL;
	gk_buf sealed;
	size_t i;
	int r = GK_ERR_NOMEM;

	*out = NULL;
	gk_buf_init(&sealed, 256);
	if (keep_sealed != NULL)
		r = gk_buf_append(&sealed, keep_sealed,
		    strlen(keep_sealed) + 1);
	else if ((r = secret_seal(gs, g, &sealed)) == 0)
		r = gk_buf_append(&sealed, "", 1);
	if (r != 0)
		goto out;
	r = GK_ERR_NOMEM;
	if ((ips = json_array()) == NULL)
		goto out;
	for (i = 0; i < g->n_ips; i++) {
		if (json_array_append_new(ips, json_string(g->ips[i])) != 0)
			goto out;
	}
	root = json_pack("{s:i,s:s,s:s,s:s,s:i,s:I,s:I,s:I,s:I,s:O,s:i,s:s,"
	    "s:s}", "v", 1, "id", g->id, "name", g->name, "prefix", g->prefix,
	    "ops", (int)g->ops, "created", (json_int_t)g->created_s,
	    "expires", (json_int_t)g->expires_s,
	    "revoked", (json_int_t)g->revoked_s,
	    "rotated", (json_int_t)g->rotated_s, "ip", ips,
	    "rate", (int)g->rate, "access_key", g->access_key,
	    "secret", (const char *)sealed.data);
	if (root == NULL ||
	    (*out = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		goto out;
	r = 0;
out:
	json_decref(root);
	json_decref(ips);
	gk_buf_release(&sealed);
	return r;
}

static int
db_failed(int r)
{
	return r == GK_ERR_NOT_FOUND || r == GK_ERR_EXISTS ? r :
	    GK_ERR_UNAVAILABLE;
}

static int
store(gk_grants *gs, const gk_grant *g, const char *keep_sealed)
{
	char *doc = NULL;
	int r;

	if ((r = doc_make(gs, g, keep_sealed, &doc)) != 0)
		return r;
	r = audit_grants_put(gs->db, g->id, g->access_key, doc, last_err,
	    sizeof(last_err));
	free(doc);
	return r != 0 ? db_failed(r) : 0;
}

/* Loads by id or key into g and *root (the parsed document, the caller's
 * to json_decref; *sealed points into it); text, when not NULL, gets the
 * document as stored (the caller's to free). */
static int
load_doc(gk_grants *gs, int by_key, const char *v, gk_grant *g,
    json_t **root, const char **sealed, char **text)
{
	gk_buf doc;
	int r;

	memset(g, 0, sizeof(*g));
	*root = NULL;
	if (text != NULL)
		*text = NULL;
	gk_buf_init(&doc, DOC_CAP);
	r = audit_grants_get(gs->db, by_key, v, &doc, last_err,
	    sizeof(last_err));
	if (r != 0)
		r = db_failed(r);
	else
		r = doc_parse((const char *)doc.data, g, root, sealed);
	if (r == 0 && text != NULL && (*text = gk_slice_dup(gk_slice_of(
	    doc.data, doc.len))) == NULL)
		r = GK_ERR_NOMEM;
	gk_buf_release(&doc);
	return r;
}

/* Loads by id or key; with_secret decrypts it (GK_ERR_AUTH when the
 * current key does not open it). */
static int
load(gk_grants *gs, int by_key, const char *v, gk_grant *g, int with_secret)
{
	json_t *root = NULL;
	const char *sealed;
	int r;

	r = load_doc(gs, by_key, v, g, &root, &sealed, NULL);
	if (r == 0 && with_secret && secret_open(gs, g, sealed) != 0) {
		snprintf(last_err, sizeof(last_err), "the secret of grant %s "
		    "does not decrypt with the current grant key", g->id);
		r = GK_ERR_AUTH;
	}
	json_decref(root);
	if (r != 0)
		OPENSSL_cleanse(g->secret, sizeof(g->secret));
	return r;
}

/* ---- operations --------------------------------------------------------------- */

static int
name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > GRANT_NAME_MAX || !gk_utf8_valid(gk_slice_str(s)))
		return 0;
	for (i = 0; i < n; i++) {
		if ((uint8_t)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	}
	return 1;
}

const grant_field_names grant_cli_fields = { "--name", "--prefix", "--ops",
    "--ip" };

int
grant_create(gk_grants *gs, gk_grant *g, const grant_field_names *f,
    char *err, size_t errlen)
{
	gk_addr net;
	unsigned bits;
	uint8_t rnd[6];
	size_t i;
	int r, tries;

	if (!name_ok(g->name)) {
		snprintf(err, errlen, "%s must be 1-128 printable "
		    "characters", f->name);
		return GK_ERR_INVALID;
	}
	if (strlen(g->prefix) > GRANT_PREFIX_MAX ||
	    (g->prefix[0] != '\0' && (!gk_utf8_valid(gk_slice_str(g->prefix)) ||
	    g->prefix[0] == '/' || strchr(g->prefix, '\\') != NULL ||
	    strstr(g->prefix, "//") != NULL ||
	    strstr(g->prefix, "/../") != NULL ||
	    strncmp(g->prefix, "../", 3) == 0 ||
	    strstr(g->prefix, "/./") != NULL ||
	    strncmp(g->prefix, "./", 2) == 0))) {
		snprintf(err, errlen, "%s is not a valid key prefix",
		    f->prefix);
		return GK_ERR_INVALID;
	}
	if (strncmp(g->prefix, GRANT_RESERVED_PREFIX,
	    strlen(GRANT_RESERVED_PREFIX)) == 0) {
		snprintf(err, errlen, "%s %s is reserved (the S3 endpoint's "
		    "multipart staging area)", f->prefix,
		    GRANT_RESERVED_PREFIX);
		return GK_ERR_INVALID;
	}
	for (i = 0; g->prefix[i] != '\0'; i++) {
		if ((uint8_t)g->prefix[i] < 0x20 || g->prefix[i] == 0x7f) {
			snprintf(err, errlen, "%s holds a control "
			    "character", f->prefix);
			return GK_ERR_INVALID;
		}
	}
	if ((g->ops & GRANT_OP_ALL) == 0 || (g->ops & ~GRANT_OP_ALL) != 0) {
		snprintf(err, errlen, "%s must name get, list, put or "
		    "delete", f->ops);
		return GK_ERR_INVALID;
	}
	for (i = 0; i < g->n_ips; i++) {
		if (policy_cidr_parse(gk_slice_str(g->ips[i]), &net,
		    &bits) != 0) {
			snprintf(err, errlen, "%s %.64s is not an address or "
			    "CIDR", f->ip, g->ips[i]);
			return GK_ERR_INVALID;
		}
	}
	g->created_s = gk_now_s();
	g->revoked_s = 0;
	g->rotated_s = 0;
	for (tries = 0; tries < 4; tries++) {
		if (gk_random(rnd, sizeof(rnd)) != 0 ||
		    new_credentials(g) != 0)
			return GK_ERR_INTERNAL;
		g->id[0] = 'g';
		g->id[1] = '-';
		gk_hex_encode(rnd, sizeof(rnd), g->id + 2);
		g->id[GRANT_ID_LEN] = '\0';
		/* a new id must not replace an existing grant */
		{
			gk_grant old;

			r = load(gs, 0, g->id, &old, 0);
			if (r == 0)
				continue;
			if (r != GK_ERR_NOT_FOUND) {
				snprintf(err, errlen, "%s", last_err);
				return GK_ERR_UNAVAILABLE;
			}
		}
		r = store(gs, g, NULL);
		if (r == GK_ERR_EXISTS)
			continue;
		if (r != 0)
			snprintf(err, errlen, "%s", last_err);
		return r;
	}
	snprintf(err, errlen, "could not pick a unique id");
	return GK_ERR_INTERNAL;
}

int
grant_get(gk_grants *gs, const char *id, gk_grant *out)
{
	return load(gs, 0, id, out, 0);
}

int
grant_by_key(gk_grants *gs, const char *access_key, gk_grant *out)
{
	return load(gs, 1, access_key, out, 1);
}

/*
 * The revocation replaces the document only if it is still the one read
 * (audit_grants_swap), so of two revokes at once (the CLI and the console,
 * or two instances) exactly one wins and records it; the other reads the
 * grant again and finds it revoked. A document changed otherwise in
 * between (a rotation) is read again, a few times.
 */
int
grant_revoke(gk_grants *gs, const char *id, gk_grant *out)
{
	json_t *root = NULL;
	const char *sealed;
	char *old = NULL, *doc = NULL;
	int r, tries;

	for (tries = 0; tries < 4; tries++) {
		json_decref(root);
		root = NULL;
		free(old);
		free(doc);
		old = doc = NULL;
		if ((r = load_doc(gs, 0, id, out, &root, &sealed, &old)) != 0)
			goto out;
		if (out->revoked_s != 0) {
			r = GK_ERR_DENIED;
			goto out;
		}
		out->revoked_s = gk_now_s();
		/* the sealed secret is kept as stored: a grant whose secret
		 * the current key cannot open can still be revoked */
		if ((r = doc_make(gs, out, sealed, &doc)) != 0)
			goto out;
		r = audit_grants_swap(gs->db, id, out->access_key, old, doc,
		    last_err, sizeof(last_err));
		if (r != GK_ERR_DENIED) {
			if (r != 0)
				r = db_failed(r);
			goto out;
		}
	}
	snprintf(last_err, sizeof(last_err), "grant %s kept changing while "
	    "being revoked", id);
	r = GK_ERR_UNAVAILABLE;
out:
	free(old);
	free(doc);
	json_decref(root);
	return r;
}

/* Like a revocation, the new pair replaces the document only if it is
 * still the one read: a rotation can never undo a revocation made
 * meanwhile. */
int
grant_rotate(gk_grants *gs, const char *id, gk_grant *out)
{
	json_t *root = NULL;
	const char *sealed;
	char *old = NULL, *doc = NULL;
	int r = GK_ERR_INTERNAL, tries;

	for (tries = 0; tries < 8; tries++) {
		if (old == NULL || r == GK_ERR_DENIED) {
			/* first, or someone changed it: read it again */
			json_decref(root);
			root = NULL;
			free(old);
			old = NULL;
			if ((r = load_doc(gs, 0, id, out, &root, &sealed,
			    &old)) != 0)
				goto out;
			if (out->revoked_s != 0) {
				r = GK_ERR_DENIED;
				goto out;
			}
		}
		if (new_credentials(out) != 0) {
			r = GK_ERR_INTERNAL;
			goto out;
		}
		out->rotated_s = gk_now_s();
		free(doc);
		doc = NULL;
		if ((r = doc_make(gs, out, NULL, &doc)) != 0)
			goto out;
		r = audit_grants_swap(gs->db, id, out->access_key, old, doc,
		    last_err, sizeof(last_err));
		/* EXISTS: the new access key id is taken, draw another */
		if (r != GK_ERR_DENIED && r != GK_ERR_EXISTS) {
			if (r != 0)
				r = db_failed(r);
			goto out;
		}
	}
	snprintf(last_err, sizeof(last_err), "grant %s kept changing while "
	    "being rotated", id);
	r = GK_ERR_UNAVAILABLE;
out:
	if (r != 0)
		OPENSSL_cleanse(out->secret, sizeof(out->secret));
	free(old);
	free(doc);
	json_decref(root);
	return r;
}

struct list_ctx {
	int (*fn)(void *arg, const gk_grant *g);
	void *arg;
};

static int
list_cb(void *arg, const char *id, const char *akid, const char *doc)
{
	struct list_ctx *lc = arg;
	json_t *root = NULL;
	const char *sealed;
	gk_grant g;
	int r;

	(void)id;
	(void)akid;
	if (doc_parse(doc, &g, &root, &sealed) != 0) {
		json_decref(root);
		return GK_ERR_INTEGRITY;
	}
	json_decref(root);
	r = lc->fn(lc->arg, &g);
	return r;
}

int
grant_list(gk_grants *gs, int (*fn)(void *arg, const gk_grant *g), void *arg)
{
	struct list_ctx lc = { fn, arg };
	int r;

	r = audit_grants_list(gs->db, list_cb, &lc, last_err,
	    sizeof(last_err));
	return r;
}

struct unusable_ctx {
	gk_grants *gs;
	int64_t now;
	int (*fn)(void *arg, const gk_grant *g);
	void *arg;
};

static int
unusable_cb(void *arg, const char *id, const char *akid, const char *doc)
{
	struct unusable_ctx *uc = arg;
	json_t *root = NULL;
	const char *sealed;
	gk_grant g;
	int r = 0;

	(void)id;
	(void)akid;
	if (doc_parse(doc, &g, &root, &sealed) != 0) {
		json_decref(root);
		return GK_ERR_INTEGRITY;
	}
	if (g.revoked_s == 0 && (g.expires_s == 0 || g.expires_s > uc->now) &&
	    secret_open(uc->gs, &g, sealed) != 0)
		r = uc->fn(uc->arg, &g);
	OPENSSL_cleanse(g.secret, sizeof(g.secret));
	json_decref(root);
	return r;
}

int
grant_unusable(gk_grants *gs, int (*fn)(void *arg, const gk_grant *g),
    void *arg)
{
	struct unusable_ctx uc = { gs, gk_now_s(), fn, arg };

	return audit_grants_list(gs->db, unusable_cb, &uc, last_err,
	    sizeof(last_err));
}

int
grant_json(const gk_grant *g, gk_buf *b)
{
	char ops[32], t[40];
	size_t i;
	int r;

	grant_ops_str(g->ops, ops, sizeof(ops));
	if ((r = gk_buf_append_str(b, "{\"id\":")) != 0 ||
	    (r = gk_json_str(b, gk_slice_str(g->id))) != 0 ||
	    (r = gk_buf_append_str(b, ",\"name\":")) != 0 ||
	    (r = gk_json_str(b, gk_slice_str(g->name))) != 0 ||
	    (r = gk_buf_append_str(b, ",\"prefix\":")) != 0 ||
	    (r = gk_json_str(b, gk_slice_str(g->prefix))) != 0 ||
	    (r = gk_buf_printf(b, ",\"ops\":\"%s\",\"access_key_id\":\"%s\"",
	    ops, g->access_key)) != 0)
		return r;
	gk_time_iso(g->created_s, t, sizeof(t));
	if ((r = gk_buf_printf(b, ",\"created\":\"%s\"", t)) != 0)
		return r;
	if (g->expires_s != 0)
		gk_time_iso(g->expires_s, t, sizeof(t));
	if ((r = gk_buf_printf(b, ",\"expires\":%s%s%s",
	    g->expires_s ? "\"" : "", g->expires_s ? t : "null",
	    g->expires_s ? "\"" : "")) != 0)
		return r;
	if (g->revoked_s != 0)
		gk_time_iso(g->revoked_s, t, sizeof(t));
	if ((r = gk_buf_printf(b, ",\"revoked\":%s%s%s",
	    g->revoked_s ? "\"" : "", g->revoked_s ? t : "null",
	    g->revoked_s ? "\"" : "")) != 0 ||
	    (r = gk_buf_append_str(b, ",\"ip\":[")) != 0)
		return r;
	for (i = 0; i < g->n_ips; i++) {
		if ((i > 0 && (r = gk_buf_append_str(b, ",")) != 0) ||
		    (r = gk_json_str(b, gk_slice_str(g->ips[i]))) != 0)
			return r;
	}
	return gk_buf_printf(b, "],\"rate\":%u}", g->rate);
}
