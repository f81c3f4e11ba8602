/* eval.c: `liif eval`: PSNR/SSIM, sharpness and detail PSNR (and LPIPS) of a model and of bicubic on a folder of HR PNG, JPEG or WebP images, tables and comparison strips. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "eval.h"
#include "lpips.h"
#include "metrics.h"
#include "image.h"
#include "jpeg_image.h"
#include "resize.h"

enum { MAX_SCALES = 64, STRIP_SEP = 2 };
enum { METHOD_BICUBIC, METHOD_MODEL, N_METHODS };
static const char *const method_names[N_METHODS] = {"bicubic", "model"};

typedef struct {
    char *model_path, *data_dir, *out_dir, *lpips_path;
    int n_scales;
    double scales[MAX_SCALES];
    char scale_label[MAX_SCALES][24]; /* "x4.5" */
    liif_eval_protocol protocol;
    liif_backend_kind backend;
    double detail;
    int threads, strips, crop;
    int quiet;
    int ensemble; /* --ensemble: liif_options.ensemble */
    int lr_jpeg;  /* --lr-jpeg Q: the LR image through a JPEG of quality Q (0: none) */
    int deblock;  /* --deblock: that JPEG deblocked (liif_jpeg_deblock) */
    int lr_jpeg_420; /* --lr-jpeg-420: that JPEG's chroma at half resolution */
} eval_plan;

/* Per method and scale: sums over the images measured. */
typedef struct {
    double psnr, ssim, sharp, dpsnr, lpips, grid;
    int n, n_grid; /* n_grid: the images with a grid score (NaN where the region is too small for one) */
} eval_sum;

/* One comparison strip per scale: rows of [bicubic | model | ground truth] crops. */
typedef struct {
    float *px; /* width * height * 3 */
    int width, height, rows;
} eval_strip;

/* ------------------------------------------------------------ options */

static const char eval_description[] =
    "For each PNG, JPEG or WebP in DIR (sorted by name) and each scale s: the HR image is cropped to a\n"
    "multiple of the LR size (h = floor(H/s + 1e-9), crop round(h s)), the LR image made\n"
    "with PIL-compatible bicubic downsampling (8-bit), then the model predicts the whole HR\n"
    "grid (float, clamped to [0,1]) and bicubic upsampling of the LR image is the baseline.\n"
    "Protocols: benchmark = PSNR/SSIM on Y (65.738 R + 129.057 G + 25.064 B)/256, shave\n"
    "ceil(s) px; div2k = RGB, shave ceil(s) + 6. SSIM: Gaussian 11x11, sigma 1.5. With\n"
    "--lpips, AlexNet-LPIPS v0.1 on the same shaved region, always RGB (inputs mapped to\n"
    "[-1,1]); it needs at least 31x31 px there. Detail figures, on the channels and region\n"
    "of PSNR, with H(I) = I - G(I) (G: Gaussian blur, sigma 1.5, 9 taps, symmetric edges):\n"
    "sharpness = sum H(out)^2 / sum H(gt)^2 (1 = the original's fine detail; bicubic has\n"
    "far less, a GAN more), detail PSNR = PSNR of H(out) against H(gt) (detail in the right\n"
    "place raises it, invented detail lowers it). Grid score: the power of the output at the\n"
    "frequencies of the LR pixel grid (the cell, its overtones) over that of their neighbours,\n"
    "about 1 without a pattern repeated in every cell, several for one of a single 8-bit level.\n"
    "Results are averaged per image over the set and printed as a Markdown table (cells\n"
    "PSNR / SSIM / sharpness / detail PSNR / grid, then LPIPS with --lpips);\n"
    "with --out, table.md, table.csv, per_image.csv and strip_xS.png (bicubic | model |\n"
    "ground truth crops of the first --strips images) are written there. Images that cannot\n"
    "be read, or are too small for a scale, are skipped with a warning.\n"
    "\n"
    "Exit status: 0 ok, 1 runtime error (I/O, bad model, no images), 2 usage error (bad\n"
    "option), 3 CUDA requested but unavailable, 130 interrupted (Ctrl-C).\n";

typedef struct {
    char *model, *data, *scales, *out, *detail, *lpips, *protocol, *device;
    int threads, strips, crop, lr_jpeg;
    gboolean quiet, ensemble, deblock, lr_jpeg_420;
    char **rest;
} eval_args;

static void eval_args_clear(eval_args *a)
{
    g_free(a->model); g_free(a->data); g_free(a->scales); g_free(a->out);
    g_free(a->detail); g_free(a->lpips); g_free(a->protocol); g_free(a->device);
    g_strfreev(a->rest);
}

