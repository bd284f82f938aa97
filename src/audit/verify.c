/*
 * verify.c - audit_verify: recompute every hash chain, check every
 * checkpoint signature (database and checkpoint file), the prune anchors
 * and the tail, and name each problem precisely.
 *
 * Memory: checkpoints and anchors are held (one per checkpoint_records
 * records); records stream through, with a small ring of recent hashes to
 * tell an inserted record from a replaced one.
 */
#include "audit/audit_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RING 4
#define CP_MAX (64u * 1024 * 1024)	/* checkpoints held */
#define PRUNES_MAX 64			/* prune records held per instance */

/* A prune record of the instance being read (README "Proving the audit
 * log"): it allows pruning up to the checkpoint at `to`. */
struct prune_rec {
	int64_t seq;		/* the record's own */
	int64_t id;
	int64_t to;		/* pruned up to this checkpoint */
	int ok;			/* its checkpoint is signed, with that hash,
				 * before the cut-off, which is old enough */
};

struct cpent {
	audit_checkpoint cp;
	int in_db;
	unsigned file_line;	/* 0: not in the file */
	int valid;		/* signature holds */
};

struct vstate {
	const uint8_t *pubs;	/* npub keys of 32 bytes */
	size_t npub;
	gk_audit_problem_fn fn;
	void *arg;
	gk_audit_verify_stats *st;
	struct cpent *cps;
	size_t ncps, capcps;
	audit_checkpoint *anchors;
	size_t nanchors, capanchors;
	int cps_ready;
	size_t next_inst;	/* cps/anchors index: instances not begun */
	gk_buf scratch;
	int failed;		/* out of memory */
	int64_t min_prune_age_us;

	/* the instance being read */
	int active;
	char inst[AUDIT_INSTANCE_MAX + 1];
	const audit_checkpoint *anchor;
	int64_t expected;
	uint8_t running[AUDIT_HASH_LEN];
	int64_t last_seq;
	size_t cp_i;		/* next checkpoint of this instance */
	size_t cp_end;
	struct {
		int64_t seq;
		int64_t id;
		uint8_t hash[AUDIT_HASH_LEN];
	} ring[RING];
	unsigned ring_n;
	struct prune_rec prunes[PRUNES_MAX];
	unsigned nprunes;
};

static void problem(struct vstate *v, const char *fmt, ...) GK_PRINTF(2, 3);

/* 1 if any of the public keys verifies cp. */
static int
signed_ok(const struct vstate *v, const audit_checkpoint *cp)
{
	size_t i;

	for (i = 0; i < v->npub; i++)
		if (audit_cp_verify(cp, v->pubs + 32 * i) == 0)
			return 1;
	return 0;
}

static void
problem(struct vstate *v, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	v->st->problems++;
	if (v->fn != NULL)
		v->fn(v->arg, msg);
}

static int
cp_push(struct vstate *v, const audit_checkpoint *cp, int in_db,
    unsigned line)
{
	struct cpent *n;
	size_t cap;

	if (v->ncps == v->capcps) {
		cap = v->capcps ? 2 * v->capcps : 64;
		if (cap > CP_MAX || (n = realloc(v->cps, cap * sizeof(*n))) ==
		    NULL)
			return GK_ERR_NOMEM;
		v->cps = n;
		v->capcps = cap;
	}
	memset(&v->cps[v->ncps], 0, sizeof(v->cps[0]));
	v->cps[v->ncps].cp = *cp;
	v->cps[v->ncps].in_db = in_db;
	v->cps[v->ncps].file_line = line;
	v->ncps++;
	return 0;
}

static int
on_anchor(void *arg, const audit_checkpoint *cp)
{
	struct vstate *v = arg;
	audit_checkpoint *n;
	size_t cap;

	if (v->nanchors == v->capanchors) {
		cap = v->capanchors ? 2 * v->capanchors : 16;
		if (cap > CP_MAX || (n = realloc(v->anchors,
		    cap * sizeof(*n))) == NULL)
			return GK_ERR_NOMEM;
		v->anchors = n;
		v->capanchors = cap;
	}
	v->anchors[v->nanchors++] = *cp;
	return 0;
}

static int
on_checkpoint(void *arg, const audit_checkpoint *cp)
{
	return cp_push(arg, cp, 1, 0);
}

