/* train.c: `liif train --config run.ini [--resume CKPT] [--device D]` (MODEL.md 3: LIIF on the CPU or GPU, the GAN variants on
 * the CPU or, without the perceptual loss, the GPU) and `liif export CKPT OUT`. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <omp.h>

#include "cli.h"
#include "eval.h"
#include "metrics.h"
#include "image.h"
#include "resize.h"
#include "gan_gpu.h"
#include "gan_step.h"
#include "randmodel.h"
#include "safetensors.h"
#include "train.h"
#include "train_cli.h"

/* ------------------------------------------------------------ the run's settings */

/* Every setting of MODEL.md 3, with the spec's default; group [train] of the INI file. */
typedef struct {
    char *data, *output, *init_from;
    int batch, inp_size, sample_q, threads;
    double scale_min, scale_max, lr, beta1, beta2, eps;
    int lr_halve_every;          /* epochs */
    int warmup;                  /* optimiser steps of linear learning-rate warm-up after fresh Adam moments */
    int epoch_iters;             /* iterations per epoch */
    int epochs;                  /* total epochs, when steps is 0 */
    long long steps;             /* total steps (0: epochs * epoch_iters) */
    long long checkpoint_every;  /* steps */
    long long seed;
    int n_feats, n_resblocks, hidden, n_hidden; /* the model made when there is no init_from */
    char *variant, *adv_loss, *vgg;  /* GAN variants (MODEL.md 2) */
    double w_adv, w_per, w_fm;
    int patch, disc_nf, disc_hidden;
    int fast_math;                   /* GPU: TF32 tensor-core GEMMs */
    char *val_data, *val_scales;     /* validation: a folder of HR images, "2,4" */
    char *val_details;               /* two-decoder runs: the details validated, "0,1" */
    long long val_every;             /* steps */
    int gan;                         /* derived: variant != liif */
} run_config;

typedef enum { K_STR, K_INT, K_LL, K_DBL } key_kind;
typedef struct {
    const char *key;
    key_kind kind;
    size_t off;
    const char *def;
} key_spec;

#define RC(f) offsetof(run_config, f)
static const key_spec keys[] = {
    {"data", K_STR, RC(data), NULL},          {"output", K_STR, RC(output), "train-out"},
    {"init_from", K_STR, RC(init_from), ""},  {"batch", K_INT, RC(batch), "16"},
    {"inp_size", K_INT, RC(inp_size), "48"},  {"scale_min", K_DBL, RC(scale_min), "1"},
    {"scale_max", K_DBL, RC(scale_max), "4"}, {"sample_q", K_INT, RC(sample_q), "2304"},
    {"lr", K_DBL, RC(lr), "1e-4"},            {"beta1", K_DBL, RC(beta1), "0.9"},
    {"beta2", K_DBL, RC(beta2), "0.999"},     {"eps", K_DBL, RC(eps), "1e-8"},
    {"lr_halve_every", K_INT, RC(lr_halve_every), "200"}, {"epoch_iters", K_INT, RC(epoch_iters), "1000"},
    {"warmup", K_INT, RC(warmup), "0"},
    {"epochs", K_INT, RC(epochs), "1000"},    {"steps", K_LL, RC(steps), "0"},
    {"checkpoint_every", K_LL, RC(checkpoint_every), "1000"}, {"seed", K_LL, RC(seed), "0"},
    {"threads", K_INT, RC(threads), "0"},     {"n_feats", K_INT, RC(n_feats), "64"},
    {"n_resblocks", K_INT, RC(n_resblocks), "16"}, {"hidden", K_INT, RC(hidden), "256"},
    {"n_hidden", K_INT, RC(n_hidden), "4"},
    {"variant", K_STR, RC(variant), "liif"},  {"w_adv", K_DBL, RC(w_adv), "5e-3"},
    {"w_per", K_DBL, RC(w_per), "1.0"},       {"adv_loss", K_STR, RC(adv_loss), "non-saturating"},
    {"w_fm", K_DBL, RC(w_fm), "0"},
    {"patch", K_INT, RC(patch), "48"},        {"vgg", K_STR, RC(vgg), ""},
    {"disc_nf", K_INT, RC(disc_nf), "64"},    {"disc_hidden", K_INT, RC(disc_hidden), "100"},
    {"fast_math", K_INT, RC(fast_math), "0"},
    {"val_data", K_STR, RC(val_data), ""},    {"val_scales", K_STR, RC(val_scales), "2,4"},
    {"val_every", K_LL, RC(val_every), "1000"}, {"val_details", K_STR, RC(val_details), "0,1"},
};

/* The allowed range of every numeric setting, checked before any is used (sizes, products and
 * buffers are computed from them). Bounds are what the trainer, the engine (liif.h's model
 * limits) and memory allow; a NaN or infinity is out of every range. */
static const struct {
    const char *key;
    double lo, hi;
} ranges[] = {
    {"batch", 1, 1024},          {"inp_size", 4, 512},         {"scale_min", 1, 64},
    {"scale_max", 1, 64},        {"sample_q", 1, 262144},      {"lr", 1e-12, 1},
    {"beta1", 0, 0.999999},      {"beta2", 0, 0.999999},       {"eps", 1e-30, 1},
    {"lr_halve_every", 1, 1e9},  {"epoch_iters", 1, 1e9},      {"epochs", 1, 1e9},
    {"warmup", 0, 1e9},
    {"steps", 0, 1e15},          {"checkpoint_every", 1, 1e15}, {"seed", 0, 2147483647},
    {"threads", 0, 4096},        {"n_feats", 1, LIIF_MAX_FEATS}, {"n_resblocks", 0, LIIF_MAX_RESBLOCKS},
    {"hidden", 1, LIIF_MAX_WIDTH}, {"n_hidden", 1, LIIF_MAX_HIDDEN}, {"w_adv", 0, 1e6},
    {"w_per", 0, 1e6},           {"w_fm", 0, 1e6},             {"patch", 16, 512},           {"disc_nf", 1, 512},
    {"disc_hidden", 1, 4096},    {"fast_math", 0, 1},          {"val_every", 1, 1e15},
};

/* "<source>: key 'k' = v is out of range (allowed lo..hi)" for the first setting outside its range. */
static int check_ranges(const run_config *c, const char *source)
{
    for (size_t i = 0; i < G_N_ELEMENTS(ranges); i++) {
        const key_spec *ks = keys;
        while (strcmp(ks->key, ranges[i].key)) ks++; /* every ranged key is in keys[] */
        const void *p = (const char *)c + ks->off;
        double v = ks->kind == K_INT ? *(const int *)p : ks->kind == K_LL ? (double)*(const long long *)p
                                                                         : *(const double *)p;
        if (v >= ranges[i].lo && v <= ranges[i].hi) continue;
        cli_error("%s: key '%s' = %.15g is out of range (allowed %.15g..%.15g)", source, ks->key, v, ranges[i].lo,
                  ranges[i].hi);
        return -1;
    }
    return 0;
}

static void config_free(run_config *c)
{
    g_free(c->data);
    g_free(c->output);
    g_free(c->init_from);
    g_free(c->variant);
    g_free(c->adv_loss);
    g_free(c->vgg);
    g_free(c->val_data);
    g_free(c->val_scales);
    g_free(c->val_details);
}

/* "2,4" into up to 8 numbers in [lo, hi] (val_scales: [1, 64], val_details: [0, 1]); their count, or -1. */
static int parse_val_list(const char *text, double lo, double hi, double out[8])
{
    gchar **parts = g_strsplit(text, ",", -1);
    int n = 0;
    for (int i = 0; parts[i] && n >= 0; i++) {
        char *end;
        double v = g_ascii_strtod(parts[i], &end);
        if (!*parts[i] || *end || !(v >= lo && v <= hi) || n == 8) n = -1;
        else out[n++] = v;
    }
    g_strfreev(parts);
    return n;
}

