/* gate_int.h - private to the gate folder. */
#ifndef GK_GATE_INT_H
#define GK_GATE_INT_H

#include "gate.h"

/*
 * Static pages (/gatekeeper.js always; /demo and /demo/sign in demo
 * mode). Returns 1 if it answered the path (rep filled, not audited),
 * 0 if the path is not one of them.
 */
int gate_static_handle(gk_app *app, const gk_req *req, gk_reply *rep);

/*
 * GET /admin/audit (admin.c). Returns 1 if it answered the path (rep
 * filled and audited as protocol "admin"), 0 otherwise.
 */
int gate_admin_handle(gk_app *app, const gk_req *req, gk_reply *rep);

#endif