static int
cp_cmp(const void *pa, const void *pb)
{
	const struct cpent *a = pa, *b = pb;
	int c = strcmp(a->cp.instance, b->cp.instance);

	if (c != 0)
		return c;
	if (a->cp.seq != b->cp.seq)
		return a->cp.seq < b->cp.seq ? -1 : 1;
	/* database entries before file entries */
	return b->in_db - a->in_db;
}

static int
same_cp(const audit_checkpoint *a, const audit_checkpoint *b)
{
	return a->time_us == b->time_us &&
	    memcmp(a->hash, b->hash, AUDIT_HASH_LEN) == 0 &&
	    memcmp(a->sig, b->sig, AUDIT_SIG_LEN) == 0;
}

/* Checks signatures, merges database and file entries. */
static void
cps_finish(struct vstate *v)
{
	size_t i, j, out = 0;

	if (v->ncps > 1)
		qsort(v->cps, v->ncps, sizeof(*v->cps), cp_cmp);
	for (i = 0; i < v->ncps; i = j) {
		struct cpent e = v->cps[i];

		e.valid = signed_ok(v, &e.cp);
		if (!e.valid) {
			if (e.in_db)
				problem(v, "checkpoint seq %" PRId64 " of "
				    "instance %s in the database: bad "
				    "signature (forged or altered)",
				    e.cp.seq, e.cp.instance);
			else
				problem(v, "checkpoint file line %u (seq %"
				    PRId64 " of instance %s): bad signature "
				    "(forged or altered)", e.file_line,
				    e.cp.seq, e.cp.instance);
		}
		for (j = i + 1; j < v->ncps &&
		    strcmp(v->cps[j].cp.instance, e.cp.instance) == 0 &&
		    v->cps[j].cp.seq == e.cp.seq; j++) {
			struct cpent *o = &v->cps[j];
			int ok = signed_ok(v, &o->cp);

			if (!ok) {
				problem(v, "checkpoint file line %u (seq %"
				    PRId64 " of instance %s): bad signature "
				    "(forged or altered)", o->file_line,
				    o->cp.seq, o->cp.instance);
				continue;
			}
			if (e.valid && !same_cp(&e.cp, &o->cp))
				problem(v, "checkpoint seq %" PRId64 " of "
				    "instance %s differs between the database "
				    "and the checkpoint file", e.cp.seq,
				    e.cp.instance);
			if (!e.valid) {
				/* the file's signed copy stands */
				e.cp = o->cp;
				e.valid = 1;
			}
			e.in_db |= o->in_db;
			if (e.file_line == 0)
				e.file_line = o->file_line;
		}
		if (e.valid && !e.in_db)
			problem(v, "checkpoint seq %" PRId64 " of instance %s "
			    "(checkpoint file line %u) is missing from the "
			    "database (deleted)", e.cp.seq, e.cp.instance,
			    e.file_line);
		if (!e.valid)
			continue;
		v->cps[out++] = e;
	}
	v->ncps = out;
	v->st->checkpoints = out;
	/* anchors must be signed checkpoints */
	for (i = 0; i < v->nanchors; i++) {
		const audit_checkpoint *a = &v->anchors[i];
		int ok = 0;

		for (j = 0; j < v->ncps; j++) {
			if (strcmp(v->cps[j].cp.instance, a->instance) == 0 &&
			    v->cps[j].cp.seq == a->seq &&
			    memcmp(v->cps[j].cp.hash, a->hash,
			    AUDIT_HASH_LEN) == 0) {
				ok = 1;
				break;
			}
		}
		if (!ok)
			problem(v, "the prune anchor of instance %s (seq %"
			    PRId64 ") matches no signed checkpoint",
			    a->instance, a->seq);
	}
	v->cps_ready = 1;
}

static const audit_checkpoint *
anchor_of(struct vstate *v, const char *inst)
{
	size_t i;

	for (i = 0; i < v->nanchors; i++)
		if (strcmp(v->anchors[i].instance, inst) == 0)
			return &v->anchors[i];
	return NULL;
}