/* Parse text (an INI file's contents, from `source`) into c; 0, or -1 after one error line. */
static int config_parse(const char *text, const char *source, run_config *c)
{
    memset(c, 0, sizeof *c);
    GKeyFile *kf = g_key_file_new();
    GError *gerr = NULL;
    int rc = -1;
    char quoted[64], gmsg[256];
    if (!g_key_file_load_from_data(kf, text, (gsize)-1, G_KEY_FILE_NONE, &gerr)) {
        cli_error("%s: %s", source, liif_printable(gerr->message, gmsg, sizeof gmsg));
        g_error_free(gerr);
        g_key_file_free(kf);
        return -1;
    }
    gchar **groups = g_key_file_get_groups(kf, NULL), **names = NULL;
    for (int g = 0; groups[g]; g++)
        if (strcmp(groups[g], "train")) {
            cli_error("%s: unknown group [%s] (settings go in [train])", source,
                      liif_printable(groups[g], quoted, sizeof quoted));
            goto out;
        }
    if (!g_key_file_has_group(kf, "train")) {
        cli_error("%s: no [train] group", source);
        goto out;
    }
    names = g_key_file_get_keys(kf, "train", NULL, NULL);
    for (int i = 0; names[i]; i++) {
        size_t k = 0;
        while (k < G_N_ELEMENTS(keys) && strcmp(keys[k].key, names[i])) k++;
        if (k == G_N_ELEMENTS(keys)) {
            cli_error("%s: unknown key '%s' in [train]", source, liif_printable(names[i], quoted, sizeof quoted));
            goto out;
        }
    }
    for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
        const key_spec *ks = &keys[k];
        gchar *v = g_key_file_get_string(kf, "train", ks->key, NULL);
        if (!v && !ks->def) {
            cli_error("%s: missing key '%s' in [train]", source, ks->key);
            goto out;
        }
        if (!v) v = g_strdup(ks->def);
        g_strstrip(v);
        char *end = NULL;
        void *dst = (char *)c + ks->off;
        errno = 0;
        switch (ks->kind) {
        case K_STR: *(char **)dst = g_strdup(v); end = v + strlen(v); break;
        case K_INT: { long x = strtol(v, &end, 10); *(int *)dst = (int)x; if (x != (int)x) errno = ERANGE; break; }
        case K_LL: *(long long *)dst = strtoll(v, &end, 10); break;
        case K_DBL: *(double *)dst = g_ascii_strtod(v, &end); break;
        }
        int bad = !*v || *end || errno;
        if (bad && !(ks->kind == K_STR))
            cli_error("%s: key '%s' = '%s' is not a%s number", source, ks->key, liif_printable(v, quoted, sizeof quoted),
                      ks->kind == K_DBL ? "" : " whole");
        g_free(v);
        if (bad && ks->kind != K_STR) goto out;
    }
    if (check_ranges(c, source)) goto out;
    const char *why = NULL;
    if (!*c->data) why = "'data' is empty";
    else if (c->batch < 1) why = "'batch' must be at least 1";
    else if (c->inp_size < 4) why = "'inp_size' must be at least 4";
    else if (!(c->scale_min >= 1.0 && c->scale_max >= c->scale_min && c->scale_max <= 64)) why = "need 1 <= scale_min <= scale_max <= 64";
    else if (c->inp_size * c->scale_max > 2048) why = "inp_size * scale_max (the HR crop side) must be at most 2048";
    else if (c->sample_q < 1 || (!strcmp(c->variant, "liif") && c->sample_q > c->inp_size * c->inp_size)) why = "'sample_q' must be in 1..inp_size^2";
    else if (!(c->lr > 0) || !(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1) || !(c->eps > 0)) why = "bad Adam setting (lr > 0, 0 <= betas < 1, eps > 0)";
    else if (c->lr_halve_every < 1 || c->epoch_iters < 1 || c->epochs < 1 || c->steps < 0) why = "'lr_halve_every', 'epoch_iters' and 'epochs' must be at least 1, 'steps' at least 0";
    else if (c->checkpoint_every < 1) why = "'checkpoint_every' must be at least 1";
    else if (c->threads < 0) why = "'threads' must be 0 (all cores) or more";
    else if (*c->val_data && parse_val_list(c->val_scales, 1, 64, (double[8]){0}) < 1)
        why = "'val_scales' must be 1 to 8 comma-separated scales from 1 to 64";
    else if (*c->val_data && parse_val_list(c->val_details, 0, 1, (double[8]){0}) < 1)
        why = "'val_details' must be 1 to 8 comma-separated details from 0 to 1";
    else if (c->n_feats < 1 || c->n_resblocks < 0 || c->n_resblocks > 64 || c->hidden < 1 || c->n_hidden < 0 || c->n_hidden > LIIF_MAX_HIDDEN) why = "bad model shape";
    c->gan = strcmp(c->variant, "liif") != 0;
    if (!why && c->gan && strcmp(c->variant, "liif-gan") && strcmp(c->variant, "liif-gan-s") &&
        strcmp(c->variant, "liif-gan-sf"))
        why = "'variant' must be liif, liif-gan, liif-gan-s or liif-gan-sf";
    else if (!why && strcmp(c->adv_loss, "non-saturating") && strcmp(c->adv_loss, "minimax"))
        why = "'adv_loss' must be non-saturating or minimax";
    else if (!why && c->gan && (c->patch < 16 || c->patch % 16 || c->patch > c->inp_size))
        why = "'patch' must be a multiple of 16 (the discriminator's 4 stride-2 stages) and at most inp_size";
    else if (!why && c->gan && (c->disc_nf < 1 || c->disc_hidden < 1))
        why = "'disc_nf' and 'disc_hidden' must be at least 1";
    else if (!why && c->gan && !(c->w_adv >= 0 && c->w_per >= 0 && c->w_fm >= 0))
        why = "'w_adv', 'w_per' and 'w_fm' must be at least 0";
    else if (!why && c->gan && c->n_resblocks < 2 && !strcmp(c->variant, "liif-gan") && !*c->init_from)
        why = "variant 'liif-gan' needs n_resblocks >= 2 (a mid-layer feature)";
    else if (!why && c->gan && c->w_per > 0 && !*c->vgg)
        why = "GAN variants with a perceptual loss (w_per > 0) need 'vgg' = a VGG19 safetensors file with torchvision "
              "key names (features.N.weight/bias); none can be downloaded here: on a machine with internet, "
              "safetensors.torch.save_file(torchvision.models.vgg19(weights='IMAGENET1K_V1').state_dict(), "
              "'vgg19.safetensors') makes one (w_per = 0 trains without it)";
    if (why) {
        cli_error("%s: %s", source, why);
        goto out;
    }
    if (!c->steps) c->steps = (long long)c->epochs * c->epoch_iters;
    rc = 0;
out:
    g_strfreev(names);
    g_strfreev(groups);
    g_key_file_free(kf);
    return rc;
}

/* The text of a config file (at most 1 MiB) into *text; a FIFO or device is refused, not waited on. */
static int read_config_file(const char *path, char **text)
{
    liif_error err;
    size_t size = 0;
    int fd = liif_open_regular(path, &size, &err);
    if (fd < 0) {
        cli_error("%s", err.msg);
        return -1;
    }
    if (size > (1u << 20)) {
        close(fd);
        cli_error("%s: a config file of %zu bytes is too large (at most 1 MiB)", path, size);
        return -1;
    }
    char *buf = g_malloc(size + 1);
    size_t got = 0;
    for (ssize_t n = 1; n > 0 && got < size; got += n > 0 ? (size_t)n : 0)
        n = read(fd, buf + got, size - got);
    close(fd);
    buf[got] = '\0';
    if (got != size) {
        g_free(buf);
        cli_error("%s: read failed", path);
        return -1;
    }
    *text = buf;
    return 0;
}

/* ------------------------------------------------------------ the run */

typedef struct {
    run_config cfg;
    char *config_text;
    liif_train_state *s;
    liif_train_acts *a;
    train_data data;
    train_scratch *sc;                /* one per batch-making thread */
    int n_sc;
    float *inp, *coord, *cell, *gt;   /* the batch being made */
    float *buf[2][4];                 /* two batches (inp, coord, cell, gt): the GPU computes one while the other is made */
    uint64_t rng, rng_saved;          /* rng_saved: the state a checkpoint of the current step stores */
    liif_train_gpu *gpu;              /* plain LIIF on the GPU, or NULL */
    int device;                       /* DEV_* of --device */
    int cur, ahead;                   /* GPU: buf[cur] is the next batch to compute; ahead: it is made */
    double time_limit;                /* --time-limit seconds, 0: none */
    GPtrArray *val;                   /* val_data's images (liif_png), or NULL */
    double val_scale[8], val_detail[8];
    int n_val_scales, n_val_details;
    FILE *val_log;                    /* OUT/val.csv */
    FILE *log;
    gan_gen *g;                       /* GAN variants: these instead of s and a */
    gan_disc *d;
    gan_vgg *v;
    gan_step_ws *ws;
    float *lr_nchw;
    gan_gpu *ggpu;                    /* GAN variants on the GPU, or NULL */
    gan_gpu_losses gl;                /* the last GAN step's losses (either device) */
    long long step_base;              /* steps of the run before its Adam moments began (a resume from a file
                                       * without moments, liif export --with-disc); the run's step is this plus
                                       * the optimiser's own count */
} run;

enum { DEV_AUTO, DEV_CPU, DEV_CUDA };

static long long run_step(const run *r) { return r->step_base + (r->cfg.gan ? r->g->step : r->s->step); }
static liif_status gan_save(const gan_gen *g, const gan_disc *d, const char *path, int with_train, int fp16,
                            const char *const *extra, int n_extra, liif_error *err);

static void run_free(run *r)
{
    liif_train_acts_free(r->a);
    liif_train_state_free(r->s);
    gan_step_ws_free(r->ws);
    gan_vgg_free(r->v);
    gan_disc_free(r->d);
    gan_gen_free(r->g);
    free(r->lr_nchw);
    gan_gpu_free(r->ggpu);
    liif_train_gpu_free(r->gpu);
    if (r->val) g_ptr_array_free(r->val, TRUE);
    if (r->val_log) fclose(r->val_log);
    train_data_free(&r->data);
    for (int t = 0; r->sc && t < r->n_sc; t++) {
        free(r->sc[t].crop); free(r->sc[t].hr); free(r->sc[t].lr); free(r->sc[t].idx);
    }
    free(r->sc);
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++) free(r->buf[i][k]);
    if (r->log) fclose(r->log);
    g_free(r->config_text);
    config_free(&r->cfg);
}

/* A random model of the configured shape (PyTorch's default init bounds) written to path. */
static int write_random_model(const run_config *c, const char *path)
{
    rm_spec sp = {.n_feats = c->n_feats, .n_resblocks = c->n_resblocks, .n_hidden = c->n_hidden,
                  .hidden = c->hidden, .feat_unfold = 1, .local_ensemble = 1, .cell_decode = 1,
                  .variant = "liif", .seed = (unsigned)(c->seed * 2654435761u + 1), .out_gain = 1.0f};
    return rm_write(path, &sp);
}

static double lr_at(const run_config *c, long long step)
{
    long long epoch = step / c->epoch_iters;
    return c->lr * pow(0.5, (double)(epoch / c->lr_halve_every));
}

