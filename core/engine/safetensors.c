/* safetensors.c: strict mmap reader (own small JSON parser) and atomic writer for safetensors files. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Tensor data is reinterpreted with memcpy, so the host must store numbers as the
 * file does: little-endian IEEE. */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors.c assumes a little-endian host");
#endif
_Static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE float and double expected");

/* Deep enough for any safetensors header (which needs 3), shallow enough that a
 * hostile header cannot exhaust the stack through recursion. */
enum { JSON_MAX_DEPTH = 32 };
/* The reference implementation's cap on the header; it also keeps node counts in int. */
enum { HEADER_MAX = 100000000 };

/* ===================================================================== dtypes */

static const struct {
    const char *name;
    size_t size;
} dtype_info[] = {
    [LIIF_DT_F64] = {"F64", 8},  [LIIF_DT_F32] = {"F32", 4}, [LIIF_DT_F16] = {"F16", 2},
    [LIIF_DT_BF16] = {"BF16", 2}, [LIIF_DT_I64] = {"I64", 8}, [LIIF_DT_I32] = {"I32", 4},
    [LIIF_DT_I16] = {"I16", 2},  [LIIF_DT_I8] = {"I8", 1},   [LIIF_DT_U8] = {"U8", 1},
    [LIIF_DT_BOOL] = {"BOOL", 1},
};
enum { N_DTYPES = (int)(sizeof dtype_info / sizeof dtype_info[0]) };

static bool dtype_valid(liif_dtype t)
{
    return (int)t >= 0 && (int)t < N_DTYPES;
}

size_t liif_dtype_size(liif_dtype t)
{
    return dtype_valid(t) ? dtype_info[t].size : 0;
}

const char *liif_dtype_name(liif_dtype t)
{
    return dtype_valid(t) ? dtype_info[t].name : "?";
}

static bool dtype_parse(const char *s, liif_dtype *out)
{
    for (int i = 0; i < N_DTYPES; i++) {
        if (strcmp(s, dtype_info[i].name) == 0) {
            *out = (liif_dtype)i;
            return true;
        }
    }
    return false;
}

/* ========================================================= half conversions */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float liif_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f) /* inf, or nan with its payload */
        return bits_f32(sign | 0x7f800000u | (m << 13));
    if (e == 0) {
        if (m == 0)
            return bits_f32(sign);
        /* Subnormal half: every one is a normal float; shift the leading 1 into place. */
        int ef = 113; /* float exponent field of 2^-14 */
        while (!(m & 0x400)) {
            m <<= 1;
            ef--;
        }
        return bits_f32(sign | ((uint32_t)ef << 23) | ((m & 0x3ff) << 13));
    }
    return bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

/* Round-to-nearest-even right shift of m by `shift` (1..31) bits. */
static uint32_t shift_rne(uint32_t m, int shift)
{
    uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1)))
        r++;
    return r;
}

uint16_t liif_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f), ax = x & 0x7fffffffu;
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    if (ax > 0x7f800000u) /* nan: keep the top payload bits, force quiet */
        return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
    if (ax >= 0x477ff000u) /* >= 65520, half-way past 65504 (odd mantissa): inf */
        return (uint16_t)(sign | 0x7c00);
    if (ax >= 0x38800000u) /* >= 2^-14: normal half; a carry may bump the exponent */
        return (uint16_t)(sign | shift_rne(ax - 0x38000000u, 13));
    if (ax <= 0x33000000u) /* <= 2^-25: zero (2^-25 itself is a tie, even is 0) */
        return sign;
    /* Subnormal half: value = m * 2^(e-150), in units of 2^-24 that is m >> (126-e).
     * Rounding up to 0x400 yields the smallest normal, which is the right encoding. */
    int e = (int)(ax >> 23);
    uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    return (uint16_t)(sign | shift_rne(m, 126 - e));
}

float liif_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t liif_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* nan: truncation could clear the payload into inf */
        return (uint16_t)((x >> 16) | 0x40);
    /* Adding 0x7fff plus the kept lsb rounds to nearest even; overflow carries into inf. */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

/* ================================================================== messages */

/* Short-hands for the two names most messages carry. */
typedef struct {
    char path[200], name[120];
} msg_names;

static msg_names names_of(const char *path, const char *tensor)
{
    msg_names n;
    liif_printable(path, n.path, sizeof n.path);
    liif_printable(tensor ? tensor : "", n.name, sizeof n.name);
    return n;
}

/* "[256, 580]" */
static const char *shape_str(const int64_t *shape, int ndim, char *buf, size_t size)
{
    size_t o = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (o < size)
        snprintf(buf + o, size - o, "]");
    return buf;
}

/* ============================================================== JSON parser */

typedef enum { J_OBJECT, J_ARRAY, J_STRING, J_INT } jkind;

/* Nodes live in one growable pool and refer to each other by index, so growing
 * the pool never leaves a dangling pointer. Object members carry their key. Nodes are
 * made in document order, so a container's first child is the node after it. A node
 * takes 24 bytes and every value needs at least 2 bytes of header text, so parsing a
 * header of N bytes takes at most 13 N bytes (nodes plus the decoded strings). */
