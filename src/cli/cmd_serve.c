/* cmd_serve.c - gatekeeper serve: run the HTTP server. */
#include "cli.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "config/config.h"
#include "gate/gate.h"
#include "grant/grant.h"
#include "http/http.h"

static const char usage_text[] =
    "usage: gatekeeper serve [--config FILE] [--port N]\n"
    "\n"
    "Runs the gatekeeper. Without --config it reads $GATEKEEPER_CONFIG, else\n"
    "./gatekeeper.ini if present, else the embedded defaults (fs store and\n"
    "SQLite audit under ./data, 127.0.0.1:8080). The key files must exist:\n"
    "run 'gatekeeper keygen' first. --port overrides [server] port (0 picks\n"
    "a free port). Stops cleanly on SIGINT or SIGTERM: stops accepting,\n"
    "answers the requests in flight, commits every queued audit record and\n"
    "signs the final checkpoint. Prints 'listening on URL' once ready, and\n"
    "tells systemd (Type=notify, $NOTIFY_SOCKET): READY=1, RELOADING=1 while\n"
    "reloading, STOPPING=1.\n"
    "\n"
    "SIGHUP (or POST /admin/reload with the admin token, from an admin\n"
    "address) re-reads the config file and its list files and swaps the\n"
    "access policy atomically: IP lists, countries, trusted proxies,\n"
    "origins, rate limits; SIGHUP also re-reads the TLS certificate, key and\n"
    "OCSP response. A bad file keeps the old policy (one log line).\n"
    "Other settings (port, store, keys, audit) need a restart.\n";

/* The ids of the grants no request can use (grant_unusable), listed up
 * to the first UNUSABLE_LISTED. */
#define UNUSABLE_LISTED 20
struct unusable {
	unsigned n;
	char ids[UNUSABLE_LISTED * (GRANT_ID_LEN + 2) + 1];
};

static int
unusable_one(void *arg, const gk_grant *g)
{
	struct unusable *u = arg;
	size_t len = strlen(u->ids);

	if (u->n++ < UNUSABLE_LISTED)
		snprintf(u->ids + len, sizeof(u->ids) - len, "%s%s",
		    len ? ", " : "", g->id);
	return 0;
}

/*
 * After grant.key changed, the grants sealed under the old key are
 * refused (403 InvalidAccessKeyId) until each is rotated: one warning
 * naming them. Not a refusal to start: each such grant fails closed on
 * its own, and the rest of the gatekeeper (every other grant, v1, v2)
 * keeps working while the operator rotates them.
 */
static void
warn_unusable_grants(gk_app *app, const gk_config *cfg)
{
	struct unusable u;
	int r;

	if (app->grants == NULL)
		return;
	memset(&u, 0, sizeof(u));
	if ((r = grant_unusable(app->grants, unusable_one, &u)) != 0) {
		gk_warn("grants: cannot check them against the grant key: %s "
		    "(%s)", gk_err_str(r), grant_error());
		return;
	}
	if (u.n == 0)
		return;
	gk_warn("grants: %u active grant%s cannot be used: the secret does "
	    "not decrypt with %s (it changed?); each is refused until "
	    "'gatekeeper grant rotate ID': %s%s", u.n, u.n == 1 ? "" : "s",
	    cfg->grant_key_file, u.ids, u.n > UNUSABLE_LISTED ?
	    ", ..." : "");
}

/*
 * A certificate is checked at start and at each reload, but it also
 * expires while the server runs: under TLS_WARN_DAYS left a warning once
 * a day, once expired an error once an hour (clients refuse every
 * handshake). Called once a second; *next is when to look again.
 */
#define TLS_WARN_DAYS 14
static void
tls_expiry_check(int64_t *next)
{
	int64_t now = (int64_t)time(NULL), na = http_tls_not_after();
	char t[40];

	if (na == 0 || now < *next)
		return;
	gk_time_iso(na, t, sizeof(t));
	if (na <= now) {
		gk_error("the TLS certificate expired at %s: clients refuse "
		    "the connection; replace tls_cert and tls_key and reload",
		    t);
		*next = now + 3600;
	} else if (na - now < (int64_t)TLS_WARN_DAYS * 86400) {
		int64_t left = na - now;

		gk_warn("the TLS certificate expires at %s (in %lld %s): "
		    "renew it, then reload", t, (long long)(left < 172800 ?
		    left / 3600 : left / 86400), left < 172800 ? "hours" :
		    "days");
		/* again in a day, or when it expires */
		*next = na < now + 86400 ? na : now + 86400;
	} else {
		/* look again when the warning period begins, or after a
		 * reload (which resets *next) */
		*next = na - (int64_t)TLS_WARN_DAYS * 86400;
	}
}

