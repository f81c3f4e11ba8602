/* winograd.c: 3x3 convolutions by Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for
 * Convolutional Neural Networks", 2016), on the points 0, 1, -1, 2, -2 and infinity:
 *
 *     Y (4x4) = A^T [ (G g G^T) . (B^T d B) ] A     for a 6x6 input tile d and a 3x3 filter g,
 *
 * which is the cross-correlation the networks compute. Summed over input channels, the elementwise
 * product becomes, for each of the 36 transform points, a GEMM of (tiles x cin) by (cin x cout): 36
 * multiplies per tile and channel pair where a direct 4x4 tile takes 144. The transforms add little
 * arithmetic but move 2.25x the feature map each way, so they are vectorised and read and write in place.
 * float32 throughout; the filters are transformed in double. The transforms' coefficients (up to 5 in, 8 out)
 * cost accuracy: a result is within about 1e-6 of the sum of its terms' magnitudes (engine-winograd), some ten
 * times im2col's rounding. A pixel is rounded together with its 4x4 tile, so unlike im2col the last bits of
 * pixels near a tile's zero padding reach a few rows further in than the convolution does. */
#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "winograd.h"

/* WP transform points; NT tiles per GEMM block (fewer, and oneDNN's packing of the filters for every call
 * dominates: 16 tiles halve the GEMM rate here), OC output channels per pass over a block's products (so
 * that 64 -> 256 keeps a 64 -> 64 working set: 36 * NT * OC floats); channels are transformed CH at a time. */
enum { WP = 36, NT = 64, OC = 64, CH = 8, RT = 64 };

