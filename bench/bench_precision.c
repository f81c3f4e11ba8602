/* bench_precision.c: what the fast precision costs in accuracy on real photos: 8-bit differences to fp32 and the PSNR change.
 * usage: liif-bench-precision MODEL.safetensors DIR... [--scales 2,4] [--threads N] [--precision fast|bf16|int8]
 * For every RGB PNG in each DIR (Set5, Set14) and scale: the benchmark protocol's LR image (MODEL.md 4),
 * upscaled by the fast CPU engine in fp32 and in the fast precision; both outputs quantised to 8 bits
 * as a PNG would be, compared sample by sample; PSNR (Y, shave ceil(s)) of each against the HR crop. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "liif.h"
#include "metrics.h"
#include "png_image.h"

typedef struct {
    double max_levels, sum_levels, n, within1, exact, dpsnr_sum, dpsnr_max, images;
} totals;

static liif_precision compared = LIIF_PRECISION_FAST; /* --precision: what fp32 is compared with */

static int level(float v) { return (int)lrintf((v < 0 ? 0 : (v > 1 ? 1 : v)) * 255.0f); }

/* One image at scale s: adds its figures to t and prints a row. Returns 0 on success. */
static int measure(liif_engine *e, const char *path, double s, int threads, totals *t)
{
    liif_png png;
    liif_error err;
    if (liif_png_read(path, &png, &err)) {
        fprintf(stderr, "liif-bench-precision: %s\n", err.msg);
        return 1;
    }
    if (png.channels != 3) { /* the sets are RGB; anything else is not part of the measure */
        liif_png_free(&png);
        return 0;
    }
    int lw, lh, cw, ch;
    liif_status st = liif_eval_lr_size(png.w, png.h, s, &lw, &lh, &cw, &ch, &err);
    size_t n = (size_t)cw * ch * 3;
    float *crop = malloc(n * sizeof(float)), *lr = malloc((size_t)lw * lh * 3 * sizeof(float));
    float *out[2] = {malloc(n * sizeof(float)), malloc(n * sizeof(float))};
    double psnr[2] = {0, 0};
    if (!st) st = liif_eval_make_lr(png.px, png.w, png.h, s, crop, lr, &err);
    for (int p = 0; !st && p < 2; p++) {
        liif_options o;
        liif_options_init(&o);
        o.threads = threads;
        o.precision = p ? compared : LIIF_PRECISION_FP32;
        liif_image in = {lr, lw, lh, (size_t)lw * 3};
        liif_region r = {cw, ch, 0, 0, cw, ch};
        st = liif_upscale_region(e, &in, &r, out[p], (size_t)cw * 3, &o, &err);
        if (!st) st = liif_psnr(out[p], crop, cw, ch, liif_protocol_shave(LIIF_PROTOCOL_BENCHMARK, s), LIIF_METRIC_Y,
                                &psnr[p], &err);
    }
    if (!st) {
        int maxd = 0;
        double sum = 0, within1 = 0, exact = 0;
        for (size_t i = 0; i < n; i++) {
            int d = abs(level(out[1][i]) - level(out[0][i]));
            maxd = d > maxd ? d : maxd;
            sum += d;
            within1 += d <= 1;
            exact += d == 0;
        }
        const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        printf("%-16s x%-4g %5dx%-5d %4d %9.4f %9.3f%% %9.3f%% %8.3f %8.3f %+8.4f\n", name, s, cw, ch, maxd,
               sum / (double)n, 100.0 * within1 / (double)n, 100.0 * exact / (double)n, psnr[0], psnr[1],
               psnr[1] - psnr[0]);
        t->max_levels = fmax(t->max_levels, maxd);
        t->sum_levels += sum;
        t->n += (double)n;
        t->within1 += within1;
        t->exact += exact;
        t->dpsnr_sum += psnr[1] - psnr[0];
        t->dpsnr_max = fmax(t->dpsnr_max, fabs(psnr[1] - psnr[0]));
        t->images++;
    } else
        fprintf(stderr, "liif-bench-precision: %s: %s\n", path, err.msg);
    free(crop); free(lr); free(out[0]); free(out[1]);
    liif_png_free(&png);
    return st != LIIF_OK;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The PNG files of a folder, sorted; NULL-terminated. */
static char **png_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return NULL;
    size_t n = 0, cap = 16;
    char **list = malloc(cap * sizeof *list);
    for (struct dirent *de; (de = readdir(d));) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".png")) continue;
        if (n + 2 > cap) list = realloc(list, (cap *= 2) * sizeof *list);
        list[n] = malloc(strlen(dir) + len + 2);
        sprintf(list[n++], "%s/%s", dir, de->d_name);
    }
    closedir(d);
    qsort(list, n, sizeof *list, by_name);
    list[n] = NULL;
    return list;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *dirs[16];
    double scales[8] = {2, 4};
    int n_dirs = 0, n_scales = 2, threads = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) {
            const char *p = argv[++i];
            if (strcmp(p, "fast") && strcmp(p, "bf16") && strcmp(p, "int8")) {
                fprintf(stderr, "liif-bench-precision: --precision must be fast, bf16 or int8, not '%s'\n", p);
                return 2;
            }
            compared = !strcmp(p, "int8") ? LIIF_PRECISION_INT8 : !strcmp(p, "bf16") ? LIIF_PRECISION_BF16
                                                                                   : LIIF_PRECISION_FAST;
        }
        else if (!strcmp(argv[i], "--scales") && i + 1 < argc) {
            n_scales = 0;
            for (char *tok = strtok(argv[++i], ","); tok && n_scales < 8; tok = strtok(NULL, ","))
                scales[n_scales++] = atof(tok);
        } else if (!model_path) model_path = argv[i];
        else if (n_dirs < 16) dirs[n_dirs++] = argv[i];
    }
    if (!model_path || !n_dirs) {
        fprintf(stderr, "usage: liif-bench-precision MODEL.safetensors DIR... [--scales 2,4] [--threads N] "
                        "[--precision fast|bf16|int8]\n");
        return 2;
    }
    liif_model *m;
    liif_engine *e;
    liif_error err;
    if (liif_model_load(model_path, &m, &err) || liif_engine_new(m, LIIF_BACKEND_CPU, &e, NULL, 0, &err)) {
        fprintf(stderr, "liif-bench-precision: %s\n", err.msg);
        return 1;
    }
    char note[200];
    const char *fast = liif_engine_precision_name(e, compared, note, sizeof note);
    printf("compared precision: %s%s%s; differences in 8-bit levels, PSNR on Y (shave ceil(s))\n", fast,
           note[0] ? ": " : "", note);
    printf("%-16s %-5s %11s %4s %9s %10s %10s %8s %8s %8s\n", "image", "scale", "size", "max", "mean", "<=1 level",
           "equal", "PSNR32", "PSNRfast", "dPSNR");
    int failed = 0;
    for (int sc = 0; sc < n_scales; sc++) {
        totals t = {0};
        for (int d = 0; d < n_dirs; d++) {
            char **files = png_files(dirs[d]);
            if (!files) {
                fprintf(stderr, "liif-bench-precision: cannot read folder %s\n", dirs[d]);
                return 1;
            }
            for (char **f = files; *f; f++) {
                failed |= measure(e, *f, scales[sc], threads, &t);
                free(*f);
            }
            free(files);
        }
        printf("== x%g, %g images: max %g levels, mean %.4f levels, %.4f%% within 1 level, %.3f%% equal, "
               "PSNR change mean %+.4f dB (largest %.4f dB)\n\n",
               scales[sc], t.images, t.max_levels, t.sum_levels / t.n, 100.0 * t.within1 / t.n, 100.0 * t.exact / t.n,
               t.dpsnr_sum / t.images, t.dpsnr_max);
    }
    liif_engine_free(e);
    liif_model_free(m);
    return failed;
}
