/*
 * dest_int.h - the destination backend table (src/share/ only).
 */
#ifndef GK_SHARE_DEST_INT_H
#define GK_SHARE_DEST_INT_H

#include "share/share.h"

struct dest_ops {
	const char *scheme;	/* "file://", "s3://" */
	int (*open)(const char *rest, share_dest **out, char *err,
	    size_t errlen);
	void (*free)(share_dest *d);
	int (*put)(share_dest *d, const char *key, share_wr **out);
	int (*wr_write)(share_wr *w, const uint8_t *p, size_t len);
	int (*wr_commit)(share_wr *w);
	void (*wr_free)(share_wr *w);
	int (*get)(share_dest *d, const char *key, share_rd **out);
	int (*rd_read)(share_rd *r, uint8_t *buf, size_t max, size_t *got);
	void (*rd_free)(share_rd *r);
	int (*stat)(share_dest *d, const char *key, uint64_t *size);
};

/* The common head of every backend's structs. */
struct share_dest {
	const struct dest_ops *ops;
	char name[512];
};

struct share_wr {
	share_dest *d;
};

struct share_rd {
	share_dest *d;
};

extern const struct dest_ops dest_fs_ops;
extern const struct dest_ops dest_s3_ops;

/* Sets the thread's share_dest_error() text. */
void dest_set_error(const char *fmt, ...) GK_PRINTF(1, 2);

#endif
