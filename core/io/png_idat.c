/* png_idat.c: PNG row filtering and a zlib stream deflated in parallel pieces (see png_idat.h). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "png_idat.h"

/* ------------------------------------------------------------ filters (PNG spec, section 9) */

static int paeth(int a, int b, int c)
{
    int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
    return pa <= pb && pa <= pc ? a : (pb <= pc ? b : c);
}

void liif_png_filter_row(int type, const uint8_t *row, const uint8_t *prev, size_t rowbytes, int bpp,
                         uint8_t *out)
{
    size_t n = rowbytes, d = (size_t)bpp;
    for (size_t i = 0; i < n; i++) {
        int x = row[i], a = i >= d ? row[i - d] : 0, b = prev ? prev[i] : 0, c = prev && i >= d ? prev[i - d] : 0;
        int p = type == 1 ? a : type == 2 ? b : type == 3 ? (a + b) >> 1 : type == 4 ? paeth(a, b, c) : 0;
        out[i] = (uint8_t)(x - p);
    }
}

/* The heuristic libpng uses with PNG_ALL_FILTERS: the least sum of the filtered bytes read as
 * signed magnitudes. */
static unsigned long row_cost(const uint8_t *f, size_t n)
{
    unsigned long s = 0;
    for (size_t i = 0; i < n; i++) s += f[i] < 128 ? f[i] : 256 - f[i];
    return s;
}

/* One row: its filter type byte, then the filtered bytes, into out (rowbytes + 1); cand is scratch. */
static void filter_best(const uint8_t *row, const uint8_t *prev, size_t rowbytes, int bpp, uint8_t *out,
                        uint8_t *cand)
{
    out[0] = 0;
    memcpy(out + 1, row, rowbytes);
    unsigned long best = row_cost(row, rowbytes);
    for (int t = 1; t <= 4; t++) {
        liif_png_filter_row(t, row, prev, rowbytes, bpp, cand);
        unsigned long s = row_cost(cand, rowbytes);
        if (s < best) {
            best = s;
            out[0] = (uint8_t)t;
            memcpy(out + 1, cand, rowbytes);
        }
    }
}

/* ------------------------------------------------------------ the stream */

int liif_idat_init(liif_idat *z, size_t rowbytes, int bpp, int level, int threads)
{
    memset(z, 0, sizeof *z);
    z->rowbytes = rowbytes;
    z->bpp = bpp;
    z->level = level;
    z->threads = threads > 0 ? threads : omp_get_num_procs();
    z->adler = (uint32_t)adler32(0L, Z_NULL, 0);
    z->prev = calloc(rowbytes, 1);
    return z->prev ? 0 : -1;
}

void liif_idat_free(liif_idat *z)
{
    for (int i = 0; i < z->out_slots; i++) free(z->out[i]);
    free(z->out);
    free(z->out_len);
    free(z->out_cap);
    free(z->buf);
    free(z->prev);
    memset(z, 0, sizeof *z);
}

