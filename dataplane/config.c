/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Configuration loading: YAML file -> struct zcd_config.
 *
 * The file is first read with libyaml's event API into a small tree, because
 * keys may come in any order (unknown_unicast names a VM defined later, sim
 * sections depend on the backend) and because the event API is the only one
 * that still shows aliases, anchors and tags, which we refuse.  The tree is
 * then checked section by section; every message names the file, the line
 * and the full key path of the offending node.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "zcdemux/config.h"
#include "zcdemux/hv.h"
#include "zcdemux/iommu.h"

/* A valid file is four levels deep; the limit keeps node_free()'s recursion bounded. */
#define MAX_DEPTH 16
/* Key paths such as "vms[255].macs[15]", or a parent path and an unknown key. */
#define KEY_MAX 160
/* A value quoted in a message, escapes, "..." and quotes included. */
#define SHOW_MAX 80

#define DROP_NAME "drop"

enum node_kind { NODE_SCALAR, NODE_SEQUENCE, NODE_MAPPING, NODE_ALIAS };

struct node {
	enum node_kind kind;
	unsigned line; /* 1-based */
	bool has_anchor;
	bool has_tag;
	bool quoted; /* scalar in any style but plain */
	char *text; /* scalar: NUL-terminated copy */
	size_t len;
	struct node **children; /* sequence: items; mapping: key, value, key, value, ... */
	size_t nb_children;
	size_t capacity;
};

/* A key of a mapping and its value. */
struct field {
	const struct node *key;
	const struct node *value;
};

struct loader {
	const char *path;
	char *err;
	size_t errlen;
	const struct node *unknown_unicast; /* resolved once every VM is known */
	const struct node *sim_keys[ZCD_MAX_VMS]; /* checked once the backend is known */
	const struct node *xen_keys[ZCD_MAX_VMS];
};

static void vfail(struct loader *ld, unsigned line, const char *key, const char *fmt, va_list ap)
{
	int n;

	if (ld->err == NULL || ld->errlen == 0)
		return;
	if (line == 0)
		n = snprintf(ld->err, ld->errlen, "%s: ", ld->path);
	else if (key == NULL)
		n = snprintf(ld->err, ld->errlen, "%s:%u: ", ld->path, line);
	else
		n = snprintf(ld->err, ld->errlen, "%s:%u: %s: ", ld->path, line, key);
	if (n >= 0 && (size_t)n < ld->errlen)
		vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
}

/* "<path>:<line>: <key>: <message>"; returns -1 so that callers can return it. */
__attribute__((format(printf, 4, 5))) static int fail(struct loader *ld, unsigned line,
						      const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(ld, line, key, fmt, ap);
	va_end(ap);
	return -1;
}