/* The filter transform G (6x3) of F(4, 3), in both forms (G g G^T for tiles, G g per filter row). */
static const double G[6][3] = {{1.0 / 4, 0, 0},
                               {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                               {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                               {1.0 / 24, 1.0 / 12, 1.0 / 6},
                               {1.0 / 24, -1.0 / 12, 1.0 / 6},
                               {0, 0, 1}};

void liif_wino_weights(const float *w, int cout, int cin, int ldw, float *u)
{
    size_t plane = (size_t)cout * cin;
    for (int o = 0; o < cout; o++)
        for (int i = 0; i < cin; i++) {
            const float *g = w + (size_t)o * ldw + (size_t)i * 9;
            double gg[6][3]; /* G g */
            for (int a = 0; a < 6; a++)
                for (int c = 0; c < 3; c++) gg[a][c] = G[a][0] * g[c] + G[a][1] * g[3 + c] + G[a][2] * g[6 + c];
            for (int a = 0; a < 6; a++)
                for (int b = 0; b < 6; b++)
                    u[(size_t)(a * 6 + b) * plane + (size_t)o * cin + i] =
                        (float)(gg[a][0] * G[b][0] + gg[a][1] * G[b][1] + gg[a][2] * G[b][2]);
        }
}

/* Eight channels at a time in vector registers (GCC's vector extension: SSE pairs in the default build, AVX
 * in the AVX2 one, chosen at run time; the same operations, so the same bits). Unaligned loads and stores. */
typedef float v8 __attribute__((vector_size(32), aligned(4)));
typedef int v8i __attribute__((vector_size(32), aligned(4)));

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define WINO_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define WINO_CLONES
#endif

static const float zeros[CH];

/* y_k = (B^T x)_k */
#define INPUT_1D(x0, x1, x2, x3, x4, x5, y)                                                                      \
    do {                                                                                                         \
        v8 d0_ = (x0), d1_ = (x1), d2_ = (x2), d3_ = (x3), d4_ = (x4), d5_ = (x5);                               \
        (y)[0] = 4.0f * d0_ - 5.0f * d2_ + d4_;                                                                  \
        (y)[1] = (d3_ + d4_) - 4.0f * (d1_ + d2_);                                                               \
        (y)[2] = 4.0f * (d1_ - d2_) + (d4_ - d3_);                                                               \
        (y)[3] = 2.0f * (d3_ - d1_) + (d4_ - d2_);                                                               \
        (y)[4] = 2.0f * (d1_ - d3_) + (d4_ - d2_);                                                               \
        (y)[5] = 4.0f * d1_ - 5.0f * d3_ + d5_;                                                                  \
    } while (0)

/* y_k = (A^T x)_k, k < 4 */
#define OUTPUT_1D(x0, x1, x2, x3, x4, x5, y)                                                                     \
    do {                                                                                                         \
        v8 s12_ = (x1) + (x2), d12_ = (x1) - (x2), s34_ = (x3) + (x4), d34_ = (x3) - (x4);                       \
        (y)[0] = (x0) + s12_ + s34_;                                                                             \
        (y)[1] = d12_ + 2.0f * d34_;                                                                             \
        (y)[2] = s12_ + 4.0f * s34_;                                                                             \
        (y)[3] = d12_ + 8.0f * d34_ + (x5);                                                                      \
    } while (0)

/* Tile `idx` (row-major over the image's tile grid, ntx tiles across) transformed into v: point p's cin
 * values at v + p * vs. Its 6x6 input window starts one pixel above and left of its 4x4 outputs; pixels
 * outside the (h, w) tile whose first row is image row y0 are zero. */
WINO_CLONES static void tile_input(const float *in, int h, int w, int y0, int cin, long idx, long ntx, float *v,
                                   size_t vs)
{
    int oy = (int)(idx / ntx) * 4 - y0 - 1, ox = (int)(idx % ntx) * 4 - 1;
    v8 t[6][6], e[6];
    if (oy >= 0 && oy + 6 <= h && ox >= 0 && ox + 6 <= w && cin % CH == 0) { /* inside, whole chunks: in place */
        const float *win = in + ((size_t)oy * w + (size_t)ox) * cin;
        size_t row = (size_t)w * cin;
        for (int c0 = 0; c0 < cin; c0 += CH) {
            for (int s = 0; s < 6; s++) { /* B^T d, a column at a time */
                const float *x = win + (size_t)s * cin + c0;
                v8 col[6];
                INPUT_1D(*(const v8 *)x, *(const v8 *)(x + row), *(const v8 *)(x + 2 * row), *(const v8 *)(x + 3 * row),
                         *(const v8 *)(x + 4 * row), *(const v8 *)(x + 5 * row), col);
                for (int a = 0; a < 6; a++) t[a][s] = col[a];
            }
            for (int a = 0; a < 6; a++) { /* (B^T d) B */
                INPUT_1D(t[a][0], t[a][1], t[a][2], t[a][3], t[a][4], t[a][5], e);
                float *dst = v + (size_t)a * 6 * vs + c0;
                for (int b = 0; b < 6; b++) *(v8 *)(dst + b * vs) = e[b];
            }
        }
        return;
    }
    float pad[6][6][CH]; /* a short last chunk, zero-padded */
    for (int c0 = 0; c0 < cin; c0 += CH) {
        int nc = cin - c0 < CH ? cin - c0 : CH;
        const float *px[6][6];
        for (int r = 0; r < 6; r++)
            for (int s = 0; s < 6; s++) {
                int y = oy + r, x = ox + s;
                px[r][s] = y < 0 || y >= h || x < 0 || x >= w ? zeros : in + ((size_t)y * w + x) * cin + c0;
                if (nc < CH && px[r][s] != zeros) {
                    memset(pad[r][s], 0, sizeof pad[r][s]);
                    memcpy(pad[r][s], px[r][s], (size_t)nc * sizeof(float));
                    px[r][s] = pad[r][s];
                }
            }
        for (int s = 0; s < 6; s++) {
            v8 col[6];
            INPUT_1D(*(const v8 *)px[0][s], *(const v8 *)px[1][s], *(const v8 *)px[2][s], *(const v8 *)px[3][s],
                     *(const v8 *)px[4][s], *(const v8 *)px[5][s], col);
            for (int a = 0; a < 6; a++) t[a][s] = col[a];
        }
        for (int a = 0; a < 6; a++) {
            INPUT_1D(t[a][0], t[a][1], t[a][2], t[a][3], t[a][4], t[a][5], e);
            float *dst = v + (size_t)a * 6 * vs + c0;
            for (int b = 0; b < 6; b++) memcpy(dst + b * vs, &e[b], (size_t)nc * sizeof(float));
        }
    }
}

/* The 4x4 outputs of tile `idx` in n channels from its products (point p's n values at m + p * ms), with
 * bias, residual and ReLU, written where they fall inside the tile; out and res hold ld channels per pixel. */
WINO_CLONES static void tile_output(const float *m, size_t ms, int h, int w, int y0, long idx, long ntx,
                                    const float *bias, const float *res, int relu, int n, int ld, float *out)
{
    int oy = (int)(idx / ntx) * 4 - y0, ox = (int)(idx % ntx) * 4;
    v8 t[4][6], e[4], vzero = {0};
    if (oy >= 0 && oy + 4 <= h && ox + 4 <= w && n % CH == 0) { /* inside, whole chunks */
        for (int c0 = 0; c0 < n; c0 += CH) {
            const float *mc = m + c0;
            for (int s = 0; s < 6; s++) { /* A^T m, a column at a time */
                v8 col[4];
                OUTPUT_1D(*(const v8 *)(mc + s * ms), *(const v8 *)(mc + (6 + s) * ms), *(const v8 *)(mc + (12 + s) * ms),
                          *(const v8 *)(mc + (18 + s) * ms), *(const v8 *)(mc + (24 + s) * ms),
                          *(const v8 *)(mc + (30 + s) * ms), col);
                for (int i = 0; i < 4; i++) t[i][s] = col[i];
            }
            v8 bi = bias ? *(const v8 *)(bias + c0) : vzero;
            for (int i = 0; i < 4; i++) {
                OUTPUT_1D(t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5], e); /* (A^T m) A: row i */
                float *o = out + ((size_t)(oy + i) * w + (size_t)ox) * ld + c0;
                const float *r = res ? res + (o - out) : NULL;
                for (int j = 0; j < 4; j++) {
                    v8 y = e[j] + bi + (r ? *(const v8 *)(r + (size_t)j * ld) : vzero);
                    if (relu) y = (v8)((v8i)y & ~(v8i)(y < vzero));
                    *(v8 *)(o + (size_t)j * ld) = y;
                }
            }
        }
        return;
    }
    float pad[36][CH];
    for (int c0 = 0; c0 < n; c0 += CH) {
        int nc = n - c0 < CH ? n - c0 : CH;
        const float *pt[36];
        for (int p = 0; p < 36; p++) {
            pt[p] = m + (size_t)p * ms + c0;
            if (nc < CH) { /* a short last chunk, zero-padded */
                memset(pad[p], 0, sizeof pad[p]);
                memcpy(pad[p], pt[p], (size_t)nc * sizeof(float));
                pt[p] = pad[p];
            }
        }
        for (int s = 0; s < 6; s++) { /* A^T m, a column at a time */
            v8 col[4];
            OUTPUT_1D(*(const v8 *)pt[s], *(const v8 *)pt[6 + s], *(const v8 *)pt[12 + s], *(const v8 *)pt[18 + s],
                      *(const v8 *)pt[24 + s], *(const v8 *)pt[30 + s], col);
            for (int i = 0; i < 4; i++) t[i][s] = col[i];
        }
        v8 bi = vzero;
        if (bias) memcpy(&bi, bias + c0, (size_t)nc * sizeof(float));
        for (int i = 0; i < 4; i++) {
            int y = oy + i;
            if (y < 0 || y >= h) continue;
            OUTPUT_1D(t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5], e); /* (A^T m) A: row i */
            for (int j = 0; j < 4 && ox + j < w; j++) {
                size_t px = (size_t)y * w + (size_t)(ox + j);
                v8 r = vzero;
                if (res) {
                    if (nc == CH) r = *(const v8 *)(res + px * ld + c0);
                    else memcpy(&r, res + px * ld + c0, (size_t)nc * sizeof(float));
                }
                v8 o = e[j] + bi + r;
                if (relu) o = (v8)((v8i)o & ~(v8i)(o < vzero)); /* v < 0 ? 0 : v, as conv_fast's */
                if (nc == CH) *(v8 *)(out + px * ld + c0) = o;
                else memcpy(out + px * ld + c0, &o, (size_t)nc * sizeof(float));
            }
        }
    }
}