typedef struct {
    union {
        int64_t num;     /* J_INT */
        const char *str; /* J_STRING, decoded, NUL-terminated, in the arena */
    };
    const char *key;     /* member name when the parent is an object */
    int next;            /* next sibling (-1 = none) */
    unsigned count : 30; /* number of children (the header limit keeps it far below 2^30) */
    unsigned kind : 2;   /* jkind */
} jnode;
_Static_assert(sizeof(jnode) <= 24, "jnode is the parser's memory per value");

typedef struct {
    const char *src;
    size_t len, pos;
    char *arena;       /* decoded strings; never longer than their source text */
    size_t arena_used;
    jnode *nodes;
    int n_nodes, cap;
    char msg[160];     /* first syntax error */
    size_t err_at;
} jparser;

static bool jfail(jparser *p, const char *what)
{
    if (!p->msg[0]) {
        snprintf(p->msg, sizeof p->msg, "%s", what);
        p->err_at = p->pos;
    }
    return false;
}

static void jskip_ws(jparser *p)
{
    while (p->pos < p->len) {
        char c = p->src[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static int jnew(jparser *p, jkind kind)
{
    if (p->n_nodes == p->cap) {
        /* Valid JSON of len bytes holds at most len / 2 + 1 values: capacity never needs more. */
        size_t most = p->len / 2 + 1, want = p->cap ? (size_t)p->cap * 2 : 256;
        int cap = (int)(want < most ? want : most);
        if (cap <= p->cap)
            return jfail(p, "more values than the header's size allows"), -1;
        jnode *n = realloc(p->nodes, (size_t)cap * sizeof *n);
        if (!n)
            return jfail(p, "out of memory"), -1;
        p->nodes = n;
        p->cap = cap;
    }
    jnode *n = &p->nodes[p->n_nodes];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->next = -1;
    return p->n_nodes++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool jhex4(jparser *p, uint32_t *out)
{
    if (p->len - p->pos < 4)
        return jfail(p, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p->src[p->pos + (size_t)i]);
        if (h < 0)
            return jfail(p, "bad hex digit in \\u escape");
        v = v << 4 | (uint32_t)h;
    }
    p->pos += 4;
    *out = v;
    return true;
}

static void put_utf8(char *o, size_t *n, uint32_t cp)
{
    if (cp < 0x80) {
        o[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        o[(*n)++] = (char)(0xc0 | cp >> 6);
        o[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        o[(*n)++] = (char)(0xe0 | cp >> 12);
        o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        o[(*n)++] = (char)(0xf0 | cp >> 18);
        o[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[(*n)++] = (char)(0x80 | (cp & 0x3f));
    }
}

/* \uXXXX, with a following \uXXXX when the first is a high surrogate. */
static bool jescape_u(jparser *p, uint32_t *cp)
{
    if (!jhex4(p, cp))
        return false;
    if (*cp >= 0xdc00 && *cp <= 0xdfff)
        return jfail(p, "lone low surrogate in \\u escape");
    if (*cp >= 0xd800 && *cp <= 0xdbff) {
        uint32_t lo;
        if (p->len - p->pos < 2 || p->src[p->pos] != '\\' || p->src[p->pos + 1] != 'u')
            return jfail(p, "high surrogate not followed by a low surrogate");
        p->pos += 2;
        if (!jhex4(p, &lo))
            return false;
        if (lo < 0xdc00 || lo > 0xdfff)
            return jfail(p, "high surrogate not followed by a low surrogate");
        *cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    if (*cp == 0)
        return jfail(p, "\\u0000 in a string (names must be NUL-free)");
    return true;
}

/* One backslash escape, p->pos just past the backslash. */
static bool jescape(jparser *p, char *o, size_t *n)
{
    if (p->pos >= p->len)
        return jfail(p, "unterminated string");
    char c = p->src[p->pos++];
    uint32_t cp;
    switch (c) {
    case '"': o[(*n)++] = '"'; return true;
    case '\\': o[(*n)++] = '\\'; return true;
    case '/': o[(*n)++] = '/'; return true;
    case 'b': o[(*n)++] = '\b'; return true;
    case 'f': o[(*n)++] = '\f'; return true;
    case 'n': o[(*n)++] = '\n'; return true;
    case 'r': o[(*n)++] = '\r'; return true;
    case 't': o[(*n)++] = '\t'; return true;
    case 'u':
        if (!jescape_u(p, &cp))
            return false;
        put_utf8(o, n, cp);
        return true;
    default:
        p->pos--;
        return jfail(p, "unknown escape in string");
    }
}

/* Length of the well-formed UTF-8 sequence at s (no overlongs, no surrogates,
 * nothing past U+10FFFF), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp, min;
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0) n = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0) n = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0) n = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static bool utf8_valid(const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq((const unsigned char *)s + i, len - i);
        if (!n)
            return false;
        i += n;
    }
    return true;
}

/* A string, p->pos on the opening quote; the decoded text goes to the arena. */
static bool jstring(jparser *p, const char **out)
{
    char *o = p->arena + p->arena_used;
    size_t n = 0;
    p->pos++;
    while (p->pos < p->len) {
        unsigned char c = (unsigned char)p->src[p->pos];
        if (c == '"') {
            p->pos++;
            o[n++] = '\0';
            p->arena_used += n;
            *out = o;
            return true;
        }
        if (c < 0x20)
            return jfail(p, "control character in string");
        if (c == '\\') {
            p->pos++;
            if (!jescape(p, o, &n))
                return false;
            continue;
        }
        size_t k = utf8_seq((const unsigned char *)p->src + p->pos, p->len - p->pos);
        if (!k)
            return jfail(p, "invalid UTF-8 in string");
        memcpy(o + n, p->src + p->pos, k);
        n += k;
        p->pos += k;
    }
    return jfail(p, "unterminated string");
}

/* -?(0|[1-9][0-9]*), range-checked into int64; fractions and exponents rejected. */
static bool jint(jparser *p, int64_t *out)
{
    bool neg = false;
    if (p->src[p->pos] == '-')
        neg = true, p->pos++;
    if (p->pos >= p->len || p->src[p->pos] < '0' || p->src[p->pos] > '9')
        return jfail(p, "expected a digit");
    if (p->src[p->pos] == '0' && p->pos + 1 < p->len && p->src[p->pos + 1] >= '0' &&
        p->src[p->pos + 1] <= '9')
        return jfail(p, "number with a leading zero");
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    while (p->pos < p->len && p->src[p->pos] >= '0' && p->src[p->pos] <= '9') {
        unsigned d = (unsigned)(p->src[p->pos] - '0');
        if (v > (limit - d) / 10)
            return jfail(p, "integer out of range");
        v = v * 10 + d;
        p->pos++;
    }
    if (p->pos < p->len && (p->src[p->pos] == '.' || p->src[p->pos] == 'e' || p->src[p->pos] == 'E'))
        return jfail(p, "only integers are allowed");
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* The index of n's first child, or -1 (see jnode). */
static int jfirst(const jparser *p, const jnode *n)
{
    return n->count ? (int)(n - p->nodes) + 1 : -1;
}

static int jvalue(jparser *p, int depth);

static void jappend(jparser *p, int parent, int *last, int child)
{
    if (*last >= 0)
        p->nodes[*last].next = child;
    *last = child;
    p->nodes[parent].count++;
}

/* Object or array (by `close`), p->pos on the opening bracket. */
static int jcontainer(jparser *p, int depth, jkind kind)
{
    char close = kind == J_OBJECT ? '}' : ']';
    if (depth >= JSON_MAX_DEPTH)
        return jfail(p, "nesting too deep"), -1;
    int self = jnew(p, kind), last = -1;
    if (self < 0)
        return -1;
    p->pos++;
    jskip_ws(p);
    if (p->pos < p->len && p->src[p->pos] == close) {
        p->pos++;
        return self;
    }
    for (;;) {
        const char *key = NULL;
        jskip_ws(p);
        if (kind == J_OBJECT) {
            if (p->pos >= p->len || p->src[p->pos] != '"')
                return jfail(p, "expected a string key"), -1;
            if (!jstring(p, &key))
                return -1;
            jskip_ws(p);
            if (p->pos >= p->len || p->src[p->pos] != ':')
                return jfail(p, "expected ':'"), -1;
            p->pos++;
        }
        int child = jvalue(p, depth + 1);
        if (child < 0)
            return -1;
        p->nodes[child].key = key;
        jappend(p, self, &last, child);
        jskip_ws(p);
        if (p->pos < p->len && p->src[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->src[p->pos] == close) {
            p->pos++;
            return self;
        }
        if (p->pos >= p->len)
            return jfail(p, "unexpected end of header"), -1;
        return jfail(p, kind == J_OBJECT ? "expected ',' or '}'" : "expected ',' or ']'"), -1;
    }
}

static int jvalue(jparser *p, int depth)
{
    jskip_ws(p);
    if (p->pos >= p->len)
        return jfail(p, "unexpected end of header"), -1;
    char c = p->src[p->pos];
    if (c == '{')
        return jcontainer(p, depth, J_OBJECT);
    if (c == '[')
        return jcontainer(p, depth, J_ARRAY);
    int self;
    if (c == '"') {
        const char *s;
        if (!jstring(p, &s) || (self = jnew(p, J_STRING)) < 0)
            return -1;
        p->nodes[self].str = s;
        return self;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        int64_t v;
        if (!jint(p, &v) || (self = jnew(p, J_INT)) < 0)
            return -1;
        p->nodes[self].num = v;
        return self;
    }
    return jfail(p, "unexpected character (only objects, arrays, strings and integers are allowed)"), -1;
}

/* The whole text: one value, then only JSON whitespace (writers pad with spaces). */
static int jparse(jparser *p)
{
    int root = jvalue(p, 0);
    if (root < 0)
        return -1;
    jskip_ws(p);
    if (p->pos != p->len)
        return jfail(p, "trailing characters after the JSON object"), -1;
    return root;
}

/* ================================================================== reader */

struct liif_st_file {
    char *path;
    const unsigned char *map;
    size_t map_size;
    liif_st_tensor *tensors; /* file order */
    int n;
    int *by_name;            /* tensor indices sorted by name, for find */
    const char **meta;       /* key, value pairs sorted by key */
    int n_meta;
    char *arena;             /* every decoded string */
};

/* Everything a schema check needs to report an error. */
typedef struct {
    liif_st_file *f;
    jparser *p;
    const unsigned char *data;
    uint64_t data_size;
    liif_error *err;
} loader;

/* A LIIF_ERR_FORMAT message: "path: tensor 'name' <fmt>", or "path: <fmt>" without a
 * tensor. fmt takes the strings a and b, which are made printable first. */
static liif_status bad(loader *L, const char *tensor, const char *fmt, const char *a, const char *b)
{
    msg_names n = names_of(L->f->path, tensor);
    char pa[240], pb[240], what[512];
    snprintf(what, sizeof what, fmt, liif_printable(a ? a : "", pa, sizeof pa), liif_printable(b ? b : "", pb, sizeof pb));
    if (tensor)
        return liif_error_set(L->err, LIIF_ERR_FORMAT, "%s: tensor '%s' %s", n.path, n.name, what);
    return liif_error_set(L->err, LIIF_ERR_FORMAT, "%s: %s", n.path, what);
}

static int cmp_meta(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static liif_status load_meta(loader *L, const jnode *obj)
{
    if (obj->kind != J_OBJECT)
        return bad(L, NULL, "__metadata__ is not an object", NULL, NULL);
    L->f->meta = malloc(((size_t)obj->count + 1) * 2 * sizeof *L->f->meta);
    if (!L->f->meta)
        return liif_error_set(L->err, LIIF_ERR_NOMEM, "%s: out of memory", names_of(L->f->path, NULL).path);
    for (int c = jfirst(L->p, obj); c >= 0; c = L->p->nodes[c].next) {
        const jnode *v = &L->p->nodes[c];
        if (v->kind != J_STRING)
            return bad(L, NULL, "__metadata__ value of '%s' is not a string", v->key, NULL);
        L->f->meta[2 * L->f->n_meta] = v->key;
        L->f->meta[2 * L->f->n_meta + 1] = v->str;
        L->f->n_meta++;
    }
    /* Pairs sort as units because each is two adjacent pointers compared by key. */
    qsort(L->f->meta, (size_t)L->f->n_meta, 2 * sizeof *L->f->meta, cmp_meta);
    for (int i = 1; i < L->f->n_meta; i++)
        if (strcmp(L->f->meta[2 * i - 2], L->f->meta[2 * i]) == 0)
            return bad(L, NULL, "__metadata__ has key '%s' twice", L->f->meta[2 * i], NULL);
    return LIIF_OK;
}

static liif_status load_dtype(loader *L, liif_st_tensor *t, const jnode *v)
{
    if (v->kind != J_STRING)
        return bad(L, t->name, "has a dtype that is not a string", NULL, NULL);
    if (!dtype_parse(v->str, &t->dtype))
        return bad(L, NULL, "unknown dtype '%s' for tensor '%s'", v->str, t->name);
    return LIIF_OK;
}

static liif_status load_shape(loader *L, liif_st_tensor *t, const jnode *v)
{
    if (v->kind != J_ARRAY)
        return bad(L, t->name, "has a shape that is not an array", NULL, NULL);
    if (v->count > LIIF_ST_MAX_DIMS) {
        char nd[16];
        snprintf(nd, sizeof nd, "%d", v->count);
        return bad(L, t->name, "has %s dimensions, more than the 8 supported", nd, NULL);
    }
    t->ndim = 0;
    for (int c = jfirst(L->p, v); c >= 0; c = L->p->nodes[c].next) {
        const jnode *d = &L->p->nodes[c];
        if (d->kind != J_INT || d->num < 0)
            return bad(L, t->name, "has a shape entry that is not a non-negative integer", NULL, NULL);
        t->shape[t->ndim++] = d->num;
    }
    return LIIF_OK;
}

static liif_status load_offsets(loader *L, const liif_st_tensor *t, const jnode *v, int64_t *be)
{
    if (v->kind != J_ARRAY || v->count != 2)
        return bad(L, t->name, "has data_offsets that are not [begin, end]", NULL, NULL);
    const jnode *b = &L->p->nodes[jfirst(L->p, v)], *e = &L->p->nodes[b->next];
    if (b->kind != J_INT || e->kind != J_INT || b->num < 0 || e->num < 0)
        return bad(L, t->name, "has data_offsets that are not non-negative integers", NULL, NULL);
    be[0] = b->num;
    be[1] = e->num;
    return LIIF_OK;
}

/* The one field of an entry that `key` names, checked for repeats. */
static liif_status load_field(loader *L, liif_st_tensor *t, const jnode *v, unsigned *seen, int64_t *be)
{
    static const char *const fields[] = {"dtype", "shape", "data_offsets"};
    for (unsigned i = 0; i < 3; i++) {
        if (strcmp(v->key, fields[i]) != 0)
            continue;
        if (*seen & (1u << i))
            return bad(L, t->name, "has field '%s' twice", fields[i], NULL);
        *seen |= 1u << i;
        return i == 0 ? load_dtype(L, t, v) : i == 1 ? load_shape(L, t, v) : load_offsets(L, t, v, be);
    }
    return bad(L, t->name, "has unknown field '%s'", v->key, NULL);
}

/* Sizes against data_offsets: numel and byte counts are overflow-checked before
 * any product is formed, so a shape like [2^40, 2^40] is an error, not a wrap. */
static liif_status check_extent(loader *L, liif_st_tensor *t, const int64_t *be)
{
    char s[200], o[64];
    t->numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] && t->numel > INT64_MAX / t->shape[d])
            return bad(L, t->name, "has shape %s, too many elements", shape_str(t->shape, t->ndim, s, sizeof s), NULL);
        t->numel *= t->shape[d];
    }
    int64_t size = (int64_t)liif_dtype_size(t->dtype);
    if (t->numel > INT64_MAX / size)
        return bad(L, t->name, "has shape %s, too many bytes", shape_str(t->shape, t->ndim, s, sizeof s), NULL);
    snprintf(o, sizeof o, "[%" PRId64 ", %" PRId64 "]", be[0], be[1]);
    if (be[0] > be[1])
        return bad(L, t->name, "has data_offsets %s with begin after end", o, NULL);
    if ((uint64_t)be[1] > L->data_size) {
        char ds[40];
        snprintf(ds, sizeof ds, "%" PRIu64, L->data_size);
        return bad(L, t->name, "has data_offsets %s past the end of the data (%s bytes)", o, ds);
    }
    if (be[1] - be[0] != t->numel * size) {
        char need[240];
        snprintf(need, sizeof need, "%s %s needs %" PRId64, liif_dtype_name(t->dtype),
                 shape_str(t->shape, t->ndim, s, sizeof s), t->numel * size);
        return bad(L, t->name, "has data_offsets %s but %s bytes (size mismatch)", o, need);
    }
    t->nbytes = (size_t)(t->numel * size);
    t->data = L->data + be[0];
    return LIIF_OK;
}

static liif_status load_tensor(loader *L, liif_st_tensor *t, const jnode *obj)
{
    unsigned seen = 0;
    int64_t be[2] = {0, 0};
    t->name = obj->key;
    if (obj->kind != J_OBJECT)
        return bad(L, t->name, "is not described by an object", NULL, NULL);
    for (int c = jfirst(L->p, obj); c >= 0; c = L->p->nodes[c].next) {
        liif_status s = load_field(L, t, &L->p->nodes[c], &seen, be);
        if (s)
            return s;
    }
    if (seen != 7)
        return bad(L, t->name, "lacks '%s'", !(seen & 1) ? "dtype" : !(seen & 2) ? "shape" : "data_offsets", NULL);
    return check_extent(L, t, be);
}

/* qsort has no context argument; the tensors being sorted are reached through
 * the pointers stored in the index array instead. */
static int cmp_by_name(const void *a, const void *b)
{
    return strcmp((*(const liif_st_tensor *const *)a)->name, (*(const liif_st_tensor *const *)b)->name);
}

static int cmp_by_begin(const void *a, const void *b)
{
    const liif_st_tensor *x = *(const liif_st_tensor *const *)a, *y = *(const liif_st_tensor *const *)b;
    const unsigned char *px = x->data, *py = y->data;
    return px < py ? -1 : px > py ? 1 : (x->nbytes > y->nbytes) - (x->nbytes < y->nbytes);
}

static int64_t offset_of(const loader *L, const liif_st_tensor *t)
{
    return (int64_t)((const unsigned char *)t->data - L->data);
}

/* Unique names, then no two non-empty tensors sharing a byte (sorted by begin,
 * each must start at or after the furthest end so far). */
static liif_status check_layout(loader *L, const liif_st_tensor **v)
{
    liif_st_file *f = L->f;
    for (int i = 0; i < f->n; i++)
        v[i] = &f->tensors[i];
    qsort(v, (size_t)f->n, sizeof *v, cmp_by_name);
    for (int i = 1; i < f->n; i++)
        if (strcmp(v[i - 1]->name, v[i]->name) == 0)
            return bad(L, NULL, "duplicate tensor name '%s'", v[i]->name, NULL);
    for (int i = 0; i < f->n; i++)
        f->by_name[i] = (int)(v[i] - f->tensors);
    qsort(v, (size_t)f->n, sizeof *v, cmp_by_begin);
    const liif_st_tensor *prev = NULL;
    for (int i = 0; i < f->n; i++) {
        if (!v[i]->nbytes)
            continue;
        if (prev && offset_of(L, v[i]) < offset_of(L, prev) + (int64_t)prev->nbytes) {
            char r[120];
            snprintf(r, sizeof r, "[%" PRId64 ", %" PRId64 ") vs [%" PRId64 ", %" PRId64 ")",
                     offset_of(L, v[i]), offset_of(L, v[i]) + (int64_t)v[i]->nbytes,
                     offset_of(L, prev), offset_of(L, prev) + (int64_t)prev->nbytes);
            return bad(L, v[i]->name, "overlaps tensor '%s' (data %s)", prev->name, r);
        }
        prev = v[i];
    }
    return LIIF_OK;
}

static liif_status load_entries(loader *L, int root)
{
    const jnode *r = &L->p->nodes[root];
    liif_st_file *f = L->f;
    bool have_meta = false;
    if (r->kind != J_OBJECT)
        return bad(L, NULL, "header is not a JSON object", NULL, NULL);
    f->tensors = calloc((size_t)r->count + 1, sizeof *f->tensors);
    f->by_name = calloc((size_t)r->count + 1, sizeof *f->by_name);
    const liif_st_tensor **v = calloc((size_t)r->count + 1, sizeof *v);
    liif_status s = f->tensors && f->by_name && v ? LIIF_OK
        : liif_error_set(L->err, LIIF_ERR_NOMEM, "%s: out of memory", names_of(f->path, NULL).path);
    for (int c = jfirst(L->p, r); !s && c >= 0; c = L->p->nodes[c].next) {
        const jnode *e = &L->p->nodes[c];
        if (strcmp(e->key, "__metadata__") == 0) {
            s = have_meta ? bad(L, NULL, "__metadata__ appears twice", NULL, NULL) : load_meta(L, e);
            have_meta = true;
        } else {
            s = load_tensor(L, &f->tensors[f->n++], e);
        }
    }
    if (!s)
        s = check_layout(L, v);
    free(v);
    return s;
}

static liif_status parse_header(liif_st_file *f, const char *hdr, size_t n, liif_error *err)
{
    jparser p = {.src = hdr, .len = n};
    /* Decoded strings (with their NULs) are never longer than their quoted source. */
    f->arena = malloc(n + 1);
    if (!f->arena)
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory", names_of(f->path, NULL).path);
    p.arena = f->arena;
    liif_status s = LIIF_OK;
    int root = jparse(&p);
    if (root < 0) {
        msg_names nm = names_of(f->path, NULL);
        s = liif_error_set(err, strcmp(p.msg, "out of memory") ? LIIF_ERR_FORMAT : LIIF_ERR_NOMEM,
                           "%s: bad JSON header at byte %zu: %s", nm.path, p.err_at, p.msg);
    } else {
        loader L = {f, &p, f->map + 8 + n, f->map_size - 8 - n, err};
        s = load_entries(&L, root);
    }
    free(p.nodes);
    return s;
}

/* Map the whole file read-only; the fd is not needed once mapped. */
static liif_status map_file(liif_st_file *f, liif_error *err)
{
    msg_names nm = names_of(f->path, NULL);
    size_t size = 0;
    int fd = liif_open_regular(f->path, &size, err);
    if (fd < 0)
        return LIIF_ERR_IO;
    liif_status s = LIIF_OK;
    if (size < 10) /* 8-byte length + at least "{}" */
        s = liif_error_set(err, LIIF_ERR_FORMAT, "%s: file is truncated (%zu bytes, too short for a safetensors header)",
                           nm.path, size);
    if (!s) {
        void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            s = liif_error_set(err, LIIF_ERR_IO, "%s: cannot mmap: %s", nm.path, strerror(errno));
        else
            f->map = m, f->map_size = size;
    }
    close(fd);
    return s;
}

static liif_status check_header_length(const liif_st_file *f, uint64_t *n, liif_error *err)
{
    msg_names nm = names_of(f->path, NULL);
    *n = 0;
    for (int i = 7; i >= 0; i--) /* explicit little-endian, whatever the host */
        *n = *n << 8 | f->map[i];
    if (*n < 2)
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: header length %" PRIu64 " is too small", nm.path, *n);
    if (*n > HEADER_MAX)
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds the %d-byte limit",
                              nm.path, *n, HEADER_MAX);
    if (*n > f->map_size - 8)
        return liif_error_set(err, LIIF_ERR_FORMAT,
                              "%s: header length %" PRIu64 " runs past the end of the file (%zu bytes)",
                              nm.path, *n, f->map_size);
    return LIIF_OK;
}

liif_status liif_st_open(const char *path, liif_st_file **out, liif_error *err)
{
    *out = NULL;
    liif_st_file *f = calloc(1, sizeof *f);
    if (f)
        f->path = strdup(path);
    if (!f || !f->path) {
        free(f);
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory", names_of(path, NULL).path);
    }
    uint64_t n;
    liif_status s = map_file(f, err);
    if (!s)
        s = check_header_length(f, &n, err);
    if (!s)
        s = parse_header(f, (const char *)f->map + 8, (size_t)n, err);
    if (s) {
        liif_st_close(f);
        return s;
    }
    *out = f;
    return LIIF_OK;
}

void liif_st_close(liif_st_file *f)
{
    if (!f)
        return;
    if (f->map)
        munmap((void *)f->map, f->map_size);
    free(f->tensors);
    free(f->by_name);
    free(f->meta);
    free(f->arena);
    free(f->path);
    free(f);
}

const char *liif_st_path(const liif_st_file *f)
{
    return f->path;
}

int liif_st_count(const liif_st_file *f)
{
    return f->n;
}

const liif_st_tensor *liif_st_at(const liif_st_file *f, int i)
{
    return i >= 0 && i < f->n ? &f->tensors[i] : NULL;
}

const liif_st_tensor *liif_st_find(const liif_st_file *f, const char *name)
{
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const liif_st_tensor *t = &f->tensors[f->by_name[mid]];
        int c = strcmp(name, t->name);
        if (c == 0)
            return t;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *liif_st_meta(const liif_st_file *f, const char *key)
{
    int lo = 0, hi = f->n_meta - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(key, f->meta[2 * mid]);
        if (c == 0)
            return f->meta[2 * mid + 1];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Elementwise conversion; memcpy because the mapping gives no alignment. */
static void to_f32(const liif_st_tensor *t, float *dst)
{
    const unsigned char *src = t->data;
    size_t n = (size_t)t->numel;
    if (t->dtype == LIIF_DT_F32) {
        if (n)
            memcpy(dst, src, n * 4);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        double d;
        switch (t->dtype) {
        case LIIF_DT_F16: memcpy(&h, src + 2 * i, 2); dst[i] = liif_f16_to_f32(h); break;
        case LIIF_DT_BF16: memcpy(&h, src + 2 * i, 2); dst[i] = liif_bf16_to_f32(h); break;
        default: memcpy(&d, src + 8 * i, 8); dst[i] = (float)d; break; /* F64, rounds to nearest even */
        }
    }
}

liif_status liif_st_read_f32(const liif_st_file *f, const char *name, int ndim,
                             const int64_t *shape, float *dst, liif_error *err)
{
    msg_names nm = names_of(f->path, name);
    char got[200], want[200];
    if (ndim < 0 || ndim > LIIF_ST_MAX_DIMS)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: tensor '%s': bad ndim %d requested", nm.path, nm.name, ndim);
    const liif_st_tensor *t = liif_st_find(f, name);
    if (!t)
        return liif_error_set(err, LIIF_ERR_MODEL, "%s: tensor '%s' is missing", nm.path, nm.name);
    if (t->dtype != LIIF_DT_F32 && t->dtype != LIIF_DT_F16 && t->dtype != LIIF_DT_BF16 && t->dtype != LIIF_DT_F64)
        return liif_error_set(err, LIIF_ERR_MODEL, "%s: tensor '%s' has dtype %s, expected F32, F16, BF16 or F64",
                              nm.path, nm.name, liif_dtype_name(t->dtype));
    if (t->ndim != ndim || (ndim && memcmp(t->shape, shape, (size_t)ndim * sizeof *shape) != 0))
        return liif_error_set(err, LIIF_ERR_MODEL, "%s: tensor '%s' has shape %s, expected %s", nm.path, nm.name,
                              shape_str(t->shape, t->ndim, got, sizeof got), shape_str(shape, ndim, want, sizeof want));
    to_f32(t, dst);
    return LIIF_OK;
}

/* ================================================================== writer */

/* A growable string for the header; a failed allocation sticks in `oom`. */
typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_int(sbuf *b, int64_t v)
{
    char t[24];
    sb_put(b, t, (size_t)snprintf(t, sizeof t, "%" PRId64, v));
}

/* A JSON string; UTF-8 passes through (checked by the caller), control bytes are escaped. */
static void sb_json_str(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_put(b, e, 2);
        } else if (c < 0x20) {
            char e[8];
            sb_put(b, e, (size_t)snprintf(e, sizeof e, "\\u%04x", c));
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

/* Byte size of an entry already accepted by check_entry. */
static size_t entry_nbytes(const liif_st_entry *e)
{
    size_t n = liif_dtype_size(e->dtype);
    for (int d = 0; d < e->ndim; d++)
        n *= (size_t)e->shape[d];
    return n;
}

static liif_status check_entry(const char *path, const liif_st_entry *e, int64_t *nbytes, liif_error *err)
{
    msg_names nm = names_of(path, e->name);
    if (!e->name || !e->name[0] || !utf8_valid(e->name) || strcmp(e->name, "__metadata__") == 0)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: bad tensor name '%s'", nm.path, nm.name);
    if (!dtype_valid(e->dtype) || e->ndim < 0 || e->ndim > LIIF_ST_MAX_DIMS)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: tensor '%s' has a bad dtype or ndim", nm.path, nm.name);
    int64_t numel = 1, size = (int64_t)liif_dtype_size(e->dtype);
    for (int d = 0; d < e->ndim; d++) {
        if (e->shape[d] < 0 || (e->shape[d] && numel > INT64_MAX / size / e->shape[d]))
            return liif_error_set(err, LIIF_ERR_ARG, "%s: tensor '%s' has a bad shape", nm.path, nm.name);
        numel *= e->shape[d];
    }
    *nbytes = numel * size;
    if (*nbytes && !e->data)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: tensor '%s' has no data", nm.path, nm.name);
    return LIIF_OK;
}

static liif_status check_args(const char *path, const liif_st_entry *entries, int n,
                              const char *const *meta, int n_meta, liif_error *err)
{
    msg_names nm = names_of(path, NULL);
    if (n < 0 || n_meta < 0 || (n && !entries) || (n_meta && !meta))
        return liif_error_set(err, LIIF_ERR_ARG, "%s: bad entry or metadata count", nm.path);
    for (int i = 0; i < 2 * n_meta; i++)
        if (!meta[i] || !utf8_valid(meta[i]))
            return liif_error_set(err, LIIF_ERR_ARG, "%s: metadata string %d is missing or not UTF-8", nm.path, i);
    for (int i = 0; i < n_meta; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(meta[2 * i], meta[2 * j]) == 0)
                return liif_error_set(err, LIIF_ERR_ARG, "%s: metadata key '%s' given twice", nm.path,
                                      names_of("", meta[2 * i]).name);
    /* Quadratic, but writers hold at most a few hundred tensors. */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (entries[i].name && entries[j].name && strcmp(entries[i].name, entries[j].name) == 0)
                return liif_error_set(err, LIIF_ERR_ARG, "%s: tensor '%s' given twice", nm.path,
                                      names_of("", entries[i].name).name);
    return LIIF_OK;
}

/* "name":{"dtype":"F32","shape":[2,3],"data_offsets":[begin,end]} */
static void sb_entry(sbuf *b, const liif_st_entry *e, int64_t begin, int64_t end)
{
    sb_json_str(b, e->name);
    sb_puts(b, ":{\"dtype\":\"");
    sb_puts(b, liif_dtype_name(e->dtype));
    sb_puts(b, "\",\"shape\":[");
    for (int d = 0; d < e->ndim; d++) {
        sb_puts(b, d ? "," : "");
        sb_int(b, e->shape[d]);
    }
    sb_puts(b, "],\"data_offsets\":[");
    sb_int(b, begin);
    sb_puts(b, ",");
    sb_int(b, end);
    sb_puts(b, "]}");
}

/* The JSON header, padded with spaces so the data starts 8-byte aligned. */
static liif_status build_header(const char *path, const liif_st_entry *entries, int n,
                                const char *const *meta, int n_meta, sbuf *b, liif_error *err)
{
    sb_puts(b, "{");
    if (n_meta) {
        sb_puts(b, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            sb_puts(b, i ? "," : "");
            sb_json_str(b, meta[2 * i]);
            sb_puts(b, ":");
            sb_json_str(b, meta[2 * i + 1]);
        }
        sb_puts(b, "}");
    }
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        const liif_st_entry *e = &entries[i];
        int64_t nbytes = 0;
        liif_status s = check_entry(path, e, &nbytes, err);
        if (s)
            return s;
        if (off > INT64_MAX - nbytes)
            return liif_error_set(err, LIIF_ERR_ARG, "%s: tensors too large in total", names_of(path, NULL).path);
        sb_puts(b, i || n_meta ? "," : "");
        sb_entry(b, e, off, off + nbytes);
        off += nbytes;
    }
    sb_puts(b, "}");
    while (!b->oom && b->len % 8)
        sb_puts(b, " ");
    if (b->oom)
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory", names_of(path, NULL).path);
    return LIIF_OK;
}

static bool write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n) {
        /* Linux moves at most ~2 GiB per call; larger tensors take several. */
        ssize_t w = write(fd, p, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Create "<path>.<random>.tmp" exclusively. Not mkstemp: that fixes mode 0600,
 * while open() with 0666 gives the finished file the permissions the umask asks
 * for, as any plainly created file would have. */
static int open_temp(const char *path, char *tmp, size_t size)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 12) ^ (uintptr_t)tmp;
    for (int attempt = 0; attempt < 100; attempt++) {
        x = x * 6364136223846793005u + 1442695040888963407u; /* LCG step: a fresh name per try */
        snprintf(tmp, size, "%s.%06x.tmp", path, (unsigned)(x >> 40));
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

/* Make the rename itself durable. Best effort: some file systems refuse fsync on
 * a directory, and the data is already safe in the renamed file. */
static void sync_dir(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return;
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else
        slash[slash == dir] = '\0'; /* keep the root's own slash */
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

static liif_status write_body(int fd, const char *path, const sbuf *hdr, const liif_st_entry *entries,
                              int n, liif_error *err)
{
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)hdr->len >> (8 * i));
    bool ok = write_all(fd, len8, 8) && write_all(fd, hdr->p, hdr->len);
    for (int i = 0; ok && i < n; i++)
        ok = write_all(fd, entries[i].data, entry_nbytes(&entries[i]));
    if (!ok)
        return liif_error_set(err, LIIF_ERR_IO, "%s: write failed: %s", names_of(path, NULL).path, strerror(errno));
    if (fsync(fd) != 0)
        return liif_error_set(err, LIIF_ERR_IO, "%s: fsync failed: %s", names_of(path, NULL).path, strerror(errno));
    return LIIF_OK;
}

static liif_status write_file(const char *path, const sbuf *hdr, const liif_st_entry *entries, int n,
                              liif_error *err)
{
    msg_names nm = names_of(path, NULL);
    struct stat st;
    /* rename() would happily replace a device node or similar; refuse anything
     * that is there and is not a plain file. */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return liif_error_set(err, LIIF_ERR_IO, "%s: exists and is not a regular file", nm.path);
    size_t tsize = strlen(path) + 16;
    char *tmp = malloc(tsize);
    if (!tmp)
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory", nm.path);
    int fd = open_temp(path, tmp, tsize);
    if (fd < 0) {
        liif_status s = liif_error_set(err, LIIF_ERR_IO, "%s: cannot create a temporary file beside it: %s",
                                       nm.path, strerror(errno));
        free(tmp);
        return s;
    }
    liif_status s = write_body(fd, path, hdr, entries, n, err);
    /* close() can report a deferred write error (NFS, quotas): it counts too. */
    if (close(fd) != 0 && !s)
        s = liif_error_set(err, LIIF_ERR_IO, "%s: close failed: %s", nm.path, strerror(errno));
    if (!s && rename(tmp, path) != 0)
        s = liif_error_set(err, LIIF_ERR_IO, "%s: cannot rename the temporary file into place: %s", nm.path,
                           strerror(errno));
    if (s)
        unlink(tmp);
    else
        sync_dir(path);
    free(tmp);
    return s;
}

liif_status liif_st_write(const char *path, const liif_st_entry *entries, int n,
                          const char *const *meta, int n_meta, liif_error *err)
{
    if (!path || !path[0])
        return liif_error_set(err, LIIF_ERR_ARG, "(no path): no output path given");
    liif_status s = check_args(path, entries, n, meta, n_meta, err);
    if (s)
        return s;
    sbuf hdr = {0};
    s = build_header(path, entries, n, meta, n_meta, &hdr, err);
    if (!s)
        s = write_file(path, &hdr, entries, n, err);
    free(hdr.p);
    return s;
}
