/*
 * cidr.c - CIDR sets: a path-compressed binary trie over 128-bit
 * addresses.
 *
 * The trie: every node holds a prefix (key + length). A node is terminal
 * when the prefix itself was added; a non-terminal node only exists where
 * two subtrees diverge, so a set of n prefixes has at most 2n nodes and the
 * depth is at most 129 (lengths strictly grow on the way down). Nodes live
 * in one array and link by 32-bit index (0 = none); lookup compares a
 * node's prefix with two masked 64-bit XORs, so a lookup is O(128) steps of
 * O(1) whatever the set size.
 */
#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Named caps: at most this many prefixes per set (each adds <= 2 nodes). */
#define CIDRS_MAX_ENTRIES (1u << 22)
#define CIDRS_MAX_NODES (2u * CIDRS_MAX_ENTRIES + 2u)
#define CIDRS_FIRST_ALLOC 64u

struct cidr_node {
	uint64_t hi, lo;	/* prefix, host bits clear */
	uint32_t child[2];	/* by the bit just below the prefix */
	uint8_t bits;		/* prefix length 0..128 */
	uint8_t term;		/* this prefix was added */
};

/*
 * The optional index (policy_cidrs_optimize): for each /16 block of IPv4
 * and of IPv6 space, where a lookup in that block may start: INDEX_COVERED
 * when a listed prefix covers the whole block, 0 when nothing in the set
 * can match it, else the deepest node every address of the block passes.
 * It skips the first ~16 levels of a big set, so a lookup in 100,000
 * entries costs about what it costs in 10.
 */
#define INDEX_BITS 16u
#define INDEX_SIZE (1u << INDEX_BITS)
#define INDEX_MIN_ENTRIES 256u
#define INDEX_COVERED 0x80000000u

struct gk_cidrs {
	struct cidr_node *node;	/* node[0] unused: index 0 means none */
	uint32_t used;		/* nodes in use, counting node[0] */
	uint32_t alloc;
	uint32_t root;
	size_t count;		/* prefixes added */
	uint32_t *index4;	/* by IPv4 bits 0..15 (bits 96..111) */
	uint32_t *index6;	/* by bits 0..15 */
};

/* Top n bits of a 64-bit word set, n in 0..64. */
static uint64_t
mask64(unsigned n)
{
	if (n == 0)
		return 0;
	if (n >= 64)
		return ~(uint64_t)0;
	return ~(uint64_t)0 << (64 - n);
}

/* 1 if the first n bits of (h1,l1) and (h2,l2) agree. */
static int
prefix_eq(uint64_t h1, uint64_t l1, uint64_t h2, uint64_t l2, unsigned n)
{
	return ((h1 ^ h2) & mask64(n)) == 0 &&
	    ((l1 ^ l2) & mask64(n > 64 ? n - 64 : 0)) == 0;
}

/* Number of leading bits on which two keys agree, 0..128. */
static unsigned
common_bits(uint64_t h1, uint64_t l1, uint64_t h2, uint64_t l2)
{
	if (h1 != h2)
		return (unsigned)__builtin_clzll(h1 ^ h2);
	if (l1 != l2)
		return 64u + (unsigned)__builtin_clzll(l1 ^ l2);
	return 128;
}

/* Bit i (0 = most significant), i in 0..127. */
static unsigned
bit_at(uint64_t hi, uint64_t lo, unsigned i)
{
	if (i < 64)
		return (unsigned)(hi >> (63 - i)) & 1u;
	return (unsigned)(lo >> (127 - i)) & 1u;
}

int
policy_cidrs_new(gk_cidrs **out)
{
	gk_cidrs *c;

	if (out == NULL)
		return GK_ERR_INVALID;
	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return GK_ERR_NOMEM;
	c->used = 1;
	*out = c;
	return 0;
}

