/*
 * multipart.h - the streaming multipart/form-data parser (RFC 7578) the
 * upload endpoint (upload.c) reads its form with.
 */
#ifndef GK_GATE_MULTIPART_H
#define GK_GATE_MULTIPART_H

#include <stdint.h>

#include "util/util.h"

/* ---- multipart/form-data (RFC 7578), streaming ----------------------- */

/*
 * Limits: boundary 1..70 chars; a part's header block at most
 * GK_MP_MAX_HEADER bytes; at most GK_MP_MAX_PARTS parts; preamble and
 * epilogue at most 4096 bytes together (so a body that never reaches a
 * delimiter is refused early instead of read to its end). Anything
 * malformed or over a limit makes feed/finish return GK_ERR_INVALID (or
 * GK_ERR_TOO_LARGE); a callback's non-zero return aborts and is returned.
 * Memory use is bounded by the limits whatever the body size.
 */
#define GK_MP_MAX_HEADER 8192
#define GK_MP_MAX_PARTS 64

typedef struct {
	/* A part starts: name and filename from Content-Disposition
	 * (quoted-strings decoded; filename empty if absent; neither holds
	 * a control byte other than HTAB), content_type is the raw header
	 * value, trimmed, possibly empty. The slices are valid only during
	 * the call. */
	int (*part_begin)(void *arg, gk_slice name, gk_slice filename,
	    gk_slice content_type);
	/* Body bytes of the current part, in order, in any chunking (never
	 * empty). At most boundary length + 3 bytes are held back at a
	 * time, while they could still begin a delimiter. */
	int (*part_data)(void *arg, const uint8_t *p, size_t len);
	/* The current part ended (its delimiter was seen). */
	int (*part_end)(void *arg);
} gk_multipart_cb;

typedef struct gk_multipart gk_multipart;

/*
 * Creates a parser from the Content-Type header value
 * ("multipart/form-data; boundary=..."; quoted boundary allowed).
 * GK_ERR_INVALID if it is not multipart/form-data with a valid boundary.
 */
int gate_multipart_new(gk_slice content_type, const gk_multipart_cb *cb,
    void *arg, gk_multipart **out) GK_WUR;
/*
 * Feeds the next bytes of the body (any chunking; len 0 is a no-op).
 * The preamble and the epilogue are ignored (within the limit). Headers: CRLF lines only, no
 * NUL or other control bytes but HTAB, no folding; Content-Disposition
 * form-data with a name is required, Content-Type optional, each at most
 * once; other headers ignored. After a delimiter only "--" or optional
 * spaces/tabs and CRLF may follow. Errors are sticky: every later call
 * returns the same code.
 */
int gate_multipart_feed(gk_multipart *m, const uint8_t *p, size_t len) GK_WUR;
/* End of body: GK_ERR_INVALID unless the closing delimiter was seen.
 * A part left open then gets no part_end. free accepts NULL. */
int gate_multipart_finish(gk_multipart *m) GK_WUR;
void gate_multipart_free(gk_multipart *m);

#endif