/* "<path>:<line>: <message>", for problems of the document as a whole. */
__attribute__((format(printf, 3, 4))) static int fail_line(struct loader *ld, unsigned line,
							   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(ld, line, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

/* "<path>: <message>", where there is no line to point at. */
__attribute__((format(printf, 2, 3))) static int fail_file(struct loader *ld, const char *fmt,
							   ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(ld, 0, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * A scalar as it may appear in a one-line message: control characters, quotes
 * and backslashes escaped, cut (on a UTF-8 character boundary) with "..." when
 * long.
 */
static const char *show(char out[SHOW_MAX], const struct node *n, bool with_quotes)
{
	const size_t room = SHOW_MAX - 5; /* "...", closing quote, NUL */
	size_t o = 0, i;

	if (with_quotes)
		out[o++] = '"';
	for (i = 0; i < n->len; i++) {
		unsigned char c = (unsigned char)n->text[i];
		char esc[5] = { (char)c };
		size_t esc_len = 1;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			esc_len = 2;
		} else if (c == '\n') {
			memcpy(esc, "\\n", 2);
			esc_len = 2;
		} else if (c == '\t') {
			memcpy(esc, "\\t", 2);
			esc_len = 2;
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", c);
			esc_len = 4;
		}
		if (o + esc_len > room)
			break;
		memcpy(out + o, esc, esc_len);
		o += esc_len;
	}
	if (i < n->len) {
		/* Bytes >= 0x80 are copied one for one, so o and i step back together. */
		while (o > (with_quotes ? 1U : 0U) && ((unsigned char)n->text[i] & 0xc0) == 0x80) {
			i--;
			o--;
		}
		memcpy(out + o, "...", 3);
		o += 3;
	}
	if (with_quotes)
		out[o++] = '"';
	out[o] = '\0';
	return out;
}

static const char *kind_name(enum node_kind kind)
{
	switch (kind) {
	case NODE_SCALAR:
		return "a scalar";
	case NODE_SEQUENCE:
		return "a sequence";
	case NODE_MAPPING:
		return "a mapping";
	case NODE_ALIAS:
		return "an alias";
	}
	return "?";
}

/* A key path is cut with "..." rather than overflow; only an absurd unknown key could. */
static void key_cut(char out[KEY_MAX], int len)
{
	if (len >= KEY_MAX)
		memcpy(out + KEY_MAX - 4, "...", 4);
}

static void key_field(char out[KEY_MAX], const char *parent, const char *field)
{
	if (parent[0] == '\0')
		key_cut(out, snprintf(out, KEY_MAX, "%s", field));
	else
		key_cut(out, snprintf(out, KEY_MAX, "%s.%s", parent, field));
}

static void key_index(char out[KEY_MAX], const char *parent, size_t index)
{
	key_cut(out, snprintf(out, KEY_MAX, "%s[%zu]", parent, index));
}

/* ---- YAML events -> tree ---- */

static void node_free(struct node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->nb_children; i++)
		node_free(n->children[i]);
	free(n->children);
	free(n->text);
	free(n);
}

static int node_append(struct node *parent, struct node *child)
{
	if (parent->nb_children == parent->capacity) {
		size_t capacity = parent->capacity ? 2 * parent->capacity : 8;
		struct node **children = realloc(parent->children, capacity * sizeof(*children));

		if (children == NULL)
			return -1;
		parent->children = children;
		parent->capacity = capacity;
	}
	parent->children[parent->nb_children++] = child;
	return 0;
}

/* The node an event opens or stands for; NULL if out of memory. */
static struct node *node_from_event(const yaml_event_t *ev)
{
	struct node *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->line = (unsigned)ev->start_mark.line + 1;
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		n->kind = NODE_SCALAR;
		n->has_anchor = ev->data.scalar.anchor != NULL;
		n->has_tag = ev->data.scalar.tag != NULL;
		n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
		n->len = ev->data.scalar.length;
		n->text = malloc(n->len + 1);
		if (n->text == NULL) {
			free(n);
			return NULL;
		}
		memcpy(n->text, ev->data.scalar.value, n->len);
		n->text[n->len] = '\0';
		break;
	case YAML_SEQUENCE_START_EVENT:
		n->kind = NODE_SEQUENCE;
		n->has_anchor = ev->data.sequence_start.anchor != NULL;
		n->has_tag = ev->data.sequence_start.tag != NULL;
		break;
	case YAML_MAPPING_START_EVENT:
		n->kind = NODE_MAPPING;
		n->has_anchor = ev->data.mapping_start.anchor != NULL;
		n->has_tag = ev->data.mapping_start.tag != NULL;
		break;
	default:
		n->kind = NODE_ALIAS;
		break;
	}
	return n;
}

static void report_parser_error(struct loader *ld, const yaml_parser_t *parser)
{
	const char *problem = parser->problem ? parser->problem : "unknown error";

	switch (parser->error) {
	case YAML_MEMORY_ERROR:
		fail_file(ld, "out of memory");
		break;
	case YAML_READER_ERROR:
		/* The reader runs ahead of the scanner: it knows a byte offset, not a line. */
		if (parser->problem_value != -1)
			fail_file(ld, "cannot read: %s (byte 0x%02x at offset %zu)", problem,
				  (unsigned)parser->problem_value, parser->problem_offset);
		else
			fail_file(ld, "cannot read: %s at offset %zu", problem,
				  parser->problem_offset);
		break;
	default:
		if (parser->context != NULL)
			fail_line(ld, (unsigned)parser->problem_mark.line + 1,
				  "YAML syntax error: %s (%s at line %zu)", problem, parser->context,
				  parser->context_mark.line + 1);
		else
			fail_line(ld, (unsigned)parser->problem_mark.line + 1,
				  "YAML syntax error: %s", problem);
		break;
	}
}

/*
 * Read the whole stream into a tree.  Returns the root (the single document),
 * or NULL with a message.  Every node is attached to its parent as soon as it
 * exists, so freeing the root frees all on every path.
 */
static struct node *read_tree(struct loader *ld, yaml_parser_t *parser)
{
	struct node *stack[MAX_DEPTH];
	size_t depth = 0;
	struct node *root = NULL;
	unsigned documents = 0;
	bool done = false;

	while (!done) {
		yaml_event_t ev;
		struct node *n = NULL;
		int rc = 0;

		if (!yaml_parser_parse(parser, &ev)) {
			report_parser_error(ld, parser);
			goto fail;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++documents > 1)
				rc = fail_line(ld, (unsigned)ev.start_mark.line + 1,
					       "only one YAML document is allowed");
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_SCALAR_EVENT:
		case YAML_ALIAS_EVENT:
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			n = node_from_event(&ev);
			if (n == NULL) {
				rc = fail_file(ld, "out of memory");
			} else if (depth > 0 && node_append(stack[depth - 1], n) < 0) {
				node_free(n);
				rc = fail_file(ld, "out of memory");
			} else {
				if (depth == 0)
					root = n;
				if (n->kind == NODE_SEQUENCE || n->kind == NODE_MAPPING) {
					if (depth == MAX_DEPTH)
						rc = fail_line(ld, n->line,
							       "nested more than %d levels deep",
							       MAX_DEPTH);
					else
						stack[depth++] = n;
				}
			}
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
		if (rc < 0)
			goto fail;
	}
	if (root == NULL || (root->kind == NODE_SCALAR && !root->quoted && root->len == 0)) {
		fail_line(ld, 1, "the file is empty (expected a mapping with keys ports, "
				 "hypervisor and vms)");
		goto fail;
	}
	return root;
fail:
	node_free(root);
	return NULL;
}

/* ---- checks on tree nodes ---- */

/* What a node is, for "expected X, found Y". */
static const char *describe(char out[SHOW_MAX], const struct node *n)
{
	if (n->kind != NODE_SCALAR)
		return kind_name(n->kind);
	if (n->len == 0 && !n->quoted)
		return "an empty value";
	return show(out, n, true);
}

/* The node must be of the given kind, written without alias, anchor or tag. */
static int expect(struct loader *ld, const struct node *n, const char *key, enum node_kind kind)
{
	char shown[SHOW_MAX];

	if (n->kind == NODE_ALIAS)
		return fail(ld, n->line, key, "aliases (*name) are not supported; write the value out");
	if (n->has_anchor)
		return fail(ld, n->line, key, "anchors (&name) are not supported");
	if (n->has_tag)
		return fail(ld, n->line, key, "tags (!name) are not supported");
	if (n->kind != kind)
		return fail(ld, n->line, key, "expected %s, found %s", kind_name(kind),
			    describe(shown, n));
	if (kind == NODE_SCALAR && strlen(n->text) != n->len)
		return fail(ld, n->line, key, "%s contains a NUL character", show(shown, n, true));
	return 0;
}

/*
 * The node must be a mapping whose keys are among names[] and appear once.
 * fields[i] receives the key and value named names[i], or NULLs.
 */
static int get_fields(struct loader *ld, const struct node *map, const char *key,
		      const char *const names[], size_t nb_names, struct field fields[])
{
	if (expect(ld, map, key, NODE_MAPPING) < 0)
		return -1;
	for (size_t i = 0; i < nb_names; i++)
		fields[i] = (struct field){ NULL, NULL };
	for (size_t p = 0; p + 1 < map->nb_children; p += 2) {
		const struct node *k = map->children[p];
		char shown[SHOW_MAX], path[KEY_MAX], allowed[KEY_MAX] = "";
		size_t i;

		if (k->kind != NODE_SCALAR || k->has_anchor || k->has_tag)
			return fail(ld, k->line, key[0] ? key : "(top level)",
				    "keys must be plain names, found %s%s", kind_name(k->kind),
				    k->kind == NODE_SCALAR ? " with an anchor or tag" : "");
		key_field(path, key, show(shown, k, false));
		for (i = 0; i < nb_names; i++)
			if (strlen(k->text) == k->len && strcmp(k->text, names[i]) == 0)
				break;
		if (i == nb_names) {
			for (size_t a = 0; a < nb_names; a++)
				snprintf(allowed + strlen(allowed), sizeof(allowed) - strlen(allowed),
					 "%s%s", a ? ", " : "", names[a]);
			return fail(ld, k->line, path, "unknown key (allowed: %s)", allowed);
		}
		if (fields[i].key != NULL)
			return fail(ld, k->line, path, "duplicate key (first at line %u)",
				    fields[i].key->line);
		fields[i].key = k;
		fields[i].value = map->children[p + 1];
	}
	return 0;
}

/* A missing required key is reported at the mapping that should hold it. */
static int require(struct loader *ld, const struct node *map, const char *key, const char *name,
		   const struct field *field)
{
	char path[KEY_MAX];

	if (field->value != NULL)
		return 0;
	key_field(path, key, name);
	return fail(ld, map->line, path, "required key is missing");
}

/* A sequence of 1..max entries; one and many name the entries in messages. */
static int expect_list(struct loader *ld, const struct node *seq, const char *key, size_t max,
		       const char *one, const char *many)
{
	char path[KEY_MAX];

	if (expect(ld, seq, key, NODE_SEQUENCE) < 0)
		return -1;
	if (seq->nb_children == 0)
		return fail(ld, seq->line, key, "is empty; at least one %s is needed", one);
	if (seq->nb_children > max) {
		key_index(path, key, max);
		return fail(ld, seq->children[max]->line, path, "too many %s (at most %zu)", many,
			    max);
	}
	return 0;
}

static int load_text(struct loader *ld, const struct node *n, const char *key, char *dst,
		     size_t size)
{
	char shown[SHOW_MAX];

	if (expect(ld, n, key, NODE_SCALAR) < 0)
		return -1;
	if (n->len >= size)
		return fail(ld, n->line, key, "%s is too long (%zu bytes; at most %zu)",
			    show(shown, n, true), n->len, size - 1);
	memcpy(dst, n->text, n->len + 1);
	return 0;
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

static int load_name(struct loader *ld, const struct node *n, const char *key,
		     char dst[ZCD_NAME_MAX])
{
	char shown[SHOW_MAX];
	bool valid;

	if (expect(ld, n, key, NODE_SCALAR) < 0)
		return -1;
	valid = n->len > 0;
	for (size_t i = 0; i < n->len; i++)
		valid = valid && is_name_char(n->text[i]);
	if (!valid)
		return fail(ld, n->line, key,
			    "%s is not a valid name (1 to %d characters of A-Z a-z 0-9 . _ -)",
			    show(shown, n, true), ZCD_NAME_MAX - 1);
	if (n->len >= ZCD_NAME_MAX)
		return fail(ld, n->line, key, "%s is too long for a name (at most %d characters)",
			    show(shown, n, true), ZCD_NAME_MAX - 1);
	memcpy(dst, n->text, n->len + 1);
	return 0;
}

/*
 * Plain decimal digits only: a sign, hex, a fraction or a leading zero is
 * refused rather than guessed at (YAML 1.1 reads 010 as octal).  Values above
 * UINT32_MAX saturate to UINT32_MAX + 1, which no range accepts.
 */
static int parse_decimal(const char *text, uint64_t *value)
{
	uint64_t v = 0;

	if (text[0] == '\0' || (text[0] == '0' && text[1] != '\0'))
		return -1;
	for (const char *p = text; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		if (v <= UINT32_MAX)
			v = v * 10 + (uint64_t)(*p - '0');
	}
	*value = v > UINT32_MAX ? (uint64_t)UINT32_MAX + 1 : v;
	return 0;
}

static int load_number(struct loader *ld, const struct node *n, const char *key, uint32_t min,
		       uint32_t max, uint32_t *out)
{
	char shown[SHOW_MAX];
	uint64_t v;

	if (expect(ld, n, key, NODE_SCALAR) < 0)
		return -1;
	/* A quoted value is a string in YAML, even if it holds digits. */
	if (n->quoted || parse_decimal(n->text, &v) < 0)
		return fail(ld, n->line, key,
			    "%s is not a number (expected decimal digits without sign, leading "
			    "zeros or quotes)",
			    show(shown, n, true));
	if (v < min || v > max)
		return fail(ld, n->line, key, "%s is out of range (%" PRIu32 "..%" PRIu32 ")",
			    show(shown, n, false), min, max);
	*out = (uint32_t)v;
	return 0;
}

static int load_bool(struct loader *ld, const struct node *n, const char *key, bool *out)
{
	char shown[SHOW_MAX];

	if (expect(ld, n, key, NODE_SCALAR) < 0)
		return -1;
	if (!n->quoted && strcmp(n->text, "true") == 0)
		*out = true;
	else if (!n->quoted && strcmp(n->text, "false") == 0)
		*out = false;
	else
		return fail(ld, n->line, key, "%s is not a boolean (expected true or false)",
			    show(shown, n, true));
	return 0;
}

/*
 * A mode spelt as one of two words: *out = 0 for first, 1 for second.
 * Messages call the two "a mode (first or second)".
 */
static int load_mode(struct loader *ld, const struct node *n, const char *key, const char *first,
		     const char *second, unsigned *out)
{
	char shown[SHOW_MAX];

	if (expect(ld, n, key, NODE_SCALAR) < 0)
		return -1;
	if (strcmp(n->text, first) == 0)
		*out = 0;
	else if (strcmp(n->text, second) == 0)
		*out = 1;
	else
		return fail(ld, n->line, key, "%s is not a mode (%s or %s)", show(shown, n, true),
			    first, second);
	return 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int zcd_parse_mac(const char *text, uint8_t mac[6])
{
	uint8_t parsed[6];

	if (text == NULL)
		return -1;
	for (int i = 0; i < 6; i++) {
		const char *pair = text + 3 * i;
		int hi = hex_digit(pair[0]);
		int lo = hi < 0 ? -1 : hex_digit(pair[1]);

		if (lo < 0)
			return -1;
		if (pair[2] != (i < 5 ? ':' : '\0'))
			return -1;
		parsed[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(mac, parsed, sizeof(parsed));
	return 0;
}

/* ---- sections ---- */

enum { PORT_NAME, PORT_DEVARGS, PORT_FIELDS };
static const char *const port_keys[PORT_FIELDS] = {
	[PORT_NAME] = "name",
	[PORT_DEVARGS] = "devargs",
};

static int load_ports(struct loader *ld, struct zcd_config *cfg, const struct node *seq)
{
	if (expect_list(ld, seq, "ports", ZCD_MAX_PORTS, "port", "ports") < 0)
		return -1;
	for (size_t i = 0; i < seq->nb_children; i++) {
		const struct node *entry = seq->children[i];
		struct zcd_port_config *port = &cfg->ports[i];
		struct field f[PORT_FIELDS];
		char key[KEY_MAX], sub[KEY_MAX], shown[SHOW_MAX];

		key_index(key, "ports", i);
		if (get_fields(ld, entry, key, port_keys, PORT_FIELDS, f) < 0 ||
		    require(ld, entry, key, port_keys[PORT_NAME], &f[PORT_NAME]) < 0 ||
		    require(ld, entry, key, port_keys[PORT_DEVARGS], &f[PORT_DEVARGS]) < 0)
			return -1;

		key_field(sub, key, port_keys[PORT_NAME]);
		if (load_name(ld, f[PORT_NAME].value, sub, port->name) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->ports[j].name, port->name) == 0)
				return fail(ld, f[PORT_NAME].value->line, sub,
					    "%s is already used by ports[%zu]",
					    show(shown, f[PORT_NAME].value, true), j);

		key_field(sub, key, port_keys[PORT_DEVARGS]);
		if (load_text(ld, f[PORT_DEVARGS].value, sub, port->devargs,
			      sizeof(port->devargs)) < 0)
			return -1;
		if (port->devargs[0] == '\0')
			return fail(ld, f[PORT_DEVARGS].value->line, sub, "must not be empty");

		port->line = entry->line;
		cfg->nb_ports++;
	}
	return 0;
}

enum { BACKEND_NAME, BACKEND_FIELDS };
static const char *const backend_keys[BACKEND_FIELDS] = {
	[BACKEND_NAME] = "backend",
};

static int load_hypervisor(struct loader *ld, struct zcd_config *cfg, const struct node *map)
{
	const char *key = "hypervisor.backend";
	struct field f[BACKEND_FIELDS];
	char shown[SHOW_MAX];
	const struct node *name;

	if (get_fields(ld, map, "hypervisor", backend_keys, BACKEND_FIELDS, f) < 0 ||
	    require(ld, map, "hypervisor", backend_keys[BACKEND_NAME], &f[BACKEND_NAME]) < 0)
		return -1;
	name = f[BACKEND_NAME].value;
	if (expect(ld, name, key, NODE_SCALAR) < 0)
		return -1;
	if (zcd_hv_find(name->text) == NULL)
		return fail(ld, name->line, key, "%s is not a known backend (known: %s)",
			    show(shown, name, true), zcd_hv_names());
	return load_text(ld, name, key, cfg->hv_backend, sizeof(cfg->hv_backend));
}

enum { IOMMU_BACKEND, IOMMU_MODE, IOMMU_BATCH, IOMMU_MAX_US, IOMMU_CHECK, IOMMU_FIELDS };
static const char *const iommu_keys[IOMMU_FIELDS] = {
	[IOMMU_BACKEND] = "backend",
	[IOMMU_MODE] = "mode",
	[IOMMU_BATCH] = "deferred_batch",
	[IOMMU_MAX_US] = "deferred_max_us",
	[IOMMU_CHECK] = "check",
};

static int load_iommu(struct loader *ld, struct zcd_config *cfg, const struct node *map)
{
	struct field f[IOMMU_FIELDS];
	char key[KEY_MAX], shown[SHOW_MAX];
	const struct node *value;

	if (get_fields(ld, map, "iommu", iommu_keys, IOMMU_FIELDS, f) < 0)
		return -1;
	value = f[IOMMU_BACKEND].value;
	key_field(key, "iommu", iommu_keys[IOMMU_BACKEND]);
	if (value != NULL) {
		if (expect(ld, value, key, NODE_SCALAR) < 0)
			return -1;
		if (zcd_iommu_find(value->text) == NULL)
			return fail(ld, value->line, key, "%s is not a known backend (known: %s)",
				    show(shown, value, true), zcd_iommu_names());
		if (load_text(ld, value, key, cfg->iommu_backend, sizeof(cfg->iommu_backend)) < 0)
			return -1;
	}
	key_field(key, "iommu", iommu_keys[IOMMU_MODE]);
	if (f[IOMMU_MODE].value != NULL) {
		unsigned deferred;

		if (load_mode(ld, f[IOMMU_MODE].value, key, "strict", "deferred", &deferred) < 0)
			return -1;
		cfg->iommu_mode = deferred ? ZCD_IOMMU_DEFERRED : ZCD_IOMMU_STRICT;
	}
	key_field(key, "iommu", iommu_keys[IOMMU_BATCH]);
	if (f[IOMMU_BATCH].value != NULL &&
	    load_number(ld, f[IOMMU_BATCH].value, key, 1, ZCD_DEFERRED_BATCH_MAX,
			&cfg->iommu_deferred_batch) < 0)
		return -1;
	key_field(key, "iommu", iommu_keys[IOMMU_MAX_US]);
	if (f[IOMMU_MAX_US].value != NULL &&
	    load_number(ld, f[IOMMU_MAX_US].value, key, 1, ZCD_DEFERRED_US_MAX,
			&cfg->iommu_deferred_us) < 0)
		return -1;
	key_field(key, "iommu", iommu_keys[IOMMU_CHECK]);
	if (f[IOMMU_CHECK].value != NULL &&
	    load_bool(ld, f[IOMMU_CHECK].value, key, &cfg->iommu_check) < 0)
		return -1;
	return 0;
}

enum {
	DP_MTU,
	DP_UNKNOWN_UNICAST,
	DP_RX_DESCRIPTORS,
	DP_BURST,
	DP_BUFFERS,
	DP_COPY_THRESHOLD,
	DP_CREDIT_TIMEOUT_MS,
	DP_FIELDS
};
static const char *const dataplane_keys[DP_FIELDS] = {
	[DP_MTU] = "mtu",
	[DP_UNKNOWN_UNICAST] = "unknown_unicast",
	[DP_RX_DESCRIPTORS] = "rx_descriptors",
	[DP_BURST] = "burst",
	[DP_BUFFERS] = "buffers",
	[DP_COPY_THRESHOLD] = "copy_threshold",
	[DP_CREDIT_TIMEOUT_MS] = "credit_timeout_ms",
};

static int load_dataplane(struct loader *ld, struct zcd_config *cfg, const struct node *map)
{
	struct field f[DP_FIELDS];
	char key[KEY_MAX];

	if (get_fields(ld, map, "dataplane", dataplane_keys, DP_FIELDS, f) < 0)
		return -1;
	key_field(key, "dataplane", dataplane_keys[DP_MTU]);
	if (f[DP_MTU].value != NULL &&
	    load_number(ld, f[DP_MTU].value, key, ZCD_MTU_MIN, ZCD_MTU_MAX, &cfg->mtu) < 0)
		return -1;
	key_field(key, "dataplane", dataplane_keys[DP_RX_DESCRIPTORS]);
	if (f[DP_RX_DESCRIPTORS].value != NULL &&
	    load_number(ld, f[DP_RX_DESCRIPTORS].value, key, ZCD_RX_DESC_MIN, ZCD_RX_DESC_MAX,
			&cfg->rx_descriptors) < 0)
		return -1;
	key_field(key, "dataplane", dataplane_keys[DP_BURST]);
	if (f[DP_BURST].value != NULL &&
	    load_number(ld, f[DP_BURST].value, key, ZCD_BURST_MIN, ZCD_BURST_MAX, &cfg->burst) < 0)
		return -1;
	/* 0 asks for automatic sizing, so the range starts at 0. */
	key_field(key, "dataplane", dataplane_keys[DP_BUFFERS]);
	if (f[DP_BUFFERS].value != NULL &&
	    load_number(ld, f[DP_BUFFERS].value, key, 0, ZCD_BUFFERS_MAX, &cfg->buffers) < 0)
		return -1;
	key_field(key, "dataplane", dataplane_keys[DP_COPY_THRESHOLD]);
	if (f[DP_COPY_THRESHOLD].value != NULL &&
	    load_number(ld, f[DP_COPY_THRESHOLD].value, key, 0, zcd_frame_limit(ZCD_MTU_MAX, true),
			&cfg->copy_threshold) < 0)
		return -1;
	key_field(key, "dataplane", dataplane_keys[DP_CREDIT_TIMEOUT_MS]);
	if (f[DP_CREDIT_TIMEOUT_MS].value != NULL &&
	    load_number(ld, f[DP_CREDIT_TIMEOUT_MS].value, key, 1, ZCD_CREDIT_TIMEOUT_MS_MAX,
			&cfg->credit_timeout_ms) < 0)
		return -1;
	key_field(key, "dataplane", dataplane_keys[DP_UNKNOWN_UNICAST]);
	if (f[DP_UNKNOWN_UNICAST].value != NULL &&
	    expect(ld, f[DP_UNKNOWN_UNICAST].value, key, NODE_SCALAR) < 0)
		return -1;
	ld->unknown_unicast = f[DP_UNKNOWN_UNICAST].value;
	return 0;
}

/* The VM (0..vm) that already has mac on vlan, or -1. */
static int mac_owner(const struct zcd_config *cfg, unsigned vm, const uint8_t mac[6],
		     uint16_t vlan)
{
	for (unsigned i = 0; i <= vm; i++) {
		if (cfg->vms[i].vlan != vlan)
			continue;
		for (unsigned m = 0; m < cfg->vms[i].nb_macs; m++)
			if (memcmp(cfg->vms[i].macs[m], mac, 6) == 0)
				return (int)i;
	}
	return -1;
}

static int load_vm_macs(struct loader *ld, struct zcd_config *cfg, unsigned vm,
			const struct node *seq, const char *key)
{
	struct zcd_vm_config *v = &cfg->vms[vm];

	if (expect_list(ld, seq, key, ZCD_MAX_MACS_PER_VM, "MAC address", "MAC addresses") < 0)
		return -1;
	for (size_t i = 0; i < seq->nb_children; i++) {
		const struct node *n = seq->children[i];
		uint8_t *mac = v->macs[v->nb_macs];
		char path[KEY_MAX], shown[SHOW_MAX], vlan_text[16];
		int owner;

		key_index(path, key, i);
		if (expect(ld, n, path, NODE_SCALAR) < 0)
			return -1;
		if (zcd_parse_mac(n->text, mac) < 0)
			return fail(ld, n->line, path,
				    "%s is not a MAC address (expected six hex pairs like "
				    "02:00:00:00:00:01)",
				    show(shown, n, true));
		/* The I/G bit: group addresses, broadcast included (IEEE 802-2014 8.2). */
		if (mac[0] & 1)
			return fail(ld, n->line, path,
				    "%s is a multicast address; a VM address must be unicast",
				    show(shown, n, true));
		if (memcmp(mac, (const uint8_t[6]){ 0 }, 6) == 0)
			return fail(ld, n->line, path,
				    "%s is the all-zero address; a VM address must be a real "
				    "unicast address",
				    show(shown, n, true));
		owner = mac_owner(cfg, vm, mac, v->vlan);
		if (owner >= 0) {
			if (v->vlan != 0)
				snprintf(vlan_text, sizeof(vlan_text), "on VLAN %u", v->vlan);
			else
				snprintf(vlan_text, sizeof(vlan_text), "untagged");
			return fail(ld, n->line, path,
				    "%02x:%02x:%02x:%02x:%02x:%02x %s is already used by %s",
				    mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], vlan_text,
				    cfg->vms[owner].name);
		}
		v->nb_macs++;
	}
	return 0;
}

enum {
	SIM_SINK,
	SIM_STALL,
	SIM_INSTANT_RETURN,
	SIM_HOSTILE,
	SIM_SCRIBBLE_AFTER,
	SIM_REBOOT_EVERY,
	SIM_HOLD,
	SIM_FIELDS
};
static const char *const sim_keys[SIM_FIELDS] = {
	[SIM_SINK] = "sink",
	[SIM_STALL] = "stall",
	[SIM_INSTANT_RETURN] = "instant_return",
	[SIM_HOSTILE] = "hostile",
	[SIM_SCRIBBLE_AFTER] = "scribble_after",
	[SIM_REBOOT_EVERY] = "reboot_every",
	[SIM_HOLD] = "hold",
};

static int load_vm_sim(struct loader *ld, struct zcd_vm_sim_config *sim, const struct node *map,
		       const char *key)
{
	struct field f[SIM_FIELDS];
	char sub[KEY_MAX];

	if (get_fields(ld, map, key, sim_keys, SIM_FIELDS, f) < 0)
		return -1;
	key_field(sub, key, sim_keys[SIM_SINK]);
	if (f[SIM_SINK].value != NULL &&
	    load_text(ld, f[SIM_SINK].value, sub, sim->sink, sizeof(sim->sink)) < 0)
		return -1;
	key_field(sub, key, sim_keys[SIM_STALL]);
	if (f[SIM_STALL].value != NULL && load_bool(ld, f[SIM_STALL].value, sub, &sim->stall) < 0)
		return -1;
	key_field(sub, key, sim_keys[SIM_INSTANT_RETURN]);
	if (f[SIM_INSTANT_RETURN].value != NULL &&
	    load_bool(ld, f[SIM_INSTANT_RETURN].value, sub, &sim->instant_return) < 0)
		return -1;
	if (sim->instant_return && (sim->stall || sim->sink[0] != '\0'))
		return fail(ld, f[SIM_INSTANT_RETURN].value->line, sub,
			    "a guest that returns buffers unread neither stalls nor writes a sink");
	key_field(sub, key, sim_keys[SIM_HOSTILE]);
	if (f[SIM_HOSTILE].value != NULL &&
	    load_bool(ld, f[SIM_HOSTILE].value, sub, &sim->hostile) < 0)
		return -1;
	if (sim->hostile && sim->instant_return)
		return fail(ld, f[SIM_HOSTILE].value->line, sub,
			    "a guest that returns buffers unread cannot also be hostile");
	key_field(sub, key, sim_keys[SIM_SCRIBBLE_AFTER]);
	if (f[SIM_SCRIBBLE_AFTER].value != NULL &&
	    load_number(ld, f[SIM_SCRIBBLE_AFTER].value, sub, 0, UINT32_MAX, &sim->scribble_after) < 0)
		return -1;
	if (sim->scribble_after != 0 && sim->instant_return)
		return fail(ld, f[SIM_SCRIBBLE_AFTER].value->line, sub,
			    "a guest that returns buffers unread does not scribble");
	key_field(sub, key, sim_keys[SIM_REBOOT_EVERY]);
	if (f[SIM_REBOOT_EVERY].value != NULL &&
	    load_number(ld, f[SIM_REBOOT_EVERY].value, sub, 0, UINT32_MAX, &sim->reboot_every) < 0)
		return -1;
	if (sim->reboot_every != 0 && (sim->instant_return || sim->stall || sim->scribble_after))
		return fail(ld, f[SIM_REBOOT_EVERY].value->line, sub,
			    "a rebooting guest neither returns buffers unread, stalls nor scribbles");
	key_field(sub, key, sim_keys[SIM_HOLD]);
	if (f[SIM_HOLD].value != NULL &&
	    load_number(ld, f[SIM_HOLD].value, sub, 0, ZCD_CREDITS_MAX, &sim->hold) < 0)
		return -1;
	if (sim->hold != 0 && (sim->instant_return || sim->stall || sim->hostile ||
			       sim->scribble_after))
		return fail(ld, f[SIM_HOLD].value->line, sub,
			    "a guest that holds buffers does none of instant_return, stall, hostile "
			    "or scribble_after");
	return 0;
}

enum { XEN_DOMID, XEN_FIELDS };
static const char *const xen_keys[XEN_FIELDS] = {
	[XEN_DOMID] = "domid",
};

static int load_vm_xen(struct loader *ld, struct zcd_vm_xen_config *xen, const struct node *map,
		       const char *key)
{
	struct field f[XEN_FIELDS];
	char sub[KEY_MAX];

	if (get_fields(ld, map, key, xen_keys, XEN_FIELDS, f) < 0)
		return -1;
	key_field(sub, key, xen_keys[XEN_DOMID]);
	if (f[XEN_DOMID].value != NULL &&
	    load_number(ld, f[XEN_DOMID].value, sub, 1, ZCD_DOMID_MAX, &xen->domid) < 0)
		return -1;
	return 0;
}

enum { VM_NAME, VM_MACS, VM_VLAN, VM_CREDITS, VM_NOTIFY, VM_SIM, VM_XEN, VM_FIELDS };
static const char *const vm_keys[VM_FIELDS] = {
	[VM_NAME] = "name",
	[VM_MACS] = "macs",
	[VM_VLAN] = "vlan",
	[VM_CREDITS] = "credits",
	[VM_NOTIFY] = "notify",
	[VM_SIM] = "sim",
	[VM_XEN] = "xen",
};

static int load_vm(struct loader *ld, struct zcd_config *cfg, unsigned vm,
		   const struct node *entry)
{
	struct zcd_vm_config *v = &cfg->vms[vm];
	struct field f[VM_FIELDS];
	char key[KEY_MAX], sub[KEY_MAX], shown[SHOW_MAX];
	uint32_t value;

	key_index(key, "vms", vm);
	if (get_fields(ld, entry, key, vm_keys, VM_FIELDS, f) < 0 ||
	    require(ld, entry, key, vm_keys[VM_NAME], &f[VM_NAME]) < 0 ||
	    require(ld, entry, key, vm_keys[VM_MACS], &f[VM_MACS]) < 0)
		return -1;
	v->line = entry->line;

	key_field(sub, key, vm_keys[VM_NAME]);
	if (load_name(ld, f[VM_NAME].value, sub, v->name) < 0)
		return -1;
	/* unknown_unicast uses "drop" for "no VM"; a VM of that name would be ambiguous. */
	if (strcmp(v->name, DROP_NAME) == 0)
		return fail(ld, f[VM_NAME].value->line, sub,
			    "\"" DROP_NAME "\" is reserved (dataplane.unknown_unicast uses it)");
	for (unsigned j = 0; j < vm; j++)
		if (strcmp(cfg->vms[j].name, v->name) == 0)
			return fail(ld, f[VM_NAME].value->line, sub,
				    "%s is already used by vms[%u]",
				    show(shown, f[VM_NAME].value, true), j);

	/* The VLAN first: MAC uniqueness is per (MAC, VLAN). */
	key_field(sub, key, vm_keys[VM_VLAN]);
	if (f[VM_VLAN].value != NULL) {
		if (load_number(ld, f[VM_VLAN].value, sub, 1, 4094, &value) < 0)
			return -1;
		v->vlan = (uint16_t)value;
	}
	key_field(sub, key, vm_keys[VM_MACS]);
	if (load_vm_macs(ld, cfg, vm, f[VM_MACS].value, sub) < 0)
		return -1;

	v->credits = ZCD_CREDITS_DEFAULT;
	key_field(sub, key, vm_keys[VM_CREDITS]);
	if (f[VM_CREDITS].value != NULL &&
	    load_number(ld, f[VM_CREDITS].value, sub, ZCD_CREDITS_MIN, ZCD_CREDITS_MAX,
			&v->credits) < 0)
		return -1;

	key_field(sub, key, vm_keys[VM_NOTIFY]);
	if (f[VM_NOTIFY].value != NULL) {
		unsigned poll;

		if (load_mode(ld, f[VM_NOTIFY].value, sub, "event", "poll", &poll) < 0)
			return -1;
		v->notify = poll ? ZCD_NOTIFY_POLL : ZCD_NOTIFY_EVENT;
	}

	key_field(sub, key, vm_keys[VM_SIM]);
	if (f[VM_SIM].value != NULL && load_vm_sim(ld, &v->sim, f[VM_SIM].value, sub) < 0)
		return -1;
	ld->sim_keys[vm] = f[VM_SIM].key;

	key_field(sub, key, vm_keys[VM_XEN]);
	if (f[VM_XEN].value != NULL && load_vm_xen(ld, &v->xen, f[VM_XEN].value, sub) < 0)
		return -1;
	ld->xen_keys[vm] = f[VM_XEN].key;
	return 0;
}

static int load_vms(struct loader *ld, struct zcd_config *cfg, const struct node *seq)
{
	if (expect_list(ld, seq, "vms", ZCD_MAX_VMS, "VM", "VMs") < 0)
		return -1;
	for (size_t i = 0; i < seq->nb_children; i++) {
		if (load_vm(ld, cfg, (unsigned)i, seq->children[i]) < 0)
			return -1;
		cfg->nb_vms++;
	}
	return 0;
}

/* A VM's section for one backend (sim:, xen:) is an error with any other backend. */
static int check_backend_section(struct loader *ld, const struct zcd_config *cfg,
				 const struct node *const *keys, const char *backend)
{
	if (strcmp(cfg->hv_backend, backend) == 0)
		return 0;
	for (unsigned i = 0; i < cfg->nb_vms; i++) {
		char entry[KEY_MAX], key[KEY_MAX];

		if (keys[i] == NULL)
			continue;
		key_index(entry, "vms", i);
		key_field(key, entry, backend);
		return fail(ld, keys[i]->line, key,
			    "only allowed with hypervisor.backend %s (this file uses %s)", backend,
			    cfg->hv_backend);
	}
	return 0;
}

/* Checks that need the whole file: they refer to keys that may come later. */
static int check_cross_references(struct loader *ld, struct zcd_config *cfg)
{
	const struct node *uu = ld->unknown_unicast;

	if (uu != NULL && strcmp(uu->text, DROP_NAME) != 0) {
		char shown[SHOW_MAX];
		unsigned i;

		for (i = 0; i < cfg->nb_vms; i++)
			if (strcmp(cfg->vms[i].name, uu->text) == 0)
				break;
		if (i == cfg->nb_vms)
			return fail(ld, uu->line, "dataplane.unknown_unicast",
				    "%s is not the name of a VM (expected \"" DROP_NAME
				    "\" or a name under vms)",
				    show(shown, uu, true));
		cfg->unknown_unicast_vm = (int)i;
	}
	if (check_backend_section(ld, cfg, ld->sim_keys, "sim") < 0 ||
	    check_backend_section(ld, cfg, ld->xen_keys, "xen") < 0)
		return -1;
	return 0;
}

enum { TOP_PORTS, TOP_HYPERVISOR, TOP_IOMMU, TOP_DATAPLANE, TOP_VMS, TOP_FIELDS };
static const char *const top_keys[TOP_FIELDS] = {
	[TOP_PORTS] = "ports",
	[TOP_HYPERVISOR] = "hypervisor",
	[TOP_IOMMU] = "iommu",
	[TOP_DATAPLANE] = "dataplane",
	[TOP_VMS] = "vms",
};

static int load_root(struct loader *ld, struct zcd_config *cfg, const struct node *root)
{
	struct field f[TOP_FIELDS];
	char shown[SHOW_MAX];

	if (root->kind != NODE_MAPPING || root->has_anchor || root->has_tag)
		return fail_line(ld, root->line,
				 "the top level must be a plain mapping with keys ports, hypervisor "
				 "and vms (found %s%s)",
				 describe(shown, root),
				 root->kind == NODE_MAPPING ? " with an anchor or tag" : "");
	if (get_fields(ld, root, "", top_keys, TOP_FIELDS, f) < 0 ||
	    require(ld, root, "", top_keys[TOP_PORTS], &f[TOP_PORTS]) < 0 ||
	    require(ld, root, "", top_keys[TOP_HYPERVISOR], &f[TOP_HYPERVISOR]) < 0 ||
	    require(ld, root, "", top_keys[TOP_VMS], &f[TOP_VMS]) < 0)
		return -1;

	cfg->mtu = ZCD_MTU_DEFAULT;
	cfg->copy_threshold = ZCD_COPY_THRESHOLD_DEFAULT;
	cfg->credit_timeout_ms = ZCD_CREDIT_TIMEOUT_MS_DEFAULT;
	cfg->unknown_unicast_vm = ZCD_UNKNOWN_UNICAST_DROP;
	cfg->rx_descriptors = ZCD_RX_DESC_DEFAULT;
	cfg->burst = ZCD_BURST_DEFAULT;
	cfg->buffers = 0;
	snprintf(cfg->iommu_backend, sizeof(cfg->iommu_backend), "none");
	cfg->iommu_mode = ZCD_IOMMU_STRICT;
	cfg->iommu_deferred_batch = ZCD_DEFERRED_BATCH_DEFAULT;
	cfg->iommu_deferred_us = ZCD_DEFERRED_US_DEFAULT;

	if (load_ports(ld, cfg, f[TOP_PORTS].value) < 0 ||
	    load_hypervisor(ld, cfg, f[TOP_HYPERVISOR].value) < 0 ||
	    (f[TOP_IOMMU].value != NULL && load_iommu(ld, cfg, f[TOP_IOMMU].value) < 0) ||
	    (f[TOP_DATAPLANE].value != NULL &&
	     load_dataplane(ld, cfg, f[TOP_DATAPLANE].value) < 0) ||
	    load_vms(ld, cfg, f[TOP_VMS].value) < 0)
		return -1;
	return check_cross_references(ld, cfg);
}

struct zcd_config *zcd_config_load(const char *path, char *err, size_t errlen)
{
	struct loader ld = { .path = path, .err = err, .errlen = errlen };
	struct zcd_config *cfg;
	struct node *root;
	yaml_parser_t parser;
	struct stat st;
	FILE *file;

	if (strlen(path) >= ZCD_FILE_PATH_MAX) {
		fail_file(&ld, "cannot open: %s", strerror(ENAMETOOLONG));
		return NULL;
	}
	file = fopen(path, "rb");
	if (file == NULL) {
		fail_file(&ld, "cannot open: %s", strerror(errno));
		return NULL;
	}
	/* fopen() succeeds on a directory; reading it would fail less clearly. */
	if (fstat(fileno(file), &st) == 0 && S_ISDIR(st.st_mode)) {
		fail_file(&ld, "cannot open: %s", strerror(EISDIR));
		fclose(file);
		return NULL;
	}
	if (!yaml_parser_initialize(&parser)) {
		fail_file(&ld, "out of memory");
		fclose(file);
		return NULL;
	}
	yaml_parser_set_input_file(&parser, file);
	root = read_tree(&ld, &parser);
	yaml_parser_delete(&parser);
	fclose(file);
	if (root == NULL)
		return NULL;

	cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL) {
		fail_file(&ld, "out of memory");
	} else if (load_root(&ld, cfg, root) < 0) {
		free(cfg);
		cfg = NULL;
	} else {
		memcpy(cfg->path, path, strlen(path) + 1);
	}
	node_free(root);
	return cfg;
}

void zcd_config_free(struct zcd_config *cfg)
{
	free(cfg);
}
