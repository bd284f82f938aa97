/*
 * cmd_audit.c - gatekeeper audit search | export (prune and verify have
 * their own files): read the audit log. Search opens the database
 * read-only, so it works while a server writes to it.
 *
 * Everything printed comes from clients (user agents, paths), so the
 * table format replaces control characters and invalid UTF-8 before they
 * reach a terminal; json escapes control characters and csv replaces
 * them (but tab, CR and LF) with U+FFFD, as both do invalid UTF-8.
 */
#include "cmd_audit.h"

#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "config/config.h"

#define LIMIT_MAX 1000000u
#define ROW_CAP (1024u * 1024)		/* one formatted json/csv row */
#define TABLE_CAP (64u * 1024 * 1024)	/* all cells of a table */
#define CELL_WIDTH_MAX 60u		/* characters shown per cell */

static const char usage_text[] =
    "usage: gatekeeper audit search [options]   (see: audit search --help)\n"
    "       gatekeeper audit prune [options]    (see: audit prune --help)\n"
    "       gatekeeper audit export [options]   (see: audit export --help)\n"
    "       gatekeeper audit verify [options]   (see: audit verify --help)\n"
    "\n"
    "Searches, trims or proves the audit log (every request that reached\n"
    "the gate, allowed or denied).\n";

static const char search_usage[] =
    "usage: gatekeeper audit search [--config FILE] [--db PATH] [--from T]\n"
    "           [--to T] [--ip ADDR|CIDR] [--op OP] [--status N]\n"
    "           [--decision allow|deny|error] [--path-prefix P] [--limit N]\n"
    "           [--country CC] [--kid K] [--sub S] [--request-id ID]\n"
    "           [--grant ID]\n"
    "           [--format table|json|csv]\n"
    "\n"
    "Prints audit records, newest first. All filters combine with AND.\n"
    "\n"
    "  --config FILE    config file (default: $GATEKEEPER_CONFIG, else\n"
    "                   ./gatekeeper.ini, else the built-in defaults)\n"
    "  --db PATH|URI    audit database (a SQLite path or a postgresql://\n"
    "                   URI); overrides the config\n"
    "  --from T         records at or after T\n"
    "  --to T           records before T\n"
    "                   T is YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS[.ffffff]Z (UTC)\n"
    "                   or unix seconds\n"
    "  --ip ADDR|CIDR   client address, or a range such as 10.0.0.0/8 or\n"
    "                   2001:db8::/32\n"
    "  --op OP          operation: GET_Object, GET_Bucket, PUT_Object, ...\n"
    "  --status N       HTTP status answered (100-599)\n"
    "  --decision D     allow, deny or error\n"
    "  --path-prefix P  requested path starts with P (exact bytes, no\n"
    "                   wildcards)\n"
    "  --country CC     client country (ISO 3166 code)\n"
    "  --kid K          v2: vendor key id\n"
    "  --grant ID       S3 endpoint requests and changes of grant ID\n"
    "                   (stored in the kid field)\n"
    "  --sub S          v2: the vendor's user id\n"
    "  --request-id ID  one request (the X-Request-Id answered)\n"
    "  --limit N        at most N records (default 100, at most 1000000)\n"
    "  --format F       table (default, for people), json or csv:\n"
    "                   json is JSON Lines: one JSON object per line, one\n"
    "                   line per record; csv has a header row, RFC 4180\n"
    "                   quoting and LF line ends (control characters but\n"
    "                   tab, CR and LF become U+FFFD)\n"
    "\n"
    "The database is opened read-only; searching while the server runs is\n"
    "safe.\n";

static const char export_usage[] =
    "usage: gatekeeper audit export [--config FILE] [--db PATH|URI]\n"
    "           [--from T] [--to T] [--format json|csv] [filters]\n"
    "\n"
    "Writes every matching audit record to standard output, oldest first,\n"
    "streamed row by row (constant memory, any size): JSON Lines (default)\n"
    "or CSV with a header row. Takes the filters of 'audit search'\n"
    "(--ip, --op, --status, --decision, --path-prefix, --country, --kid,\n"
    "--grant, --sub, --request-id, --limit); without --limit there is\n"
    "none.\n"
    "\n"
    "  gatekeeper audit export --from 2026-11-01 --to 2026-12-01 \\\n"
    "      --format csv > november.csv\n";

enum { FMT_TABLE, FMT_JSON, FMT_CSV };