static void
inst_begin(struct vstate *v, const char *inst)
{
	snprintf(v->inst, sizeof(v->inst), "%s", inst);
	v->active = 1;
	v->st->instances++;
	v->anchor = anchor_of(v, inst);
	v->expected = v->anchor != NULL ? v->anchor->seq + 1 : 1;
	if (v->anchor != NULL)
		memcpy(v->running, v->anchor->hash, AUDIT_HASH_LEN);
	else
		memset(v->running, 0, AUDIT_HASH_LEN);
	v->last_seq = v->expected - 1;
	v->ring_n = 0;
	v->nprunes = 0;
	/* this instance's checkpoints after the anchor */
	v->cp_i = 0;
	while (v->cp_i < v->ncps &&
	    strcmp(v->cps[v->cp_i].cp.instance, inst) < 0)
		v->cp_i++;
	v->cp_end = v->cp_i;
	while (v->cp_end < v->ncps &&
	    strcmp(v->cps[v->cp_end].cp.instance, inst) == 0)
		v->cp_end++;
	while (v->cp_i < v->cp_end && v->cps[v->cp_i].cp.seq < v->expected)
		v->cp_i++;
}

/*
 * An anchor (records deleted from the chain's start) must be allowed by a
 * prune record still in the chain after it, covered by a signed
 * checkpoint, that prunes up to the anchor or beyond: else the records
 * were deleted by hand and the anchor moved (a forged prune).
 */
static void
anchor_allowed(struct vstate *v)
{
	int64_t top = 0;
	size_t j;
	unsigned i;

	if (v->anchor == NULL)
		return;
	for (j = 0; j < v->ncps; j++)
		if (strcmp(v->cps[j].cp.instance, v->inst) == 0 &&
		    v->cps[j].cp.seq > top)
			top = v->cps[j].cp.seq;
	for (i = 0; i < v->nprunes; i++)
		if (v->prunes[i].ok && v->prunes[i].to >= v->anchor->seq &&
		    v->prunes[i].seq <= top)
			return;
	problem(v, "the prune anchor of instance %s (seq %" PRId64 ") is "
	    "not allowed by a prune record signed after it: records up to "
	    "seq %" PRId64 " were deleted outside 'audit prune' (a forged "
	    "prune)", v->inst, v->anchor->seq, v->anchor->seq);
}

/* Notes a prune record: path "prune:SEQ:HASH:CUTOFF" (AUDIT_PRUNE_PATH_FMT),
 * allowed when the checkpoint it names is signed, has that hash and was
 * signed before the cut-off, and the cut-off lies min_prune_age_us before
 * the record. */
static void
note_prune(struct vstate *v, const gk_audit_row *row)
{
	const gk_audit_record *r = &row->rec;
	char hex[2 * AUDIT_HASH_LEN + 1];
	uint8_t hash[AUDIT_HASH_LEN];
	long long to, cutoff;
	struct prune_rec *p;
	size_t j;
	int n = 0;

	if (r->protocol == NULL || strcmp(r->protocol, "audit") != 0 ||
	    r->operation == NULL || strcmp(r->operation, "prune") != 0 ||
	    r->path == NULL)
		return;
	if (v->nprunes == PRUNES_MAX) {
		memmove(v->prunes, v->prunes + 1,
		    (PRUNES_MAX - 1) * sizeof(v->prunes[0]));
		v->nprunes--;
	}
	p = &v->prunes[v->nprunes++];
	memset(p, 0, sizeof(*p));
	p->seq = row->seq;
	p->id = row->id;
	if (sscanf(r->path, "prune:%lld:%64[0-9a-f]:%lld%n", &to, hex,
	    &cutoff, &n) != 3 || r->path[n] != '\0' || strlen(hex) !=
	    2 * AUDIT_HASH_LEN || gk_hex_decode(gk_slice_str(hex), hash,
	    AUDIT_HASH_LEN) != 0) {
		problem(v, "prune record seq %" PRId64 " (id %" PRId64 ") of "
		    "instance %s is malformed", row->seq, row->id, v->inst);
		return;
	}
	p->to = to;
	if (cutoff > r->time_us - v->min_prune_age_us) {
		problem(v, "prune record seq %" PRId64 " of instance %s prunes "
		    "records younger than the retention", row->seq, v->inst);
		return;
	}
	for (j = 0; j < v->ncps; j++) {
		const audit_checkpoint *c = &v->cps[j].cp;

		if (strcmp(c->instance, v->inst) == 0 && c->seq == to &&
		    memcmp(c->hash, hash, AUDIT_HASH_LEN) == 0 &&
		    c->time_us < cutoff) {
			p->ok = 1;
			return;
		}
	}
	problem(v, "prune record seq %" PRId64 " of instance %s names no "
	    "signed checkpoint from before its cut-off", row->seq, v->inst);
}

