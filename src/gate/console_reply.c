/*
 * console_reply.c - the replies every console file builds the same way:
 * the admin operation named for the audit record, a JSON success, and the
 * refusal when memory runs out. Below console.c and the console_*.c
 * pages, calling none of them.
 */
#include "console_int.h"

#include <stdlib.h>
#include <string.h>

void
console_set_op(gk_reply *rep, const char *op, gk_slice path)
{
	rep->protocol = "admin";
	free(rep->operation);
	rep->operation = strdup(op);
	free(rep->path);
	rep->path = gate_text_copy(path, 256);
}

void
console_ok_json(gk_reply *rep, int audited)
{
	rep->status = 200;
	rep->decision = "allow";
	rep->audited = audited;
}

void
console_oom(gk_reply *rep)
{
	gate_reply_error(rep, 500, "error", "Internal Exception");
}