/* The learning rate of the run's next step: the schedule's, times (k + 1) / warmup for the first warmup steps k of
 * the optimiser's own count, which starts at 0 with fresh Adam moments (a new run, init_from, or a resume from
 * networks without moments) and goes on through a resume from a checkpoint. Fresh moments make Adam's first updates
 * about lr on every weight whatever its gradient's noise (m / sqrt(v) is +-1 at the first step); on a trained network
 * that is a jolt, which the warm-up spreads out while the moments settle. */
static double lr_now(const run *r)
{
    const run_config *c = &r->cfg;
    long long k = c->gan ? r->g->step : r->s->step;
    double lr = lr_at(c, run_step(r));
    return k < c->warmup ? lr * (double)(k + 1) / c->warmup : lr;
}

/* OUT/name, atomically, with everything a resume needs in the metadata. */
static int save_checkpoint(run *r, const char *name)
{
    char epoch[32], rng[32], base[32], path_buf[4096];
    snprintf(epoch, sizeof epoch, "%lld", run_step(r) / r->cfg.epoch_iters);
    snprintf(rng, sizeof rng, "%llu", (unsigned long long)r->rng_saved);
    snprintf(base, sizeof base, "%lld", r->step_base);
    const char *meta[] = {"train.epoch", epoch, "train.rng", rng, "train.config", r->config_text, "train.step_base", base};
    snprintf(path_buf, sizeof path_buf, "%s/%s", r->cfg.output, name);
    liif_error err;
    if ((r->gpu && liif_train_gpu_pull(r->gpu, r->s, &err)) || (r->ggpu && gan_gpu_pull(r->ggpu, r->g, r->d, 0, &err))) {
        cli_error("%s", err.msg);
        return -1;
    }
    if (r->cfg.gan ? gan_save(r->g, r->d, path_buf, 1, 0, meta, 4, &err)
                   : liif_train_state_save_ex(r->s, path_buf, 1, 0, meta, 4, &err)) {
        cli_error("%s", err.msg);
        return -1;
    }
    return 0;
}

/* Without a terminal: one line at least every PLAIN_PROGRESS_S seconds and at every checkpoint, with the mean loss
 * of the steps since the last line. */
enum { PLAIN_PROGRESS_S = 60 };

/* The progress: on a terminal (bar) one line rewritten in place with the last step's loss; else (plain) a line each
 * time with the mean loss since the line before. The ETA is the run's last step at this rate, or its --time-limit
 * when that comes first (elapsed: seconds trained so far). */