int
cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "port", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *port = NULL;
	gk_config *cfg = NULL;
	gk_app *app = NULL;
	gk_http *http = NULL;
	http_settings hs;
	sigset_t set;
	uint64_t p;
	int64_t tls_next = 0;
	char err[512];
	int c, sig, rc = 1, r;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'p': port = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: return cli_bad_option("serve", c, argv);
		}
	}
	if (optind != argc) {
		cli_error("serve", "unexpected argument '%s'", argv[optind]);
		return 2;
	}
	if (cli_load_config("serve", path, 1, &cfg) != 0)
		return 1;
	gk_log_set_level(cfg->log_level);
	if (port != NULL) {
		if (gk_parse_u64(gk_slice_str(port), 65535, &p) != 0) {
			cli_error("serve", "--port must be 0 to 65535");
			cfg_free(cfg);
			return 2;
		}
		cfg->port = (unsigned)p;
	}
	/* signals are taken synchronously by this thread only */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* a file size limit (ulimit -f, LimitFSIZE=) is a full disk to the
	 * writers (EFBIG: the audit fails closed), never a killed server */
	signal(SIGXFSZ, SIG_IGN);
	if (cfg_gate_open(cfg, &app, err, sizeof(err)) != 0) {
		cli_error("serve", "%s", err);
		return 1;
	}
	cfg_http_settings(cfg, &hs);
	err[0] = '\0';
	if ((r = http_server_start(app, &hs, &http, err, sizeof(err))) != 0) {
		if (r == GK_ERR_CONFIG && err[0] != '\0')
			cli_error("serve", "%s", err);
		else
			cli_error("serve", "cannot listen on %s port %u: %s",
			    cfg->listen, cfg->port,
			    r == GK_ERR_IO ? "address in use or not permitted" :
			    gk_err_str(r));
		goto out;
	}
	printf("listening on %s://%s%s%s:%u (public URL %s)\n",
	    http_server_is_tls(http) ? "https" : "http",
	    strchr(cfg->listen, ':') ? "[" : "", cfg->listen,
	    strchr(cfg->listen, ':') ? "]" : "", http_server_port(http),
	    cfg->public_url);
	if (http_server_s3api_port(http) != 0)
		printf("s3 endpoint on %s://%s%s%s:%u (bucket %s)\n",
		    http_server_is_tls(http) ? "https" : "http",
		    strchr(cfg->listen, ':') ? "[" : "", cfg->listen,
		    strchr(cfg->listen, ':') ? "]" : "",
		    http_server_s3api_port(http), cfg->s3api_bucket);
	if (http_server_redirect_port(http) != 0)
		printf("redirecting http port %u to %s\n",
		    http_server_redirect_port(http), cfg->public_url);
	fflush(stdout);
	gk_info("serving: store %s at %s, audit %s", cfg->store_type,
	    cfg->store_dir, audit_label(cfg_audit_target(cfg)));
	{
		gk_policy *pol = policy_live_get(app->policy_live);
		char sum[1200];

		policy_summary(pol, sum, sizeof(sum));
		gk_info("policy: %s", sum);
		if (!policy_geo_enabled(pol))
			gk_warn("no [geo] database: country checks are off");
		else if (policy_geo_stale(pol, (int64_t)time(NULL)))
			gk_warn("the country database %s is more than %d days "
			    "old: update it", cfg->geo_database,
			    GK_GEO_STALE_DAYS);
		if (cfg_v1_warning(cfg) != NULL)
			gk_warn("%s", cfg_v1_warning(cfg));
		policy_free(pol);
	}
	warn_unusable_grants(app, cfg);
	/* systemd Type=notify (a no-op without $NOTIFY_SOCKET) */
	(void)sd_notifyf(0, "READY=1\nSTATUS=listening on port %u",
	    http_server_port(http));
	for (;;) {
		struct timespec tick = { 1, 0 };

		tls_expiry_check(&tls_next);
		if ((sig = sigtimedwait(&set, NULL, &tick)) < 0) {
			gate_tick(app);	/* once a second */
			continue;
		}
		if (sig == SIGHUP) {
			(void)sd_notify(0, "RELOADING=1");
			/* logs and audits the outcome itself */
			(void)gate_app_reload(app, "SIGHUP", err, sizeof(err));
			if (http_server_reload_tls(http, err, sizeof(err)) != 0)
				gk_error("TLS reload failed, keeping the old "
				    "certificate: %s", err);
			else if (http_server_is_tls(http))
				gk_info("TLS certificate reloaded");
			tls_next = 0;	/* the new one's expiry */
			(void)sd_notify(0, "READY=1");
			continue;
		}
		break;
	}
	(void)sd_notify(0, "STOPPING=1");
	gk_info("stopping");
	rc = 0;
out:
	http_server_stop(http);
	gate_app_close(app);
	return rc;
}
