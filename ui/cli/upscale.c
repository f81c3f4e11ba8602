/* upscale.c: `liif upscale IN OUT` (PNG, JPEG or WebP) and its batches: options, then the output streamed in bands
 * of rows. */
#include <errno.h>
#include <math.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "cli.h"
#include "liif-config.h"
#include "exif.h"
#include "image.h"

#define MIB ((size_t)1 << 20)
#define DEFAULT_MEMORY_MIB 512 /* the engine's own default budget */
#define MAX_MEMORY_MIB (1 << 20)
#define MAX_BAND_BYTES (64 * MIB) /* float buffers of one band of output rows */
#define PREVIEW_SIDE 512 /* --preview: the side of the crop */

/* What the options ask for, validated; everything but the files is checked before any I/O. */
typedef struct {
    const char *in_path, *out_path;
    char *model_path;
    int by_scale;     /* 1: sx, sy give the size; 0: out_w x out_h given (size_mode says how) */
    double sx, sy;
    int out_w, out_h;
    int size_mode;    /* SZ_*: with by_scale 0, how out_w x out_h make an image's size */
    int batch;        /* --output-dir: one plan for many images */
    liif_backend_kind backend;
    liif_precision precision;
    double detail;        /* < 0: the model's default */
    int threads, tile;
    size_t memory_budget; /* bytes; 0 = engine default */
    int band_rows;        /* 0 = from the memory budget */
    int quiet;
    int timing;           /* print where the wall time went */
    liif_image_format out_format; /* by OUT's extension */
    int quality;          /* JPEG quality */
    int no_exif;          /* leave the input's EXIF out */
    int ensemble;         /* --ensemble: liif_options.ensemble */
    int deblock;          /* --deblock: a JPEG input deblocked as it is read (liif_jpeg_deblock) */
    const char *preview_path;          /* --preview: only a crop of the output, here; NULL: the whole output */
    liif_image_format preview_format;
} upscale_plan;

/* --size WxH (exactly), --size Wx / xH (that side, the other keeping the input's aspect ratio), --fit WxH (the
 * largest size within the box that keeps it). */
enum { SZ_EXACT, SZ_WIDTH, SZ_HEIGHT, SZ_FIT };

/* ------------------------------------------------------------ options */

typedef struct {
    char *model, *scale, *size, *fit, *scale_x, *scale_y, *detail, *device, *precision;
    int threads, tile, memory_mib, band_rows, quality;
    gboolean quiet, timing, no_exif, ensemble, deblock;
    char *output_dir, *preview;
    char **files;
} upscale_args;

static const char upscale_description[] =
    "Give the output size one way: --scale S, --size WxH, --fit WxH, or --scale-x SX with\n"
    "--scale-y SY. --size 1920x gives the width (the height keeps the input's aspect ratio),\n"
    "--size x1080 the height; --fit 3840x2160 the largest size within that box with the input's\n"
    "aspect ratio (a portrait photo 2160 high). Sizes are round(input side x scale), halves rounded\n"
    "up; at most 65536 px per side and 2^30 pixels in all.\n"
    "With --output-dir DIR, every IN is upscaled into DIR under its own name (its extension\n"
    "says the format, as for OUT; one with another extension becomes NAME.png), the model\n"
    "loaded once, each image read while the one before is upscaled (two inputs in memory, but\n"
    "one at a time after an image of over 1 GiB as floats, about 90 MP). An image that fails\n"
    "is reported in its turn and the others go on; the exit status is then 1. Two inputs of\n"
    "one output name, or an output that would replace its input, are refused before anything\n"
    "is done.\n"
    "Before a long job, --preview FILE makes only the " G_STRINGIFY(PREVIEW_SIDE) " px square at the centre of the\n"
    "output (as the whole run makes it) into FILE and says how long the whole would take.\n"
    "\n"
    "IN is a PNG, a JPEG or a WebP (told by its bytes). A JPEG's EXIF orientation is applied,\n"
    "so the output stands as viewers show the photo. OUT is a PNG unless it is named .jpg or\n"
    ".jpeg: then a JPEG at --quality (default 95), chroma at full resolution (4:4:4), 8 bits\n"
    "and no alpha (an input with alpha needs a .png or .webp output); or .webp: a WebP with\n"
    "alpha, lossy at --quality (default 95; 100 is lossless), 8 bits, at most 16383 px per\n"
    "side. Other extensions are refused.\n"
    "A JPEG stores each 8x8 block as rounded frequencies; the model sharpens the block edges\n"
    "and ringing that rounding leaves, so a strongly compressed photo can come out worse than\n"
    "bicubic. --deblock first makes a JPEG input smoother (brightness and colour) while every\n"
    "stored frequency stays within the rounding the file states: through a JPEG of\n"
    "quality 50, Set5 x2 gains 0.5 dB with it (liif eval --lr-jpeg 50 --deblock). It takes\n"
    "about half a second per megapixel of input on 2 CPU cores.\n"
    "What the input says of itself goes into the output: its ICC colour profile (or PNG's\n"
    "sRGB, gAMA and cHRM chunks), its pixel density (a print keeps its pixels per inch, as\n"
    "GIMP's Scale Image does) and its EXIF (camera, date, place: --no-exif leaves it out),\n"
    "with the new pixel size in it and, for a JPEG turned upright, orientation 1 and no\n"
    "thumbnail. XMP and text chunks are not copied.\n"
    "\n"
    "The model sees RGB: gray images are upscaled as RGB and turned back to gray (Rec.601\n"
    "luma); alpha is resampled bicubically. The output keeps the input's channels (a palette\n"
    "image becomes RGB or RGBA) and, as PNG, its bit depth (8 or 16). It is written band by\n"
    "band to a temporary file that is renamed into place at the end: a failed or interrupted\n"
    "run never leaves a partial file.\n"
    "\n"
    "Model: --model FILE, else $LIIF_MODEL, else default.safetensors in\n"
    "  " LIIF_SOURCE_MODEL_DIR " (source tree), else in\n"
    "  " LIIF_MODEL_DIR " (installed).\n"
    "\n"
    "--precision fast computes the matrix products in bf16 with float32 sums on processors\n"
    "with AVX512-BF16 or AMX (about twice as fast; 8-bit output within one level of fp32 on\n"
    "nearly every pixel, see the README), in int8 on other CPUs and in TF32 on CUDA.\n"
    "int8 computes the decoders' hidden products on integers (any x86-64 CPU; 1.3-1.6x as fast on\n"
    "AVX2; 99.95% of 8-bit samples within one level of fp32, a few up to 4 levels).\n"
    "tf32 asks for TF32 tensor cores (CUDA only), bf16 for bf16 products (CUDA, and CPUs with\n"
    "AVX512-BF16 or AMX); a device without the one asked for computes fp32, with a note.\n"
    "\n"
    "Exit status: 0 ok, 1 runtime error (I/O, bad model, bad image), 2 usage error (bad\n"
    "option, scale, size or output format), 3 CUDA requested but unavailable, 130\n"
    "interrupted (Ctrl-C).\n";

