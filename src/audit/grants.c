/*
 * grants.c - the grant documents' handle: one backend connection under a
 * lock, reopened on the next call after a failure.
 */
#include "audit/audit_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct gk_audit_grants {
	pthread_mutex_t lock;
	char *target;
	audit_conn *conn;
};

int
audit_grants_open(const char *target, gk_audit_grants **out, char *err,
    size_t errlen)
{
	gk_audit_grants *g;
	int r;

	*out = NULL;
	if (target == NULL || target[0] == '\0') {
		audit_set_err(err, errlen, "no audit database configured");
		return GK_ERR_CONFIG;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return GK_ERR_NOMEM;
	if ((g->target = strdup(target)) == NULL ||
	    pthread_mutex_init(&g->lock, NULL) != 0) {
		free(g->target);
		free(g);
		return GK_ERR_NOMEM;
	}
	r = audit_conn_open(target, 1, &g->conn, err, errlen);
	if (r != 0 && audit_backend_is_file(target)) {
		audit_grants_close(g);
		return r;
	}
	*out = g;
	return 0;
}

void
audit_grants_close(gk_audit_grants *g)
{
	if (g == NULL)
		return;
	audit_conn_close(g->conn);
	pthread_mutex_destroy(&g->lock);
	free(g->target);
	free(g);
}

/* Under the lock: a connection, opened if needed. */
static int
conn_get(gk_audit_grants *g, char *err, size_t errlen)
{
	if (g->conn != NULL)
		return 0;
	return audit_conn_open(g->target, 1, &g->conn, err, errlen) != 0 ?
	    GK_ERR_UNAVAILABLE : 0;
}

/* Under the lock: drops the connection after a failure. */
static int
conn_done(gk_audit_grants *g, int r)
{
	if (r == GK_ERR_UNAVAILABLE) {
		audit_conn_close(g->conn);
		g->conn = NULL;
	}
	return r;
}

int
audit_grants_put(gk_audit_grants *g, const char *id, const char *access_key,
    const char *doc, char *err, size_t errlen)
{
	int r;

	pthread_mutex_lock(&g->lock);
	r = conn_get(g, err, errlen);
	if (r == 0)
		r = conn_done(g, g->conn->ops->grant_put(g->conn, id,
		    access_key, doc, err, errlen));
	pthread_mutex_unlock(&g->lock);
	return r;
}

int
audit_grants_get(gk_audit_grants *g, int by_key, const char *v, gk_buf *doc,
    char *err, size_t errlen)
{
	int r;

	pthread_mutex_lock(&g->lock);
	r = conn_get(g, err, errlen);
	if (r == 0)
		r = conn_done(g, g->conn->ops->grant_get(g->conn, by_key, v,
		    doc, err, errlen));
	pthread_mutex_unlock(&g->lock);
	return r;
}

int
audit_grants_swap(gk_audit_grants *g, const char *id,
    const char *access_key, const char *old_doc, const char *new_doc,
    char *err, size_t errlen)
{
	int r;

	pthread_mutex_lock(&g->lock);
	r = conn_get(g, err, errlen);
	if (r == 0)
		r = conn_done(g, g->conn->ops->grant_swap(g->conn, id,
		    access_key, old_doc, new_doc, err, errlen));
	pthread_mutex_unlock(&g->lock);
	return r;
}

int
audit_grants_list(gk_audit_grants *g, gk_audit_doc_fn fn, void *arg,
    char *err, size_t errlen)
{
	int r;

	pthread_mutex_lock(&g->lock);
	r = conn_get(g, err, errlen);
	if (r == 0)
		r = conn_done(g, g->conn->ops->grant_list(g->conn, fn, arg,
		    err, errlen));
	pthread_mutex_unlock(&g->lock);
	return r;
}