void
policy_cidrs_free(gk_cidrs *c)
{
	if (c == NULL)
		return;
	free(c->index4);
	free(c->index6);
	free(c->node);
	free(c);
}

/* Makes room for extra more nodes. */
static int
cidrs_reserve(gk_cidrs *c, uint32_t extra)
{
	struct cidr_node *n;
	size_t want, bytes;
	uint32_t na;

	want = (size_t)c->used + extra;
	if (want <= c->alloc)
		return 0;
	if (want > CIDRS_MAX_NODES)
		return GK_ERR_TOO_LARGE;
	na = c->alloc == 0 ? CIDRS_FIRST_ALLOC : c->alloc;
	while (na < want)
		na = na > CIDRS_MAX_NODES / 2 ? CIDRS_MAX_NODES : na * 2;
	if (gk_mul_size(na, sizeof(*n), &bytes) != 0)
		return GK_ERR_TOO_LARGE;
	if ((n = realloc(c->node, bytes)) == NULL)
		return GK_ERR_NOMEM;
	c->node = n;
	c->alloc = na;
	return 0;
}

/* Takes a node from the reserved room. */
static uint32_t
cidrs_node(gk_cidrs *c, uint64_t hi, uint64_t lo, unsigned bits, int term)
{
	uint32_t i = c->used++;
	struct cidr_node *n = &c->node[i];

	n->hi = hi & mask64(bits);
	n->lo = lo & mask64(bits > 64 ? bits - 64 : 0);
	n->child[0] = n->child[1] = 0;
	n->bits = (uint8_t)bits;
	n->term = term ? 1 : 0;
	return i;
}

/* Inserts a prefix whose host bits are clear. */
static int
cidrs_insert(gk_cidrs *c, uint64_t hi, uint64_t lo, unsigned bits)
{
	uint32_t *link, s, leaf;
	struct cidr_node *n;
	unsigned cl, lim;
	int r = GK_ERR_INTERNAL;

	if (bits > 128)
		return GK_ERR_INVALID;
	if (c->count >= CIDRS_MAX_ENTRIES)
		return GK_ERR_TOO_LARGE;
	/* the index describes the set as it was: drop it */
	free(c->index4);
	free(c->index6);
	c->index4 = c->index6 = NULL;
	/* At most two new nodes: no reallocation while links are held. */
	if ((r = cidrs_reserve(c, 2)) != 0)
		goto out;
	link = &c->root;
	for (;;) {
		if (*link == 0) {
			*link = cidrs_node(c, hi, lo, bits, 1);
			break;
		}
		n = &c->node[*link];
		lim = n->bits < bits ? n->bits : bits;
		cl = common_bits(hi, lo, n->hi, n->lo);
		if (cl > lim)
			cl = lim;
		if (cl == n->bits) {
			/* n's prefix covers the new one. */
			if (n->term)
				break;	/* already covered */
			if (n->bits == bits) {
				n->term = 1;
				/* Everything below is now covered. */
				n->child[0] = n->child[1] = 0;
				break;
			}
			link = &n->child[bit_at(hi, lo, n->bits)];
			continue;
		}
		if (cl == bits) {
			/* The new prefix covers n: it takes n's place. */
			s = cidrs_node(c, hi, lo, bits, 1);
			*link = s;
			break;
		}
		/* They diverge at bit cl: a branch node over both. */
		s = cidrs_node(c, hi, lo, cl, 0);
		leaf = cidrs_node(c, hi, lo, bits, 1);
		c->node[s].child[bit_at(hi, lo, cl)] = leaf;
		c->node[s].child[bit_at(n->hi, n->lo, cl)] = *link;
		*link = s;
		break;
	}
	c->count++;
	r = 0;
out:
	return r;
}