/* ---- text hygiene ----------------------------------------------------- */

/*
 * A terminal-safe copy of s for the table: control characters (C0, DEL,
 * C1) and invalid bytes become '?'; at most max characters, the last
 * three "..." when cut. *width gets the characters kept. Caller frees.
 */
static char *
term_cell(const char *s, size_t max, size_t *width)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n = strlen(s), i = 0, k, w = 0, cut_at = 0, cut_w = 0;
	gk_buf b;

	gk_buf_init(&b, TABLE_CAP);
	if (gk_buf_append(&b, "", 0) != 0)
		return NULL;
	while (i < n) {
		if (w == max - 3) {
			cut_at = b.len;
			cut_w = w;
		}
		if (w == max) {
			b.len = cut_at;
			w = cut_w;
			if (gk_buf_append(&b, "...", 3) != 0)
				goto fail;
			w += 3;
			break;
		}
		k = gk_utf8_seq(p + i, n - i);
		if (k == 0 || gk_utf8_control(p + i, k)) {
			if (gk_buf_append(&b, "?", 1) != 0)
				goto fail;
			i += k == 0 ? 1 : k;
		} else {
			if (gk_buf_append(&b, p + i, k) != 0)
				goto fail;
			i += k;
		}
		w++;
	}
	*width = w;
	return gk_buf_detach(&b, NULL);
fail:
	gk_buf_release(&b);
	return NULL;
}

/* ---- row formats ------------------------------------------------------ */

static int
fmt_json(gk_buf *b, const gk_audit_row *row)
{
	int r;

	if ((r = audit_row_json(b, row)) != 0)
		return r;
	return gk_buf_append_str(b, "\n");
}

static const char csv_header[] =
    "id,time,request_id,client_ip,user_agent,origin,protocol,operation,"
    "root,path,status,decision,message,bytes,duration_us,country,kid,sub,"
    "jti,token_sig\n";

/*
 * v as valid UTF-8 (invalid bytes U+FFFD) without the control characters
 * a terminal acts on (C0 but tab, CR and LF; DEL; C1), also U+FFFD: a
 * client's text cannot move the cursor or retitle the window of an
 * operator reading the CSV.
 */
static int
csv_clean(const char *v, gk_buf *out)
{
	static const char repl[] = "\xef\xbf\xbd";
	gk_buf tmp;
	const uint8_t *p;
	size_t i, k;
	int r;

	gk_buf_init(&tmp, ROW_CAP);
	if ((r = gk_utf8_sanitize(gk_slice_str(v), &tmp)) != 0)
		goto out;
	p = tmp.data;
	for (i = 0; i < tmp.len && r == 0; i += k) {
		if ((k = gk_utf8_seq(p + i, tmp.len - i)) == 0)
			k = 1;	/* not after gk_utf8_sanitize */
		if (gk_utf8_control(p + i, k) && p[i] != '\t' &&
		    p[i] != '\r' && p[i] != '\n')
			r = gk_buf_append(out, repl, 3);
		else
			r = gk_buf_append(out, p + i, k);
	}
out:
	gk_buf_release(&tmp);
	return r;
}

/*
 * One CSV field: quoted (quotes doubled) when it holds , " CR or LF. A
 * field starting with = + - @ tab or CR would be a live formula in a
 * spreadsheet (a client's User-Agent "=HYPERLINK(...)"): OWASP's rule,
 * it gets a leading ' and quotes, so it reads as text.
 */
static int
csv_field(gk_buf *b, const char *v, int last)
{
	gk_buf tmp;
	size_t i;
	int r, formula;

	gk_buf_init(&tmp, ROW_CAP);
	if (v != NULL && (r = csv_clean(v, &tmp)) != 0)
		goto out;
	formula = tmp.len > 0 && memchr("=+-@\t\r", tmp.data[0], 6) != NULL;
	if (formula || (tmp.len > 0 &&
	    strpbrk((char *)tmp.data, ",\"\r\n") != NULL)) {
		if ((r = gk_buf_append(b, formula ? "\"'" : "\"",
		    formula ? 2 : 1)) != 0)
			goto out;
		for (i = 0; i < tmp.len; i++) {
			if (tmp.data[i] == '"' &&
			    (r = gk_buf_append(b, "\"", 1)) != 0)
				goto out;
			if ((r = gk_buf_append(b, tmp.data + i, 1)) != 0)
				goto out;
		}
		if ((r = gk_buf_append(b, "\"", 1)) != 0)
			goto out;
	} else if (tmp.len > 0 &&
	    (r = gk_buf_append(b, tmp.data, tmp.len)) != 0) {
		goto out;
	}
	r = gk_buf_append(b, last ? "\n" : ",", 1);
out:
	gk_buf_release(&tmp);
	return r;
}

