/*
 * admin.c - the admin endpoints for programs: GET /admin/audit (the audit
 * search of admin_search.c), POST /admin/reload, and the probes /healthz
 * and /metrics. /admin/audit and /admin/reload pass the admin gate
 * (admin_gate.c: the admin CIDRs, then the admin token or a console
 * session) and are themselves audited (protocol "admin"); the probes are
 * for the admin CIDRs and not audited.
 */
#include "gate_int.h"
#include "http/http.h"
#include "verify/verify.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>


static void
audit_labels(gk_reply *rep)
{
	rep->protocol = "admin";
	free(rep->operation);
	rep->operation = strdup("GET_Audit");
	free(rep->path);
	rep->path = strdup("/admin/audit");
}

void
gate_admin_audit_405(gk_app *app, const gk_req *req, gk_slice rest,
    gk_reply *rep)
{
	audit_labels(rep);
	gate_reply_error(rep, 405, "deny", "Method Not Allowed");
}

void
gate_admin_audit(gk_app *app, const gk_req *req, gk_slice rest,
    gk_reply *rep)
{
	gate_params ps;
	gk_slice dup;
	int r;

	audit_labels(rep);
	if (!gate_admin_allowed(app, req, rep))
		return;
	memset(&ps, 0, sizeof(ps));
	r = gate_params_parse(req->query, &ps, &dup);
	if (r != 0)
		gate_reply_error(rep, 400, "deny", r == GK_ERR_EXISTS ?
		    "Bad Request: repeated param" :
		    "Bad Request: malformed query string");
	else
		gate_admin_search(app, &ps, rep);
	gate_params_release(&ps);
}

/* ---- reload ---------------------------------------------------------- */

void
gate_admin_reload(gk_app *app, const gk_req *req, gk_slice rest,
    gk_reply *rep)
{
	char msg[2048];
	gk_buf *b = &rep->body;

	rep->protocol = "admin";
	rep->operation = strdup("reload");
	if (!gate_admin_allowed(app, req, rep))
		return;
	if (gate_app_reload(app, NULL, msg, sizeof(msg)) != 0) {
		gate_reply_error(rep, 422, "error", msg);
		return;
	}
	gk_buf_reset(b);
	if (gk_buf_append_str(b, "{\"msg\":") != 0 ||
	    gk_json_str(b, gk_slice_str(msg)) != 0 ||
	    gk_buf_append_str(b, ",\"error\":false}") != 0) {
		gate_reply_error(rep, 500, "error", "Internal Exception");
		return;
	}
	rep->status = 200;
	gate_reply_allow(rep, msg);	/* answered once the record is durable */
}

void
gate_admin_reload_405(gk_app *app, const gk_req *req, gk_slice rest,
    gk_reply *rep)
{
	rep->protocol = "admin";
	rep->operation = strdup("reload");
	gate_reply_error(rep, 405, "deny", "Method Not Allowed");
}

/* ---- health and metrics ------------------------------------------------ */

/* /healthz and /metrics: the admin addresses only; not audited either way. */
static int
probe_allowed(const gk_req *req, gk_reply *rep)
{
	rep->audited = 0;
	if (policy_check_admin(req->policy, &req->client) == 0)
		return 1;
	gate_reply_error(rep, 403, "deny", "Forbidden");
	rep->audited = 0;
	return 0;
}

void
gate_admin_health(gk_app *app, const gk_req *req, gk_slice rest,
    gk_reply *rep)
{
	int r;

	if (!probe_allowed(req, rep))
		return;
	r = gk_buf_append_str(&rep->body, "{\"ok\":true,\"id\":");
	if (r == 0)
		r = gk_json_str(&rep->body, gk_slice_str(app->cfg->id));
	if (r == 0)
		r = gk_buf_printf(&rep->body, ",\"uptime_s\":%lld}",
		    (long long)((gk_now_us() - app->started_us) / 1000000));
	rep->status = r == 0 ? 200 : 500;
}

