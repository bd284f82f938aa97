/*
 * acl.c - the gate's side of the customer's policy: the per-request
 * policy reference and client address, the IP and country checks, rate
 * limits (429 with Retry-After).
 */
#include "gate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


void
gate_req_resolve(gk_app *app, gk_req *req, const gk_addr *peer,
    gk_slice xff, int has_xff, gk_slice fwd, int has_fwd)
{
	req->policy = policy_live_get(app->policy_live);
	req->peer = *peer;
	req->fwd = policy_client_addr(req->policy, &req->peer, xff, has_xff,
	    fwd, has_fwd, &req->client);
	policy_addr_str(&req->client, req->client_ip, sizeof(req->client_ip));
	policy_country(req->policy, &req->client, req->country);
}

/* 1 if the client lies in cip (an address or CIDR), 0 if not, -1 if cip
 * is malformed. */
int
gate_cip_match(const char *cip, const gk_addr *client)
{
	gk_addr net;
	unsigned bits, i, whole, rest;

	if (policy_cidr_parse(gk_slice_str(cip), &net, &bits) != 0 ||
	    bits > 128)
		return -1;
	whole = bits / 8;
	rest = bits % 8;
	for (i = 0; i < whole; i++) {
		if (client->b[i] != net.b[i])
			return 0;
	}
	if (rest != 0 && ((client->b[whole] ^ net.b[whole]) &
	    (uint8_t)(0xff << (8 - rest))) != 0)
		return 0;
	return 1;
}

int
gate_acl_ok(const gk_req *req, int op, int is_upload)
{
	if (policy_check_ip(req->policy, &req->client, is_upload) != 0 ||
	    policy_check_country(req->policy, &req->client, req->country,
	    op) != 0)
		return GK_ERR_DENIED;
	return 0;
}

int
gate_acl_check(const gk_req *req, int op, int is_upload, gk_reply *rep)
{
	char msg[96];

	if (policy_check_ip(req->policy, &req->client, is_upload) != 0) {
		gate_reply_error(rep, 403, "deny", "Forbidden: ACL");
		gate_reply_message(rep, "Forbidden: ACL (IP lists)");
		return GK_ERR_DENIED;
	}
	if (policy_check_country(req->policy, &req->client, req->country,
	    op) != 0) {
		gate_reply_error(rep, 403, "deny", "Forbidden: ACL");
		snprintf(msg, sizeof(msg), "Forbidden: ACL (country %s)",
		    req->country[0] ? req->country : "unknown");
		gate_reply_message(rep, msg);
		return GK_ERR_DENIED;
	}
	return 0;
}

int
gate_rate_limit(gk_app *app, const gk_req *req, gk_reply *rep)
{
	unsigned retry = 0;

	if (policy_rate_check(app->rate, req->policy, &req->client,
	    gk_mono_us(), &retry) == 0)
		return 0;
	if (rep->protocol == NULL)
		rep->protocol = "http";
	gate_reply_error(rep, 429, "deny", "Too Many Requests");
	rep->retry_after = retry;
	gate_count(app, GK_STAT_RATE_LIMITED);
	if (gate_refusals_absorb(app, req)) {
		/* counted into the client's summary record instead */
		rep->audited = 0;
		gate_count(app, GK_STAT_DENIED);
	}
	return 1;
}