static void
inst_end(struct vstate *v)
{
	int64_t top;

	if (!v->active)
		return;
	anchor_allowed(v);
	if (v->cp_end > v->cp_i) {
		top = v->cps[v->cp_end - 1].cp.seq;
		if (top > v->last_seq)
			problem(v, "the log of instance %s ends at seq %" PRId64
			    " but a signed checkpoint covers seq %" PRId64
			    ": records %" PRId64 "..%" PRId64 " were deleted "
			    "(tail cut)", v->inst, v->last_seq, top,
			    v->last_seq + 1, top);
	}
	v->active = 0;
}

/* Begins and ends instances known only from checkpoints or anchors that
 * sort before inst (all when inst is NULL): their records are gone. */
static void
empty_instances_before(struct vstate *v, const char *inst)
{
	size_t i;

	for (i = v->next_inst; i < v->ncps; i++) {
		const char *name = v->cps[i].cp.instance;

		if (inst != NULL && strcmp(name, inst) >= 0)
			break;
		if (i > 0 && strcmp(v->cps[i - 1].cp.instance, name) == 0)
			continue;
		inst_begin(v, name);
		inst_end(v);
	}
	v->next_inst = i;
	/* skip the checkpoints of inst itself */
	while (inst != NULL && v->next_inst < v->ncps &&
	    strcmp(v->cps[v->next_inst].cp.instance, inst) == 0)
		v->next_inst++;
}

static int
ring_find(const struct vstate *v, const uint8_t *h, int64_t *seq,
    int64_t *id)
{
	unsigned i;

	for (i = 0; i < v->ring_n && i < RING; i++) {
		if (memcmp(v->ring[i].hash, h, AUDIT_HASH_LEN) == 0) {
			*seq = v->ring[i].seq;
			*id = v->ring[i].id;
			return 1;
		}
	}
	return 0;
}

static int
on_record(void *arg, const gk_audit_row *row)
{
	struct vstate *v = arg;
	uint8_t h[AUDIT_HASH_LEN];
	int64_t s = row->seq, fseq, fid;
	int gap = 0, modified = 0;

	if (!v->cps_ready)
		cps_finish(v);
	v->st->records++;
	if (!row->chained) {
		problem(v, "record id %" PRId64 " has no hash chain (no "
		    "instance, seq or hash)", row->id);
		return 0;
	}
	if (!v->active || strcmp(v->inst, row->instance_id) != 0) {
		inst_end(v);
		empty_instances_before(v, row->instance_id);
		inst_begin(v, row->instance_id);
	}
	if (s < v->expected) {
		if (v->anchor != NULL && s <= v->anchor->seq)
			problem(v, "record seq %" PRId64 " (id %" PRId64 ") of "
			    "instance %s lies in the pruned span (up to seq %"
			    PRId64 "): inserted", s, row->id, v->inst,
			    v->anchor->seq);
		else
			problem(v, "record id %" PRId64 " repeats seq %" PRId64
			    " of instance %s: inserted (not part of the "
			    "chain)", row->id, s, v->inst);
		return 0;
	}
	if (s > v->expected) {
		gap = 1;
		if (s == v->expected + 1)
			problem(v, "record seq %" PRId64 " of instance %s is "
			    "missing: deleted", v->expected, v->inst);
		else
			problem(v, "records seq %" PRId64 "..%" PRId64 " of "
			    "instance %s are missing: deleted", v->expected,
			    s - 1, v->inst);
	}
	if (row->altered || audit_chain_hash(&v->scratch, row->instance_id, s,
	    row->prev_hash,
	    &row->rec, h) != 0 ||
	    memcmp(h, row->hash, AUDIT_HASH_LEN) != 0) {
		modified = 1;
		problem(v, "record seq %" PRId64 " (id %" PRId64 ") of "
		    "instance %s was modified: its hash does not match its "
		    "content", s, row->id, v->inst);
	}
	if (!gap && !modified &&
	    memcmp(row->prev_hash, v->running, AUDIT_HASH_LEN) != 0) {
		if (ring_find(v, row->prev_hash, &fseq, &fid) &&
		    fseq == s - 2)
			problem(v, "record seq %" PRId64 " (id %" PRId64 ") of "
			    "instance %s was inserted: seq %" PRId64
			    " chains to seq %" PRId64, s - 1,
			    v->ring[(v->ring_n - 1) % RING].id, v->inst, s,
			    fseq);
		else
			problem(v, "the chain of instance %s breaks before "
			    "seq %" PRId64 " (id %" PRId64 "): its prev_hash "
			    "is not the hash of seq %" PRId64 " (that record "
			    "was replaced, or records were deleted and "
			    "renumbered)", v->inst, s, row->id, s - 1);
	}
	while (v->cp_i < v->cp_end && v->cps[v->cp_i].cp.seq < s)
		v->cp_i++;
	if (v->cp_i < v->cp_end && v->cps[v->cp_i].cp.seq == s) {
		if (memcmp(v->cps[v->cp_i].cp.hash, row->hash,
		    AUDIT_HASH_LEN) != 0)
			problem(v, "record seq %" PRId64 " (id %" PRId64 ") of "
			    "instance %s does not match the signed checkpoint "
			    "at seq %" PRId64 ": records up to it were "
			    "altered and re-hashed", s, row->id, v->inst, s);
		v->cp_i++;
	}
	if (!modified)
		note_prune(v, row);
	v->ring[v->ring_n % RING].seq = s;
	v->ring[v->ring_n % RING].id = row->id;
	memcpy(v->ring[v->ring_n % RING].hash, row->hash, AUDIT_HASH_LEN);
	v->ring_n++;
	v->expected = s + 1;
	memcpy(v->running, row->hash, AUDIT_HASH_LEN);
	v->last_seq = s;
	return 0;
}

