/*
 * share.h - the share folder's whole interface: the age v1 file format
 * (age-encryption.org/v1: X25519 and scrypt recipients, HKDF-SHA-256,
 * ChaCha20-Poly1305 STREAM in 64 KiB chunks, header HMAC, ASCII armor),
 * the signed share manifest and organisation config, the destinations a
 * share travels through (local directory, any S3 endpoint) and the send
 * and receive operations.
 *
 * All cryptography is OpenSSL 3's; compression is libzstd. Everything
 * streams: memory stays bounded whatever the file size. Untrusted bytes
 * are slices; errors are GK_ERR_* codes plus, for the age decoder, one of
 * the age error classes and a one-line message without secrets.
 */
#ifndef GK_SHARE_H
#define GK_SHARE_H

#include <stdint.h>
#include <sys/types.h>

#include "util/util.h"

/* ---- keys -------------------------------------------------------------- */

#define AGE_KEY_LEN 32
#define AGE_FILE_KEY_LEN 16
#define AGE_CHUNK (64u * 1024)
/* "AGE-SECRET-KEY-1" + 52 data + 6 checksum, and "age1" + 58 */
#define AGE_IDENTITY_STR 80
#define AGE_RECIPIENT_STR 72
/* "SHA256:" + 43 base64 characters */
#define SHARE_FP_STR 56

/* An X25519 identity: the secret scalar and its public key. */
typedef struct {
	uint8_t sk[AGE_KEY_LEN];
	uint8_t pk[AGE_KEY_LEN];
} age_identity;

/* A fresh identity from the system's random source. */
int age_identity_generate(age_identity *out) GK_WUR;
/* From its secret (computes the public key). */
int age_identity_from_secret(const uint8_t sk[AGE_KEY_LEN], age_identity *out)
    GK_WUR;
/* "AGE-SECRET-KEY-1..." (bech32, upper case; either case accepted when
 * parsing, never mixed). GK_ERR_INVALID for anything else. */
int age_identity_parse(gk_slice s, age_identity *out) GK_WUR;
void age_identity_encode(const age_identity *id, char out[AGE_IDENTITY_STR]);
/* "age1..." (bech32, lower case) <-> the 32-byte public key. */
int age_recipient_parse(gk_slice s, uint8_t pk[AGE_KEY_LEN]) GK_WUR;
void age_recipient_encode(const uint8_t pk[AGE_KEY_LEN],
    char out[AGE_RECIPIENT_STR]);

/*
 * Reads an identity file as age-keygen writes it: '#' comments and empty
 * lines skipped, every other line an AGE-SECRET-KEY-1. Appends to *ids
 * (grown with realloc, caller frees and wipes). At most 64 KiB.
 * GK_ERR_INVALID names the line in err; GK_ERR_DENIED when the file is
 * a regular file group or others may access (mode & 077), as ssh refuses
 * such a private key.
 */
int age_identities_load(const char *path, age_identity **ids, size_t *n,
    char *err, size_t errlen) GK_WUR;
/* Lines of "age1..." recipients (comments and empty lines skipped),
 * appended to *pks (caller frees). */
int age_recipients_load(const char *path, uint8_t (**pks)[AGE_KEY_LEN],
    size_t *n, char *err, size_t errlen) GK_WUR;

/*
 * The sender's signing key: Ed25519, derived from an age identity with
 * HKDF-SHA-256 (its own info string), so one identity file both receives
 * and signs. pub is the raw 32-byte public key.
 */
int share_sign_pub(const age_identity *id, uint8_t pub[32]) GK_WUR;
int share_sign(const age_identity *id, gk_slice msg, uint8_t sig[64]) GK_WUR;
/* 0 if sig is pub's Ed25519 signature of msg, GK_ERR_AUTH otherwise. */
int share_verify(const uint8_t pub[32], gk_slice msg, const uint8_t sig[64])
    GK_WUR;