liif_status liif_conv_wino(const float *in, int h, int w, int y0, int cin, const float *u, const float *bias,
                           const float *res, int relu, int cout, float *out, int threads)
{
    /* The image's tile grid: tile rows start at image rows 4k, so a tile (and its block) is the same in every
     * band that holds it. The band's tiles are [first, last); a block's tiles outside it are zero rows. */
    long ntx = (w + 3) / 4, first = (long)(y0 / 4) * ntx, last = (long)((y0 + h - 1) / 4 + 1) * ntx;
    long b0 = first / NT, nblocks = (last + NT - 1) / NT - b0;
    /* point strides padded by a cache line: 16 KB apart, the 36 points would share one set of L1 */
    size_t vs = (size_t)NT * cin + CH, ms = (size_t)NT * OC + CH, plane = (size_t)cout * cin;
    size_t per = WP * vs + WP * ms; /* a thread's transformed inputs and products, all allocated before any write */
    float *scratch = malloc((size_t)threads * per * sizeof *scratch);
    if (!scratch) return LIIF_ERR_NOMEM;
#pragma omp parallel num_threads(threads)
    {
        /* oneDNN's sgemm threads itself outside an active parallel region (a team of one), and then splits these
         * small products otherwise: one thread each, so the sums do not depend on the thread count */
        omp_set_num_threads(1);
        float *v = scratch + (size_t)omp_get_thread_num() * per, *m = v + WP * vs;
#pragma omp for schedule(dynamic)
        for (long blk = 0; blk < nblocks; blk++) {
            long t0 = (b0 + blk) * NT;
            for (int t = 0; t < NT; t++) {
                if (t0 + t >= first && t0 + t < last) {
                    tile_input(in, h, w, y0, cin, t0 + t, ntx, v + (size_t)t * cin, vs);
                } else {
                    for (int p = 0; p < WP; p++) memset(v + p * vs + (size_t)t * cin, 0, (size_t)cin * sizeof *v);
                }
            }
            for (int o0 = 0; o0 < cout; o0 += OC) { /* OC outputs at a time: the products stay near the cache */
                int n = cout - o0 < OC ? cout - o0 : OC;
                for (int p = 0; p < WP; p++)
                    dnnl_sgemm('N', 'T', NT, n, cin, 1.0f, v + p * vs, cin, u + p * plane + (size_t)o0 * cin, cin,
                               0.0f, m + p * ms, n);
                for (int t = 0; t < NT; t++)
                    if (t0 + t >= first && t0 + t < last)
                        tile_output(m + (size_t)t * n, ms, h, w, y0, t0 + t, ntx, bias ? bias + o0 : NULL,
                                    res ? res + o0 : NULL, relu, n, cout, out + o0);
            }
        }
    }
    free(scratch);
    return LIIF_OK;
}

