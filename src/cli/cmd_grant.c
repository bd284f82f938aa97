/* cmd_grant.c - gatekeeper grant: scoped credentials for the S3 endpoint. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "config/config.h"
#include "grant/grant.h"

static const char usage_text[] =
    "usage: gatekeeper grant create --name N --prefix P --ops OPS\n"
    "                               [--expires DUR] [--ip CIDR]... "
    "[--rate R]\n"
    "       gatekeeper grant list [--json]\n"
    "       gatekeeper grant show ID\n"
    "       gatekeeper grant revoke ID\n"
    "       gatekeeper grant rotate ID\n"
    "       (each takes [--config FILE])\n"
    "\n"
    "A grant is a credential for the S3-compatible endpoint ([s3api]): one\n"
    "key prefix, a set of operations, an optional expiry, client CIDRs and\n"
    "a request rate. create and rotate print the access key id and the\n"
    "secret once; the secret is stored only encrypted (keys/grant.key).\n"
    "Grants live in the audit database, so instances sharing it share\n"
    "them: a revocation holds on every instance at its next request\n"
    "(revoking a revoked grant is refused, exit 1, and records nothing;\n"
    "of revokes at the same time exactly one succeeds).\n"
    "Every change is written to the audit log (protocol grant).\n"
    "\n"
    "  --name N       a label, 1-128 printable characters\n"
    "  --prefix P     keys the grant reaches (\"\" = the whole bucket;\n"
    "                 end it with / for a folder)\n"
    "  --ops OPS      comma list of get, list, put, delete\n"
    "  --expires DUR  lifetime: 90d, 12h, 30m, 45s (default: none)\n"
    "  --ip CIDR      only from these addresses (repeatable; the\n"
    "                 customer's IP lists apply as well)\n"
    "  --rate R       requests per second for this grant (default: none\n"
    "                 beyond [rate])\n";

static const char *const verb = "grant";

/* One audit record for a change; 0 when durable. */
static int
audit_change(const gk_config *cfg, const char *op, const gk_grant *g,
    const char *detail)
{
	gk_audit *a = NULL;
	audit_settings as;
	gk_audit_record rec;
	char msg[512], ops[32], err[512];
	int r, tries;

	grant_ops_str(g->ops, ops, sizeof(ops));
	snprintf(msg, sizeof(msg), "%s: name=%s ops=%s expires=%lld rate=%u "
	    "ips=%zu access_key_id=%s", detail, g->name, ops,
	    (long long)g->expires_s, g->rate, g->n_ips, g->access_key);
	memset(&rec, 0, sizeof(rec));
	rec.time_us = gk_now_us();
	rec.protocol = "grant";
	rec.operation = op;
	rec.path = g->prefix;
	rec.status = 200;
	rec.decision = "allow";
	rec.message = msg;
	rec.kid = g->id;
	rec.user_agent = "gatekeeper grant";
	cfg_audit_settings(cfg, &as);
	if ((r = audit_open_as(&as, "cli", &a, err, sizeof(err))) != 0) {
		cli_error(verb, "cannot open the audit log %s: %s",
		    audit_label(as.target), err);
		return r;
	}
	/* another command line may extend the same chain: retry */
	for (tries = 0; tries < 3; tries++) {
		if ((r = audit_write(a, &rec)) == 0)
			break;
	}
	audit_close(a);
	return r;
}

static void
print_grant(const gk_grant *g)
{
	char ops[32], t[40];
	size_t i;

	grant_ops_str(g->ops, ops, sizeof(ops));
	printf("id:            %s\n", g->id);
	printf("name:          %s\n", g->name);
	printf("prefix:        %s\n", g->prefix);
	printf("ops:           %s\n", ops);
	printf("access_key_id: %s\n", g->access_key);
	gk_time_iso(g->created_s, t, sizeof(t));
	printf("created:       %s\n", t);
	if (g->expires_s != 0)
		gk_time_iso(g->expires_s, t, sizeof(t));
	printf("expires:       %s\n", g->expires_s ? t : "never");
	if (g->revoked_s != 0)
		gk_time_iso(g->revoked_s, t, sizeof(t));
	printf("revoked:       %s\n", g->revoked_s ? t : "no");
	printf("ip:           ");
	for (i = 0; i < g->n_ips; i++)
		printf(" %s", g->ips[i]);
	printf("%s\n", g->n_ips ? "" : " any");
	if (g->rate)
		printf("rate:          %u/s\n", g->rate);
	else
		printf("rate:          none\n");
}