/* "SHA256:<base64 of SHA-256(pub), unpadded>". */
void share_fingerprint(const uint8_t pub[32], char out[SHARE_FP_STR]);

/* ---- the age format ----------------------------------------------------- */

/* The outcome classes of the age test kit. */
typedef enum {
	AGE_OK = 0,
	AGE_E_HEADER,		/* malformed header, bad stanza, bad nonce */
	AGE_E_NO_MATCH,		/* no identity opens any stanza */
	AGE_E_HMAC,		/* header MAC mismatch */
	AGE_E_PAYLOAD,		/* a STREAM chunk failed or is missing */
	AGE_E_ARMOR,		/* malformed ASCII armor */
	AGE_E_IO,		/* reading the input or writing the output */
} age_class;

typedef struct {
	age_class cls;
	char msg[160];
} age_error;

const char *age_class_str(age_class c);

/* Pull: up to max bytes into buf, *got 0 at the end. */
typedef int (*age_source_fn)(void *arg, uint8_t *buf, size_t max,
    size_t *got);
/* Push: every byte handed over has been authenticated. */
typedef int (*age_sink_fn)(void *arg, const uint8_t *p, size_t len);

/* A parsed header; slices point into the parsed input. */
#define AGE_MAX_ARGS 8
#define AGE_HEADER_MAX (1024u * 1024)
typedef struct {
	gk_slice args[AGE_MAX_ARGS];	/* args[0] is the stanza type */
	size_t nargs;
	uint8_t *body;			/* decoded, owned */
	size_t body_len;
} age_stanza;

typedef struct {
	age_stanza *st;
	size_t n;
	size_t mac_input_len;	/* bytes covered by the MAC (through "---") */
	uint8_t mac[32];
	size_t len;		/* the whole header, final '\n' included */
} age_header;

#define AGE_NEED_MORE 1
/*
 * Parses the binary header at the start of in. 0 with *h filled (release
 * it), AGE_NEED_MORE when in ends before the header does, GK_ERR_INVALID
 * when it is malformed (strict: canonical base64, 64-column body lines,
 * LF only), GK_ERR_TOO_LARGE past AGE_HEADER_MAX or 1024 stanzas.
 */
int age_header_parse(gk_slice in, age_header *h) GK_WUR;
void age_header_release(age_header *h);

/* What a decryptor may try. */
typedef struct {
	const age_identity *ids;
	size_t n_ids;
	const char *passphrase;	/* scrypt; NULL: none */
	unsigned max_scrypt_log2; /* 0: 22 */
	int armor;		/* 0 detect, 1 ASCII armor, 2 binary */
} age_keyring;

/*
 * Decrypts one age file (binary or ASCII-armored, detected) from src into
 * sink. A chunk reaches the sink only once it has been authenticated, so
 * on failure the sink has seen exactly the plaintext of the chunks before
 * the failing one. Returns 0 or a GK_ERR_* code with *e set.
 */
int age_decrypt(const age_keyring *kr, age_source_fn src, void *src_arg,
    age_sink_fn sink, void *sink_arg, age_error *e) GK_WUR;

/*
 * Encryption to X25519 recipients: age_enc_new writes the header through
 * sink, age_enc_write buffers at most one chunk, age_enc_finish writes the
 * last chunk. file_key NULL: a fresh random key (a fixed one is for tests).
 */
typedef struct age_enc age_enc;
int age_enc_new(const uint8_t (*pks)[AGE_KEY_LEN], size_t n,
    const uint8_t *file_key, age_sink_fn sink, void *arg, age_enc **out)
    GK_WUR;
int age_enc_write(age_enc *e, const uint8_t *p, size_t len) GK_WUR;
int age_enc_finish(age_enc *e) GK_WUR;
void age_enc_free(age_enc *e);

/* ---- signed envelopes: the manifest and the organisation config -------- */

