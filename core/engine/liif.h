/* liif.h: public API of the LIIF / LIIF-GAN engine (plain C11, no GLib, never prints or exits). */
#ifndef LIIF_H
#define LIIF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Runtime outcomes are values; every failing call also fills a liif_error
 * (when one is given) with a one-line message naming the file and the problem. */
typedef enum {
    LIIF_OK = 0,
    LIIF_ERR_IO,          /* a file could not be opened, read or written */
    LIIF_ERR_FORMAT,      /* a file is malformed (truncated, bad header, bad JSON, bad offsets) */
    LIIF_ERR_MODEL,       /* the weights do not describe a usable model (missing tensor, wrong shape, dtype) */
    LIIF_ERR_ARG,         /* an invalid argument (scale, size, region) */
    LIIF_ERR_NOMEM,       /* an allocation failed */
    LIIF_ERR_UNSUPPORTED, /* the request needs something this build or machine lacks (e.g. CUDA) */
    LIIF_ERR_CANCELLED,   /* the progress callback asked to stop */
} liif_status;

typedef struct {
    char msg[512];
} liif_error;

const char *liif_status_name(liif_status s);

/* Fill err (may be NULL) with a printf-style message; returns status unchanged. */
liif_status liif_error_set(liif_error *err, liif_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* s (text quoted from a file) made safe for a one-line message in buf (size >= 8): control
 * bytes become \xNN, text longer than buf is cut with "...". Returns buf. */
const char *liif_printable(const char *s, char *buf, size_t size);

/* Opens path read-only if it is a regular file: a FIFO, device or folder is refused at once
 * (never waited on). Returns the descriptor and the file's size, or -1 with a one-line
 * message (LIIF_ERR_IO) naming the file. */
int liif_open_regular(const char *path, size_t *size, liif_error *err);

/* Largest output the engine accepts, per side and in total (documented limits). */
#define LIIF_MAX_SIDE 65536
#define LIIF_MAX_PIXELS ((int64_t)1 << 30)

/* ------------------------------------------------------------------ model */

enum { LIIF_MAX_HIDDEN = 8 };

/* The models every backend (reference, fast CPU, CUDA) and the trainer run: liif_model_load
 * refuses any other with a one-line message naming the file and the field. RGB in and out;
 * 1..LIIF_MAX_FEATS encoder features; 0..LIIF_MAX_RESBLOCKS residual blocks; 1..LIIF_MAX_HIDDEN
 * hidden layers of 1..LIIF_MAX_WIDTH units; one or two decoders as the variant says; the
 * mid-layer block inside the encoder. */
enum { LIIF_MODEL_CHANNELS = 3, LIIF_MAX_FEATS = 512, LIIF_MAX_RESBLOCKS = 64, LIIF_MAX_WIDTH = 1024 };

/* Which encoder features a decoder reads. */
typedef enum { LIIF_FEAT_LAST = 0, LIIF_FEAT_MID = 1 } liif_feat_source;

/* Everything the engine needs to know about a model, read from the weights
 * (tensor shapes) and their __metadata__; nothing is hard-coded. */
typedef struct {
    int in_ch;        /* image channels (3) */
    int n_feats;      /* encoder width (64) */
    int n_resblocks;  /* encoder depth (16) */
    int mid_block;    /* residual block whose output is the mid-layer feature (7 for 16 blocks) */
    int feat_unfold, local_ensemble, cell_decode; /* LIIF flags, 0 or 1 */
    int n_decoders;   /* 1 (LIIF, LIIF-GAN-S) or 2 (LIIF-GAN, LIIF-GAN-SF) */
    liif_feat_source dec_source[2]; /* feature source of each decoder */
    int n_hidden;     /* hidden layers of each MLP (4) */
    int hidden[LIIF_MAX_HIDDEN]; /* their widths (256) */
    int out_dim;      /* 3 */
    int in_dim;       /* MLP input width: feat (x9 if unfold) + 2 + (2 if cell) */
} liif_config;

typedef struct liif_model liif_model;

/* Load a model from a safetensors file (F32, F16 or BF16 tensors, official LIIF key names). */
liif_status liif_model_load(const char *path, liif_model **out, liif_error *err);
void liif_model_free(liif_model *m);
const liif_config *liif_model_config(const liif_model *m);
/* LR pixels of context an exact tile needs around the latents it reads (34 convs + unfold + ensemble = 36). */
int liif_model_halo(const liif_model *m);
/* The detail a LIIF-GAN model is meant to be used at: its metadata 'liif.detail' (a number in [0,1], written by
 * `liif export --default-detail`), 1 when it has none; 1 for one-decoder models. What `liif upscale` and `liif eval`
 * use when --detail is not given, and what the GIMP dialog sets when the user picks the model. */
double liif_model_default_detail(const liif_model *m);

/* ----------------------------------------------------------------- engine */

typedef enum {
    LIIF_BACKEND_AUTO = 0, /* CUDA when usable, else fast CPU */
    LIIF_BACKEND_CPU,      /* fast CPU (GEMM library, threads, precompute) */
    LIIF_BACKEND_CPU_REF,  /* plain loops, the oracle; slow */
    LIIF_BACKEND_CUDA,
} liif_backend_kind;

/* Arithmetic of the matrix products. A kind the backend lacks computes in float32 (with a note,
 * liif_engine_precision_name). */
typedef enum {
    LIIF_PRECISION_FP32 = 0, /* float32 throughout (default) */
    LIIF_PRECISION_FAST,     /* the fastest arithmetic the backend has: fast CPU bf16 products with
                              * float32 sums where the processor has AVX512-BF16 or AMX-BF16 (~4e-3
                              * relative per product), else int8 (below); CUDA TF32 tensor cores (~1e-3) */
    LIIF_PRECISION_TF32,     /* TF32 tensor-core GEMMs (10-bit mantissas, float32 sums): CUDA only */
    LIIF_PRECISION_BF16,     /* bf16 GEMM operands (7-bit mantissas), float32 sums: CUDA, and the fast
                              * CPU backend where the processor has AVX512-BF16 or AMX-BF16 */
    LIIF_PRECISION_INT8,     /* fast CPU: the decoders' hidden 256x256 products on integers: activations
                              * as 7-bit unsigned with one scale per row, weights as 8-bit with one scale
                              * per output, exact 32-bit sums (every x86-64 processor; twice sgemm's rate
                              * on AVX2, more with VNNI). Encoder, layer 1 and the last layer stay float32. */
} liif_precision;

/* Return non-zero to cancel; polled between tiles and query batches. fraction in [0,1]. */
typedef int (*liif_progress_fn)(void *user, double fraction);

typedef struct {
    double detail;        /* alpha of out = d1 + alpha*d2 for two-decoder models, in [0,1]; default 1 */
    int threads;          /* 0 = all cores */
    size_t memory_budget; /* bytes of working memory the engine may use; 0 = default (512 MiB) */
    int tile;             /* LR tile side (without halo); 0 = choose from the memory budget */
    int precompute;       /* 1 = layer-1 precompute (default), 0 = plain path (fast CPU only) */
    liif_precision precision; /* LIIF_PRECISION_FP32 (default), _FAST, _TF32 or _BF16 */
    int fast_math;        /* older spelling of precision = LIIF_PRECISION_FAST: non-zero selects it too */
    liif_progress_fn progress;
    void *progress_user;
    /* Non-zero: the caller promises that the input's pixels are the same as in the last call
     * with this key, so the engine may reuse the encoder features it kept from that call (an
     * interactive preview then re-runs only the decoder when the detail or a nearby scale
     * changes). 0: always encode. */
    uint64_t reuse_key;
    /* Non-zero: out holds the model's value, d1 + detail*d2 denormalised, without the clamp to [0,1] (it may
     * overshoot a little at edges). The output is linear in detail, so two such renders at details a != b give
     * every other detail t as out_a + (t-a)/(b-a) * (out_b - out_a), clamped afterwards: the GIMP preview's
     * instant detail slider. 0 (default): clamped to [0,1]. */
    int unclamped;
    /* Non-zero: the self-ensemble. The region is the mean of the model's outputs on the input turned the 8 ways a
     * square turns (transposed or not, then flipped in x, in y), each output turned back: about 8x the time, for a
     * result closer to the original (Set5 x4 +0.19 dB with the shipped model). For a two-decoder model at a detail
     * above 0 the mean is taken of decoder 1's faithful image only, and detail * d2 of the upright input is added
     * once, so the GAN's detail is not averaged away (8 decoder-1 passes and one whole one). A region equals the
     * same crop of the whole result to float rounding, not to the bit (a band of a transposed turn is a column
     * strip, whose sums may round otherwise). The encoder features are not reused (reuse_key is ignored). */
    int ensemble;
} liif_options;

void liif_options_init(liif_options *o);

typedef struct liif_engine liif_engine;

/* Create an engine for a model. The model must outlive the engine. A message explaining
 * a fallback (e.g. "CUDA: no GPU found, using the CPU") is written to note when non-NULL. */
liif_status liif_engine_new(const liif_model *m, liif_backend_kind kind, liif_engine **out,
                            char *note, size_t note_size, liif_error *err);
void liif_engine_free(liif_engine *e);
const char *liif_engine_backend_name(const liif_engine *e);
/* The arithmetic precision p gets on this engine: "fp32", "bf16" (fast CPU with AVX512-BF16 or
 * AMX-BF16), "int8" (fast CPU) or "tf32" (CUDA). When p falls back to fp32, one line saying why is
 * written to note (when non-NULL); otherwise note is emptied. */
const char *liif_engine_precision_name(const liif_engine *e, liif_precision p, char *note, size_t note_size);

/* Whether the CUDA backend can run on this machine: 1 with device 0's name in name, else 0 with
 * the reason (no CUDA in this build, module missing or stale, no driver, no GPU) in reason. */
int liif_cuda_probe(char *name, size_t name_size, char *reason, size_t reason_size);

/* Input image: float RGB in [0,1], interleaved HWC, rows `stride` floats apart (>= 3*w). */
typedef struct {
    const float *data;
    int w, h;
    size_t stride;
} liif_image;

/* Output geometry: the full output is out_w x out_h; the region (x, y, w, h) of it is
 * computed into out (float RGB HWC in [0,1], rows `out_stride` floats apart). A region
 * equals the same crop of the full result exactly. */
typedef struct {
    int out_w, out_h;
    int x, y, w, h;
} liif_region;

liif_status liif_upscale_region(liif_engine *e, const liif_image *in, const liif_region *r,
                                float *out, size_t out_stride, const liif_options *o,
                                liif_error *err);

/* Validate an output size for an input: sides >= 1, <= LIIF_MAX_SIDE, pixels <= LIIF_MAX_PIXELS. */
liif_status liif_check_size(int in_w, int in_h, int out_w, int out_h, liif_error *err);

/* Output size for real scale factors: round(in * s), with s finite and > 0. */
liif_status liif_size_for_scale(int in_w, int in_h, double sx, double sy, int *out_w, int *out_h,
                                liif_error *err);

/* Bicubic resampling (Keys a = -0.5, clamped edges, result clamped to [0,1]) of channel
 * `in_ch` of an interleaved float image (in_channels per pixel, rows in_stride floats
 * apart) at the output pixel centres of region r, written to channel out_ch of out
 * (out_channels per pixel, rows out_stride floats apart). Used for alpha, which the
 * model does not see. Same centres as the model's queries, so a region equals the same
 * crop of the whole. */
liif_status liif_resample_bicubic_region(const float *in, int in_w, int in_h, size_t in_stride,
                                         int in_channels, int in_ch, const liif_region *r,
                                         float *out, size_t out_stride, int out_channels,
                                         int out_ch, liif_error *err);

#ifdef __cplusplus
}
#endif
#endif