static int reserve(uint8_t **p, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 4096;
    while (c < need) c *= 2;
    uint8_t *q = realloc(*p, c);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int reserve_slots(liif_idat *z, int n)
{
    if (n <= z->out_slots) return 0;
    uint8_t **o = realloc(z->out, (size_t)n * sizeof *o);
    if (o) z->out = o;
    size_t *l = o ? realloc(z->out_len, (size_t)n * sizeof *l) : NULL;
    if (l) z->out_len = l;
    size_t *c = l ? realloc(z->out_cap, (size_t)n * sizeof *c) : NULL;
    if (!c) return -1;
    z->out_cap = c;
    for (int i = z->out_slots; i < n; i++) {
        z->out[i] = NULL;
        z->out_cap[i] = 0;
    }
    z->out_slots = n;
    return 0;
}

/* Deflates src[0, n) as a raw deflate piece primed with the dict bytes before it (sync flush; final:
 * the stream's end) into z->out[k] after `at` bytes already there. 0 or -1. */
static int deflate_piece(liif_idat *z, int k, size_t at, const uint8_t *src, size_t n, size_t dict, int final)
{
    z_stream s;
    memset(&s, 0, sizeof s);
    /* raw deflate (the zlib header and trailer are the stream's), libpng's strategy for filtered rows */
    if (deflateInit2(&s, z->level, Z_DEFLATED, -15, 8, Z_FILTERED) != Z_OK) return -1;
    int ok = dict == 0 || deflateSetDictionary(&s, src - dict, (uInt)dict) == Z_OK;
    size_t need = at + deflateBound(&s, (uLong)n) + 64;
    ok = ok && reserve(&z->out[k], &z->out_cap[k], need) == 0;
    s.next_in = (Bytef *)src;
    s.avail_in = (uInt)n;
    s.next_out = z->out[k] + at;
    s.avail_out = (uInt)(z->out_cap[k] - at);
    int flush = final ? Z_FINISH : Z_SYNC_FLUSH;
    while (ok) {
        int r = deflate(&s, flush);
        if (r == Z_STREAM_ERROR) ok = 0;
        else if (final ? r == Z_STREAM_END : s.avail_in == 0 && s.avail_out > 0) break;
        else { /* out of room: grow and go on (deflate keeps its state) */
            size_t used = z->out_cap[k] - s.avail_out;
            ok = reserve(&z->out[k], &z->out_cap[k], z->out_cap[k] * 2) == 0;
            s.next_out = z->out[k] + used;
            s.avail_out = (uInt)(z->out_cap[k] - used);
        }
    }
    z->out_len[k] = z->out_cap[k] - s.avail_out;
    deflateEnd(&s);
    return ok ? 0 : -1;
}

/* Bytes of piece k when `whole` pieces of LIIF_IDAT_PIECE are complete: the last of a final call is the rest. */
static size_t piece_len(const liif_idat *z, size_t whole, int k)
{
    return (size_t)k < whole ? LIIF_IDAT_PIECE : z->pending - whole * LIIF_IDAT_PIECE;
}

int liif_idat_rows(liif_idat *z, const uint8_t *rows, int n_rows, size_t stride, int last)
{
    size_t rb = z->rowbytes, add = (size_t)n_rows * (rb + 1);
    z->n_out = 0;
    if (reserve(&z->buf, &z->cap, z->hist + z->pending + add) != 0) return -1;
    uint8_t *dst = z->buf + z->hist + z->pending;
    int bad = 0, t = z->threads;
#pragma omp parallel num_threads(t) if (n_rows > 8 && t > 1)
    {
        uint8_t *cand = malloc(rb);
        if (!cand) {
#pragma omp atomic write
            bad = 1;
        }
#pragma omp for schedule(static)
        for (int i = 0; i < n_rows; i++)
            if (cand)
                filter_best(rows + (size_t)i * stride, i ? rows + (size_t)(i - 1) * stride : z->prev, rb, z->bpp,
                            dst + (size_t)i * (rb + 1), cand);
        free(cand);
    }
    if (bad) return -1;
    if (n_rows > 0) memcpy(z->prev, rows + (size_t)(n_rows - 1) * stride, rb);
    z->pending += add;

    /* Whole pieces at fixed offsets, then (last) the rest as the final piece, possibly empty. */
    size_t P = LIIF_IDAT_PIECE, whole = z->pending / P;
    int np = (int)whole + (last ? 1 : 0), head = !z->started && np > 0 ? 2 : 0;
    if (np == 0) return 0;
    if (reserve_slots(z, np) != 0) return -1;
    uint32_t *adl = malloc((size_t)np * sizeof *adl);
    if (!adl) return -1;
    const uint8_t *base = z->buf + z->hist;
#pragma omp parallel for schedule(dynamic, 1) num_threads(t) if (np > 1 && t > 1)
    for (int k = 0; k < np; k++) {
        const uint8_t *src = base + (size_t)k * P;
        size_t n = piece_len(z, whole, k), before = (size_t)(src - z->buf);
        size_t at = k == 0 ? (size_t)head : 0;
        if (deflate_piece(z, k, at, src, n, before < LIIF_IDAT_WINDOW ? before : LIIF_IDAT_WINDOW,
                          last && k == np - 1) != 0) {
#pragma omp atomic write
            bad = 1;
        }
        adl[k] = (uint32_t)adler32(1L, src, (uInt)n);
    }
    if (bad) {
        free(adl);
        return -1;
    }
    for (int k = 0; k < np; k++)
        z->adler = (uint32_t)adler32_combine(z->adler, adl[k], (z_off_t)piece_len(z, whole, k));
    free(adl);
    if (head) { /* zlib header: deflate with a 32 KiB window, default level, no dictionary */
        z->out[0][0] = 0x78;
        z->out[0][1] = 0x9c;
        z->started = 1;
    }
    if (last) { /* Adler-32 of the whole stream, big-endian */
        int k = np - 1;
        if (reserve(&z->out[k], &z->out_cap[k], z->out_len[k] + 4) != 0) return -1;
        for (int i = 0; i < 4; i++) z->out[k][z->out_len[k]++] = (uint8_t)(z->adler >> (24 - 8 * i));
    }
    z->n_out = np;

    /* Keep the last LIIF_IDAT_WINDOW deflated bytes in front of what is still pending. */
    size_t done = last ? z->pending : whole * P, end = z->hist + done;
    size_t keep = end < LIIF_IDAT_WINDOW ? end : LIIF_IDAT_WINDOW;
    z->pending -= done;
    memmove(z->buf, z->buf + end - keep, keep + z->pending);
    z->hist = keep;
    return 0;
}