int
policy_cidrs_add(gk_cidrs *c, gk_slice cidr)
{
	gk_addr net;
	unsigned bits;
	uint64_t hi, lo;
	int r = GK_ERR_INTERNAL;

	if (c == NULL)
		return GK_ERR_INVALID;
	if ((r = policy_cidr_parse(cidr, &net, &bits)) != 0)
		goto out;
	policy_addr_key(&net, &hi, &lo);
	r = cidrs_insert(c, hi, lo, bits);
out:
	return r;
}

struct cidr_list_arg {
	gk_cidrs *c;
	char *err;
	size_t errlen;
};

static int
cidr_list_item(void *arg, gk_slice item)
{
	struct cidr_list_arg *a = arg;
	int r;

	if ((r = policy_cidrs_add(a->c, item)) == GK_ERR_INVALID)
		policy_item_err(a->err, a->errlen, "CIDR", item);
	else if (r != 0)
		policy_set_err(a->err, a->errlen, gk_err_str(r));
	return r;
}

int
policy_cidrs_add_list(gk_cidrs *c, const char *list, char *err,
    size_t errlen)
{
	struct cidr_list_arg a = { c, err, errlen };

	if (c == NULL)
		return GK_ERR_INVALID;
	return policy_list_each(list, cidr_list_item, &a);
}

/* Where a lookup of any address whose first len bits are (hi, lo) may
 * start (see INDEX_COVERED above). */
static uint32_t
index_start(const gk_cidrs *c, uint64_t hi, uint64_t lo, unsigned len)
{
	const struct cidr_node *n;
	uint32_t i = c->root;

	while (i != 0) {
		n = &c->node[i];
		if (n->bits > len)
			return prefix_eq(hi, lo, n->hi, n->lo, len) ? i : 0;
		if (!prefix_eq(hi, lo, n->hi, n->lo, n->bits))
			return 0;
		if (n->term)
			return INDEX_COVERED;
		if (n->bits == len)
			return i;
		i = n->child[bit_at(hi, lo, n->bits)];
	}
	return 0;
}

int
policy_cidrs_optimize(gk_cidrs *c)
{
	uint32_t *i4 = NULL, *i6 = NULL, k;

	if (c == NULL)
		return GK_ERR_INVALID;
	if (c->count < INDEX_MIN_ENTRIES || c->index4 != NULL)
		return 0;
	if ((i4 = malloc(INDEX_SIZE * sizeof(*i4))) == NULL ||
	    (i6 = malloc(INDEX_SIZE * sizeof(*i6))) == NULL) {
		free(i4);
		return GK_ERR_NOMEM;
	}
	for (k = 0; k < INDEX_SIZE; k++) {
		/* ::ffff:k.k.0.0 and k::, with the block's 16 bits */
		i4[k] = index_start(c, 0, 0x0000ffff00000000ull |
		    ((uint64_t)k << 16), 96 + INDEX_BITS);
		i6[k] = index_start(c, (uint64_t)k << 48, 0, INDEX_BITS);
	}
	c->index4 = i4;
	c->index6 = i6;
	return 0;
}

int
policy_cidrs_contains(const gk_cidrs *c, const gk_addr *a)
{
	const struct cidr_node *n;
	uint64_t hi, lo;
	uint32_t i;

	if (c == NULL || a == NULL)
		return 0;
	policy_addr_key(a, &hi, &lo);
	i = c->root;
	if (c->index4 != NULL) {
		if (hi == 0 && (lo >> 32) == 0xffffu)
			i = c->index4[(lo >> 16) & 0xffffu];
		else
			i = c->index6[hi >> 48];
		if (i == INDEX_COVERED)
			return 1;
	}
	for (; i != 0; i = n->child[bit_at(hi, lo, n->bits)]) {
		n = &c->node[i];
		if (!prefix_eq(hi, lo, n->hi, n->lo, n->bits))
			return 0;
		if (n->term)
			return 1;
		if (n->bits >= 128)
			return 0;
	}
	return 0;
}

size_t
policy_cidrs_count(const gk_cidrs *c)
{
	return c == NULL ? 0 : c->count;
}