/* ------------------------------------------------------------ along rows only: F(4, 3) */

void liif_wino_rows_weights(const float *w, int cout, int cin, int ldw, float *u)
{
    size_t plane = (size_t)cout * 3 * cin;
    for (int o = 0; o < cout; o++)
        for (int i = 0; i < cin; i++)
            for (int r = 0; r < 3; r++) { /* filter row r: its 3 taps along x */
                const float *g = w + (size_t)o * ldw + (size_t)i * 9 + 3 * r;
                for (int p = 0; p < 6; p++)
                    u[(size_t)p * plane + (size_t)o * 3 * cin + (size_t)r * cin + i] =
                        (float)(G[p][0] * g[0] + G[p][1] * g[1] + G[p][2] * g[2]);
            }
}

/* The 6 points of row tile (y, tx): pixels 4 tx - 1 .. 4 tx + 4 of tile row y (zero outside the tile), point
 * p's cin values at v + p * vs. */
WINO_CLONES static void row_input(const float *in, int h, int w, int cin, int y, long tx, float *v, size_t vs)
{
    int x0 = (int)tx * 4 - 1;
    v8 e[6];
    const float *row = y >= 0 && y < h ? in + (size_t)y * w * cin : NULL; /* NULL: a zero row outside the tile */
    if (row && x0 >= 0 && x0 + 6 <= w && cin % CH == 0) {
        const float *x = row + (size_t)x0 * cin;
        for (int c0 = 0; c0 < cin; c0 += CH) {
            INPUT_1D(*(const v8 *)(x + c0), *(const v8 *)(x + cin + c0), *(const v8 *)(x + 2 * cin + c0),
                     *(const v8 *)(x + 3 * cin + c0), *(const v8 *)(x + 4 * cin + c0), *(const v8 *)(x + 5 * cin + c0), e);
            for (int p = 0; p < 6; p++) *(v8 *)(v + p * vs + c0) = e[p];
        }
        return;
    }
    float pad[6][CH];
    for (int c0 = 0; c0 < cin; c0 += CH) {
        int nc = cin - c0 < CH ? cin - c0 : CH;
        memset(pad, 0, sizeof pad);
        for (int s = 0; s < 6; s++)
            if (row && x0 + s >= 0 && x0 + s < w)
                memcpy(pad[s], row + (size_t)(x0 + s) * cin + c0, (size_t)nc * sizeof(float));
        INPUT_1D(*(const v8 *)pad[0], *(const v8 *)pad[1], *(const v8 *)pad[2], *(const v8 *)pad[3], *(const v8 *)pad[4],
                 *(const v8 *)pad[5], e);
        for (int p = 0; p < 6; p++) memcpy(v + p * vs + c0, &e[p], (size_t)nc * sizeof(float));
    }
}