static int
print_row(void *arg, const gk_grant *g)
{
	int json = *(int *)arg;
	char ops[32];
	const char *state;
	gk_buf b;

	if (json) {
		gk_buf_init(&b, 16384);
		if (grant_json(g, &b) == 0)
			printf("%.*s\n", (int)b.len, (const char *)b.data);
		gk_buf_release(&b);
		return 0;
	}
	grant_ops_str(g->ops, ops, sizeof(ops));
	state = g->revoked_s ? "revoked" : g->expires_s != 0 &&
	    g->expires_s <= gk_now_s() ? "expired" : "active";
	printf("%-14s  %-20s  %-7s  %-20s  %s  %s\n", g->id, g->access_key,
	    state, ops, g->prefix[0] ? g->prefix : "(all)", g->name);
	return 0;
}

static int
failed(int r, const char *id)
{
	if (r == GK_ERR_NOT_FOUND)
		cli_error(verb, "no grant '%s'", id);
	else if (r == GK_ERR_UNAVAILABLE)
		cli_error(verb, "audit database: %s", grant_error());
	else
		cli_error(verb, "%s", gk_err_str(r));
	return 1;
}

static int
do_create(const gk_config *cfg, gk_grants *gs, int argc, char **argv)
{
	enum { O_NAME = 1, O_PREFIX, O_OPS, O_EXPIRES, O_IP, O_RATE };
	static const struct option opts[] = {
		{ "name", required_argument, NULL, O_NAME },
		{ "prefix", required_argument, NULL, O_PREFIX },
		{ "ops", required_argument, NULL, O_OPS },
		{ "expires", required_argument, NULL, O_EXPIRES },
		{ "ip", required_argument, NULL, O_IP },
		{ "rate", required_argument, NULL, O_RATE },
		{ "config", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 }
	};
	gk_grant g, tmp;
	int64_t dur = 0;
	uint64_t rate;
	char err[256];
	int c, r, have_prefix = 0, have_ops = 0;

	memset(&g, 0, sizeof(g));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case O_NAME:
			if (strlen(optarg) > GRANT_NAME_MAX) {
				cli_error(verb, "--name is too long");
				return 2;
			}
			snprintf(g.name, sizeof(g.name), "%s", optarg);
			break;
		case O_PREFIX:
			if (strlen(optarg) > GRANT_PREFIX_MAX) {
				cli_error(verb, "--prefix is too long");
				return 2;
			}
			snprintf(g.prefix, sizeof(g.prefix), "%s", optarg);
			have_prefix = 1;
			break;
		case O_OPS:
			if (grant_ops_parse(optarg, &g.ops) != 0) {
				cli_error(verb, "--ops must be a comma list of "
				    "get, list, put, delete");
				return 2;
			}
			have_ops = 1;
			break;
		case O_EXPIRES:
			if (grant_duration_parse(optarg, &dur) != 0) {
				cli_error(verb, "--expires must be like 90d, "
				    "12h, 30m or 45s");
				return 2;
			}
			break;
		case O_IP:
			if (g.n_ips == GRANT_IPS_MAX ||
			    strlen(optarg) > GRANT_CIDR_MAX) {
				cli_error(verb, "at most %d --ip of %d "
				    "characters", GRANT_IPS_MAX,
				    GRANT_CIDR_MAX);
				return 2;
			}
			snprintf(g.ips[g.n_ips++], sizeof(g.ips[0]), "%s",
			    optarg);
			break;
		case O_RATE:
			if (gk_parse_u64(gk_slice_str(optarg), 1000000,
			    &rate) != 0 || rate == 0) {
				cli_error(verb, "--rate must be 1 to 1000000 "
				    "requests per second");
				return 2;
			}
			g.rate = (unsigned)rate;
			break;
		case 'c':
			break;
		default:
			return cli_bad_option(verb, c, argv);
		}
	}
	if (optind < argc || g.name[0] == '\0' || !have_prefix || !have_ops) {
		cli_error(verb, "create needs --name, --prefix and --ops");
		return 2;
	}
	if (dur != 0)
		g.expires_s = gk_now_s() + dur;
	if ((r = grant_create(gs, &g, &grant_cli_fields, err,
	    sizeof(err))) != 0) {
		cli_error(verb, "%s", err);
		return r == GK_ERR_INVALID ? 2 : 1;
	}
	if (audit_change(cfg, "grant_create", &g, "created") != 0) {
		if (grant_revoke(gs, g.id, &tmp) != 0)
			cli_error(verb, "and revoking it failed: %s", grant_error());
		gk_wipe(g.secret, sizeof(g.secret));
		cli_error(verb, "the audit log cannot be written; the new "
		    "grant %s was revoked", g.id);
		return 1;
	}
	print_grant(&g);
	printf("secret_access_key: %s\n", g.secret);
	printf("(the secret is shown only now; 'grant rotate %s' makes a new "
	    "one)\n", g.id);
	gk_wipe(g.secret, sizeof(g.secret));
	return 0;
}

