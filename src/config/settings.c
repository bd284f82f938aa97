/*
 * settings.c - the settings each module takes, filled from the config:
 * modules see their own struct, never gk_config.
 */
#include "config.h"

#include <string.h>

#include "http/http.h"

void
cfg_http_settings(const gk_config *cfg, http_settings *out)
{
	memset(out, 0, sizeof(*out));
	out->listen = cfg->listen;
	out->port = cfg->port;
	out->threads = cfg->threads;
	out->conn_limit = cfg->conn_limit;
	out->per_ip_conn_limit = cfg->per_ip_conn_limit;
	out->conn_timeout = cfg->conn_timeout;
}