static void progress_print(const run *r, int bar, long long step, double loss, double rate, double elapsed)
{
    double eta = rate > 0 ? (double)(r->cfg.steps - step) / rate : 0;
    if (r->time_limit > 0 && r->time_limit - elapsed < eta) eta = r->time_limit - elapsed;
    int e = eta > 0 ? (int)eta : 0;
    fprintf(stderr, bar ? "\rstep %lld/%lld  loss %.4f  %.2f steps/s  ETA %d:%02d:%02d "
                        : "step %lld/%lld  loss %.4f (mean since the last line)  %.3f steps/s  ETA %d:%02d:%02d\n",
            step, r->cfg.steps, loss, rate, e / 3600, e / 60 % 60, e % 60);
    fflush(stderr);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------ GAN variants (MODEL.md 2) */

/* Checkpoint of a GAN run, one safetensors file: the generator under its official keys (so
 * liif_model_load reads it), then with d: disc.* (BN running stats included) and metadata gan.d_step, then
 * with_train: adam.m.<key> / adam.v.<key> of every generator tensor and of D's trainable tensors, metadata
 * gan.g_step; plus extra. fp16 stores the generator and D's trainable tensors as float16 (BatchNorm's running
 * statistics stay float32). A file with disc.* but no moments (`liif export --with-disc`) goes on with fresh moments
 * (--resume: its train.* metadata) or starts a new run from both networks (init_from). */
static const char *gen_variant(const gan_gen *g)
{
    if (g->cfg.n_decoders == 1) return "liif-gan-s";
    return g->cfg.dec_source[0] == LIIF_FEAT_MID ? "liif-gan" : "liif-gan-sf";
}

static liif_status gan_save(const gan_gen *g, const gan_disc *d, const char *path, int with_train, int fp16,
                            const char *const *extra, int n_extra, liif_error *err)
{
    int n = g->n_tensors * (with_train ? 3 : 1) + (d ? (with_train ? 3 : 1) * d->n_tensors : 0);
    liif_st_entry *e = calloc((size_t)n, sizeof *e);
    char (*names)[80] = calloc((size_t)n, sizeof *names);
    uint16_t *half = fp16 ? malloc(g->n_params * sizeof(uint16_t)) : NULL;
    uint16_t *dhalf = fp16 && d ? malloc(d->n_params * sizeof(uint16_t)) : NULL;
    const char **meta = calloc(16 + 2 * (size_t)n_extra, sizeof *meta);
    if (!e || !names || !meta || (fp16 && !half) || (fp16 && d && !dhalf)) {
        free(e); free(names); free(half); free(dhalf); free(meta);
        return liif_error_set(err, LIIF_ERR_NOMEM, "checkpoint: out of memory");
    }
    if (half)
        for (size_t i = 0; i < g->n_params; i++) half[i] = liif_f32_to_f16(g->params[i]);
    if (dhalf)
        for (size_t i = 0; i < d->n_params; i++) dhalf[i] = liif_f32_to_f16(d->params[i]);
    int k = 0;
    for (int pass = 0; pass < (with_train ? 3 : 1); pass++) /* params, adam.m, adam.v */
        for (int i = 0; i < g->n_tensors; i++) {
            const liif_train_tensor *t = &g->tensors[i];
            snprintf(names[k], sizeof names[k], "%s%s", pass == 0 ? "" : pass == 1 ? "adam.m." : "adam.v.", t->name);
            const float *buf = pass == 0 ? g->params : pass == 1 ? g->m : g->v;
            e[k] = (liif_st_entry){names[k], LIIF_DT_F32, t->ndim, {0}, buf + t->offset};
            if (pass == 0 && half) e[k].dtype = LIIF_DT_F16, e[k].data = half + t->offset;
            memcpy(e[k].shape, t->shape, sizeof t->shape);
            k++;
        }
    for (int pass = 0; d && pass < (with_train ? 3 : 1); pass++)
        for (int i = 0; i < d->n_tensors; i++) {
            const liif_train_tensor *t = &d->tensors[i];
            if (pass && !t->trainable) continue;
            snprintf(names[k], sizeof names[k], "%s%s", pass == 0 ? "" : pass == 1 ? "adam.m." : "adam.v.", t->name);
            const float *buf = pass == 0 ? d->params : pass == 1 ? d->m : d->v;
            e[k] = (liif_st_entry){names[k], LIIF_DT_F32, t->ndim, {0}, buf + t->offset};
            if (pass == 0 && dhalf && t->trainable) /* BatchNorm's running statistics stay float32 */
                e[k].dtype = LIIF_DT_F16, e[k].data = dhalf + t->offset;
            memcpy(e[k].shape, t->shape, sizeof t->shape);
            k++;
        }
    const liif_config *c = &g->cfg;
    char mid[16], gs[32], ds[32];
    snprintf(mid, sizeof mid, "%d", c->mid_block);
    snprintf(gs, sizeof gs, "%lld", (long long)g->step);
    snprintf(ds, sizeof ds, "%lld", d ? (long long)d->step : 0LL);
    int nm = 0;
    meta[nm++] = "liif.variant";
    meta[nm++] = gen_variant(g);
    meta[nm++] = "liif.mid_block";
    meta[nm++] = mid;
    meta[nm++] = "liif.local_ensemble";
    meta[nm++] = c->local_ensemble ? "true" : "false";
    meta[nm++] = "liif.feat_unfold";
    meta[nm++] = c->feat_unfold ? "true" : "false";
    meta[nm++] = "liif.cell_decode";
    meta[nm++] = c->cell_decode ? "true" : "false";
    if (with_train) {
        meta[nm++] = "gan.g_step";
        meta[nm++] = gs;
    }
    if (d) {
        meta[nm++] = "gan.d_step";
        meta[nm++] = ds;
    }
    for (int i = 0; i < 2 * n_extra; i++) meta[nm++] = extra[i];
    liif_status st = liif_st_write(path, e, k, meta, nm / 2, err);
    free(e); free(names); free(half); free(dhalf); free(meta);
    return st;
}

/* Adam moments adam.m.<key> / adam.v.<key> of n tensors (the trainable ones) from f into m, v. */
static liif_status read_moments(const liif_st_file *f, const liif_train_tensor *t, int n, float *m, float *v,
                                liif_error *err)
{
    char name[96];
    for (int i = 0; i < n; i++) {
        if (!t[i].trainable) continue;
        snprintf(name, sizeof name, "adam.m.%s", t[i].name);
        liif_status st = liif_st_read_f32(f, name, t[i].ndim, t[i].shape, m + t[i].offset, err);
        snprintf(name, sizeof name, "adam.v.%s", t[i].name);
        if (!st) st = liif_st_read_f32(f, name, t[i].ndim, t[i].shape, v + t[i].offset, err);
        if (st) return st;
    }
    return LIIF_OK;
}

static long long meta_ll(const liif_st_file *f, const char *key)
{
    const char *v = liif_st_meta(f, key);
    return v ? strtoll(v, NULL, 10) : 0;
}

/* A one-decoder LIIF model or checkpoint at src as a two-decoder generator file at dst: encoder
 * and imnet copied, imnet2 = imnet with its last layer zeroed (IP = stopgrad(d1) + d2 starts as
 * the L1 model's output; d2 learns a residual). */
static liif_status widen_to_gan(const char *src, const char *dst, const char *variant, liif_error *err)
{
    liif_st_file *f;
    liif_status st = liif_st_open(src, &f, err);
    if (st) return st;
    int n = liif_st_count(f), k = 0, last = -1;
    liif_st_entry *e = calloc(2 * (size_t)n, sizeof *e);
    char (*names)[80] = calloc(2 * (size_t)n, sizeof *names);
    float **bufs = calloc(2 * (size_t)n, sizeof *bufs);
    if (!e || !names || !bufs) st = liif_error_set(err, LIIF_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < n; i++) { /* the last imnet layer's index */
        const liif_st_tensor *t = liif_st_at(f, i);
        int l;
        if (sscanf(t->name, "imnet.layers.%d.", &l) == 1 && l > last) last = l;
    }
    for (int pass = 0; !st && pass < 2; pass++)
        for (int i = 0; !st && i < n; i++) {
            const liif_st_tensor *t = liif_st_at(f, i);
            int enc = !strncmp(t->name, "encoder.head.", 13) || !strncmp(t->name, "encoder.body.", 13);
            int dec = !strncmp(t->name, "imnet.", 6);
            if (pass ? !dec : !(enc || dec)) continue;
            if (!(bufs[k] = malloc((size_t)t->numel * sizeof(float)))) {
                st = liif_error_set(err, LIIF_ERR_NOMEM, "out of memory");
                break;
            }
            st = liif_st_read_f32(f, t->name, t->ndim, t->shape, bufs[k], err);
            int l = -1;
            sscanf(t->name, "imnet.layers.%d.", &l);
            if (pass && l == last) memset(bufs[k], 0, (size_t)t->numel * sizeof(float));
            snprintf(names[k], sizeof names[k], "%s%s", pass ? "imnet2" : "", pass ? t->name + 5 : t->name);
            e[k] = (liif_st_entry){names[k], LIIF_DT_F32, t->ndim, {0}, bufs[k]};
            memcpy(e[k].shape, t->shape, sizeof t->shape);
            k++;
        }
    const char *meta[] = {"liif.variant", variant};
    if (!st) st = liif_st_write(dst, e, k, meta, 1, err);
    for (int i = 0; bufs && i < k; i++) free(bufs[i]);
    free(bufs); free(names); free(e);
    liif_st_close(f);
    return st;
}

/* D's tensors with PyTorch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for conv / linear
 * weights and biases, BN weight 1 and bias 0 (running stats 0 / 1 from gan_disc_new). */
static void disc_init(gan_disc *d, uint64_t seed)
{
    uint64_t rng = seed * 0xD1B54A32D192ED03ull + 99;
    for (int i = 0; i < d->n_tensors; i++) {
        const liif_train_tensor *t = &d->tensors[i];
        float *p = d->params + t->offset;
        if (!t->trainable) continue;
        if (!strncmp(t->name, "disc.bn", 7)) {
            float v = strstr(t->name, ".weight") ? 1.0f : 0.0f;
            for (size_t j = 0; j < t->numel; j++) p[j] = v;
            continue;
        }
        char wname[80];
        snprintf(wname, sizeof wname, "%s", t->name);
        char *dot = strrchr(wname, '.');
        if (dot) snprintf(dot, sizeof wname - (size_t)(dot - wname), ".weight");
        const liif_train_tensor *w = gan_disc_find(d, wname);
        double fan_in = (double)w->numel / (double)w->shape[0], bound = 1.0 / sqrt(fan_in);
        for (size_t j = 0; j < t->numel; j++) p[j] = (float)((2.0 * train_rng_uniform(&rng) - 1.0) * bound);
    }
}

static int gan_setup(run *r, const char *resume)
{
    run_config *c = &r->cfg;
    liif_error err;
    liif_status st = LIIF_OK;
    char *tmp = NULL;
    const char *from = resume;
    int init_disc = 0; /* init_from holds a discriminator too (liif export --with-disc) */
    int fresh = 0;     /* resumed from a file without Adam moments */
    if (!from && *c->init_from) {
        liif_st_file *f;
        if ((st = liif_st_open(c->init_from, &f, &err))) {
            cli_error("%s", err.msg);
            return cli_exit_for_status(st);
        }
        int two = liif_st_find(f, "imnet2.layers.0.weight") != NULL;
        init_disc = liif_st_find(f, "disc.linear2.weight") != NULL;
        liif_st_close(f);
        from = c->init_from;
        if (!two && strcmp(c->variant, "liif-gan-s")) { /* LIIF-GAN-S takes a one-decoder model as it is */
            tmp = g_build_filename(c->output, ".init.safetensors", NULL);
            st = widen_to_gan(c->init_from, tmp, c->variant, &err);
            from = tmp;
        }
    } else if (!from) {
        tmp = g_build_filename(c->output, ".init.safetensors", NULL);
        rm_spec sp = {.n_feats = c->n_feats, .n_resblocks = c->n_resblocks, .n_hidden = c->n_hidden,
                      .hidden = c->hidden, .feat_unfold = 1, .local_ensemble = 1, .cell_decode = 1,
                      .variant = c->variant, .seed = (unsigned)(c->seed * 2654435761u + 1), .out_gain = 1.0f};
        if (rm_write(tmp, &sp)) st = liif_error_set(&err, LIIF_ERR_IO, "cannot write the initial model to '%s'", tmp);
        from = tmp;
    }
    if (!st) st = gan_gen_load(from, &r->g, &err);
    if (tmp) g_unlink(tmp);
    g_free(tmp);
    if (st) {
        cli_error("%s", err.msg);
        return cli_exit_for_status(st);
    }
    if (strcmp(gen_variant(r->g), c->variant)) {
        cli_error("%s is a %s model; the config asks for %s", from, gen_variant(r->g), c->variant);
        return CLI_EXIT_USAGE;
    }
    if (resume) {
        liif_st_file *f;
        char first[96];
        st = liif_st_open(resume, &f, &err);
        if (!st) st = gan_disc_from_file(f, &r->d, &err);
        snprintf(first, sizeof first, "adam.m.%s", r->g->tensors[0].name);
        int moments = !st && liif_st_find(f, first);
        if (!st && moments) st = read_moments(f, r->g->tensors, r->g->n_tensors, r->g->m, r->g->v, &err);
        if (!st && moments) st = read_moments(f, r->d->tensors, r->d->n_tensors, r->d->m, r->d->v, &err);
        if (!st) {
            /* without moments (liif export --with-disc): both optimisers start afresh (Adam's bias correction
             * counts from 1 again) while the run's step, RNG and schedule go on from train.step_base */
            r->g->step = moments ? meta_ll(f, "gan.g_step") : 0;
            r->d->step = moments ? meta_ll(f, "gan.d_step") : 0;
            r->step_base = meta_ll(f, "train.step_base");
            if (r->step_base < 0 || r->step_base > (1LL << 50) || r->g->step < 0 || r->d->step < 0)
                st = liif_error_set(&err, LIIF_ERR_MODEL, "%s: a step count out of range in its metadata", resume);
            fresh = !st && !moments;
        }
        if (f) liif_st_close(f);
    } else if (init_disc) { /* both networks from init_from, fresh Adam moments: a new run */
        st = gan_disc_load(c->init_from, &r->d, &err);
    } else {
        int w[GAN_DISC_STAGES], mult[GAN_DISC_STAGES] = {1, 1, 2, 2, 4, 4, 8, 8};
        for (int i = 0; i < GAN_DISC_STAGES; i++) w[i] = c->disc_nf * mult[i];
        st = gan_disc_new(w, c->disc_hidden, c->patch, 3, &r->d, &err);
        if (!st) disc_init(r->d, (uint64_t)c->seed);
    }
    const char *d_from = resume ? resume : init_disc ? c->init_from : NULL; /* a discriminator from a file */
    if (!st && d_from && (r->d->P != c->patch || r->d->width[0] != c->disc_nf || r->d->hidden != c->disc_hidden)) {
        cli_error("%s: its discriminator (patch %d, disc_nf %d, disc_hidden %d) is not the config's (%d, %d, %d)",
                  d_from, r->d->P, r->d->width[0], r->d->hidden, c->patch, c->disc_nf, c->disc_hidden);
        return CLI_EXIT_USAGE;
    }
    if (!st && fresh)
        cli_error("note: %s has no Adam moments (liif export --with-disc): the run goes on from step %lld with fresh "
                  "ones", resume, r->step_base);
    if (!st && c->w_per > 0) st = gan_vgg_load(c->vgg, GAN_VGG_CONV5_4, &r->v, &err); /* else no perceptual term */
    if (!st) st = gan_step_ws_new(r->g, r->d, r->v, c->batch, c->inp_size, c->inp_size, c->patch, &r->ws, &err);
    if (!st) st = gan_step_ws_use_cpu(r->g, r->d, r->v, r->ws, c->threads, &err);
    if (!st && !(r->lr_nchw = malloc((size_t)c->batch * 3 * c->inp_size * c->inp_size * sizeof(float))))
        st = liif_error_set(&err, LIIF_ERR_NOMEM, "out of memory");
    if (st) {
        cli_error("%s", err.msg);
        return cli_exit_for_status(st);
    }
    return 0;
}

/* The next batch into r->inp, coord, cell, gt. Each sample draws from its own generator, seeded in
 * sample order from the run's, so samples are made in parallel (one scratch per thread) and the batch
 * depends only on the run's RNG state. patch > 0: RGS patches of that side (gt (3,P,P) per sample),
 * else LIIF's sample_q scattered queries. */
static int fill_batch(run *r, const train_recipe *rec, int patch, liif_error *err)
{
    const run_config *c = &r->cfg;
    int B = c->batch, L = c->inp_size, Q = patch ? patch * patch : c->sample_q, failed = 0;
    uint64_t *seed = malloc((size_t)B * sizeof *seed);
    if (!seed) return liif_error_set(err, LIIF_ERR_NOMEM, "out of memory"), -1;
    for (int b = 0; b < B; b++) seed[b] = train_rng_next(&r->rng);
#pragma omp parallel for schedule(dynamic, 1) num_threads(r->n_sc)
    for (int b = 0; b < B; b++) {
        train_scratch *sc = &r->sc[omp_get_thread_num()];
        uint64_t rng = seed[b];
        float *inp = r->inp + (size_t)b * L * L * 3, *coord = r->coord + (size_t)b * Q * 2;
        float *cell = r->cell + (size_t)b * Q * 2, *gt = r->gt + (size_t)b * Q * 3;
        liif_error e;
        int bad = patch ? train_sample_patch(&r->data, rec, patch, &rng, sc, inp, coord, cell, gt, &e)
                        : train_sample(&r->data, rec, &rng, sc, inp, coord, cell, gt, &e);
        if (bad) {
#pragma omp critical
            if (!failed++) *err = e;
        }
    }
    free(seed);
    return failed ? -1 : 0;
}

/* One GAN step on a fresh batch; the generator's total loss in *loss. */
static int gan_train_step(run *r, const train_recipe *rec, double lr, double *loss, liif_error *err)
{
    run_config *c = &r->cfg;
    int B = c->batch, L = c->inp_size, P = c->patch;
    if (fill_batch(r, rec, P, err)) return -1;
    r->rng_saved = r->rng;
    for (int b = 0; b < B; b++) /* (L,L,3) -> (3,L,L) */
        for (int i = 0; i < L * L; i++)
            for (int k = 0; k < 3; k++)
                r->lr_nchw[((size_t)b * 3 + k) * L * L + i] = r->inp[((size_t)b * L * L + i) * 3 + k];
    gan_step_config gc = {(float)c->w_adv, (float)c->w_per, (float)c->w_fm, {lr, c->beta1, c->beta2, c->eps},
                          !strcmp(c->adv_loss, "minimax")};
    gan_step(r->g, r->d, r->v, r->ws, &gc, r->lr_nchw, r->coord, r->cell, r->gt);
    gan_gpu_losses l = {r->ws->loss_d1, r->ws->loss_adv, r->ws->loss_per, r->ws->loss_fm, r->ws->loss_g,
                        r->ws->loss_d_real, r->ws->loss_d_fake, r->ws->loss_d};
    r->gl = l;
    *loss = r->ws->loss_g;
    return 0;
}

/* ------------------------------------------------------------ validation (val_data) */

static void png_free_item(gpointer p)
{
    liif_png_free(p);
    g_free(p);
}

/* val_data's PNGs as RGB floats and the scales; 0, or an exit code after one error line. */
static int val_setup(run *r)
{
    const run_config *c = &r->cfg;
    if (!*c->val_data) return 0;
    r->n_val_scales = parse_val_list(c->val_scales, 1, 64, r->val_scale); /* checked by config_parse */
    r->n_val_details = parse_val_list(c->val_details, 0, 1, r->val_detail);
    GPtrArray *files = cli_list_images(c->val_data);
    if (!files) return CLI_EXIT_USAGE;
    r->val = g_ptr_array_new_with_free_func(png_free_item);
    for (guint i = 0; i < files->len; i++) {
        liif_png *png = g_new0(liif_png, 1);
        liif_error err;
        if (liif_image_read(g_ptr_array_index(files, i), png, NULL, NULL, &err)) {
            cli_error("%s", err.msg);
            g_free(png);
            g_ptr_array_free(files, TRUE);
            return CLI_EXIT_RUNTIME;
        }
        float *rgb = malloc((size_t)png->w * png->h * 3 * sizeof(float));
        if (!rgb) {
            cli_error("out of memory for %s", (char *)g_ptr_array_index(files, i));
            liif_png_free(png);
            g_free(png);
            g_ptr_array_free(files, TRUE);
            return CLI_EXIT_RUNTIME;
        }
        cli_pixels_to_rgb(png->px, png->w, png->h, png->channels, rgb);
        free(png->px);
        png->px = rgb; /* now (h,w,3) */
        png->channels = 3;
        g_ptr_array_add(r->val, png);
    }
    g_ptr_array_free(files, TRUE);
    return 0;
}

/* One validation image at one scale: what liif_measure says (MODEL.md 4's benchmark protocol, no SSIM) of bicubic
 * (res[0]) and of the model at each of the n_details details (res[1 + k]). */
static liif_status val_image(run *r, liif_engine *e, const liif_png *im, double s, const double *details,
                             int n_details, liif_measures *res, int *skipped, liif_error *err)
{
    int lw, lh, cw, ch;
    *skipped = liif_eval_lr_size(im->w, im->h, s, &lw, &lh, &cw, &ch, err) != LIIF_OK; /* too small at s */
    if (*skipped) return LIIF_OK;
    size_t hr_n = (size_t)cw * ch * 3;
    float *crop = malloc(hr_n * 4), *lr = malloc((size_t)lw * lh * 12), *sr = malloc(hr_n * 4), *bic = malloc(hr_n * 4);
    liif_status st = !crop || !lr || !sr || !bic ? liif_error_set(err, LIIF_ERR_NOMEM, "validation: out of memory")
                                                 : LIIF_OK;
    if (!st) st = liif_eval_make_lr(im->px, im->w, im->h, s, crop, lr, err);
    if (!st) st = liif_resize_bicubic_f32(lr, lw, lh, 3, bic, cw, ch, err);
    int shave = liif_protocol_shave(LIIF_PROTOCOL_BENCHMARK, s);
    liif_metric_channels mc = liif_protocol_channels(LIIF_PROTOCOL_BENCHMARK);
    for (int k = 0; !st && k <= n_details; k++) { /* k = 0: bicubic, then the model at details[k - 1] */
        float *out = bic;
        if (k > 0) {
            liif_options o;
            liif_options_init(&o);
            o.threads = r->cfg.threads;
            o.detail = details[k - 1];
            liif_image img = {lr, lw, lh, (size_t)lw * 3};
            liif_region reg = {cw, ch, 0, 0, cw, ch};
            st = liif_upscale_region(e, &img, &reg, sr, (size_t)cw * 3, &o, err);
            out = sr;
        }
        for (size_t i = 0; !st && i < hr_n; i++) out[i] = out[i] < 0 ? 0 : (out[i] > 1 ? 1 : out[i]);
        if (!st) st = liif_measure(out, crop, cw, ch, lw, lh, shave, mc, 0, &res[k], err);
    }
    free(crop); free(lr); free(sr); free(bic);
    return st;
}

/* The model of this step and bicubic on val_data at each scale (and, for two-decoder models, at each of
 * val_details): PSNR, sharpness, detail PSNR and the grid score on Y (MODEL.md 4's benchmark protocol, as
 * `liif eval`), averaged per image, appended to OUT/val.csv; the model runs on the trainer's device. */
static int val_run(run *r, long long step)
{
    const run_config *c = &r->cfg;
    liif_error err;
    char *path = g_build_filename(c->output, ".val-model.safetensors", NULL);
    liif_status st = LIIF_OK;
    if (r->gpu) st = liif_train_gpu_pull(r->gpu, r->s, &err);
    if (r->ggpu) st = gan_gpu_pull(r->ggpu, r->g, r->d, 0, &err);
    if (!st) st = c->gan ? gan_save(r->g, NULL, path, 0, 0, NULL, 0, &err) : liif_train_state_save(r->s, path, 0, &err);
    liif_model *m = NULL;
    liif_engine *e = NULL;
    char note[256];
    if (!st) st = liif_model_load(path, &m, &err);
    g_unlink(path);
    g_free(path);
    if (!st) st = liif_engine_new(m, r->gpu || r->ggpu ? LIIF_BACKEND_CUDA : LIIF_BACKEND_CPU, &e, note, sizeof note, &err);
    /* one row per detail for a two-decoder model; one-decoder models have one output, said as detail 1 */
    int two = !st && liif_model_config(m)->n_decoders == 2, nd = two ? r->n_val_details : 1;
    const double one = 1.0, *details = two ? r->val_detail : &one;
    liif_measures sum[8][9] = {{{0}}}; /* [scale][0: bicubic, 1 + k: the model at details[k]], summed over images */
    int n[8] = {0}, n_grid[8][9] = {{0}}; /* grid scores are NaN on images too small for one */
    for (int j = 0; !st && j < r->n_val_scales; j++)
        for (guint i = 0; !st && i < r->val->len; i++) {
            liif_measures res[9];
            int skipped;
            st = val_image(r, e, g_ptr_array_index(r->val, i), r->val_scale[j], details, nd, res, &skipped, &err);
            if (st || skipped) continue;
            for (int k = 0; k <= nd; k++) {
                sum[j][k].psnr += res[k].psnr;
                sum[j][k].sharpness += res[k].sharpness;
                sum[j][k].detail_psnr += res[k].detail_psnr;
                if (isfinite(res[k].grid)) sum[j][k].grid += res[k].grid, n_grid[j][k]++;
            }
            n[j]++;
        }
    liif_engine_free(e);
    liif_model_free(m);
    if (st) {
        cli_error("validation at step %lld: %s", step, err.msg);
        return -1;
    }
    for (int j = 0; j < r->n_val_scales; j++)
        for (int k = 0; n[j] && k < nd; k++) {
            const liif_measures *b = &sum[j][0], *d = &sum[j][1 + k];
            char grid[32] = "", bic_grid[32] = ""; /* empty: no image had a grid score */
            if (n_grid[j][1 + k]) snprintf(grid, sizeof grid, "%.4f", d->grid / n_grid[j][1 + k]);
            if (n_grid[j][0]) snprintf(bic_grid, sizeof bic_grid, "%.4f", b->grid / n_grid[j][0]);
            fprintf(r->val_log, "%lld,%g,%g,%.4f,%.4f,%.4f,%s,%.4f,%.4f,%.4f,%s,%d\n", step, r->val_scale[j], details[k],
                    d->psnr / n[j], d->sharpness / n[j], d->detail_psnr / n[j], grid, b->psnr / n[j],
                    b->sharpness / n[j], b->detail_psnr / n[j], bic_grid, n[j]);
        }
    fflush(r->val_log);
    return 0;
}

static void use_buf(run *r, int i)
{
    r->inp = r->buf[i][0];
    r->coord = r->buf[i][1];
    r->cell = r->buf[i][2];
    r->gt = r->buf[i][3];
}

/* One LIIF step on the GPU: the batch made ahead is queued, the next one is made on the CPU while the
 * GPU computes, then the step's loss is read. A checkpoint of this step stores the RNG state from
 * before the next batch was drawn, so a resumed run draws that batch again. */
static int gpu_step(run *r, const train_recipe *rec, liif_adam_config *opt, double *loss, liif_error *err)
{
    const run_config *c = &r->cfg;
    if (!r->ahead) {
        use_buf(r, r->cur);
        if (fill_batch(r, rec, 0, err)) return -1;
    }
    opt->lr = lr_now(r);
    float *const *b = r->buf[r->cur];
    if (liif_train_gpu_step(r->gpu, b[0], b[1], b[2], b[3], opt, err)) return -1;
    r->s->step++; /* the device's count; the parameters come back with liif_train_gpu_pull */
    r->rng_saved = r->rng;
    r->cur ^= 1;
    r->ahead = 0;
    if (run_step(r) < c->steps) {
        use_buf(r, r->cur);
        if (fill_batch(r, rec, 0, err)) return -1;
        r->ahead = 1;
    }
    float l;
    if (liif_train_gpu_wait(r->gpu, &l, err)) return -1;
    *loss = l;
    return 0;
}

/* One GAN step on the GPU, made like gpu_step: the batch made ahead (RGS patches, as the CPU path
 * makes them) is queued, the next one is made while the GPU computes, then the losses are read. */
static int gan_gpu_train_step(run *r, const train_recipe *rec, double lr, double *loss, liif_error *err)
{
    const run_config *c = &r->cfg;
    int B = c->batch, L = c->inp_size;
    if (!r->ahead) {
        use_buf(r, r->cur);
        if (fill_batch(r, rec, c->patch, err)) return -1;
    }
    float *const *b = r->buf[r->cur];
    for (int s = 0; s < B; s++) /* (L,L,3) -> (3,L,L) */
        for (int i = 0; i < L * L; i++)
            for (int k = 0; k < 3; k++)
                r->lr_nchw[((size_t)s * 3 + k) * L * L + i] = b[0][((size_t)s * L * L + i) * 3 + k];
    gan_step_config gc = {(float)c->w_adv, (float)c->w_per, (float)c->w_fm, {lr, c->beta1, c->beta2, c->eps},
                          !strcmp(c->adv_loss, "minimax")};
    if (gan_gpu_step(r->ggpu, &gc, r->lr_nchw, b[1], b[2], b[3], err)) return -1;
    r->g->step++; /* the device's counts; the models come back with gan_gpu_pull */
    r->d->step++;
    r->rng_saved = r->rng;
    r->cur ^= 1;
    r->ahead = 0;
    if (run_step(r) < c->steps) {
        use_buf(r, r->cur);
        if (fill_batch(r, rec, c->patch, err)) return -1;
        r->ahead = 1;
    }
    if (gan_gpu_wait(r->ggpu, &r->gl, err)) return -1;
    *loss = r->gl.loss_g;
    return 0;
}

/* After making a GPU trainer: 0 to go on (on the GPU, or on the CPU when --device auto, saying why once), or the
 * exit code: an error other than "unsupported", or --device cuda without a usable GPU. */
static int gpu_outcome(const run *r, liif_status st, const liif_error *err)
{
    if (st == LIIF_OK) return 0;
    if (st != LIIF_ERR_UNSUPPORTED) {
        cli_error("%s", err->msg);
        return cli_exit_for_status(st);
    }
    if (r->device == DEV_CUDA) {
        cli_error("--device cuda: %s", err->msg);
        return CLI_EXIT_NO_CUDA;
    }
    cli_error("using the CPU: %s", err->msg);
    return 0;
}

/* A GAN variant on the GPU (with the perceptual loss's VGG19 when w_per > 0): as choose_device. */
static int choose_device_gan(run *r, int B, int L)
{
    run_config *c = &r->cfg;
    liif_error err;
    liif_status st = gan_gpu_new(r->g, r->d, r->v, B, L, L, c->patch, c->fast_math, &r->ggpu, &err);
    return gpu_outcome(r, st, &err);
}

/* Plain LIIF on the GPU when --device asks for it (cuda) or allows it (auto, saying once why not). */
static int choose_device(run *r, int B, int L, int Q)
{
    run_config *c = &r->cfg;
    liif_error err;
    if (r->device == DEV_CPU) return 0;
    if (c->gan) return choose_device_gan(r, B, L);
    liif_status st = liif_train_gpu_new(r->s, B, L, L, Q, c->fast_math, &r->gpu, &err);
    return gpu_outcome(r, st, &err);
}

/* OUT/name for appending when resuming a run that has it, else fresh with its header; -1 after an error line. */
/* OUT/name for the run's rows: a new file with its header, or (resuming) the file so far. A file so far whose header
 * is not this one (written by an older liif with other columns) is moved to name.old with a note, and a new file
 * starts: rows of two layouts never share a file. */
static int open_csv(const char *out, const char *name, const char *resume, const char *header, FILE **f)
{
    char *path = g_build_filename(out, name, NULL);
    int fresh = !resume || !g_file_test(path, G_FILE_TEST_EXISTS);
    if (!fresh) {
        char line[512] = "";
        FILE *old = fopen(path, "r");
        if (old && !fgets(line, sizeof line, old)) line[0] = 0;
        if (old) fclose(old);
        if (strcmp(line, header)) {
            char *moved = g_strconcat(path, ".old", NULL);
            if (g_rename(path, moved)) {
                cli_error("cannot move '%s' (other columns than this run's) to '%s': %s", path, moved, g_strerror(errno));
                g_free(moved);
                g_free(path);
                return -1;
            }
            cli_error("note: '%s' has other columns than this run writes: moved to '%s', new rows in a new file", path, moved);
            g_free(moved);
            fresh = 1;
        }
    }
    *f = fopen(path, fresh ? "w" : "a");
    if (!*f) cli_error("cannot write '%s': %s", path, g_strerror(errno));
    g_free(path);
    if (!*f) return -1;
    if (fresh) fputs(header, *f);
    return 0;
}

static int setup(run *r, const char *resume)
{
    liif_error err;
    run_config *c = &r->cfg;
    char msg[1024];
    int min_side = (int)nearbyint(c->inp_size * c->scale_max);
    if (train_data_load(&r->data, c->data, min_side, msg, sizeof msg)) { /* before anything is created */
        cli_error("%s", msg);
        return CLI_EXIT_USAGE;
    }
    if (g_mkdir_with_parents(c->output, 0777)) {
        cli_error("cannot create output folder '%s': %s", c->output, g_strerror(errno));
        return CLI_EXIT_RUNTIME;
    }
    int B = c->batch, L = c->inp_size, Q = c->gan ? c->patch * c->patch : c->sample_q;
    int S = (int)nearbyint(L * c->scale_max) + 1, rc = c->gan ? gan_setup(r, resume) : 0;
    if (rc) return rc;
    const char *from = resume ? resume : (*c->init_from ? c->init_from : NULL);
    char *tmp_model = NULL;
    if (c->gan) {
        /* the generator, D and VGG are ready */
    } else if (!from) {
        tmp_model = g_build_filename(c->output, ".init.safetensors", NULL);
        if (write_random_model(c, tmp_model)) {
            cli_error("cannot write the initial model to '%s'", tmp_model);
            g_free(tmp_model);
            return CLI_EXIT_RUNTIME;
        }
        from = tmp_model;
    }
    if (!c->gan) {
        liif_status st = liif_train_state_load(from, &r->s, &err);
        if (tmp_model) g_unlink(tmp_model);
        g_free(tmp_model);
        if (st) {
            cli_error("%s", err.msg);
            return cli_exit_for_status(st);
        }
        if (!resume) r->s->step = 0; /* init_from: the weights only, a fresh run */
        if (!resume) memset(r->s->m, 0, r->s->n_params * sizeof(float)), memset(r->s->v, 0, r->s->n_params * sizeof(float));
    }
    if ((rc = choose_device(r, B, L, Q))) return rc;
    if (!c->gan && !r->gpu) {
        liif_status st = liif_train_acts_new(&r->s->cfg, B, L, L, Q, &r->a, &err);
        if (!st) st = liif_train_acts_use_cpu(r->a, &r->s->cfg, c->threads, &err);
        if (st) {
            cli_error("%s", err.msg);
            return cli_exit_for_status(st);
        }
    }
    r->n_sc = liif_omp_threads(c->threads);
    int ok = (r->sc = calloc((size_t)r->n_sc, sizeof *r->sc)) != NULL;
    for (int t = 0; ok && t < r->n_sc; t++) {
        r->sc[t].crop = malloc((size_t)S * S * 3);
        r->sc[t].hr = malloc((size_t)S * S * 3);
        r->sc[t].lr = malloc((size_t)L * L * 3);
        r->sc[t].idx = malloc((size_t)S * S * sizeof(int));
        ok = r->sc[t].crop && r->sc[t].hr && r->sc[t].lr && r->sc[t].idx;
    }
    size_t sizes[4] = {(size_t)B * L * L * 3, (size_t)B * Q * 2, (size_t)B * Q * 2, (size_t)B * Q * 3};
    for (int i = 0; i < 2; i++)
        for (int k = 0; ok && k < 4; k++) ok = (r->buf[i][k] = malloc(sizes[k] * sizeof(float))) != NULL;
    if (!ok) {
        cli_error("out of memory");
        return CLI_EXIT_RUNTIME;
    }
    use_buf(r, 0);
    r->rng_saved = r->rng;
    if ((rc = val_setup(r))) return rc;
    if (r->val && open_csv(c->output, "val.csv", resume,
                            "step,scale,detail,psnr_y,sharpness,detail_psnr,grid,bicubic_psnr_y,bicubic_sharpness,"
                            "bicubic_detail_psnr,bicubic_grid,images\n", &r->val_log))
        return CLI_EXIT_RUNTIME;
    if (open_csv(c->output, "log.csv", resume,
                 c->gan ? "step,epoch,loss,lr,seconds,l1,adv,per,d_real,d_fake,fm\n" : "step,epoch,loss,lr,seconds\n", &r->log))
        return CLI_EXIT_RUNTIME;
    return 0;
}

static int train_loop(run *r)
{
    run_config *c = &r->cfg;
    liif_error err;
    train_recipe rec = {c->inp_size, c->sample_q, c->scale_min, c->scale_max};
    liif_adam_config opt = {c->lr, c->beta1, c->beta2, c->eps};
    int tty = isatty(2);
    cli_progress *prog = cli_progress_new(0); /* Ctrl-C only; the bar below is training's own */
    double t_start = now_s(), t_last = t_start, rate = 0, loss_sum = 0;
    long long first = run_step(r), loss_n = 0;
    int rc = CLI_EXIT_OK;
    if (r->val && first == 0 && val_run(r, 0)) { /* a new run's starting point: the first row of its curve */
        rc = CLI_EXIT_RUNTIME;
        goto done;
    }
    while (run_step(r) < c->steps) {
        double t0 = now_s(), loss;
        if (c->gan) {
            opt.lr = lr_now(r);
            if ((r->ggpu ? gan_gpu_train_step : gan_train_step)(r, &rec, opt.lr, &loss, &err)) {
                cli_error("%s", err.msg);
                rc = CLI_EXIT_RUNTIME;
                goto done;
            }
            goto stepped;
        }
        if (r->gpu) {
            if (gpu_step(r, &rec, &opt, &loss, &err)) {
                cli_error("%s", err.msg);
                rc = CLI_EXIT_RUNTIME;
                goto done;
            }
            goto stepped;
        }
        if (fill_batch(r, &rec, 0, &err)) {
            cli_error("%s", err.msg);
            rc = CLI_EXIT_RUNTIME;
            goto done;
        }
        r->rng_saved = r->rng;
        liif_status st = liif_train_forward(r->s, r->a, r->inp, r->coord, r->cell, r->gt, &err);
        if (st) {
            cli_error("%s", err.msg);
            rc = cli_exit_for_status(st);
            goto done;
        }
        liif_train_zero_grad(r->s);
        liif_train_backward(r->s, r->a);
        opt.lr = lr_now(r);
        liif_adam_update(r->s, &opt);
        loss = r->a->loss;
    stepped:;
        long long step = run_step(r);
        double t1 = now_s();
        fprintf(r->log, "%lld,%lld,%.6f,%.6g,%.4f", step, (step - 1) / c->epoch_iters, loss, opt.lr, t1 - t0);
        if (c->gan)
            fprintf(r->log, ",%.6f,%.6f,%.6f,%.6f,%.6f,%.6f", r->gl.loss_d1, r->gl.loss_adv, r->gl.loss_per,
                    r->gl.loss_d_real, r->gl.loss_d_fake, r->gl.loss_fm);
        fputc('\n', r->log);
        loss_sum += loss, loss_n++;
        if (!isfinite(loss)) {
            cli_error("step %lld: the loss is not finite; stopping", step);
            rc = CLI_EXIT_RUNTIME;
            goto done;
        }
        rate = (double)(step - first) / (t1 - t_start);
        if (tty && (t1 - t_last > 0.2 || step == c->steps)) {
            progress_print(r, 1, step, loss, rate, t1 - t_start);
            t_last = t1;
        } else if (!tty && (t1 - t_last >= PLAIN_PROGRESS_S || step % c->checkpoint_every == 0 || step == c->steps)) {
            /* stderr is a file or a pipe (a device leg, nohup): a line now and then instead of the bar, and log.csv
             * flushed with it, so that `tail -f` on either shows where the run is */
            progress_print(r, 0, step, loss_sum / loss_n, rate, t1 - t_start);
            fflush(r->log);
            loss_sum = 0, loss_n = 0;
            t_last = t1;
        }
        if (step % c->checkpoint_every == 0 || step == c->steps) {
            char name[64];
            snprintf(name, sizeof name, "ckpt-%08lld.safetensors", step);
            fflush(r->log);
            if (save_checkpoint(r, name) || save_checkpoint(r, "last.safetensors")) {
                rc = CLI_EXIT_RUNTIME;
                goto done;
            }
        }
        if (r->val && (step % c->val_every == 0 || step == c->steps) && val_run(r, step)) {
            rc = CLI_EXIT_RUNTIME;
            goto done;
        }
        if (cli_progress_interrupted()) {
            if (tty) fputc('\n', stderr);
            fflush(r->log);
            rc = save_checkpoint(r, "last.safetensors") ? CLI_EXIT_RUNTIME : CLI_EXIT_INTERRUPTED;
            if (rc == CLI_EXIT_INTERRUPTED)
                cli_error("interrupted at step %lld; checkpoint %s/last.safetensors", step, c->output);
            goto done;
        }
        if (r->time_limit > 0 && t1 - t_start >= r->time_limit && step < c->steps) {
            if (tty) fputc('\n', stderr);
            fflush(r->log);
            /* the validation of the model the run stops with (last.safetensors), unless this step had one */
            if ((r->val && step % c->val_every && val_run(r, step)) || save_checkpoint(r, "last.safetensors")) {
                rc = CLI_EXIT_RUNTIME;
                goto done;
            }
            cli_error("time limit reached at step %lld; resume with --resume %s/last.safetensors", step, c->output);
            goto done;
        }
    }
done:
    if (tty) fputc('\n', stderr);
    if (r->gpu) { /* where a GPU step's time goes, for tuning (CUDA events; the CPU's batch making overlaps) */
        double ms[LIIF_TRAIN_GPU_PHASES];
        long n;
        liif_train_gpu_profile(r->gpu, ms, &n);
        if (n)
            cli_error("GPU step phases, mean ms over %ld steps: upload %.2f, encoder %.2f, decoder %.2f, decoder backward "
                      "%.2f, encoder backward %.2f, Adam %.2f", n, ms[0], ms[1], ms[2], ms[3], ms[4], ms[5]);
    }
    if (r->ggpu) {
        double ms[GAN_GPU_PHASES];
        long n;
        gan_gpu_profile(r->ggpu, ms, &n);
        if (n)
            cli_error("GPU GAN step phases, mean ms over %ld steps: upload %.2f, generator %.2f, D on the fake %.2f, "
                      "generator backward %.2f, G Adam %.2f, D step %.2f, D Adam %.2f", n, ms[0], ms[1], ms[2], ms[3],
                      ms[4], ms[5], ms[6]);
    }
    cli_progress_free(prog);
    return rc;
}

/* The config text: from --config, else from the checkpoint's metadata (a plain resume). */
static char *checkpoint_meta(const char *path, const char *key, int *status)
{
    liif_st_file *f;
    liif_error err;
    *status = 0;
    if (liif_st_open(path, &f, &err)) {
        cli_error("%s", err.msg);
        *status = CLI_EXIT_RUNTIME;
        return NULL;
    }
    const char *v = liif_st_meta(f, key);
    char *out = v ? g_strdup(v) : NULL;
    liif_st_close(f);
    if (!out) {
        cli_error("%s: not a training checkpoint (no '%s' metadata)", path, key);
        *status = CLI_EXIT_RUNTIME;
    }
    return out;
}

int cli_train_main(int argc, char **argv)
{
    gchar *config_path = NULL, *resume = NULL, *device = NULL;
    double time_limit = 0;
    const GOptionEntry entries[] = {
        {"time-limit", 0, 0, G_OPTION_ARG_DOUBLE, &time_limit,
         "Stop after this many seconds of training, with a checkpoint to resume from (default 0: none)", "SECONDS"},
        {"device", 'd', 0, G_OPTION_ARG_STRING, &device,
         "auto (the GPU when usable, else the CPU, saying why), cpu or cuda (default auto)", "DEV"},
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path, "Settings of the run (INI, group [train])", "RUN.ini"},
        {"resume", 'r', 0, G_OPTION_ARG_FILENAME, &resume, "Continue the run of a checkpoint", "CKPT"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_set_prgname("liif train");
    GOptionContext *ctx = g_option_context_new("- train LIIF or LIIF-GAN on a folder of images (CPU or GPU)");
    g_option_context_set_description(ctx,
        "RUN.ini holds the settings in a group [train], KEY = VALUE; each key's default:\n"
        "\n"
        "Data and run:\n"
        "  data (required)      a folder of HR photos (.png, .jpg or .jpeg files)\n"
        "  output=train-out     where log.csv, ckpt-STEP.safetensors and last.safetensors go\n"
        "  init_from=           start from a model: a plain LIIF, or a GAN one; for a GAN variant a plain LIIF\n"
        "                       gives two decoders (imnet2 = imnet with a zero last layer), and a GAN run's\n"
        "                       networks from 'liif export --with-disc' start the discriminator too\n"
        "  batch=16  inp_size=48 (LR crop side)  scale_min=1  scale_max=4  sample_q=2304 (queries per sample)\n"
        "  seed=0  threads=0 (all cores)  checkpoint_every=1000\n"
        "  steps=0 (0: epochs * epoch_iters)  epochs=1000  epoch_iters=1000\n"
        "Optimiser (Adam):\n"
        "  lr=1e-4  beta1=0.9  beta2=0.999  eps=1e-8  lr_halve_every=200 (epochs)\n"
        "  warmup=0             steps of linear learning-rate rise whenever Adam's moments start afresh\n"
        "                       (a new run, init_from, or --resume from networks without moments)\n"
        "  fast_math=0          1: TF32 tensor-core GEMMs on the GPU (about 3 decimal digits per product)\n"
        "Model shape, without init_from:\n"
        "  n_feats=64  n_resblocks=16  hidden=256  n_hidden=4\n"
        "GAN variants (MODEL.md 2):\n"
        "  variant=liif         liif, liif-gan, liif-gan-s or liif-gan-sf\n"
        "  w_adv=5e-3  adv_loss=non-saturating (or minimax)  patch=48 (RGS patch side, a multiple of 16)\n"
        "  w_per=1.0            weight of the perceptual loss on VGG19 features\n"
        "  vgg=                 VGG19 weights (safetensors, torchvision keys), required unless w_per=0\n"
        "  w_fm=0               discriminator feature matching (mean L1 between D's stage outputs on the fake\n"
        "                       and the real patch), a stand-in for w_per where no VGG19 weights exist\n"
        "  disc_nf=64  disc_hidden=100\n"
        "Validation, into OUTPUT/val.csv (PSNR, sharpness, detail PSNR and grid score on Y, bicubic beside):\n"
        "  val_data=            a folder of HR images (none: no validation)\n"
        "  val_every=1000  val_scales=2,4  val_details=0,1 (two-decoder models)\n"
        "\n"
        "--resume CKPT goes on with the run of a checkpoint: its step, RNG and config (from a file of\n"
        "'liif export --with-disc', with fresh Adam moments). Ctrl-C saves OUTPUT/last.safetensors and exits 130.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    GError *gerr = NULL;
    int ok = g_option_context_parse(ctx, &argc, &argv, &gerr);
    g_option_context_free(ctx);
    int rc = CLI_EXIT_OK;
    run r;
    memset(&r, 0, sizeof r);
    if (!ok) {
        cli_error("%s (try 'liif train --help')", gerr->message);
        g_error_free(gerr);
        rc = CLI_EXIT_USAGE;
    } else if (argc > 1) {
        cli_error("unexpected argument '%s' (try 'liif train --help')", argv[1]);
        rc = CLI_EXIT_USAGE;
    } else if (!config_path && !resume) {
        cli_error("no --config given (try 'liif train --help')");
        rc = CLI_EXIT_USAGE;
    } else if (device && strcmp(device, "auto") && strcmp(device, "cpu") && strcmp(device, "cuda")) {
        cli_error("--device must be auto, cpu or cuda, not '%s'", device);
        rc = CLI_EXIT_USAGE;
    }
    if (!rc && !(time_limit >= 0 && time_limit < 1e9)) {
        cli_error("--time-limit must be a number of seconds >= 0");
        rc = CLI_EXIT_USAGE;
    }
    r.time_limit = time_limit;
    r.device = !device || !strcmp(device, "auto") ? DEV_AUTO : !strcmp(device, "cpu") ? DEV_CPU : DEV_CUDA;
    if (rc) goto out;
    if (config_path) {
        if (read_config_file(config_path, &r.config_text)) {
            rc = CLI_EXIT_USAGE;
            goto out;
        }
    } else if (!(r.config_text = checkpoint_meta(resume, "train.config", &rc))) {
        goto out;
    }
    if (config_parse(r.config_text, config_path ? config_path : resume, &r.cfg)) {
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    r.rng = (uint64_t)r.cfg.seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
    if (resume) {
        int st;
        char *rng = checkpoint_meta(resume, "train.rng", &st);
        if (!rng) { rc = st; goto out; }
        r.rng = strtoull(rng, NULL, 10);
        g_free(rng);
    }
    if ((rc = setup(&r, resume))) goto out;
    rc = train_loop(&r);
out:
    run_free(&r);
    g_free(config_path);
    g_free(resume);
    g_free(device);
    return rc;
}

/* ------------------------------------------------------------ export */

int cli_export_main(int argc, char **argv)
{
    gboolean fp16 = FALSE, with_disc = FALSE;
    char *detail_text = NULL;
    const GOptionEntry entries[] = {
        {"fp16", 0, 0, G_OPTION_ARG_NONE, &fp16, "Store the weights as float16", NULL},
        {"default-detail", 0, 0, G_OPTION_ARG_STRING, &detail_text,
         "LIIF-GAN models: the detail in [0,1] that 'liif upscale', 'liif eval' and the GIMP dialog use when none is "
         "given (metadata liif.detail; without it they use 1)", "D"},
        {"with-disc", 0, 0, G_OPTION_ARG_NONE, &with_disc,
         "LIIF-GAN runs: the discriminator too, without Adam moments (a third of a checkpoint's size; a sixth with "
         "--fp16): 'liif train --resume' goes on with the same run and fresh moments, init_from starts a new run from "
         "both networks", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_set_prgname("liif export");
    GOptionContext *ctx = g_option_context_new("CKPT OUT.safetensors - write a checkpoint's generator for 'liif upscale'");
    g_option_context_add_main_entries(ctx, entries, NULL);
    GError *gerr = NULL;
    int ok = g_option_context_parse(ctx, &argc, &argv, &gerr);
    g_option_context_free(ctx);
    if (!ok) {
        cli_error("%s (try 'liif export --help')", gerr->message);
        g_error_free(gerr);
        return CLI_EXIT_USAGE;
    }
    if (argc != 3) {
        cli_error("need a checkpoint and an output file (try 'liif export --help')");
        g_free(detail_text);
        return CLI_EXIT_USAGE;
    }
    char detail[32] = "";
    if (detail_text) {
        char *end;
        double d = g_ascii_strtod(detail_text, &end);
        int bad = end == detail_text || *end || !(d >= 0 && d <= 1);
        if (bad) cli_error("--default-detail must be a number in [0, 1], got '%s'", detail_text);
        g_free(detail_text);
        if (bad) return CLI_EXIT_USAGE;
        g_ascii_formatd(detail, sizeof detail, "%.4f", d); /* plain decimals: what the loader reads */
    }
    liif_train_state *s;
    liif_error err;
    liif_st_file *f;
    liif_status st = liif_st_open(argv[1], &f, &err);
    int two = !st && (liif_st_find(f, "imnet2.layers.0.weight") || liif_st_meta(f, "gan.g_step")); /* a GAN run */
    long long gan_steps = st ? 0 : meta_ll(f, "train.step_base") + meta_ll(f, "gan.g_step"); /* the run's step */
    /* --with-disc keeps what --resume needs to go on with the same run (config, RNG, step; moments start afresh) */
    char *run_meta[3] = {NULL, NULL, NULL};
    static const char *const run_keys[3] = {"train.config", "train.rng", "train.epoch"};
    for (int i = 0; !st && with_disc && i < 3; i++)
        if (liif_st_meta(f, run_keys[i])) run_meta[i] = g_strdup(liif_st_meta(f, run_keys[i]));
    if (!st) liif_st_close(f);
    if (!st && with_disc && !two)
        st = liif_error_set(&err, LIIF_ERR_ARG, "%s: --with-disc: not a LIIF-GAN checkpoint", argv[1]);
    if (!st && detail[0] && !two)
        st = liif_error_set(&err, LIIF_ERR_ARG, "%s: --default-detail: not a LIIF-GAN checkpoint (one decoder)",
                            argv[1]);
    if (!st && two) { /* a GAN run: the generator alone (imnet, imnet2, liif.variant), or with D */
        gan_gen *g = NULL;
        gan_disc *d = NULL;
        st = gan_gen_load(argv[1], &g, &err);
        if (!st && with_disc) st = gan_disc_load(argv[1], &d, &err);
        if (!st && detail[0] && g->cfg.n_decoders != 2)
            st = liif_error_set(&err, LIIF_ERR_ARG, "%s: --default-detail: a LIIF-GAN-S model has no detail decoder",
                                argv[1]);
        if (!st) {
            char step[32];
            snprintf(step, sizeof step, "%lld", gan_steps);
            const char *meta[12] = {"liif.trained_steps", step};
            int nm = 1;
            if (detail[0]) meta[2 * nm] = "liif.detail", meta[2 * nm + 1] = detail, nm++;
            if (with_disc) meta[2 * nm] = "train.step_base", meta[2 * nm + 1] = step, nm++;
            for (int i = 0; i < 3; i++)
                if (run_meta[i]) meta[2 * nm] = run_keys[i], meta[2 * nm + 1] = run_meta[i], nm++;
            st = gan_save(g, d, argv[2], 0, fp16, meta, nm, &err);
        }
        gan_disc_free(d);
        gan_gen_free(g);
    } else if (!st) st = liif_train_state_load(argv[1], &s, &err);
    for (int i = 0; i < 3; i++) g_free(run_meta[i]);
    if (!st && !two) {
        char step[32];
        snprintf(step, sizeof step, "%lld", (long long)s->step);
        const char *meta[] = {"liif.trained_steps", step};
        st = liif_train_state_save_ex(s, argv[2], 0, fp16, meta, 1, &err);
        liif_train_state_free(s);
    }
    if (st) {
        cli_error("%s", err.msg);
        return cli_exit_for_status(st);
    }
    return CLI_EXIT_OK;
}