/*
 * Text envelope: "gatekeeper-share-<kind> v1\nkey: <b64 pub>\n"
 * "sig: <b64 sig>\n\n<body>". The signature covers kind and body.
 */
#define SHARE_ENVELOPE_MAX (64u * 1024 * 1024)
int share_envelope_sign(const char *kind, const age_identity *id,
    gk_slice body, gk_buf *out) GK_WUR;
/* Checks the form and the signature; body points into in. GK_ERR_INVALID
 * malformed, GK_ERR_AUTH bad signature. */
int share_envelope_open(const char *kind, gk_slice in, uint8_t pub[32],
    gk_slice *body) GK_WUR;
/* The same without a copy of the body (a 64 MiB manifest would need a
 * second 64 MiB): the header bytes of p are overwritten. */
int share_envelope_open_inplace(const char *kind, uint8_t *p, size_t len,
    uint8_t pub[32], gk_slice *body) GK_WUR;

/* One file of a share. */
#define SHARE_OBJECT_STR 48
typedef struct {
	char *path;		/* relative, '/'-separated, validated */
	uint64_t size;
	unsigned mode;		/* permission bits (& 0777) */
	int64_t mtime;		/* unix seconds */
	int64_t mtime_ns;
	uint8_t sha256[32];	/* of the plaintext */
	char object[SHARE_OBJECT_STR];	/* "files/<32 hex>.age" */
	int zstd;		/* 1: compressed with zstd */
} share_file;

typedef struct {
	char *id;
	char *sender;
	char *organisation;
	int64_t created;
	share_file *files;
	size_t n;
} share_manifest;

/* Manifest JSON. Parsing validates every path (share_path_ok), object
 * name and field; GK_ERR_INVALID with a reason in err otherwise. Both
 * ways go one file entry at a time (memory: the input, plus about 130
 * bytes and the path per file); the top-level fields other than "files"
 * (which must be spelt so) take at most 1 MiB. */
int share_manifest_json(const share_manifest *m, gk_buf *out) GK_WUR;
int share_manifest_parse(gk_slice json, share_manifest *m, char *err,
    size_t errlen) GK_WUR;
void share_manifest_release(share_manifest *m);
/* 1 if p is a safe relative path: non-empty UTF-8 components without NUL,
 * '\\', control characters (C0, DEL, C1), bidi formatting characters
 * or line/paragraph separators (gk_utf8_unsafe), no "." or "..", not
 * absolute, <= 4096. */
int share_path_ok(gk_slice p);
/* Makes s (in place, never longer) safe to print on a terminal or in a
 * one-line message: C0, DEL and C1 controls, bidi formatting characters,
 * line/paragraph separators (gk_utf8_unsafe) and bytes that are not
 * UTF-8 become '?'. Names and messages from a manifest or a destination
 * go through it. */
void share_text_safe(char *s);
/* 1 if s is a share id: 1..64 of [0-9a-z-]. */
int share_id_ok(const char *s);

/* ---- the organisation config (s3s2's config) --------------------------- */

/*
 * JSON: {"organisation": ..., "destination": ..., "recipients": ["age1.."],
 * "senders": ["SHA256:.."]}: where senders of the organisation send, to
 * whom they encrypt, and which sender keys its receivers pin.
 */
typedef struct {
	char *organisation;
	char *destination;
	char **recipients;	/* "age1..." strings, validated */
	size_t n_recipients;
	char **senders;		/* fingerprints */
	size_t n_senders;
} share_config;

#define SHARE_CONFIG_MAX (1024u * 1024)
int share_config_parse(gk_slice json, share_config *c, char *err,
    size_t errlen) GK_WUR;
int share_config_json(const share_config *c, gk_buf *out) GK_WUR;
void share_config_release(share_config *c);
/* Reads and parses a config file; GK_ERR_NOT_FOUND if it is missing. */
int share_config_load(const char *path, share_config *c, char *err,
    size_t errlen) GK_WUR;
