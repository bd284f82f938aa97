/*
 * share_int.h - helpers shared by the files of src/share/ only.
 */
#ifndef GK_SHARE_INT_H
#define GK_SHARE_INT_H

#include <stdio.h>

#include "share/share.h"

/* X25519 public key of sk. */
int age_x25519_pub(const uint8_t sk[AGE_KEY_LEN], uint8_t pk[AGE_KEY_LEN])
    GK_WUR;
/* X25519(sk, peer); GK_ERR_INVALID for an all-zero result. */
int age_x25519(const uint8_t sk[AGE_KEY_LEN], const uint8_t peer[AGE_KEY_LEN],
    uint8_t out[AGE_KEY_LEN]) GK_WUR;
/* HKDF-SHA-256. */
int age_hkdf(gk_slice ikm, gk_slice salt, const char *info, uint8_t *out,
    size_t outlen) GK_WUR;
/* ChaCha20-Poly1305 seal/open of one message (in-place allowed); open
 * returns GK_ERR_AUTH on a bad tag. out of seal: len + 16 bytes. */
int age_aead_seal(const uint8_t key[32], const uint8_t nonce[12],
    const uint8_t *in, size_t len, uint8_t *out) GK_WUR;
int age_aead_open(const uint8_t key[32], const uint8_t nonce[12],
    const uint8_t *in, size_t len, uint8_t *out) GK_WUR;

/* Standard base64 without padding into out (NUL-terminated); returns the
 * length written (0 if out is too small). */
size_t age_b64_raw(const uint8_t *in, size_t n, char *out, size_t outlen);
/* Strict, canonical decoding: padded 1 wants '=' padding (armor), 0
 * refuses it (header). GK_ERR_INVALID or GK_ERR_TOO_LARGE. */
int age_b64_decode(gk_slice in, int padded, uint8_t *out, size_t max,
    size_t *outlen) GK_WUR;

/* ASCII armor decoding as a source over another source; pre holds bytes
 * already read from it. Failing reads set age_armor_failed. */
typedef struct age_armor age_armor;
int age_armor_new(age_source_fn src, void *arg, const uint8_t *pre,
    size_t prelen, age_armor **out) GK_WUR;
int age_armor_read(void *a, uint8_t *buf, size_t max, size_t *got) GK_WUR;
int age_armor_failed(const age_armor *a);
const char *age_armor_error(const age_armor *a);
void age_armor_free(age_armor *a);

/* 1 for names whose content is already compressed (stored as is). */
int share_is_precompressed(const char *path);

/* The regular files under a directory, sorted by path. */
struct walk_ent {
	char *path;
	uint64_t size;
	unsigned mode;
	int64_t mtime, mtime_ns;
};

struct walk {
	struct walk_ent *ents;
	size_t n, alloc, skipped;
	uint64_t bytes;
};

/* Symlinks, special files and unsafe names are reported on report and
 * skipped. */
int walk_tree(const char *dir, FILE *report, struct walk *w, char *err,
    size_t errlen) GK_WUR;
void walk_release(struct walk *w);

/* "files/<first 16 bytes of SHA-256(id NUL path), hex>.age" */
void share_object_name(const char *id, const char *path, char out[64]);
/* Runs n threads of fn(arg) (0: one per core; at most
 * SHARE_MAX_WORKERS) and joins them. GK_ERR_INTERNAL if none started. */
#define SHARE_MAX_WORKERS 64
int share_run_workers(unsigned n, void *(*fn)(void *), void *arg) GK_WUR;
/* "DEST/shares/ID[?query]" <-> DEST[?query] and ID. */
int share_url_split(const char *share, char *dest, size_t destlen, char *id,
    size_t idlen) GK_WUR;
int share_url_join(const char *dest, const char *id, char *out,
    size_t outlen) GK_WUR;

/*
 * The receiver's replay check (seen.c): refuses a manifest of share id
 * older than the one recorded in state_dir (its signed "created"), one
 * that differs with the same time, or one another sender key (fp)
 * signed; with record, then records this one. One line in err.
 */
int share_seen_check(const char *state_dir, const char *id, int64_t created,
    gk_slice body, const char *fp, int record, char *err, size_t errlen)
    GK_WUR;
/* One record of that state (untrusted: whoever can write the file could
 * have put anything there): "v1 <created> <64 hex> <fingerprint>\n" into
 * its fields. GK_ERR_INVALID for anything else. */
int share_seen_parse(gk_slice in, int64_t *created, uint8_t sha[32],
    char fp[SHARE_FP_STR]) GK_WUR;
/* The record share_seen_parse reads, into out: its length, or -1 if it
 * does not fit. */
int share_seen_format(int64_t created, const uint8_t sha[32], const char *fp,
    char *out, size_t outlen);

#endif