/* Row tile (y, tx)'s 4 outputs in n channels from its products (point p's n values at m + p * ms), with bias,
 * residual and ReLU, where they fall inside the tile; out and res hold ld channels per pixel. */
WINO_CLONES static void row_output(const float *m, size_t ms, int w, int y, long tx, const float *bias,
                                   const float *res, int relu, int n, int ld, float *out)
{
    int x0 = (int)tx * 4, nx = w - x0 < 4 ? w - x0 : 4;
    v8 e[4], vzero = {0};
    for (int c0 = 0; c0 < n; c0 += CH) {
        int nc = n - c0 < CH ? n - c0 : CH;
        v8 pt[6], bi = vzero;
        for (int p = 0; p < 6; p++) {
            if (nc == CH) {
                pt[p] = *(const v8 *)(m + p * ms + c0);
            } else {
                pt[p] = vzero;
                memcpy(&pt[p], m + p * ms + c0, (size_t)nc * sizeof(float));
            }
        }
        OUTPUT_1D(pt[0], pt[1], pt[2], pt[3], pt[4], pt[5], e);
        if (bias) memcpy(&bi, bias + c0, (size_t)nc * sizeof(float));
        for (int j = 0; j < nx; j++) {
            size_t at = ((size_t)y * w + (size_t)(x0 + j)) * ld + c0;
            v8 r = vzero;
            if (res) memcpy(&r, res + at, (size_t)nc * sizeof(float));
            v8 o = e[j] + bi + r;
            if (relu) o = (v8)((v8i)o & ~(v8i)(o < vzero));
            memcpy(out + at, &o, (size_t)nc * sizeof(float));
        }
    }
}

liif_status liif_conv_wino_rows(const float *in, int h, int w, int y0, int cin, const float *u, const float *bias,
                                const float *res, int relu, int cout, float *out, int threads)
{
    /* Blocks of RT row tiles in row-major order over the image (rows y0 .. of it are the tile's), cut at multiples
     * of RT, so a tile has the same block and place in it in every band of the same width; tiles of a block outside
     * the band are zero rows. A tile's GEMM row holds, for one point, the points of the three input rows it reads
     * (K = 3 cin, one product per point, against [cout, 3 cin] filters): V is 6 * RT * 3 cin. */
    long ntx = (w + 3) / 4, first = (long)y0 * ntx, last = (long)(y0 + h) * ntx;
    long b0 = first / RT, nblocks = (last + RT - 1) / RT - b0;
    int k3 = 3 * cin;
    size_t vs = (size_t)RT * k3 + CH, ms = (size_t)RT * OC + CH, plane = (size_t)cout * k3;
    size_t per = 6 * vs + 6 * ms;
    float *scratch = malloc((size_t)threads * per * sizeof *scratch);
    if (!scratch) return LIIF_ERR_NOMEM;
#pragma omp parallel num_threads(threads)
    {
        omp_set_num_threads(1); /* one thread per GEMM, as in liif_conv_wino */
        float *v = scratch + (size_t)omp_get_thread_num() * per, *m = v + 6 * vs;
#pragma omp for schedule(dynamic)
        for (long blk = 0; blk < nblocks; blk++) {
            long t0 = (b0 + blk) * RT;
            for (int t = 0; t < RT; t++) {
                long idx = t0 + t;
                if (idx < first || idx >= last) {
                    for (int p = 0; p < 6; p++) memset(v + p * vs + (size_t)t * k3, 0, (size_t)k3 * sizeof *v);
                    continue;
                }
                int y = (int)(idx / ntx) - y0;
                for (int r = 0; r < 3; r++)
                    row_input(in, h, w, cin, y + r - 1, idx % ntx, v + (size_t)t * k3 + (size_t)r * cin, vs);
            }
            for (int o0 = 0; o0 < cout; o0 += OC) {
                int n = cout - o0 < OC ? cout - o0 : OC;
                for (int p = 0; p < 6; p++)
                    dnnl_sgemm('N', 'T', RT, n, k3, 1.0f, v + p * vs, k3, u + p * plane + (size_t)o0 * k3, k3, 0.0f,
                               m + p * ms, n);
                for (int t = 0; t < RT; t++)
                    if (t0 + t >= first && t0 + t < last)
                        row_output(m + (size_t)t * n, ms, w, (int)((t0 + t) / ntx) - y0, (t0 + t) % ntx,
                                   bias ? bias + o0 : NULL, res ? res + o0 : NULL, relu, n, cout, out + o0);
            }
        }
    }
    free(scratch);
    return LIIF_OK;
}