static GOptionContext *upscale_context(upscale_args *a)
{
    const GOptionEntry entries[] = {
        {"model", 'm', 0, G_OPTION_ARG_FILENAME, &a->model,
         "Model weights (safetensors)", "FILE"},
        {"scale", 's', 0, G_OPTION_ARG_STRING, &a->scale,
         "Scale both sides by S (any real number > 0)", "S"},
        {"size", 0, 0, G_OPTION_ARG_STRING, &a->size,
         "Output size in pixels; Wx or xH: that side, the other keeping the input's aspect ratio", "WxH"},
        {"fit", 0, 0, G_OPTION_ARG_STRING, &a->fit,
         "The largest output within WxH that keeps the input's aspect ratio", "WxH"},
        {"scale-x", 0, 0, G_OPTION_ARG_STRING, &a->scale_x, "Horizontal scale (with --scale-y)",
         "SX"},
        {"scale-y", 0, 0, G_OPTION_ARG_STRING, &a->scale_y, "Vertical scale (with --scale-x)",
         "SY"},
        {"detail", 'd', 0, G_OPTION_ARG_STRING, &a->detail,
         "LIIF-GAN detail weight in [0,1] (default: the model's own, its liif.detail metadata, else 1; no effect on "
         "plain LIIF models)", "A"},
        {"threads", 't', 0, G_OPTION_ARG_INT, &a->threads, "CPU threads (default 0: all cores)",
         "N"},
        {"tile", 0, 0, G_OPTION_ARG_INT, &a->tile,
         "Input tile side in pixels (default 0: from the memory budget)", "N"},
        {"memory", 0, 0, G_OPTION_ARG_INT, &a->memory_mib,
         "Working memory budget of the engine in MiB (default 512)", "MiB"},
        {"device", 0, 0, G_OPTION_ARG_STRING, &a->device,
         "Compute device: auto, cpu, cpu-ref (slow reference) or cuda (default auto)",
         "DEVICE"},
        {"precision", 0, 0, G_OPTION_ARG_STRING, &a->precision,
         "Arithmetic: fp32, fast (CPU: bf16 products where the processor has them, else int8; CUDA: TF32), tf32,"
         " bf16 or int8 (default fp32)",
         "P"},
        {"quiet", 'q', 0, G_OPTION_ARG_NONE, &a->quiet, "No progress bar and no notes", NULL},
        {"timing", 0, 0, G_OPTION_ARG_NONE, &a->timing,
         "At the end, say where the time went (reading, model, upscaling, encoding)", NULL},
        {"quality", 0, 0, G_OPTION_ARG_INT, &a->quality,
         "Quality of a .jpg or .webp OUT, 1 to 100 (default 95; WebP: 100 is lossless)", "Q"},
        {"output-dir", 'o', 0, G_OPTION_ARG_FILENAME, &a->output_dir,
         "Upscale every IN into DIR, under its own name (the model is loaded once)", "DIR"},
        {"preview", 0, 0, G_OPTION_ARG_FILENAME, &a->preview,
         "Make only a crop of the output, " G_STRINGIFY(PREVIEW_SIDE) " px square from its centre, into FILE (OUT is "
         "not written) and say how long the whole would take", "FILE"},
        {"no-exif", 0, 0, G_OPTION_ARG_NONE, &a->no_exif,
         "Leave the input's EXIF (camera, date, GPS position, ...) out of OUT", NULL},
        {"deblock", 0, 0, G_OPTION_ARG_NONE, &a->deblock,
         "A JPEG input with fewer block edges and less ringing: smoothed within what its stored frequencies allow "
         "(see below)", NULL},
        {"ensemble", 0, 0, G_OPTION_ARG_NONE, &a->ensemble,
         "Self-ensemble: the mean of the outputs for the input turned 8 ways (flips, transposes), each turned back; "
         "about 8x the time, a little closer to the original (LIIF-GAN: its detail is added once)", NULL},
        /* hidden, for tests: force bands of N output rows (banded output must equal one band) */
        {"band-rows", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &a->band_rows, NULL, "N"},
        {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &a->files, NULL, NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *ctx = g_option_context_new("IN OUT | IN... --output-dir DIR");
    g_option_context_set_summary(ctx, "Upscale a PNG, JPEG or WebP image by any factor with a LIIF / LIIF-GAN "
                                      "model.");
    g_option_context_set_description(ctx, upscale_description);
    g_option_context_add_main_entries(ctx, entries, NULL);
    return ctx;
}

static void upscale_args_clear(upscale_args *a)
{
    g_free(a->model);
    g_free(a->scale);
    g_free(a->size);
    g_free(a->fit);
    g_free(a->scale_x);
    g_free(a->scale_y);
    g_free(a->detail);
    g_free(a->device);
    g_free(a->precision);
    g_free(a->output_dir);
    g_free(a->preview);
    g_strfreev(a->files);
}

/* A real number option; "nan" and "inf" parse, and the checks that follow reject them. */
static int parse_real(const char *option, const char *text, double *out)
{
    char *end = NULL;
    double v = g_ascii_strtod(text, &end);
    if (end == text || *end != '\0') {
        cli_error("invalid value '%s' for %s: not a number", text, option);
        return 0;
    }
    *out = v;
    return 1;
}

/* OPT WxH: two positive decimal integers; with one_side, one of them may be left out (0). Limits are checked by
 * liif_check_size. */
static int parse_size(const char *opt, const char *text, int one_side, int *w, int *h)
{
    const char *p = text;
    long long v[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        /* one side left out: "xH" (an x with something after it) or "Wx" (nothing after the x) */
        if (one_side && !g_ascii_isdigit(*p) && (i == 0 ? (*p == 'x' || *p == 'X') : !*p) && (i == 1 || p[1])) {
            if (i == 0) p++; /* xH: no width */
            continue;
        }
        if (!g_ascii_isdigit(*p))
            goto bad;
        char *end;
        errno = 0;
        v[i] = strtoll(p, &end, 10);
        if (errno == ERANGE || v[i] > INT_MAX) {
            cli_error("%s %s: %.20s is too large (the limit is %d px per side)", opt, text, p, LIIF_MAX_SIDE);
            return 0;
        }
        if (v[i] == 0) {
            cli_error("%s %s: each side must be at least 1 px", opt, text);
            return 0;
        }
        p = end;
        if (i == 0 && *p++ != 'x' && p[-1] != 'X')
            goto bad;
    }
    if (*p != '\0' || (v[0] == 0 && v[1] == 0))
        goto bad;
    *w = (int)v[0];
    *h = (int)v[1];
    return 1;
bad:
    cli_error("invalid %s '%s': expected WxH, e.g. 1920x1080%s", opt, text, one_side ? ", or 1920x or x1080" : "");
    return 0;
}

static int parse_device(const char *text, liif_backend_kind *out)
{
    static const struct {
        const char *name;
        liif_backend_kind kind;
    } devices[] = {
        {"auto", LIIF_BACKEND_AUTO},
        {"cpu", LIIF_BACKEND_CPU},
        {"cpu-ref", LIIF_BACKEND_CPU_REF},
        {"cuda", LIIF_BACKEND_CUDA},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(devices); i++)
        if (strcmp(text, devices[i].name) == 0) {
            *out = devices[i].kind;
            return 1;
        }
    cli_error("unknown --device '%s': use auto, cpu, cpu-ref or cuda", text);
    return 0;
}

/* --precision's words, indexed by liif_precision. */
static const char *const precision_names[] = {
    [LIIF_PRECISION_FP32] = "fp32", [LIIF_PRECISION_FAST] = "fast", [LIIF_PRECISION_TF32] = "tf32",
    [LIIF_PRECISION_BF16] = "bf16", [LIIF_PRECISION_INT8] = "int8"};

static int parse_precision(const char *text, liif_precision *out)
{
    for (size_t i = 0; i < sizeof precision_names / sizeof precision_names[0]; i++)
        if (!strcmp(text, precision_names[i])) {
            *out = (liif_precision)i;
            return 1;
        }
    cli_error("unknown --precision '%s': use fp32, fast, tf32, bf16 or int8", text);
    return 0;
}

/* How the output size is given: exactly one of --scale, --size, --fit, --scale-x + --scale-y. */
static int plan_size(const upscale_args *a, upscale_plan *p)
{
    int ways = (a->scale != NULL) + (a->size != NULL) + (a->fit != NULL) + (a->scale_x || a->scale_y);
    if (ways == 0) {
        cli_error("no output size: give --scale S, --size WxH, --fit WxH, or --scale-x SX and --scale-y SY");
        return 0;
    }
    if (ways > 1) {
        cli_error("conflicting size options: give only one of --scale, --size, --fit, or "
                  "--scale-x with --scale-y");
        return 0;
    }
    if (a->size || a->fit) {
        liif_error err;
        if (!parse_size(a->size ? "--size" : "--fit", a->size ? a->size : a->fit, a->size != NULL, &p->out_w,
                        &p->out_h))
            return 0;
        p->size_mode = a->fit ? SZ_FIT : !p->out_h ? SZ_WIDTH : !p->out_w ? SZ_HEIGHT : SZ_EXACT;
        if (liif_check_size(1, 1, MAX(p->out_w, 1), MAX(p->out_h, 1), &err) != LIIF_OK) {
            cli_error("%s", err.msg);
            return 0;
        }
        return 1;
    }
    p->by_scale = 1;
    if (a->scale) {
        if (!parse_real("--scale", a->scale, &p->sx))
            return 0;
        p->sy = p->sx;
        return 1;
    }
    if (!a->scale_x || !a->scale_y) {
        cli_error("%s needs %s as well", a->scale_x ? "--scale-x" : "--scale-y",
                  a->scale_x ? "--scale-y" : "--scale-x");
        return 0;
    }
    return parse_real("--scale-x", a->scale_x, &p->sx) &&
           parse_real("--scale-y", a->scale_y, &p->sy);
}

/* --model, else $LIIF_MODEL, else the source tree's default, else the installed default. */
static char *find_model(const char *given)
{
    if (given)
        return g_strdup(given);
    const char *env = g_getenv("LIIF_MODEL");
    if (env && *env)
        return g_strdup(env);
    const char *dirs[] = {LIIF_SOURCE_MODEL_DIR, LIIF_MODEL_DIR};
    for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++) {
        char *path = g_build_filename(dirs[i], "default.safetensors", NULL);
        if (g_file_test(path, G_FILE_TEST_IS_REGULAR))
            return path;
        g_free(path);
    }
    cli_error("no model: give --model FILE or set LIIF_MODEL (no default.safetensors in %s "
              "or %s)",
              LIIF_SOURCE_MODEL_DIR, LIIF_MODEL_DIR);
    return NULL;
}

/* Options -> plan; 0 (message printed) on a usage error. */
static int plan_from_args(const upscale_args *a, upscale_plan *p)
{
    unsigned n_files = a->files ? g_strv_length(a->files) : 0;
    if (a->output_dir && n_files == 0) {
        cli_error("--output-dir needs at least one input image (try 'liif upscale --help')");
        return 0;
    }
    if (!a->output_dir && n_files != 2) {
        cli_error("upscale needs exactly two files, IN and OUT, or inputs and --output-dir DIR (got %u; try 'liif "
                  "upscale --help')",
                  n_files);
        return 0;
    }
    p->batch = a->output_dir != NULL;
    p->quality = a->quality ? a->quality : 95;
    if (p->quality < 1 || p->quality > 100) {
        cli_error("--quality must be 1 to 100, got %d", a->quality);
        return 0;
    }
    if (a->preview && a->output_dir) {
        cli_error("--preview is for one image, not for --output-dir");
        return 0;
    }
    if (a->preview) {
        liif_error err;
        if (liif_image_format_for_name(a->preview, &p->preview_format, &err) != LIIF_OK) {
            cli_error("%s", err.msg);
            return 0;
        }
        p->preview_path = a->preview;
    }
    if (!a->output_dir) {
        p->in_path = a->files[0];
        p->out_path = a->files[1];
        liif_error err;
        if (liif_image_format_for_name(p->out_path, &p->out_format, &err) != LIIF_OK) {
            cli_error("%s", err.msg);
            return 0;
        }
        if (a->quality && p->out_format == LIIF_IMAGE_PNG && !a->quiet)
            cli_error("note: --quality is for JPEG and WebP output; %s is written as PNG (lossless)", p->out_path);
    }
    if (!plan_size(a, p))
        return 0;
    p->detail = -1; /* the model's own, once it is loaded */
    if (a->detail) {
        if (!parse_real("--detail", a->detail, &p->detail))
            return 0;
        if (!(p->detail >= 0 && p->detail <= 1)) {
            cli_error("--detail must be in [0, 1], got %s", a->detail);
            return 0;
        }
    }
    const struct {
        const char *name;
        int value;
    } counts[] = {{"threads", a->threads}, {"tile", a->tile}, {"band-rows", a->band_rows}};
    for (size_t i = 0; i < G_N_ELEMENTS(counts); i++)
        if (counts[i].value < 0) {
            cli_error("--%s must be 0 or more, got %d", counts[i].name, counts[i].value);
            return 0;
        }
    if (a->memory_mib < 0 || a->memory_mib > MAX_MEMORY_MIB) {
        cli_error("--memory must be 0 (the default) to %d MiB, got %d", MAX_MEMORY_MIB,
                  a->memory_mib);
        return 0;
    }
    p->threads = a->threads;
    p->tile = a->tile;
    p->band_rows = a->band_rows;
    p->memory_budget = (size_t)a->memory_mib * MIB;
    p->quiet = a->quiet;
    p->no_exif = a->no_exif;
    p->timing = a->timing;
    p->ensemble = a->ensemble;
    p->deblock = a->deblock;
    p->backend = LIIF_BACKEND_AUTO;
    p->precision = LIIF_PRECISION_FP32;
    return (!a->device || parse_device(a->device, &p->backend)) &&
           (!a->precision || parse_precision(a->precision, &p->precision));
}

/* ------------------------------------------------------------- the run */

/* One band of output rows in flight: what the engine wrote, and what goes to the file. */
typedef struct {
    float *rgb;       /* band_rows * out_w * 3: what the engine writes */
    float *out;       /* band_rows * out_w * channels, or NULL when the output is RGB */
    int y0, rows;
} band_buf;

/* Everything a run holds, freed in one place. */
typedef struct {
    liif_png png;     /* the input, PNG, JPEG or WebP */
    int have_png;     /* png was read and must be freed */
    int orientation;  /* the input's EXIF orientation (1: none), applied when it was read */
    int deblocked;    /* the input, a JPEG, was deblocked when it was read (in t_read) */
    char read_note[700]; /* the read's note: why --deblock did not apply */
    float *rgb;       /* the model's view of a non-RGB input: png.w * png.h * 3 */
    liif_model *model;
    liif_engine *engine;
    liif_image_writer *writer;
    band_buf bands[2]; /* the band being computed and the band being written, in turn */
    const upscale_plan *plan;
    GThread *writing;  /* the thread writing a band, or NULL */
    int write_index;   /* the band it writes */
    liif_error write_err;
    cli_progress *progress;
    /* --timing, in microseconds: reading the PNG, loading the model and starting the engine (side by side), the engine's
     * upscale of every band, waiting for the writer after a band, finishing the file; PNG encoding on the writer
     * thread (most of it during the next band's upscale). */
    gint64 t_read, t_model, t_upscale, t_wait, t_finish, t_encode;
    gint64 t_read_ahead; /* in a batch: the read itself, run ahead while the model loaded or the previous image was
                          * upscaled (t_read is then the wait for it) */
    gint64 t_start;    /* the wall time of reading and model + device, which run side by side */
} upscale_run;

/* Wait for the band being written, if any. s is the run's status so far: it is kept when it is an error, else the
 * writer's status (its message into *err when it failed) is returned. */
static liif_status upscale_wait_writer(upscale_run *r, liif_status s, liif_error *err)
{
    if (!r->writing)
        return s;
    liif_status ws = (liif_status)GPOINTER_TO_INT(g_thread_join(r->writing));
    r->writing = NULL;
    if (ws != LIIF_OK && s == LIIF_OK) {
        *err = r->write_err;
        return ws;
    }
    return s;
}

/* Frees what one image holds; the model, engine and progress stay for the next. */
static void upscale_image_clear(upscale_run *r)
{
    liif_error ignored;
    upscale_wait_writer(r, LIIF_OK, &ignored);
    if (r->writer)
        liif_image_writer_abort(r->writer);
    r->writer = NULL;
    for (int i = 0; i < 2; i++) {
        g_free(r->bands[i].out);
        g_free(r->bands[i].rgb);
        r->bands[i].out = r->bands[i].rgb = NULL;
    }
    g_free(r->rgb);
    r->rgb = NULL;
    if (r->have_png)
        liif_png_free(&r->png);
    r->have_png = 0;
    r->orientation = 1;
    r->deblocked = 0;
    r->read_note[0] = '\0';
    r->t_read = r->t_model = r->t_upscale = r->t_wait = r->t_finish = r->t_encode = r->t_start = 0;
    r->t_read_ahead = 0;
}

static void upscale_run_clear(upscale_run *r)
{
    upscale_image_clear(r);
    cli_progress_free(r->progress);
    liif_engine_free(r->engine);
    liif_model_free(r->model);
}

/* Rows per band: each band's float buffers stay within a quarter of the memory budget and
 * MAX_BAND_BYTES, so memory does not grow with the output's height (two bands are held: one computed,
 * one written; bands as tall as with one, so that the engine's tiling of a band is unchanged). */
static int band_rows_for(const upscale_plan *p, int channels)
{
    size_t budget = p->memory_budget ? p->memory_budget : DEFAULT_MEMORY_MIB * MIB;
    size_t limit = MIN(budget / 4, MAX_BAND_BYTES);
    /* --ensemble: the engine holds one more band of RGB floats (each orientation's render before it is turned back) */
    size_t row_bytes = (size_t)p->out_w * (3 + (channels == 3 ? 0 : channels) + (p->ensemble ? 3 : 0)) * sizeof(float);
    size_t rows = p->band_rows ? (size_t)p->band_rows : limit / row_bytes;
    return (int)CLAMP(rows, 1, (size_t)p->out_h);
}

/* The engine's output rows [b->y0, b->y0 + b->rows) into b->rgb. */
static liif_status upscale_band(upscale_run *r, const upscale_plan *p, const liif_options *o, band_buf *b,
                                liif_error *err)
{
    const liif_png *in = &r->png;
    liif_image img = {in->channels == 3 ? in->px : r->rgb, in->w, in->h, (size_t)in->w * 3};
    liif_region reg = {p->out_w, p->out_h, 0, b->y0, p->out_w, b->rows};
    cli_progress_set_span(r->progress, (double)b->y0 / p->out_h, (double)b->rows / p->out_h);
    return liif_upscale_region(r->engine, &img, &reg, b->rgb, (size_t)p->out_w * 3, o, err);
}

/* Writer thread: a computed band to the file's channels (gray from RGB, alpha resampled) and into the PNG
 * writer, while the engine computes the next band. Returns the status as a pointer. */
static gpointer upscale_write_band(gpointer data)
{
    upscale_run *r = data;
    const upscale_plan *p = r->plan;
    const liif_png *in = &r->png;
    const band_buf *b = &r->bands[r->write_index];
    int ch = in->channels;
    liif_error *err = &r->write_err;
    liif_status s;
    if (ch == 3) {
        s = liif_image_writer_rows(r->writer, b->rgb, b->rows, (size_t)p->out_w * 3, err);
        return GINT_TO_POINTER((int)s);
    }
    size_t stride = (size_t)p->out_w * ch;
    liif_region reg = {p->out_w, p->out_h, 0, b->y0, p->out_w, b->rows};
    cli_pixels_from_rgb(b->rgb, (size_t)p->out_w * b->rows, ch, b->out);
    s = LIIF_OK;
    if (ch == 2 || ch == 4) /* alpha, which the model does not see */
        s = liif_resample_bicubic_region(in->px, in->w, in->h, (size_t)in->w * ch, ch, ch - 1, &reg, b->out, stride,
                                         ch, ch - 1, err);
    if (s == LIIF_OK)
        s = liif_image_writer_rows(r->writer, b->out, b->rows, stride, err);
    return GINT_TO_POINTER((int)s);
}

static gpointer upscale_write_band_timed(gpointer data)
{
    upscale_run *r = data;
    gint64 t0 = g_get_monotonic_time();
    gpointer s = upscale_write_band(data);
    r->t_encode += g_get_monotonic_time() - t0; /* read by the main thread after the join */
    return s;
}

/* Hand band i to a writer thread (the previous one must be done). */
static void upscale_start_writer(upscale_run *r, int i)
{
    r->write_index = i;
    r->writing = g_thread_new("liif-writer", upscale_write_band_timed, r);
}

/* Model and engine; the exit code on failure (0 when ready), with the one-line message in *err (printed by the
 * caller, after any error of the input, which is read meanwhile). The engine's note on the device it chose goes to
 * note. */
static int upscale_prepare_engine(upscale_run *r, const upscale_plan *p, char *note, size_t note_size,
                                  liif_error *err)
{
    liif_status s = liif_model_load(p->model_path, &r->model, err);
    if (s != LIIF_OK)
        return CLI_EXIT_RUNTIME;
    s = liif_engine_new(r->model, p->backend, &r->engine, note, note_size, err);
    if (s != LIIF_OK) {
        if (s == LIIF_ERR_UNSUPPORTED && p->backend == LIIF_BACKEND_CUDA)
            return CLI_EXIT_NO_CUDA;
        return cli_exit_for_status(s);
    }
    if (p->detail >= 0 && liif_model_config(r->model)->n_decoders == 1) { /* asked for, but nothing to weigh */
        size_t len = strlen(note);
        snprintf(note + len, note_size - len, "%s--detail has no effect: %s has one decoder (no LIIF-GAN detail)",
                 len ? "; " : "", p->model_path);
    }
    char why[200];
    liif_engine_precision_name(r->engine, p->precision, why, sizeof why);
    if (why[0]) { /* the precision asked for fell back to fp32: say so in the same one-line note */
        size_t len = strlen(note);
        snprintf(note + len, note_size - len, "%s--precision %s: %s", len ? "; " : "", precision_names[p->precision],
                 why);
    }
    return 0;
}

/* The engine's options for the plan (detail < 0: the model's own), with the run's progress bar. */
static void upscale_options(upscale_run *r, const upscale_plan *q, liif_options *o)
{
    liif_options_init(o);
    o->detail = q->detail >= 0 ? q->detail : liif_model_default_detail(r->model);
    o->threads = q->threads;
    o->tile = q->tile;
    o->memory_budget = q->memory_budget;
    o->precision = q->precision;
    o->ensemble = q->ensemble;
    o->progress = cli_progress_update;
    o->progress_user = r->progress;
}

/* Buffers of the run; 0 when they could all be had. */
/* The model's view of a non-RGB input into r->rgb (RGB input is its own); 0 when it could be had. */
static int upscale_model_view(upscale_run *r)
{
    int ch = r->png.channels;
    if (ch == 3 || r->rgb)
        return 0;
    r->rgb = g_try_malloc_n((size_t)r->png.w * r->png.h, 3 * sizeof(float));
    if (r->rgb)
        cli_pixels_to_rgb(r->png.px, r->png.w, r->png.h, ch, r->rgb);
    return !r->rgb;
}

static int upscale_alloc(upscale_run *r, int band, int out_w)
{
    int ch = r->png.channels, bad = upscale_model_view(r);
    for (int i = 0; i < 2; i++) {
        r->bands[i].rgb = g_try_malloc_n((size_t)band * out_w, 3 * sizeof(float));
        if (ch != 3)
            r->bands[i].out = g_try_malloc_n((size_t)band * out_w, ch * sizeof(float));
        bad |= !r->bands[i].rgb || (ch != 3 && !r->bands[i].out);
    }
    return bad;
}

/* Whether a PNG's gAMA or cHRM says something other than sRGB (a JPEG without a profile is taken as sRGB). */
static int colour_differs_from_srgb(const liif_image_meta *m)
{
    static const int32_t srgb_chrm[8] = {31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000};
    if (m->srgb)
        return 0;
    if (m->gamma && (m->gamma < 44000 || m->gamma > 46500)) /* 1/2.2 is 45455 */
        return 1;
    for (int i = 0; m->has_chrm && i < 8; i++)
        if (abs(m->chrm[i] - srgb_chrm[i]) > 1000)
            return 1;
    return 0;
}

/* Compute and write the output band by band, each band written by a thread while the engine
 * computes the next (PNG filtering and deflate overlap the model); the exit code. */
static int upscale_stream(upscale_run *r, const upscale_plan *q, const char *note)
{
    int ch = r->png.channels;
    int band = band_rows_for(q, ch);
    if (upscale_alloc(r, band, q->out_w)) {
        cli_error("out of memory for bands of %d rows of %d px", band, q->out_w);
        return CLI_EXIT_RUNTIME;
    }
    r->plan = q;
    liif_options o;
    upscale_options(r, q, &o);

    liif_error err;
    int jpeg = q->out_format == LIIF_IMAGE_JPEG;
    liif_image_meta meta = r->png.meta;
    if (q->no_exif) {
        meta.exif = NULL;
        meta.exif_len = 0;
    }
    unsigned kept = 0, lost = liif_image_meta_has(&meta);
    liif_status s = liif_image_writer_open(q->out_path, q->out_format, q->out_w, q->out_h, ch,
                                           q->out_format != LIIF_IMAGE_PNG ? 8 : r->png.bit_depth, q->quality, &meta,
                                           &kept, &r->writer, &err);
    lost &= ~kept;
    if (s == LIIF_OK)
        liif_image_writer_set_threads(r->writer, q->threads);
    if (s == LIIF_OK && !q->quiet) { /* after the checks, so an error stays one line */
        if (note[0])
            cli_error("%s", note);
        if (r->read_note[0])
            cli_error("note: %s", r->read_note);
        if (r->orientation != 1)
            cli_error("note: %s: EXIF orientation %d applied: the output stands as viewers show the photo",
                      q->in_path, r->orientation);
        if (lost & LIIF_META_ICC)
            cli_error("note: %s: its ICC colour profile is not valid for a PNG of this image and was left out;"
                      " colour-managed viewers may show other colours", q->in_path);
        if ((lost & LIIF_META_COLOUR) && !(kept & LIIF_META_ICC) && colour_differs_from_srgb(&meta))
            cli_error("note: %s: its colour encoding (PNG %s) cannot be said in %s; viewers will take it as sRGB",
                      q->in_path, meta.gamma ? "gAMA" : "cHRM", q->out_path);
        if (lost & LIIF_META_EXIF)
            cli_error("note: %s: its EXIF (%zu bytes) %s and was left out of %s", q->in_path, meta.exif_len,
                      jpeg && meta.exif_len > LIIF_EXIF_JPEG_MAX ? "is too large for a JPEG marker" : "is malformed",
                      q->out_path);
        if (q->out_format != LIIF_IMAGE_PNG && r->png.bit_depth == 16)
            cli_error("note: %s is 16-bit; a %s holds 8 bits (name the output .png to keep 16)", q->in_path,
                      liif_image_format_name(q->out_format));
    }
    for (int y0 = 0, i = 0; s == LIIF_OK && y0 < q->out_h; y0 += band, i ^= 1) {
        band_buf *b = &r->bands[i];
        b->y0 = y0;
        b->rows = MIN(band, q->out_h - y0);
        gint64 t0 = g_get_monotonic_time();
        if (cli_progress_interrupted())
            s = liif_error_set(&err, LIIF_ERR_CANCELLED, "cancelled");
        else
            s = upscale_band(r, q, &o, b, &err);
        gint64 t1 = g_get_monotonic_time();
        s = upscale_wait_writer(r, s, &err); /* the previous band, written meanwhile */
        r->t_upscale += t1 - t0;
        r->t_wait += g_get_monotonic_time() - t1;
        if (s == LIIF_OK)
            upscale_start_writer(r, i);
    }
    gint64 t0 = g_get_monotonic_time();
    s = upscale_wait_writer(r, s, &err);
    if (s == LIIF_OK) {
        liif_image_writer *w = r->writer;
        r->writer = NULL; /* finish frees it whatever the outcome */
        s = liif_image_writer_finish(w, &err);
    }
    r->t_finish = g_get_monotonic_time() - t0;
    if (s == LIIF_ERR_CANCELLED || (s != LIIF_OK && cli_progress_interrupted())) {
        cli_error("interrupted: %s not written", q->out_path);
        return CLI_EXIT_INTERRUPTED;
    }
    if (s != LIIF_OK) {
        cli_error("%s", err.msg);
        return cli_exit_for_status(s);
    }
    return CLI_EXIT_OK;
}

/* An input read on a thread of its own: the one image of a run while the main thread loads the model and starts the
 * device (a GPU's context and uploads take as long as decoding a photo), and in a batch the next image while the
 * current one is upscaled. Errors wait in err until the image's turn, so they are said in order. */
typedef struct {
    const char *path;
    int deblock, threads; /* the plan's */
    liif_png png;
    int orientation;
    int deblocked;   /* a JPEG deblocked (liif_jpeg_deblock) */
    char note[700];  /* why a JPEG was not deblocked, when asked */
    gint64 t_read;   /* the read itself, on whichever thread ran it */
    liif_status status;
    liif_error err;
    GThread *thread; /* NULL when no thread could be had: then it was read by input_read_start */
    int pending;     /* started and not yet taken or dropped */
} input_read;

static gpointer input_read_run(gpointer data)
{
    input_read *j = data;
    gint64 t0 = g_get_monotonic_time();
    liif_image_format fmt;
    j->status = liif_image_read(j->path, &j->png, &fmt, &j->orientation, &j->err);
    if (j->status == LIIF_OK && j->deblock && fmt == LIIF_IMAGE_JPEG) {
        liif_error e;
        liif_status ds = liif_jpeg_deblock(j->path, &j->png, j->orientation, j->threads, &j->deblocked, &e);
        if (ds == LIIF_ERR_NOMEM) /* the image as decoded is still there: upscaled without */
            snprintf(j->note, sizeof j->note, "%s; upscaled as decoded", e.msg);
        else if (ds != LIIF_OK) {
            j->err = e;
            j->status = ds;
            liif_png_free(&j->png);
        } else if (!j->deblocked)
            snprintf(j->note, sizeof j->note,
                     "%s: --deblock takes gray or YCbCr JPEGs (full-resolution luma, chroma at least half); upscaled "
                     "as decoded", j->path);
    } else if (j->status == LIIF_OK && j->deblock)
        snprintf(j->note, sizeof j->note, "%s: --deblock is for JPEG input; this is a %s", j->path,
                 liif_image_format_name(fmt));
    j->t_read = g_get_monotonic_time() - t0;
    return NULL;
}

static void input_read_start(input_read *j, const char *path, const upscale_plan *p)
{
    *j = (input_read){.path = path, .deblock = p->deblock, .threads = p->threads, .orientation = 1, .pending = 1};
    j->thread = g_thread_try_new("liif-reader", input_read_run, j, NULL);
    if (!j->thread) /* no thread to be had: read it now */
        input_read_run(j);
}

/* Waits for the read; what it read moves into r, which holds no image. Returns its status, the message in j->err. */
static liif_status input_read_take(input_read *j, upscale_run *r)
{
    if (j->thread)
        g_thread_join(j->thread);
    j->thread = NULL;
    j->pending = 0;
    if (j->status == LIIF_OK) {
        r->png = j->png;
        r->have_png = 1;
        r->orientation = j->orientation;
        r->deblocked = j->deblocked;
        snprintf(r->read_note, sizeof r->read_note, "%s", j->note);
    }
    return j->status;
}

/* A read nobody will take (a batch stopped, or the model failed): waits for it and frees what it read. */
static void input_read_drop(input_read *j)
{
    if (!j->pending)
        return;
    if (j->thread)
        g_thread_join(j->thread);
    if (j->status == LIIF_OK)
        liif_png_free(&j->png);
    j->thread = NULL;
    j->pending = 0;
}

/* "1.5 s", "2 min 5 s", "1 h 20 min". */
static void format_duration(double s, char *buf, size_t n)
{
    if (s < 60)
        snprintf(buf, n, "%.*f s", s < 10 ? 1 : 0, s);
    else if (s < 3600)
        snprintf(buf, n, "%d min %d s", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, n, "%d h %d min", (int)(s / 3600), (int)(s / 60) % 60);
}

/* --preview: the output's centre, at most PREVIEW_SIDE px square, computed as the whole run would compute it (the
 * same engine, options and channels), written to q->preview_path; then how long the whole output would take, from
 * the crop's rate. */
static int upscale_preview(upscale_run *r, const upscale_plan *q, const char *note)
{
    const liif_png *in = &r->png;
    int ch = in->channels, pw = MIN(q->out_w, PREVIEW_SIDE), ph = MIN(q->out_h, PREVIEW_SIDE);
    liif_region reg = {q->out_w, q->out_h, (q->out_w - pw) / 2, (q->out_h - ph) / 2, pw, ph};
    float *rgb = g_try_malloc_n((size_t)pw * ph, 3 * sizeof(float));
    float *out = ch == 3 ? rgb : g_try_malloc_n((size_t)pw * ph, ch * sizeof(float));
    if (!rgb || !out || upscale_model_view(r)) {
        g_free(rgb);
        if (out != rgb)
            g_free(out);
        cli_error("out of memory for a %dx%d preview", pw, ph);
        return CLI_EXIT_RUNTIME;
    }
    if (!q->quiet && note[0])
        cli_error("%s", note);
    liif_options o;
    upscale_options(r, q, &o);
    liif_error err;
    liif_image img = {ch == 3 ? in->px : r->rgb, in->w, in->h, (size_t)in->w * 3};
    gint64 t0 = g_get_monotonic_time();
    liif_status s = liif_upscale_region(r->engine, &img, &reg, rgb, (size_t)pw * 3, &o, &err);
    double secs = (g_get_monotonic_time() - t0) * 1e-6;
    if (s == LIIF_OK && ch != 3) {
        cli_pixels_from_rgb(rgb, (size_t)pw * ph, ch, out);
        if (ch == 2 || ch == 4)
            s = liif_resample_bicubic_region(in->px, in->w, in->h, (size_t)in->w * ch, ch, ch - 1, &reg, out,
                                             (size_t)pw * ch, ch, ch - 1, &err);
    }
    liif_image_writer *wr = NULL;
    int depth = q->preview_format == LIIF_IMAGE_PNG ? in->bit_depth : 8;
    if (s == LIIF_OK)
        s = liif_image_writer_open(q->preview_path, q->preview_format, pw, ph, ch, depth, q->quality, &in->meta, NULL,
                                   &wr, &err);
    if (s == LIIF_OK && (s = liif_image_writer_rows(wr, out, ph, (size_t)pw * ch, &err)) == LIIF_OK) {
        s = liif_image_writer_finish(wr, &err);
        wr = NULL;
    }
    liif_image_writer_abort(wr);
    if (out != rgb)
        g_free(out);
    g_free(rgb);
    if (s == LIIF_ERR_CANCELLED || (s != LIIF_OK && cli_progress_interrupted())) {
        cli_error("interrupted: %s not written", q->preview_path);
        return CLI_EXIT_INTERRUPTED;
    }
    if (s != LIIF_OK) {
        cli_error("%s", err.msg);
        return cli_exit_for_status(s);
    }
    char crop[32], whole[32];
    format_duration(secs, crop, sizeof crop);
    format_duration(secs * ((double)q->out_w * q->out_h) / ((double)pw * ph), whole, sizeof whole);
    printf("preview: the %dx%d centre of the %dx%d output, in %s (%s); the whole output would take about %s here "
           "(without --preview, %s is written)\n",
           pw, ph, q->out_w, q->out_h, q->preview_path, crop, whole, q->out_path);
    return CLI_EXIT_OK;
}

/* round(v), halves up, and at least 1 (v > 0 and far below INT_MAX here: sides are limited before) */
static int side_round(double v)
{
    double r = floor(v + 0.5);
    return r < 1 ? 1 : r > INT_MAX ? INT_MAX : (int)r;
}

/* The output size of a w x h input by q's --size / --fit, into q->out_w x q->out_h. */
static void size_for_mode(int w, int h, upscale_plan *q)
{
    switch (q->size_mode) {
    case SZ_WIDTH: q->out_h = side_round((double)h * q->out_w / w); break;
    case SZ_HEIGHT: q->out_w = side_round((double)w * q->out_h / h); break;
    case SZ_FIT: {
        double s = MIN((double)q->out_w / w, (double)q->out_h / h);
        q->out_w = MIN(q->out_w, side_round(w * s));
        q->out_h = MIN(q->out_h, side_round(h * s));
        break;
    }
    default: break;
    }
}

/* Whether W x H is w x h scaled by one factor, up to rounding a side to whole pixels. */
static int same_aspect(int w, int h, int W, int H)
{
    return side_round((double)h * W / w) == H || side_round((double)w * H / h) == W;
}

/* The plan for the image read into r->png: q is p with the output size; the exit code of a bad size, or of alpha
 * asked into a JPEG (0 when it can go on). */
static int upscale_plan_image(const upscale_run *r, const upscale_plan *p, upscale_plan *q)
{
    liif_error err;
    liif_status s;
    *q = *p;
    if (q->by_scale)
        s = liif_size_for_scale(r->png.w, r->png.h, q->sx, q->sy, &q->out_w, &q->out_h, &err);
    else {
        size_for_mode(r->png.w, r->png.h, q);
        s = liif_check_size(r->png.w, r->png.h, q->out_w, q->out_h, &err);
        if (!s && q->batch && q->size_mode == SZ_EXACT && !same_aspect(r->png.w, r->png.h, q->out_w, q->out_h))
            cli_error("note: %s is %dx%d: --size %dx%d stretches it (--fit %dx%d keeps its aspect ratio)", q->in_path,
                      r->png.w, r->png.h, q->out_w, q->out_h, q->out_w, q->out_h);
    }
    if (s != LIIF_OK) {
        cli_error("%s", err.msg);
        return cli_exit_for_status(s);
    }
    int ch = r->png.channels;
    if (q->out_format == LIIF_IMAGE_JPEG && (ch == 2 || ch == 4)) {
        cli_error("%s: a JPEG has no alpha channel and %s has one: name the output .png to keep it", q->out_path,
                  q->in_path);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

static int upscale_execute(upscale_run *r, const upscale_plan *p)
{
    liif_error model_err;
    input_read in;
    char note[512] = "";
    gint64 t0 = g_get_monotonic_time();
    input_read_start(&in, p->in_path, p);
    int code = upscale_prepare_engine(r, p, note, sizeof note, &model_err);
    r->t_model = g_get_monotonic_time() - t0;
    liif_status rs = input_read_take(&in, r);
    r->t_read = in.t_read;
    r->t_start = g_get_monotonic_time() - t0;
    /* Errors in the order a user fixes them: the input, its output size, then the model and device. */
    if (rs != LIIF_OK) {
        cli_error("%s", in.err.msg);
        return CLI_EXIT_RUNTIME;
    }
    upscale_plan q; /* the plan with the output size filled in */
    int bad = upscale_plan_image(r, p, &q);
    if (bad)
        return bad;
    if (code) {
        cli_error("%s", model_err.msg);
        return code;
    }
    return q.preview_path ? upscale_preview(r, &q, note) : upscale_stream(r, &q, note);
}

/* --timing: one line on where the wall time went. The writer encodes band k while the engine upscales band
 * k + 1, so only the wait after the last band and the file's finish add to the total. */
static void upscale_print_timing(const upscale_run *r, const upscale_plan *p, gint64 total)
{
    const char *f = liif_image_format_name(p->out_format);
    char ahead[96] = "";
    if (r->t_read_ahead)
        snprintf(ahead, sizeof ahead, " (read ahead of its turn on a thread: %.3f)", r->t_read_ahead * 1e-6);
    printf("time: %.3f s in all: reading %.3f%s%s, model and device %.3f (side by side: %.3f), upscaling %.3f, waiting"
           " for the %s writer %.3f, finishing the file %.3f; %s encoding took %.3f on the writer thread (%.3f of it"
           " during the upscale)\n",
           total * 1e-6, r->t_read * 1e-6, r->deblocked ? " (deblocking the JPEG included)" : "", ahead, r->t_model * 1e-6, r->t_start * 1e-6, r->t_upscale * 1e-6, f,
           r->t_wait * 1e-6, r->t_finish * 1e-6, f, r->t_encode * 1e-6,
           MAX(0, r->t_encode - r->t_wait - r->t_finish) * 1e-6);
}

/* --output-dir: the output path of each input (DIR/its name; NAME.png when its extension is not an image format's)
 * and its format, into out[] and fmt[]; 0 (message printed) when two inputs would have one output or an output
 * would replace its input. */
static int batch_outputs(const upscale_args *a, char **out, liif_image_format *fmt)
{
    unsigned n = g_strv_length(a->files);
    for (unsigned i = 0; i < n; i++) {
        char *base = g_path_get_basename(a->files[i]);
        liif_error err;
        if (liif_image_format_for_name(base, &fmt[i], &err) != LIIF_OK) {
            char *dot = strrchr(base, '.');
            *dot = '\0'; /* there is one: a name without an extension is a PNG's */
            char *png = g_strconcat(base, ".png", NULL);
            g_free(base);
            base = png;
            fmt[i] = LIIF_IMAGE_PNG;
        }
        out[i] = g_build_filename(a->output_dir, base, NULL);
        g_free(base);
    }
    for (unsigned i = 0; i < n; i++) {
        GStatBuf si, so;
        if (g_stat(a->files[i], &si) == 0 && g_stat(out[i], &so) == 0 && si.st_dev == so.st_dev &&
            si.st_ino == so.st_ino) {
            cli_error("%s would replace its input %s: choose another --output-dir", out[i], a->files[i]);
            return 0;
        }
        for (unsigned j = 0; j < i; j++)
            if (strcmp(out[i], out[j]) == 0) {
                cli_error("%s and %s would both be written to %s", a->files[j], a->files[i], out[i]);
                return 0;
            }
    }
    return 1;
}

/* A batch reads the next image while it upscales the current one, unless the current one's float pixels take more than
 * this: then one at a time, so that two such photos (e.g. 90 MP) are never held at once. */
#define READ_AHEAD_MAX_BYTES ((size_t)1 << 30)

/* liif upscale IN... --output-dir DIR: the model loaded once while the first image is read, each image upscaled and
 * written in turn while the next is read. An image that fails is reported and the others go on (exit 1 at the end);
 * Ctrl-C stops the batch (130). */
static int upscale_batch(const upscale_args *a, const upscale_plan *p)
{
    if (!g_file_test(a->output_dir, G_FILE_TEST_IS_DIR)) {
        cli_error("%s: not a folder (--output-dir)", a->output_dir);
        return CLI_EXIT_USAGE;
    }
    unsigned n = g_strv_length(a->files);
    char **out = g_new0(char *, n + 1);
    liif_image_format *fmt = g_new0(liif_image_format, n);
    upscale_run r = {0};
    input_read next = {0};
    int code = batch_outputs(a, out, fmt) ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    char note[512] = "";
    liif_error err;
    if (code == CLI_EXIT_OK) {
        r.progress = cli_progress_new(!p->quiet);
        input_read_start(&next, a->files[0], p);
        if ((code = upscale_prepare_engine(&r, p, note, sizeof note, &err)))
            cli_error("%s", err.msg);
    }
    unsigned failed = 0, written = 0;
    for (unsigned i = 0; code == CLI_EXIT_OK && i < n && !cli_progress_interrupted(); i++) {
        upscale_plan q = *p;
        q.in_path = a->files[i];
        q.out_path = out[i];
        q.out_format = fmt[i];
        if (!p->quiet)
            cli_error("[%u/%u] %s -> %s", i + 1, n, q.in_path, q.out_path);
        gint64 t0 = g_get_monotonic_time();
        int ahead = next.pending; /* read while the model loaded or the previous image was upscaled */
        if (!next.pending)
            input_read_start(&next, q.in_path, p);
        liif_status rs = input_read_take(&next, &r);
        liif_error read_err = next.err;
        r.t_read = g_get_monotonic_time() - t0;
        r.t_read_ahead = ahead ? next.t_read : 0;
        if (i + 1 < n && (rs != LIIF_OK || (size_t)r.png.w * r.png.h * r.png.channels * sizeof(float) <=
                                                   READ_AHEAD_MAX_BYTES))
            input_read_start(&next, a->files[i + 1], p);
        int c;
        if (rs != LIIF_OK) {
            cli_error("%s", read_err.msg);
            c = CLI_EXIT_RUNTIME;
        } else {
            upscale_plan qi;
            if (!(c = upscale_plan_image(&r, &q, &qi))) {
                c = upscale_stream(&r, &qi, i == 0 ? note : "");
                if (c == CLI_EXIT_OK && p->timing)
                    upscale_print_timing(&r, &qi, g_get_monotonic_time() - t0);
            }
        }
        upscale_image_clear(&r);
        if (c == CLI_EXIT_INTERRUPTED) {
            cli_error("the batch stopped: %u of %u images written", written, n);
            code = c;
        }
        else if (c)
            failed++;
        else
            written++;
    }
    input_read_drop(&next);
    if (code == CLI_EXIT_OK && cli_progress_interrupted()) {
        cli_error("interrupted after %u of %u images", written + failed, n);
        code = CLI_EXIT_INTERRUPTED;
    }
    if (code == CLI_EXIT_OK && failed) {
        cli_error("%u of %u images failed (said above); %u written", failed, n, written);
        code = CLI_EXIT_RUNTIME;
    }
    upscale_run_clear(&r);
    g_strfreev(out);
    g_free(fmt);
    return code;
}

int cli_upscale_main(int argc, char **argv)
{
    upscale_args a = {0};
    upscale_plan p = {0};
    GError *gerr = NULL;
    g_set_prgname("liif upscale");
    GOptionContext *ctx = upscale_context(&a);
    int code = CLI_EXIT_USAGE;
    if (!g_option_context_parse(ctx, &argc, &argv, &gerr)) {
        cli_error("%s (try 'liif upscale --help')", gerr->message);
        g_error_free(gerr);
    } else if (!plan_from_args(&a, &p)) {
        code = CLI_EXIT_USAGE;
    } else if (!(p.model_path = find_model(a.model))) {
        code = CLI_EXIT_RUNTIME;
    } else if (a.output_dir) {
        code = upscale_batch(&a, &p);
    } else {
        upscale_run r = {0};
        r.progress = cli_progress_new(!p.quiet);
        gint64 t0 = g_get_monotonic_time();
        code = upscale_execute(&r, &p);
        if (code == CLI_EXIT_OK && p.timing) /* before the clear, which zeroes the parts */
            upscale_print_timing(&r, &p, g_get_monotonic_time() - t0);
        upscale_run_clear(&r);
    }
    g_free(p.model_path);
    upscale_args_clear(&a);
    g_option_context_free(ctx);
    return code;
}