static int
fmt_csv(gk_buf *b, const gk_audit_row *row)
{
	const gk_audit_record *rec = &row->rec;
	char ts[40], id[24], status[16], bytes[24], dur[24];
	int r;

	gk_time_iso_us(rec->time_us, ts, sizeof(ts));
	snprintf(id, sizeof(id), "%" PRId64, row->id);
	snprintf(status, sizeof(status), "%d", rec->status);
	snprintf(bytes, sizeof(bytes), "%" PRIu64, rec->bytes);
	snprintf(dur, sizeof(dur), "%" PRId64, rec->duration_us);
	if ((r = csv_field(b, id, 0)) != 0 ||
	    (r = csv_field(b, ts, 0)) != 0 ||
	    (r = csv_field(b, rec->request_id, 0)) != 0 ||
	    (r = csv_field(b, rec->client_ip, 0)) != 0 ||
	    (r = csv_field(b, rec->user_agent, 0)) != 0 ||
	    (r = csv_field(b, rec->origin, 0)) != 0 ||
	    (r = csv_field(b, rec->protocol, 0)) != 0 ||
	    (r = csv_field(b, rec->operation, 0)) != 0 ||
	    (r = csv_field(b, rec->root, 0)) != 0 ||
	    (r = csv_field(b, rec->path, 0)) != 0 ||
	    (r = csv_field(b, status, 0)) != 0 ||
	    (r = csv_field(b, rec->decision, 0)) != 0 ||
	    (r = csv_field(b, rec->message, 0)) != 0 ||
	    (r = csv_field(b, bytes, 0)) != 0 ||
	    (r = csv_field(b, dur, 0)) != 0 ||
	    (r = csv_field(b, rec->country, 0)) != 0 ||
	    (r = csv_field(b, rec->kid, 0)) != 0 ||
	    (r = csv_field(b, rec->sub, 0)) != 0 ||
	    (r = csv_field(b, rec->jti, 0)) != 0 ||
	    (r = csv_field(b, rec->token_sig, 1)) != 0)
		return r;
	return 0;
}

/* ---- table ------------------------------------------------------------ */

#define NCOL 9

static const char *const table_head[NCOL] = { "TIME", "CLIENT",
    "DECISION", "STATUS", "OP", "BYTES", "ROOT", "PATH", "MESSAGE" };

struct table {
	char **cells;		/* NCOL per row */
	size_t *widths;		/* display width of each cell */
	size_t rows, alloc;
	size_t total;		/* bytes held, against TABLE_CAP */
	size_t colw[NCOL];
};

static void
table_free(struct table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->rows * NCOL; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->widths);
	memset(t, 0, sizeof(*t));
}

static int
table_add(struct table *t, const gk_audit_row *row)
{
	const gk_audit_record *rec = &row->rec;
	char ts[40], status[16], bytes[24];
	const char *v[NCOL];
	size_t i, n, base, len;

	if (t->rows == t->alloc) {
		size_t na = t->alloc ? t->alloc * 2 : 64, bytes_c, bytes_w;
		char **nc;
		size_t *nw;

		if (gk_mul_size(na, NCOL * sizeof(*t->cells), &bytes_c) != 0 ||
		    gk_mul_size(na, NCOL * sizeof(*t->widths), &bytes_w) != 0)
			return GK_ERR_TOO_LARGE;
		if ((nc = realloc(t->cells, bytes_c)) == NULL)
			return GK_ERR_NOMEM;
		t->cells = nc;
		if ((nw = realloc(t->widths, bytes_w)) == NULL)
			return GK_ERR_NOMEM;
		t->widths = nw;
		t->alloc = na;
	}
	gk_time_iso(rec->time_us / 1000000, ts, sizeof(ts));
	snprintf(status, sizeof(status), "%d", rec->status);
	snprintf(bytes, sizeof(bytes), "%" PRIu64, rec->bytes);
	v[0] = ts;
	v[1] = rec->client_ip;
	v[2] = rec->decision;
	v[3] = status;
	v[4] = rec->operation;
	v[5] = bytes;
	v[6] = rec->root;
	v[7] = rec->path;
	v[8] = rec->message;
	base = t->rows * NCOL;
	for (i = 0; i < NCOL; i++) {
		const char *s = v[i] != NULL && v[i][0] != '\0' ? v[i] : "-";

		if ((t->cells[base + i] = term_cell(s, CELL_WIDTH_MAX,
		    &t->widths[base + i])) == NULL) {
			while (i-- > 0)
				free(t->cells[base + i]);
			return GK_ERR_NOMEM;
		}
	}
	t->rows++;
	for (i = 0; i < NCOL; i++) {
		n = t->widths[base + i];
		len = strlen(t->cells[base + i]);
		if (gk_add_size(t->total, len, &t->total) != 0 ||
		    t->total > TABLE_CAP)
			return GK_ERR_TOO_LARGE;
		if (n > t->colw[i])
			t->colw[i] = n;
	}
	return 0;
}