int
cmd_grant(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 }
	};
	const char *cfgpath = NULL, *sub, *id = NULL;
	gk_config *cfg = NULL;
	gk_grants *gs = NULL;
	gk_grant g, tmp;
	grant_settings grs;
	char err[512];
	int i, c, r, json = 0, status = 1;

	if (argc < 2 || cli_wants_help(argc, argv)) {
		fputs(usage_text, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	sub = argv[1];
	if (strcmp(sub, "create") != 0 && strcmp(sub, "list") != 0 &&
	    strcmp(sub, "show") != 0 && strcmp(sub, "revoke") != 0 &&
	    strcmp(sub, "rotate") != 0) {
		cli_error(verb, "unknown subcommand '%s' (see --help)", sub);
		return 2;
	}
	/* --config anywhere */
	for (i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--config") == 0)
			cfgpath = argv[i + 1];
	}
	if (strcmp(sub, "create") != 0) {
		optind = 2;
		opterr = 0;
		while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
			if (c == 'c')
				cfgpath = optarg;
			else if (c == 'j' && strcmp(sub, "list") == 0)
				json = 1;
			else
				return cli_bad_option(verb, c, argv);
		}
		if (strcmp(sub, "list") != 0) {
			if (optind + 1 != argc) {
				cli_error(verb, "%s needs one grant id", sub);
				return 2;
			}
			id = argv[optind];
		} else if (optind != argc) {
			cli_error(verb, "unexpected argument '%s' (see --help)",
			    argv[optind]);
			return 2;
		}
	}
	if (cli_load_config(verb, cfgpath, 1, &cfg) != 0)
		return 1;
	cfg_grant_settings(cfg, &grs);
	if ((r = grant_open(&grs, &gs, err, sizeof(err))) != 0) {
		cli_error(verb, "%s", err);
		goto out;
	}
	if (strcmp(sub, "create") == 0) {
		status = do_create(cfg, gs, argc - 1, argv + 1);
	} else if (strcmp(sub, "list") == 0) {
		if ((r = grant_list(gs, print_row, &json)) != 0)
			status = failed(r, "");
		else
			status = 0;
	} else if (strcmp(sub, "show") == 0) {
		if ((r = grant_get(gs, id, &g)) != 0)
			status = failed(r, id);
		else {
			print_grant(&g);
			status = 0;
		}
	} else if (strcmp(sub, "revoke") == 0) {
		if ((r = grant_revoke(gs, id, &g)) == GK_ERR_DENIED)
			cli_error(verb, "grant %s is already revoked", id);
		else if (r != 0)
			status = failed(r, id);
		else if (audit_change(cfg, "grant_revoke", &g,
		    "revoked") != 0) {
			cli_error(verb, "grant %s is revoked, but the audit log "
			    "cannot be written", id);
		} else {
			printf("revoked %s\n", id);
			status = 0;
		}
	} else {
		if ((r = grant_rotate(gs, id, &g)) == GK_ERR_DENIED) {
			cli_error(verb, "grant %s is revoked", id);
		} else if (r != 0) {
			status = failed(r, id);
		} else if (audit_change(cfg, "grant_rotate", &g,
		    "rotated") != 0) {
			gk_wipe(g.secret, sizeof(g.secret));
			if (grant_revoke(gs, id, &tmp) != 0)
				cli_error(verb, "and revoking it failed: %s",
				    grant_error());
			cli_error(verb, "the audit log cannot be written; grant "
			    "%s was revoked", id);
		} else {
			print_grant(&g);
			printf("secret_access_key: %s\n", g.secret);
			gk_wipe(g.secret, sizeof(g.secret));
			status = 0;
		}
	}
out:
	grant_close(gs);
	cfg_free(cfg);
	return status;
}