/* Loads the checkpoint file's lines; a malformed line is a problem. */
static int
load_file(struct vstate *v, const char *path, char *err, size_t errlen)
{
	struct stat st;
	FILE *fp;
	char line[2048];
	audit_checkpoint cp;
	unsigned n = 0;
	int r = 0;

	if ((fp = fopen(path, "re")) == NULL) {
		if (errno == ENOENT)
			return 0; /* no checkpoint written yet */
		snprintf(err, errlen, "cannot read %s: %s", path,
		    strerror(errno));
		return GK_ERR_IO;
	}
	/* a directory opens and reads as empty: that is no checkpoint file */
	if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(fp);
		snprintf(err, errlen, "cannot read %s: %s", path,
		    strerror(EISDIR));
		return GK_ERR_IO;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		n++;
		if (line[0] == '\n' || line[0] == '\0')
			continue;
		if (audit_cp_parse(line, &cp) != 0) {
			problem(v, "checkpoint file line %u is malformed", n);
			continue;
		}
		if ((r = cp_push(v, &cp, 0, n)) != 0)
			break;
	}
	fclose(fp);
	return r;
}

int
audit_verify(const char *db_path, const uint8_t *pubs, size_t npub,
    const char *cp_file, int64_t min_prune_age_us, gk_audit_problem_fn fn,
    void *arg, gk_audit_verify_stats *st, char *err, size_t errlen)
{
	struct vstate v;
	audit_scan_cb cb = { on_anchor, on_checkpoint, on_record };
	int r = GK_ERR_INTERNAL;

	memset(&v, 0, sizeof(v));
	memset(st, 0, sizeof(*st));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	v.pubs = pubs;
	v.npub = npub;
	v.fn = fn;
	v.arg = arg;
	v.st = st;
	v.min_prune_age_us = min_prune_age_us;
	gk_buf_init(&v.scratch, AUDIT_ENC_CAP);
	if (cp_file != NULL && (r = load_file(&v, cp_file, err, errlen)) != 0)
		goto out;
	if ((r = audit_backend_for(db_path)->scan(db_path, &cb, &v, err,
	    errlen)) != 0)
		goto out;
	if (!v.cps_ready)
		cps_finish(&v);
	inst_end(&v);
	empty_instances_before(&v, NULL);
	r = 0;
out:
	free(v.cps);
	free(v.anchors);
	gk_buf_release(&v.scratch);
	return r;
}

int
audit_read_pubkey(const char *path, uint8_t pub[32])
{
	gk_buf b;
	size_t n;
	int r;

	if ((r = gk_file_read(path, 4096, &b)) != 0)
		return GK_ERR_IO;
	n = b.len;
	while (n > 0 && (b.data[n - 1] == '\n' || b.data[n - 1] == '\r' ||
	    b.data[n - 1] == ' '))
		n--;
	r = gk_hex_decode(gk_slice_of(b.data, n), pub, 32);
	gk_buf_release(&b);
	return r != 0 ? GK_ERR_INVALID : 0;
}