static void
table_print(const struct table *t, FILE *fp)
{
	size_t r, i, w;
	const char *s;

	for (r = 0; r <= t->rows; r++) {
		for (i = 0; i < NCOL; i++) {
			if (r == 0) {
				s = table_head[i];
				w = strlen(s);
			} else {
				s = t->cells[(r - 1) * NCOL + i];
				w = t->widths[(r - 1) * NCOL + i];
			}
			fputs(s, fp);
			if (i + 1 < NCOL) {
				size_t cw = t->colw[i] > strlen(table_head[i]) ?
				    t->colw[i] : strlen(table_head[i]);

				for (; w < cw + 2; w++)
					fputc(' ', fp);
			}
		}
		fputc('\n', fp);
	}
}

/* ---- search ----------------------------------------------------------- */

struct out {
	int format;
	gk_buf row;
	struct table table;
	uint64_t n;
};

static int
on_row(void *arg, const gk_audit_row *row)
{
	struct out *o = arg;
	int r;

	o->n++;
	if (o->format == FMT_TABLE)
		return table_add(&o->table, row);
	if (o->format == FMT_CSV && o->n == 1 && fputs(csv_header, stdout) < 0)
		return GK_ERR_IO;
	gk_buf_reset(&o->row);
	r = o->format == FMT_JSON ? fmt_json(&o->row, row) :
	    fmt_csv(&o->row, row);
	if (r != 0)
		return r;
	if (fwrite(o->row.data, 1, o->row.len, stdout) != o->row.len)
		return GK_ERR_IO;
	return 0;
}

