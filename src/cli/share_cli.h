/*
 * share_cli.h - what the cmd_share*.c files share (src/cli/ only).
 */
#ifndef GK_SHARE_CLI_H
#define GK_SHARE_CLI_H

#include "share/share.h"

/* Key material gathered from the command line. */
struct share_keys {
	age_identity *ids;
	size_t n_ids;
	uint8_t (*pks)[AGE_KEY_LEN];
	size_t n_pks;
};

/* -i FILE: appends the file's identities. 0 or prints the error. */
int share_cli_identity(const char *verb, const char *path,
    struct share_keys *k);
/* --to age1...: appends a recipient. */
int share_cli_recipient(const char *verb, const char *s,
    struct share_keys *k);
/* --to-file FILE: appends the file's recipients. */
int share_cli_recipients_file(const char *verb, const char *path,
    struct share_keys *k);
void share_cli_keys_release(struct share_keys *k);

int cmd_share_send(int argc, char **argv);
int cmd_share_receive(int argc, char **argv);
int cmd_share_config(int argc, char **argv);

#endif