static GOptionContext *eval_context(eval_args *a)
{
    const GOptionEntry entries[] = {
        {"model", 'm', 0, G_OPTION_ARG_FILENAME, &a->model,
         "Model weights (safetensors; default $LIIF_MODEL)", "FILE"},
        {"data", 0, 0, G_OPTION_ARG_FILENAME, &a->data, "Folder of HR PNG, JPEG or WebP images", "DIR"},
        {"scales", 0, 0, G_OPTION_ARG_STRING, &a->scales,
         "Comma-separated scales >= 1 (default 2,3,4)", "S,S,..."},
        {"out", 'o', 0, G_OPTION_ARG_FILENAME, &a->out,
         "Write table.md, table.csv and comparison strips here", "DIR"},
        {"protocol", 0, 0, G_OPTION_ARG_STRING, &a->protocol,
         "benchmark (Y, shave ceil(s); default) or div2k (RGB, shave ceil(s)+6)", "P"},
        {"detail", 'd', 0, G_OPTION_ARG_STRING, &a->detail,
         "LIIF-GAN detail weight in [0,1] (default: the model's own, its liif.detail metadata, else 1)", "A"},
        {"lpips", 0, 0, G_OPTION_ARG_FILENAME, &a->lpips,
         "AlexNet-LPIPS v0.1 weights (safetensors, keys of the lpips package's alex.pth)", "FILE"},
        {"threads", 't', 0, G_OPTION_ARG_INT, &a->threads, "CPU threads (default 0: all cores)",
         "N"},
        {"strips", 0, 0, G_OPTION_ARG_INT, &a->strips,
         "Images shown in each comparison strip (default 3)", "N"},
        {"crop", 0, 0, G_OPTION_ARG_INT, &a->crop,
         "Side of the crops in the strips, px (default 96)", "N"},
        {"device", 0, 0, G_OPTION_ARG_STRING, &a->device,
         "Compute device: auto, cpu, cpu-ref or cuda (default auto)", "DEVICE"},
        {"quiet", 'q', 0, G_OPTION_ARG_NONE, &a->quiet, "No progress bar, notes or warnings",
         NULL},
        {"ensemble", 0, 0, G_OPTION_ARG_NONE, &a->ensemble,
         "The model's self-ensemble (8 turns of the input, as liif upscale --ensemble): about 8x the time", NULL},
        {"lr-jpeg", 0, 0, G_OPTION_ARG_INT, &a->lr_jpeg,
         "The LR image saved as a JPEG of quality Q (1-100; 4:4:4 unless --lr-jpeg-420) and read back, for the model "
         "and bicubic alike: how they do on compressed photos", "Q"},
        {"lr-jpeg-420", 0, 0, G_OPTION_ARG_NONE, &a->lr_jpeg_420,
         "With --lr-jpeg: chroma at half resolution both ways (4:2:0, as cameras and most programs save JPEGs)", NULL},
        {"deblock", 0, 0, G_OPTION_ARG_NONE, &a->deblock,
         "With --lr-jpeg: that JPEG deblocked, as liif upscale --deblock does", NULL},
        {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &a->rest, NULL, NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *ctx = g_option_context_new("--model FILE --data DIR [--scales 2,3,4]");
    g_option_context_set_summary(ctx, "Measure a LIIF / LIIF-GAN model against bicubic "
                                      "(PSNR, SSIM, sharpness, detail PSNR, optionally LPIPS) on a folder of HR images.");
    g_option_context_set_description(ctx, eval_description);
    g_option_context_add_main_entries(ctx, entries, NULL);
    return ctx;
}

static int parse_scales(const char *text, eval_plan *p)
{
    char **items = g_strsplit(text, ",", -1);
    int ok = 1;
    p->n_scales = 0;
    for (char **it = items; *it && ok; it++) {
        char *s = g_strstrip(*it), *end = NULL;
        double v = g_ascii_strtod(s, &end);
        if (!*s || end == s || *end != '\0' || !isfinite(v) || v < 1.0 || v > 1000.0) {
            cli_error("invalid --scales '%s': '%s' is not a number from 1 to 1000", text, s);
            ok = 0;
        } else if (p->n_scales == MAX_SCALES) {
            cli_error("invalid --scales '%s': at most %d scales", text, MAX_SCALES);
            ok = 0;
        } else {
            p->scales[p->n_scales] = v;
            snprintf(p->scale_label[p->n_scales], sizeof p->scale_label[0], "x%g", v);
            p->n_scales++;
        }
    }
    if (ok && p->n_scales == 0) {
        cli_error("invalid --scales '%s': no scale given", text);
        ok = 0;
    }
    g_strfreev(items);
    return ok;
}

static int plan_from_args(const eval_args *a, eval_plan *p)
{
    if (a->rest && a->rest[0]) {
        cli_error("unexpected argument '%s' (try 'liif eval --help')", a->rest[0]);
        return 0;
    }
    if (!a->data) {
        cli_error("no data folder: give --data DIR (try 'liif eval --help')");
        return 0;
    }
    if (!parse_scales(a->scales ? a->scales : "2,3,4", p))
        return 0;
    p->protocol = LIIF_PROTOCOL_BENCHMARK;
    if (a->protocol) {
        if (!strcmp(a->protocol, "div2k"))
            p->protocol = LIIF_PROTOCOL_DIV2K;
        else if (strcmp(a->protocol, "benchmark")) {
            cli_error("unknown --protocol '%s': use benchmark or div2k", a->protocol);
            return 0;
        }
    }
    p->detail = -1; /* the model's own */
    if (a->detail) {
        char *end = NULL;
        p->detail = g_ascii_strtod(a->detail, &end);
        if (end == a->detail || *end || !(p->detail >= 0 && p->detail <= 1)) {
            cli_error("--detail must be a number in [0, 1], got '%s'", a->detail);
            return 0;
        }
    }
    if (a->lr_jpeg < 0 || a->lr_jpeg > 100 || ((a->deblock || a->lr_jpeg_420) && !a->lr_jpeg)) {
        cli_error("--lr-jpeg takes a quality of 1 to 100; --deblock and --lr-jpeg-420 need --lr-jpeg");
        return 0;
    }
    if (a->threads < 0 || a->strips < 0 || a->crop < 0 || a->crop > 4096) {
        cli_error("--threads and --strips must be 0 or more, --crop 0 to 4096");
        return 0;
    }
    p->backend = LIIF_BACKEND_AUTO;
    if (a->device) {
        static const char *const names[] = {"auto", "cpu", "cpu-ref", "cuda"};
        static const liif_backend_kind kinds[] = {LIIF_BACKEND_AUTO, LIIF_BACKEND_CPU,
                                                  LIIF_BACKEND_CPU_REF, LIIF_BACKEND_CUDA};
        int found = 0;
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
            if (!strcmp(a->device, names[i])) {
                p->backend = kinds[i];
                found = 1;
            }
        if (!found) {
            cli_error("unknown --device '%s': use auto, cpu, cpu-ref or cuda", a->device);
            return 0;
        }
    }
    const char *model = a->model ? a->model : g_getenv("LIIF_MODEL");
    if (!model || !*model) {
        cli_error("no model: give --model FILE or set LIIF_MODEL");
        return 0;
    }
    p->model_path = g_strdup(model);
    p->data_dir = g_strdup(a->data);
    p->out_dir = a->out ? g_strdup(a->out) : NULL;
    p->lpips_path = a->lpips ? g_strdup(a->lpips) : NULL;
    p->threads = a->threads;
    p->strips = a->strips ? a->strips : 3;
    p->crop = a->crop ? a->crop : 96;
    p->quiet = a->quiet;
    p->ensemble = a->ensemble;
    p->lr_jpeg = a->lr_jpeg;
    p->deblock = a->deblock;
    p->lr_jpeg_420 = a->lr_jpeg_420;
    return 1;
}

/* ------------------------------------------------------------- images */

static gint compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* PNG, JPEG and WebP files of dir, sorted; NULL (message printed) when the folder cannot be read or holds none. */
GPtrArray *cli_list_images(const char *dir)
{
    GStatBuf st;
    if (g_stat(dir, &st) != 0) {
        cli_error("cannot open data folder %s: %s", dir, g_strerror(errno));
        return NULL;
    }
    GDir *d = S_ISDIR(st.st_mode) ? g_dir_open(dir, 0, NULL) : NULL;
    if (!d) {
        cli_error("cannot open data folder %s: %s", dir,
                  S_ISDIR(st.st_mode) ? "cannot be read" : "not a folder");
        return NULL;
    }
    GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
    const char *name;
    while ((name = g_dir_read_name(d))) {
        char *lower = g_ascii_strdown(name, -1);
        if ((g_str_has_suffix(lower, ".png") || g_str_has_suffix(lower, ".jpg") || g_str_has_suffix(lower, ".jpeg") ||
             g_str_has_suffix(lower, ".webp")) &&
            name[0] != '.')
            g_ptr_array_add(files, g_build_filename(dir, name, NULL));
        g_free(lower);
    }
    g_dir_close(d);
    g_ptr_array_sort(files, compare_names);
    if (files->len == 0) {
        cli_error("no PNG, JPEG or WebP images in data folder %s", dir);
        g_ptr_array_free(files, TRUE);
        return NULL;
    }
    return files;
}

static void warn(const eval_plan *p, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void warn(const eval_plan *p, const char *fmt, ...)
{
    if (p->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    cli_error("warning: %s", msg);
    g_free(msg);
}

/* ------------------------------------------------------------- strips */

static int strip_cell(const eval_plan *p) { return p->crop; }

static int strip_alloc(eval_strip *s, const eval_plan *p, int rows)
{
    int c = strip_cell(p);
    s->width = 3 * c + 2 * STRIP_SEP;
    s->height = rows * c + (rows - 1) * STRIP_SEP;
    s->rows = 0;
    s->px = g_try_malloc_n((size_t)s->width * s->height, 3 * sizeof(float));
    if (!s->px) return 0;
    for (size_t i = 0; i < (size_t)s->width * s->height * 3; i++) s->px[i] = 1.0f; /* white */
    return 1;
}

/* Row `s->rows`: the centred crop (at most cell x cell) of each of the three w x h images,
 * centred in its cell; the rest of the cell mid-gray. */
static void strip_add_row(eval_strip *s, const eval_plan *p, const float *const img[3], int w, int h)
{
    int c = strip_cell(p);
    int cw = MIN(c, w), chh = MIN(c, h);
    int x0 = (w - cw) / 2, y0 = (h - chh) / 2;
    int oy = s->rows * (c + STRIP_SEP);
    for (int k = 0; k < 3; k++) {
        int ox = k * (c + STRIP_SEP);
        for (int y = 0; y < c; y++)
            for (int x = 0; x < c; x++) {
                float *d = s->px + ((size_t)(oy + y) * s->width + ox + x) * 3;
                int sx = x - (c - cw) / 2, sy = y - (c - chh) / 2;
                if (sx < 0 || sy < 0 || sx >= cw || sy >= chh) {
                    d[0] = d[1] = d[2] = 0.5f;
                    continue;
                }
                const float *q = img[k] + ((size_t)(y0 + sy) * w + x0 + sx) * 3;
                for (int i = 0; i < 3; i++) d[i] = CLAMP(q[i], 0.0f, 1.0f);
            }
    }
    s->rows++;
}

static int strip_write(const eval_strip *s, const eval_plan *p, const char *label)
{
    if (!s->px || s->rows == 0) return 1;
    int c = strip_cell(p);
    liif_png img = {.w = s->width, .h = s->rows * c + (s->rows - 1) * STRIP_SEP, .channels = 3, .bit_depth = 8,
                    .px = s->px};
    char *name = g_strdup_printf("strip_%s.png", label);
    char *path = g_build_filename(p->out_dir, name, NULL);
    liif_error err;
    int ok = liif_png_write(path, &img, &err) == LIIF_OK;
    if (!ok) cli_error("%s", err.msg);
    g_free(name);
    g_free(path);
    return ok;
}

/* ------------------------------------------------------------- tables */

static char *table_markdown(const eval_plan *p, eval_sum sums[N_METHODS][MAX_SCALES], int lpips)
{
    GString *t = g_string_new("| method (");
    if (p->lr_jpeg)
        g_string_append_printf(t, "LR as JPEG q%d%s%s; ", p->lr_jpeg, p->lr_jpeg_420 ? " 4:2:0" : "",
                               p->deblock ? ", deblocked" : "");
    g_string_append(t, lpips ? "PSNR / SSIM / sharpness / detail PSNR / grid / LPIPS) |"
                             : "PSNR / SSIM / sharpness / detail PSNR / grid) |");
    for (int j = 0; j < p->n_scales; j++) g_string_append_printf(t, " %s |", p->scale_label[j]);
    g_string_append(t, "\n|---|");
    for (int j = 0; j < p->n_scales; j++) g_string_append(t, "---|");
    g_string_append_c(t, '\n');
    for (int m = 0; m < N_METHODS; m++) {
        g_string_append_printf(t, "| %s%s |", method_names[m], m && p->ensemble ? " (self-ensemble)" : "");
        for (int j = 0; j < p->n_scales; j++) {
            const eval_sum *s = &sums[m][j];
            if (s->n == 0) {
                g_string_append(t, " - |");
                continue;
            }
            g_string_append_printf(t, " %.2f / %.4f / %.3f / %.2f", s->psnr / s->n, s->ssim / s->n,
                                   s->sharp / s->n, s->dpsnr / s->n);
            if (s->n_grid) g_string_append_printf(t, " / %.2f", s->grid / s->n_grid);
            else g_string_append(t, " / -");
            if (lpips) g_string_append_printf(t, " / %.4f", s->lpips / s->n);
            g_string_append(t, " |");
        }
        g_string_append_c(t, '\n');
    }
    return g_string_free(t, FALSE);
}

static char *table_csv(const eval_plan *p, eval_sum sums[N_METHODS][MAX_SCALES], int lpips)
{
    GString *t = g_string_new("method");
    for (int j = 0; j < p->n_scales; j++) {
        g_string_append_printf(t, ",%s psnr,%s ssim,%s sharpness,%s detail psnr,%s grid", p->scale_label[j],
                               p->scale_label[j], p->scale_label[j], p->scale_label[j], p->scale_label[j]);
        if (lpips) g_string_append_printf(t, ",%s lpips", p->scale_label[j]);
    }
    g_string_append_c(t, '\n');
    for (int m = 0; m < N_METHODS; m++) {
        g_string_append(t, method_names[m]);
        for (int j = 0; j < p->n_scales; j++) {
            const eval_sum *s = &sums[m][j];
            if (s->n == 0)
                g_string_append(t, lpips ? ",,,,,," : ",,,,,");
            else {
                g_string_append_printf(t, ",%.4f,%.6f,%.6f,%.4f,", s->psnr / s->n, s->ssim / s->n,
                                       s->sharp / s->n, s->dpsnr / s->n);
                if (s->n_grid) g_string_append_printf(t, "%.4f", s->grid / s->n_grid);
                if (lpips) g_string_append_printf(t, ",%.6f", s->lpips / s->n);
            }
        }
        g_string_append_c(t, '\n');
    }
    return g_string_free(t, FALSE);
}

static int write_text(const eval_plan *p, const char *name, const char *text)
{
    char *path = g_build_filename(p->out_dir, name, NULL);
    GError *gerr = NULL;
    int ok = g_file_set_contents(path, text, -1, &gerr);
    if (!ok) {
        cli_error("cannot write %s: %s", path, gerr->message);
        g_error_free(gerr);
    }
    g_free(path);
    return ok;
}

/* ------------------------------------------------------------- the run */

typedef struct {
    liif_model *model;
    liif_engine *engine;
    liif_lpips *lpips;  /* NULL without --lpips */
    cli_progress *progress;
    eval_sum sums[N_METHODS][MAX_SCALES];
    eval_strip strips[MAX_SCALES];
    int n_strip_images; /* images that go into the strips */
    int images_done;    /* images read successfully */
    GString *per_image; /* per_image.csv: image,scale,method,psnr,ssim,sharpness,detail_psnr[,lpips] */
    double detail;      /* --detail, or the model's own (liif_model_default_detail) */
} eval_run;

/* Buffers of one (image, scale) measurement. */
typedef struct {
    float *crop, *lr, *model, *bicubic;
} eval_bufs;

/* One image at one scale: LR, both predictions, metrics, strip row. LIIF_ERR_ARG: the
 * image does not fit this scale (skipped with a warning by the caller). */
/* --lr-jpeg: lr (w x h RGB) replaced by what a JPEG of it at quality p->lr_jpeg (4:4:4, or 4:2:0 with
 * --lr-jpeg-420) decodes to (deblocked with --deblock), through a temporary file. */
static liif_status lr_through_jpeg(const eval_plan *p, float *lr, int w, int h, liif_error *err)
{
    GError *gerr = NULL;
    char *path = NULL;
    int fd = g_file_open_tmp("liif-eval-XXXXXX.jpg", &path, &gerr);
    if (fd < 0) {
        liif_status st = liif_error_set(err, LIIF_ERR_IO, "a temporary JPEG: %s", gerr->message);
        g_error_free(gerr);
        return st;
    }
    close(fd);
    liif_png img = {0};
    liif_jpeg_writer *wr;
    liif_status st = p->lr_jpeg_420 ? liif_jpeg_writer_open_420(path, w, h, 3, p->lr_jpeg, &wr, err)
                                    : liif_jpeg_writer_open(path, w, h, 3, p->lr_jpeg, &wr, err);
    if (st == LIIF_OK) {
        st = liif_jpeg_writer_rows(wr, lr, h, (size_t)w * 3, err);
        st = st == LIIF_OK ? liif_jpeg_writer_finish(wr, err) : (liif_jpeg_writer_abort(wr), st);
    }
    if (st == LIIF_OK) st = liif_image_read(path, &img, NULL, NULL, err);
    int done = 0;
    if (st == LIIF_OK && p->deblock) {
        st = liif_jpeg_deblock(path, &img, 1, p->threads, &done, err);
        if (st == LIIF_OK && !done) st = liif_error_set(err, LIIF_ERR_FORMAT, "%s: not deblocked", path);
    }
    if (st == LIIF_OK && (img.w != w || img.h != h || img.channels != 3))
        st = liif_error_set(err, LIIF_ERR_FORMAT, "%s: read back as %dx%d, %d channels", path, img.w, img.h,
                            img.channels);
    if (st == LIIF_OK) memcpy(lr, img.px, (size_t)w * h * 3 * sizeof *lr);
    liif_png_free(&img);
    unlink(path);
    g_free(path);
    return st;
}

static liif_status eval_one(eval_run *r, const eval_plan *p, const char *name, const float *hr,
                            int w, int h, int j, int strip_row, double work_done, double work_span,
                            liif_error *err)
{
    double s = p->scales[j];
    int lw, lh, cw, chh;
    liif_status st = liif_eval_lr_size(w, h, s, &lw, &lh, &cw, &chh, err);
    if (st != LIIF_OK) return st;
    int shave = liif_protocol_shave(p->protocol, s);
    if (cw - 2 * shave < 11 || chh - 2 * shave < 11)
        return liif_error_set(err, LIIF_ERR_ARG,
                              "%dx%d is too small for SSIM after a %d px border", cw, chh, shave);
    /* LPIPS (our choice; MODEL.md 4 only fixes AlexNet v0.1 and the [-1,1] inputs): the same
     * shaved region as PSNR/SSIM, so all three metrics compare the same pixels, but always RGB
     * (the network reads colour). Too small a region skips the image at this scale. */
    int lp_w = cw - 2 * shave, lp_h = chh - 2 * shave;
    if (r->lpips && (lp_w < LIIF_LPIPS_MIN_SIDE || lp_h < LIIF_LPIPS_MIN_SIDE))
        return liif_error_set(err, LIIF_ERR_ARG, "%dx%d is too small for LPIPS after a %d px border",
                              cw, chh, shave);
    liif_lpips_feats *lp_gt = NULL, *lp_pred = NULL;
    eval_bufs b = {0};
    size_t hr_n = (size_t)cw * chh * 3;
    b.crop = g_try_malloc_n(hr_n, sizeof(float));
    b.lr = g_try_malloc_n((size_t)lw * lh * 3, sizeof(float));
    b.model = g_try_malloc_n(hr_n, sizeof(float));
    b.bicubic = g_try_malloc_n(hr_n, sizeof(float));
    if (!b.crop || !b.lr || !b.model || !b.bicubic) {
        st = liif_error_set(err, LIIF_ERR_NOMEM, "out of memory for a %dx%d image", cw, chh);
        goto done;
    }
    st = liif_eval_make_lr(hr, w, h, s, b.crop, b.lr, err);
    if (st == LIIF_OK && p->lr_jpeg) st = lr_through_jpeg(p, b.lr, lw, lh, err);
    if (st == LIIF_OK) st = liif_resize_bicubic_f32(b.lr, lw, lh, 3, b.bicubic, cw, chh, err);
    if (st != LIIF_OK) goto done;

    liif_options o;
    liif_options_init(&o);
    o.detail = r->detail;
    o.threads = p->threads;
    o.ensemble = p->ensemble;
    o.progress = cli_progress_update;
    o.progress_user = r->progress;
    cli_progress_set_span(r->progress, work_done, work_span);
    liif_image img = {b.lr, lw, lh, (size_t)lw * 3};
    liif_region reg = {cw, chh, 0, 0, cw, chh};
    st = liif_upscale_region(r->engine, &img, &reg, b.model, (size_t)cw * 3, &o, err);
    if (st != LIIF_OK) goto done;
    for (size_t i = 0; i < hr_n; i++) b.model[i] = CLAMP(b.model[i], 0.0f, 1.0f);

    size_t lp_origin = ((size_t)shave * cw + shave) * 3, lp_stride = (size_t)cw * 3;
    if (r->lpips) { /* the ground truth's features, once for both methods */
        st = liif_lpips_feats_new(lp_h, lp_w, &lp_gt, err);
        if (st == LIIF_OK) st = liif_lpips_feats_new(lp_h, lp_w, &lp_pred, err);
        if (st == LIIF_OK) st = liif_lpips_forward_rgb(r->lpips, b.crop + lp_origin, lp_stride, lp_gt, err);
        if (st != LIIF_OK) goto done;
    }
    liif_metric_channels mc = liif_protocol_channels(p->protocol);
    const float *pred[N_METHODS] = {b.bicubic, b.model};
    for (int m = 0; m < N_METHODS && st == LIIF_OK; m++) {
        liif_measures f;
        double lpips = 0;
        st = liif_measure(pred[m], b.crop, cw, chh, lw, lh, shave, mc, 1, &f, err);
        if (st != LIIF_OK) break;
        if (r->lpips) {
            st = liif_lpips_forward_rgb(r->lpips, pred[m] + lp_origin, lp_stride, lp_pred, err);
            if (st != LIIF_OK) break;
            lpips = liif_lpips_compare(r->lpips, lp_pred, lp_gt, NULL);
        }
        r->sums[m][j].psnr += f.psnr;
        r->sums[m][j].ssim += f.ssim;
        r->sums[m][j].sharp += f.sharpness;
        r->sums[m][j].dpsnr += f.detail_psnr;
        r->sums[m][j].lpips += lpips;
        r->sums[m][j].n++;
        if (isfinite(f.grid)) {
            r->sums[m][j].grid += f.grid;
            r->sums[m][j].n_grid++;
        }
        g_string_append_printf(r->per_image, "%s,%g,%s,%.4f,%.6f,%.6f,%.4f,", name, s, method_names[m],
                               f.psnr, f.ssim, f.sharpness, f.detail_psnr);
        if (isfinite(f.grid)) g_string_append_printf(r->per_image, "%.4f", f.grid);
        if (r->lpips) g_string_append_printf(r->per_image, ",%.6f", lpips);
        g_string_append_c(r->per_image, '\n');
    }
    if (st == LIIF_OK && strip_row && r->strips[j].px) {
        const float *row[3] = {b.bicubic, b.model, b.crop};
        strip_add_row(&r->strips[j], p, row, cw, chh);
    }
done:
    liif_lpips_feats_free(lp_gt);
    liif_lpips_feats_free(lp_pred);
    g_free(b.crop); g_free(b.lr); g_free(b.model); g_free(b.bicubic);
    return st;
}

static liif_status eval_image(eval_run *r, const eval_plan *p, const char *path, int index,
                              int n_images)
{
    liif_png png;
    liif_error err;
    if (liif_image_read(path, &png, NULL, NULL, &err) != LIIF_OK) {
        warn(p, "skipped: %s", err.msg); /* the message names the file */
        return LIIF_OK;
    }
    float *rgb = g_try_malloc_n((size_t)png.w * png.h, 3 * sizeof(float));
    if (!rgb) {
        liif_png_free(&png);
        warn(p, "skipping %s: out of memory", path);
        return LIIF_OK;
    }
    cli_pixels_to_rgb(png.px, png.w, png.h, png.channels, rgb);
    char *name = g_path_get_basename(path);
    int strip_row = r->images_done < r->n_strip_images;
    r->images_done++;
    liif_status st = LIIF_OK;
    for (int j = 0; j < p->n_scales && st == LIIF_OK; j++) {
        double span = 1.0 / ((double)n_images * p->n_scales);
        st = eval_one(r, p, name, rgb, png.w, png.h, j, strip_row, (index * p->n_scales + j) * span,
                      span, &err);
        if (st == LIIF_ERR_ARG) {
            warn(p, "skipping %s at %s: %s", path, p->scale_label[j], err.msg);
            st = LIIF_OK;
        } else if (st != LIIF_OK && st != LIIF_ERR_CANCELLED) {
            cli_error("%s: %s", path, err.msg);
        }
    }
    g_free(name);
    g_free(rgb);
    liif_png_free(&png);
    return st;
}

static int eval_execute(eval_run *r, const eval_plan *p)
{
    GPtrArray *files = cli_list_images(p->data_dir);
    if (!files) return CLI_EXIT_RUNTIME;
    int code = CLI_EXIT_OK;
    liif_error err;
    char note[256] = "";
    if (p->out_dir && g_mkdir_with_parents(p->out_dir, 0777) != 0) {
        cli_error("cannot create output folder %s: %s", p->out_dir, g_strerror(errno));
        code = CLI_EXIT_RUNTIME;
        goto done;
    }
    liif_status st = LIIF_OK;
    if (p->lpips_path) { /* before the model: a bad weights file fails fast, with one message */
        st = liif_lpips_load(p->lpips_path, &r->lpips, &err);
        if (st != LIIF_OK) {
            cli_error("--lpips: %s", err.msg);
            code = CLI_EXIT_RUNTIME;
            goto done;
        }
        r->lpips->threads = p->threads;
    }
    st = liif_model_load(p->model_path, &r->model, &err);
    if (st == LIIF_OK) st = liif_engine_new(r->model, p->backend, &r->engine, note, sizeof note, &err);
    if (st != LIIF_OK) {
        cli_error("%s", err.msg);
        code = (st == LIIF_ERR_UNSUPPORTED && p->backend == LIIF_BACKEND_CUDA) ? CLI_EXIT_NO_CUDA
                                                                               : CLI_EXIT_RUNTIME;
        goto done;
    }
    if (note[0] && !p->quiet) cli_error("%s", note);
    r->detail = p->detail >= 0 ? p->detail : liif_model_default_detail(r->model);
    r->n_strip_images = p->out_dir ? MIN(p->strips, (int)files->len) : 0;
    for (int j = 0; j < p->n_scales && r->n_strip_images; j++)
        if (!strip_alloc(&r->strips[j], p, r->n_strip_images))
            warn(p, "no comparison strip at %s: out of memory", p->scale_label[j]);
    r->progress = cli_progress_new(!p->quiet);
    for (guint i = 0; i < files->len && st == LIIF_OK; i++) {
        if (cli_progress_interrupted())
            st = LIIF_ERR_CANCELLED;
        else
            st = eval_image(r, p, files->pdata[i], (int)i, (int)files->len);
    }
    cli_progress_free(r->progress);
    r->progress = NULL;
    if (st == LIIF_ERR_CANCELLED || cli_progress_interrupted()) {
        cli_error("interrupted: no tables written");
        code = CLI_EXIT_INTERRUPTED;
        goto done;
    }
    if (st != LIIF_OK) {
        code = cli_exit_for_status(st) == CLI_EXIT_USAGE ? CLI_EXIT_RUNTIME : cli_exit_for_status(st);
        goto done;
    }
    if (r->images_done == 0) {
        cli_error("no readable PNG, JPEG or WebP images in data folder %s", p->data_dir);
        code = CLI_EXIT_RUNTIME;
        goto done;
    }
    char *md = table_markdown(p, r->sums, r->lpips != NULL);
    printf("%s", md);
    if (p->out_dir) {
        char *csv = table_csv(p, r->sums, r->lpips != NULL);
        int ok = write_text(p, "table.md", md) && write_text(p, "table.csv", csv) &&
                 write_text(p, "per_image.csv", r->per_image->str);
        for (int j = 0; j < p->n_scales && ok; j++)
            ok = strip_write(&r->strips[j], p, p->scale_label[j]);
        if (!ok) code = CLI_EXIT_RUNTIME;
        g_free(csv);
    }
    g_free(md);
done:
    g_ptr_array_free(files, TRUE);
    return code;
}

int cli_eval_main(int argc, char **argv)
{
    eval_args a = {0};
    eval_plan p = {0};
    GError *gerr = NULL;
    g_set_prgname("liif eval");
    GOptionContext *ctx = eval_context(&a);
    int code = CLI_EXIT_USAGE;
    if (!g_option_context_parse(ctx, &argc, &argv, &gerr)) {
        cli_error("%s (try 'liif eval --help')", gerr->message);
        g_error_free(gerr);
    } else if (plan_from_args(&a, &p)) {
        eval_run r = {0};
        r.per_image = g_string_new(p.lpips_path ? "image,scale,method,psnr,ssim,sharpness,detail_psnr,grid,lpips\n"
                                                : "image,scale,method,psnr,ssim,sharpness,detail_psnr,grid\n");
        code = eval_execute(&r, &p);
        for (int j = 0; j < MAX_SCALES; j++) g_free(r.strips[j].px);
        liif_engine_free(r.engine);
        liif_model_free(r.model);
        liif_lpips_free(r.lpips);
        g_string_free(r.per_image, TRUE);
    }
    g_free(p.model_path); g_free(p.data_dir); g_free(p.out_dir); g_free(p.lpips_path);
    eval_args_clear(&a);
    g_option_context_free(ctx);
    return code;
}