/* $GATEKEEPER_SHARE_CONFIG, else $XDG_CONFIG_HOME or ~/.config +
 * "/gatekeeper/share.json". */
int share_config_path(char *out, size_t outlen) GK_WUR;
/* GET of an https:// URL (at most cap bytes; cacert NULL: the system's
 * CAs) into out. One line in err. */
int share_fetch_https(const char *url, const char *cacert, size_t cap,
    gk_buf *out, char *err, size_t errlen) GK_WUR;

/* ---- destinations ------------------------------------------------------ */

/*
 * Where shares live: "file:///abs/dir" (a local or mounted directory) or
 * "s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=1]" (any S3
 * endpoint; credentials from AWS_* variables or the shared credentials
 * file, never the URL). Keys are "<prefix>shares/<id>/...".
 */
typedef struct share_dest share_dest;

int share_dest_open(const char *url, share_dest **out, char *err,
    size_t errlen) GK_WUR;
void share_dest_free(share_dest *d);
/* The URL without its query (for messages). */
const char *share_dest_name(const share_dest *d);

typedef struct share_wr share_wr;
/* A streaming object write: invisible until commit, gone on free. */
int share_dest_put(share_dest *d, const char *key, share_wr **out) GK_WUR;
int share_wr_write(share_wr *w, const uint8_t *p, size_t len) GK_WUR;
int share_wr_commit(share_wr *w) GK_WUR;
void share_wr_free(share_wr *w);

typedef struct share_rd share_rd;
/* GK_ERR_NOT_FOUND when the object does not exist. */
int share_dest_get(share_dest *d, const char *key, share_rd **out) GK_WUR;
int share_rd_read(void *rd, uint8_t *buf, size_t max, size_t *got) GK_WUR;
void share_rd_free(share_rd *r);
/* 0 with *size if the object exists, GK_ERR_NOT_FOUND if not. */
int share_dest_stat(share_dest *d, const char *key, uint64_t *size) GK_WUR;
/* A one-line cause for the last failure on this thread. */
const char *share_dest_error(void);

/* ---- send and receive -------------------------------------------------- */

typedef struct {
	const char *dir;
	const char *dest;
	const uint8_t (*pks)[AGE_KEY_LEN];
	size_t n_pks;
	const age_identity *signer;
	const char *sender;		/* name in the manifest */
	const char *organisation;
	const char *resume_id;		/* NULL: a new share */
	const char *state_dir;		/* resume journals */
	unsigned workers;		/* 0: number of cores */
	int progress;			/* -1 auto, 0 off, 1 on */
	char share_url[1024];		/* out: what the receiver passes */
	char share_id[72];		/* out */
} share_send_opts;

/* Prints its own one-line error ("verb: ..."-less) into err. */
int share_send(share_send_opts *o, char *err, size_t errlen) GK_WUR;

typedef struct {
	const char *share;		/* DEST URL ending in shares/<id> */
	const age_identity *ids;
	size_t n_ids;
	const char *out_dir;
	const char **pins;		/* sender fingerprints accepted */
	size_t n_pins;
	int trust;			/* accept any valid signature */
	int force;			/* overwrite existing files */
	int list_only;
	unsigned workers;
	int progress;
	/* the manifests received, per share id (seen.c): an older one
	 * replayed is refused; required */
	const char *state_dir;
} share_receive_opts;

int share_receive(const share_receive_opts *o, char *err, size_t errlen)
    GK_WUR;

/* ---- progress ---------------------------------------------------------- */

typedef struct share_progress share_progress;
/* mode -1: a live line on a terminal, plain lines otherwise; 0: none. */
int share_progress_start(const char *what, uint64_t files, uint64_t bytes,
    int mode, share_progress **out) GK_WUR;
void share_progress_add(share_progress *p, uint64_t files, uint64_t bytes);
/* Stops the display and prints the closing line; p may be NULL. */
void share_progress_end(share_progress *p, int ok);

#endif
