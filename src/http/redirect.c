/*
 * redirect.c - the plain-HTTP listener of an HTTPS gatekeeper
 * ([server] redirect_port): every request is sent to the same path on
 * public_url, nothing else is served, no body is read, nothing decided.
 */
#include "http_int.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
add(struct MHD_Response *resp, const char *name, const char *value)
{
	return MHD_add_response_header(resp, name, value) == MHD_YES ? 0 :
	    GK_ERR_INTERNAL;
}

/* One request: its target, and whether its head was seen (the first call
 * of the handler). */
struct rreq {
	int head_seen;
	char uri[];
};

static void *
redir_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	size_t n = strlen(uri);
	struct rreq *r;

	(void)cls;
	(void)conn;
	if (n > HTTP_URI_MAX)
		n = 0;	/* answered 414 */
	if ((r = calloc(1, sizeof(*r) + n + 1)) != NULL)
		memcpy(r->uri, uri, n);
	return r;
}

/*
 * The main listener's watchdog watches these connections too: a head
 * dripped in a byte at a time, or a body slower than body_min_rate, is
 * cut off at head_timeout / body_timeout instead of holding a connection
 * for as long as the client keeps sending.
 */
static void
redir_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	http_guard *g = cls;
	const union MHD_ConnectionInfo *ci;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = http_guard_open(g, ci != NULL ?
		    ci->connect_fd : -1);
		return;
	}
	http_guard_close(g, *socket_context);
	*socket_context = NULL;
}

static http_conn *
watch_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
}

static void
redir_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	free(*con_cls);
	*con_cls = NULL;
}

/*
 * Every request gets 301 (GET, HEAD) or 308 (other methods, which keeps
 * the method and body) to public_url followed by the request's path and
 * query. The Host header is never used, so nothing here can redirect to a
 * foreign site. Not a decision: nothing is audited.
 */
static enum MHD_Result
redir_handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	const http_redirect_ctx *rd = cls;
	const char *public_url = rd->public_url;
	struct rreq *rr = *con_cls;
	const char *uri;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned status;
	const char *why = NULL;
	char body[160];
	gk_buf loc;

	(void)url;
	(void)version;
	(void)upload_data;
	if (rr == NULL)
		return MHD_NO;
	uri = rr->uri;
	if (!rr->head_seen) {
		rr->head_seen = 1;
		http_guard_head_done(rd->guard, watch_of(conn),
		    http_announces_body(conn, NULL));
	}
	if (*upload_data_size > 0) {	/* a body is never read */
		*upload_data_size = 0;
		return MHD_YES;
	}
	http_guard_body_done(rd->guard, watch_of(conn));
	/* the target passes the main listener's checks (visible ASCII, a
	 * path) before it goes into Location; a refusal says why, in JSON */
	status = uri[0] == '\0' ? 414 : (unsigned)http_uri_check(
	    gk_slice_str(uri), &why);
	if (status == 0 && uri[0] != '/') {	/* "*": no path to send to */
		status = 400;
		why = "Bad Request: the request target must be a path";
	}
	if (status != 0) {
		snprintf(body, sizeof(body), "{\"msg\":\"%s\",\"error\":true}",
		    status == 414 ? "URI Too Long" : why);
		resp = MHD_create_response_from_buffer(strlen(body), body,
		    MHD_RESPMEM_MUST_COPY);
		if (resp == NULL)
			return MHD_NO;
		(void)add(resp, "Content-Type", "application/json");
		(void)add(resp, "Cache-Control", "no-store");
		(void)add(resp, "Connection", "close");
		ret = MHD_queue_response(conn, status, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	status = (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) ?
	    301 : 308;
	gk_buf_init(&loc, HTTP_URI_MAX + 2048);
	if (gk_buf_printf(&loc, "%s%s", public_url, uri) != 0) {
		status = 414;
	} else if (add(resp, "Location", (const char *)loc.data) != 0) {
		gk_buf_release(&loc);
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	gk_buf_release(&loc);
	(void)add(resp, "Cache-Control", "no-store");
	(void)add(resp, "Connection", "close");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

int
http_redirect_start(const http_redirect_ctx *ctx, const http_settings *cfg,
    const struct sockaddr_storage *main_ss, http_log_fn log,
    struct MHD_Daemon **out, unsigned *port)
{
	struct sockaddr_storage ss = *main_ss;
	const union MHD_DaemonInfo *di;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
	    MHD_USE_ERROR_LOG;

	if (ss.ss_family == AF_INET6) {
		((struct sockaddr_in6 *)&ss)->sin6_port =
		    htons((uint16_t)cfg->redirect_port);
		flags |= MHD_USE_IPv6;
	} else {
		((struct sockaddr_in *)&ss)->sin_port =
		    htons((uint16_t)cfg->redirect_port);
	}
	*out = MHD_start_daemon(flags, (uint16_t)cfg->redirect_port, NULL,
	    NULL, redir_handler, (void *)ctx,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, cfg->conn_limit,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->per_ip_conn_limit,
	    MHD_OPTION_CONNECTION_TIMEOUT, cfg->conn_timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
	    MHD_OPTION_URI_LOG_CALLBACK, redir_uri, NULL,
	    MHD_OPTION_NOTIFY_COMPLETED, redir_completed, NULL,
	    MHD_OPTION_NOTIFY_CONNECTION, redir_notify, ctx->guard,
	    MHD_OPTION_EXTERNAL_LOGGER, log, NULL,
	    MHD_OPTION_END);
	if (*out == NULL) {
		gk_error("cannot listen on %s port %u (redirect_port)",
		    cfg->listen, cfg->redirect_port);
		return GK_ERR_IO;
	}
	di = MHD_get_daemon_info(*out, MHD_DAEMON_INFO_BIND_PORT);
	*port = di != NULL ? di->port : cfg->redirect_port;
	return 0;
}