void
gate_admin_metrics(gk_app *app, const gk_req *req, gk_slice rest,
    gk_reply *rep)
{
	const gk_stats *s = &app->stats;
	gk_audit_counters ac;
	http_park_figures pf;
	uint64_t sig_pk, sig_cached;
	int r;

	if (!probe_allowed(req, rep))
		return;
	rep->content_type = "text/plain; version=0.0.4";
	audit_counters(app->audit, &ac);
	verify_jws_counters(&sig_pk, &sig_cached);
	http_park_counters(&pf);
#define STAT(i) ((unsigned long long)atomic_load_explicit(&s->n[i], \
	memory_order_relaxed))
	r = gk_buf_printf(&rep->body,
	    "# TYPE gatekeeper_requests_total counter\n"
	    "gatekeeper_requests_total %llu\n"
	    "# TYPE gatekeeper_decisions_total counter\n"
	    "gatekeeper_decisions_total{decision=\"allow\"} %llu\n"
	    "gatekeeper_decisions_total{decision=\"deny\"} %llu\n"
	    "gatekeeper_decisions_total{decision=\"error\"} %llu\n"
	    "# TYPE gatekeeper_audit_failures_total counter\n"
	    "gatekeeper_audit_failures_total %llu\n"
	    "# TYPE gatekeeper_rate_limited_total counter\n"
	    "gatekeeper_rate_limited_total %llu\n"
	    "# TYPE gatekeeper_reloads_total counter\n"
	    "gatekeeper_reloads_total{result=\"ok\"} %llu\n"
	    "gatekeeper_reloads_total{result=\"failed\"} %llu\n"
	    "# TYPE gatekeeper_audit_fields_cut_total counter\n"
	    "gatekeeper_audit_fields_cut_total %llu\n"
	    "# TYPE gatekeeper_audit_refusals_aggregated_total counter\n"
	    "gatekeeper_audit_refusals_aggregated_total %llu\n"
	    "# TYPE gatekeeper_audit_refusals_dropped_total counter\n"
	    "gatekeeper_audit_refusals_dropped_total %llu\n"
	    "# TYPE gatekeeper_audit_low_space gauge\n"
	    "gatekeeper_audit_low_space %d\n"
	    "# TYPE gatekeeper_v2_signatures_total counter\n"
	    "gatekeeper_v2_signatures_total{check=\"public_key\"} %llu\n"
	    "gatekeeper_v2_signatures_total{check=\"cache\"} %llu\n"
	    "# TYPE gatekeeper_parked_connections gauge\n"
	    "gatekeeper_parked_connections %llu\n"
	    "# TYPE gatekeeper_parked_connections_total counter\n"
	    "gatekeeper_parked_connections_total %llu\n"
	    "# TYPE gatekeeper_parked_woken_total counter\n"
	    "gatekeeper_parked_woken_total %llu\n"
	    "# TYPE gatekeeper_parked_closed_total counter\n"
	    "gatekeeper_parked_closed_total{reason=\"idle_timeout\"} %llu\n"
	    "gatekeeper_parked_closed_total{reason=\"peer_closed\"} %llu\n",
	    STAT(GK_STAT_REQUESTS), STAT(GK_STAT_GRANTED),
	    STAT(GK_STAT_DENIED), STAT(GK_STAT_ERRORS),
	    STAT(GK_STAT_AUDIT_FAILURES), STAT(GK_STAT_RATE_LIMITED),
	    STAT(GK_STAT_RELOADS), STAT(GK_STAT_RELOAD_FAILURES),
	    (unsigned long long)ac.fields_cut, STAT(GK_STAT_AGGREGATED),
	    (unsigned long long)ac.refusals_dropped, ac.low_space,
	    (unsigned long long)sig_pk, (unsigned long long)sig_cached,
	    (unsigned long long)pf.now, (unsigned long long)pf.parked,
	    (unsigned long long)pf.woken, (unsigned long long)pf.idle_closed,
	    (unsigned long long)pf.peer_closed);
	if (r == 0 && http_tls_not_after() != 0)
		r = gk_buf_printf(&rep->body,
		    "# TYPE gatekeeper_tls_cert_not_after_seconds gauge\n"
		    "gatekeeper_tls_cert_not_after_seconds %lld\n",
		    (long long)http_tls_not_after());
#undef STAT
	rep->status = r == 0 ? 200 : 500;
}