static int
search_main(int argc, char **argv, int export)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "db", required_argument, NULL, OPT_DB },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "to", required_argument, NULL, OPT_TO },
		{ "ip", required_argument, NULL, OPT_IP },
		{ "op", required_argument, NULL, OPT_OP },
		{ "status", required_argument, NULL, OPT_STATUS },
		{ "decision", required_argument, NULL, OPT_DECISION },
		{ "path-prefix", required_argument, NULL, OPT_PREFIX },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "country", required_argument, NULL, OPT_COUNTRY },
		{ "kid", required_argument, NULL, OPT_KID },
		{ "grant", required_argument, NULL, OPT_KID },
		{ "sub", required_argument, NULL, OPT_SUB },
		{ "request-id", required_argument, NULL, OPT_REQID },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfgpath = NULL, *db = NULL;
	const char *fmt = export ? "json" : "table";
	gk_audit_query q;
	gk_config *cfg = NULL;
	struct out o;
	char err[512];
	uint64_t v;
	int c, r, rc = 1;

	memset(&q, 0, sizeof(q));
	memset(&o, 0, sizeof(o));
	if (export) {
		q.oldest_first = 1;
		q.limit = UINT32_MAX; /* everything in the range, streamed */
	}
	gk_buf_init(&o.row, ROW_CAP);
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_CONFIG: cfgpath = optarg; break;
		case OPT_DB: db = optarg; break;
		case OPT_FROM:
		case OPT_TO:
			if (gk_time_parse(optarg, c == OPT_FROM ? &q.from_us :
			    &q.to_us) != 0) {
				cli_error(VERB, "bad --%s value (want "
				    "YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or unix "
				    "seconds)", c == OPT_FROM ? "from" : "to");
				rc = 2;
				goto out;
			}
			if (c == OPT_TO && q.to_us == 0)
				q.to_us = -1;	/* 0 would be "no bound" */
			break;
		case OPT_IP: q.ip = optarg; break;
		case OPT_OP: q.operation = optarg; break;
		case OPT_STATUS:
			if (gk_parse_u64(gk_slice_str(optarg), 599, &v) != 0 ||
			    v < 100) {
				cli_error(VERB, "bad --status value (100-599)");
				rc = 2;
				goto out;
			}
			q.status = (int)v;
			break;
		case OPT_DECISION:
			if (strcmp(optarg, "allow") != 0 &&
			    strcmp(optarg, "deny") != 0 &&
			    strcmp(optarg, "error") != 0) {
				cli_error(VERB, "bad --decision value (allow, "
				    "deny or error)");
				rc = 2;
				goto out;
			}
			q.decision = optarg;
			break;
		case OPT_PREFIX: q.path_prefix = optarg; break;
		case OPT_LIMIT:
			if (gk_parse_u64(gk_slice_str(optarg), LIMIT_MAX, &v) !=
			    0 || v == 0) {
				cli_error(VERB, "bad --limit value (1-%u)",
				    LIMIT_MAX);
				rc = 2;
				goto out;
			}
			q.limit = (unsigned)v;
			break;
		case OPT_FORMAT: fmt = optarg; break;
		case OPT_COUNTRY: q.country = optarg; break;
		case OPT_KID: q.kid = optarg; break;
		case OPT_SUB: q.sub = optarg; break;
		case OPT_REQID: q.request_id = optarg; break;
		case 'h':
			fputs(export ? export_usage : search_usage, stdout);
			rc = 0;
			goto out;
		default:
			rc = cli_bad_option(VERB, c, argv);
			goto out;
		}
	}
	if (optind != argc) {
		cli_error(VERB, "unexpected argument %s (see --help)",
		    argv[optind]);
		rc = 2;
		goto out;
	}
	if (strcmp(fmt, "table") == 0 && !export) {
		o.format = FMT_TABLE;
	} else if (strcmp(fmt, "json") == 0) {
		o.format = FMT_JSON;
	} else if (strcmp(fmt, "csv") == 0) {
		o.format = FMT_CSV;
	} else {
		cli_error(VERB, "bad --format value (%s)", export ?
		    "json or csv" : "table, json or csv");
		rc = 2;
		goto out;
	}
	if (db == NULL || cfgpath != NULL) {
		if (cli_load_config(VERB, cfgpath, 0, &cfg) != 0)
			goto out;
		if (db == NULL)
			db = cfg_audit_target(cfg);
	}
	if (db == NULL || db[0] == '\0') {
		cli_error(VERB, "no audit database (set [audit] db or dsn, "
		    "or --db)");
		goto out;
	}
	r = audit_search(db, &q, on_row, &o, err, sizeof(err));
	if (r == GK_ERR_INVALID) {
		cli_error(VERB, "%s", err);
		rc = 2;
		goto out;
	}
	if (r != 0) {
		if (err[0] != '\0')
			cli_error(VERB, "%s", err);
		else
			cli_error(VERB, "search failed: %s", gk_err_str(r));
		goto out;
	}
	if (o.format == FMT_CSV && o.n == 0)
		fputs(csv_header, stdout);
	if (o.format == FMT_TABLE) {
		if (o.n == 0)
			fputs("no matching records\n", stderr);
		else
			table_print(&o.table, stdout);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error(VERB, "cannot write the output");
		goto out;
	}
	rc = 0;
out:
	table_free(&o.table);
	gk_buf_release(&o.row);
	cfg_free(cfg);
	return rc;
}

int
cmd_audit(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0) {
		fputs(usage_text, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	/* argv + 1: the sub-verb plays argv[0] for getopt */
	if (strcmp(argv[1], "search") == 0)
		return search_main(argc - 1, argv + 1, 0);
	if (strcmp(argv[1], "export") == 0)
		return search_main(argc - 1, argv + 1, 1);
	if (strcmp(argv[1], "prune") == 0)
		return cmd_audit_prune(argc - 1, argv + 1);
	if (strcmp(argv[1], "verify") == 0)
		return cmd_audit_verify(argc - 1, argv + 1);
	cli_error(VERB, "unknown command %s (search, export, prune or verify)",
	    argv[1]);
	return 2;
}
