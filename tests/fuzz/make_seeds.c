/* make_seeds.c: writes the fuzz targets' seed corpora (small valid inputs of every kind) at build time.
 * usage: make-fuzz-seeds OUTDIR  ->  OUTDIR/{model,png,image,config,train-data,weights}/ */
#include <errno.h>
#include <sys/stat.h>

#include "../exif_util.h"
#include "../jpeg_util.h"
#include "../randmodel.h"
#include "disc.h"
#include "../icc_util.h"
#include "jpeg_image.h"
#include "png_image.h"
#include "webp_image.h"
#include "train.h"

static char out[512];

static const char *at(const char *sub, const char *name)
{
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s", out, sub);
    if (mkdir(p, 0777) != 0 && errno != EEXIST) exit(1);
    snprintf(p, sizeof p, "%s/%s/%s", out, sub, name);
    return p;
}

static void spit(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f)) exit(1);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) exit(1);
    unsigned char *b = malloc(1 << 20);
    *n = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

static void models(void)
{
    static const rm_spec specs[] = {
        {4, 1, 1, 8, 1, 1, 1, "liif", 1, 2.0f},        {3, 2, 2, 6, 1, 1, 1, "liif-gan", 2, 2.0f},
        {2, 0, 1, 4, 0, 0, 0, "liif-gan-s", 3, 2.0f},  {2, 2, 1, 4, 0, 1, 1, "liif-gan-sf", 4, 2.0f},
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s-%zu.safetensors", specs[i].variant, i);
        if (rm_write(at("model", name), &specs[i])) exit(1);
    }
    if (rm_write_meta(at("model", "liif-gan-detail.safetensors"), &specs[1], 3, 3, "0.35")) exit(1); /* liif.detail */
    static const char tiny[] = "\x2a\0\0\0\0\0\0\0{\"__metadata__\":{\"liif.variant\":\"liif\"}}  ";
    spit(at("model", "metadata-only.safetensors"), tiny, sizeof tiny - 1);
}

/* The weights target: a VGG19 stack 2 wide (torchvision keys), a small discriminator with its running stats, a
 * training checkpoint with Adam moments. */
static void weights(void)
{
    static const int conv[] = {0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34};
    enum { N = sizeof conv / sizeof conv[0] };
    static char names[2 * N][32];
    static float w[N][2 * 3 * 9], b[N][2];
    liif_st_entry e[2 * N];
    for (int i = 0; i < N; i++) {
        int ic = i ? 2 : 3;
        for (int k = 0; k < 2 * ic * 9; k++) w[i][k] = (float)((k * 7 + i) % 13 - 6) / 13.0f;
        b[i][0] = 0.01f * i;
        b[i][1] = -0.01f * i;
        snprintf(names[2 * i], sizeof names[0], "features.%d.weight", conv[i]);
        snprintf(names[2 * i + 1], sizeof names[0], "features.%d.bias", conv[i]);
        e[2 * i] = (liif_st_entry){names[2 * i], LIIF_DT_F32, 4, {2, ic, 3, 3}, w[i]};
        e[2 * i + 1] = (liif_st_entry){names[2 * i + 1], LIIF_DT_F32, 1, {2}, b[i]};
    }
    liif_error err;
    if (liif_st_write(at("weights", "vgg19-w2.safetensors"), e, 2 * N, NULL, 0, &err)) exit(1);

    int width[GAN_DISC_STAGES] = {2, 2, 3, 3, 4, 4, 5, 5};
    gan_disc *d;
    if (gan_disc_new(width, 3, 16, 3, &d, &err)) exit(1);
    liif_st_entry *de = calloc((size_t)d->n_tensors, sizeof *de);
    for (int i = 0; i < d->n_tensors; i++) {
        const liif_train_tensor *t = &d->tensors[i];
        for (size_t k = 0; k < t->numel; k++) d->params[t->offset + k] = (float)((k * 5 + i) % 11) / 11.0f + 0.1f;
        de[i] = (liif_st_entry){t->name, LIIF_DT_F32, t->ndim, {0}, d->params + t->offset};
        for (int j = 0; j < t->ndim; j++) de[i].shape[j] = t->shape[j];
    }
    if (liif_st_write(at("weights", "disc.safetensors"), de, d->n_tensors, NULL, 0, &err)) exit(1);
    free(de);
    gan_disc_free(d);

    static const rm_spec sp = {4, 1, 1, 8, 1, 1, 1, "liif", 5, 2.0f};
    liif_train_state *s;
    const char *m = at("weights", "model.safetensors");
    if (rm_write(m, &sp) || liif_train_state_load(m, &s, &err)) exit(1);
    for (size_t k = 0; k < s->n_params; k++) s->m[k] = s->v[k] = 1e-3f;
    s->step = 3;
    if (liif_train_state_save(s, at("weights", "checkpoint.safetensors"), 1, &err)) exit(1);
    liif_train_state_free(s);
}

static void pngs(void)
{
    for (int ch = 1; ch <= 4; ch++)
        for (int depth = 8; depth <= 16; depth += 8) {
            int w = 9 + ch, h = 8 + depth / 8;
            float *px = malloc((size_t)w * h * ch * sizeof(float));
            for (int i = 0; i < w * h * ch; i++) px[i] = (float)((i * 29) % 256) / 255.0f;
            liif_png img = {.w = w, .h = h, .channels = ch, .bit_depth = depth, .px = px};
            char name[64];
            liif_error err;
            snprintf(name, sizeof name, "c%d-d%d.png", ch, depth);
            if (liif_png_write(at("png", name), &img, &err)) exit(1);
            free(px);
        }
}

static unsigned char pattern(int x, int y, int c) { return (unsigned char)(x * 21 + c * 7 + y * 13); }

/* One packed folder (fuzz_train_data.c's format) of a PNG and a JPEG. */
static void train_data(void)
{
    unsigned long nj;
    size_t np;
    unsigned char *p = slurp(at("png", "c3-d8.png"), &np), *j = tj_encode(16, 12, 75, pattern, &nj);
    unsigned char *pack = malloc(8 + np + nj), *o = pack;
    *o++ = 0, *o++ = np & 255, *o++ = np >> 8 & 255, *o++ = np >> 16 & 255;
    memcpy(o, p, np), o += np;
    *o++ = 1, *o++ = nj & 255, *o++ = nj >> 8 & 255, *o++ = nj >> 16 & 255;
    memcpy(o, j, nj), o += nj;
    spit(at("train-data", "png-and-jpeg.bin"), pack, (size_t)(o - pack));
    spit(at("train-data", "jpeg-only.bin"), pack + 4 + np, 4 + nj);
    free(p), free(j), free(pack);
}

/* JPEGs for the image reader: baseline RGB, gray, progressive, EXIF orientations in both byte orders, and a PNG. */
static void images(void)
{
    static const struct {
        const char *name;
        int components, progressive, orientation, little;
    } jpegs[] = {{"rgb.jpg", 3, 0, 0, 0},   {"gray.jpg", 1, 0, 0, 0},  {"progressive.jpg", 3, 1, 0, 0},
                 {"exif6-ii.jpg", 3, 0, 6, 1}, {"exif8-mm.jpg", 3, 0, 8, 0}, {"exif5-gray.jpg", 1, 1, 5, 1}};
    for (size_t i = 0; i < sizeof jpegs / sizeof jpegs[0]; i++) {
        unsigned char exif[64];
        tj_layout l = {jpegs[i].components, jpegs[i].progressive, jpegs[i].orientation ? exif : NULL,
                       jpegs[i].orientation ? tj_exif_orientation(exif, jpegs[i].orientation, jpegs[i].little) : 0,
                       0};
        unsigned long n;
        unsigned char *j = tj_encode_ex(13, 9, 80, pattern, &l, &n);
        spit(at("image", jpegs[i].name), j, n);
        free(j);
    }
    /* camera-like EXIF (a thumbnail IFD, the Exif IFD's pixel sizes) with a density, in a JPEG and a PNG */
    unsigned char camera[6 + 160];
    tx_spec cs = {0, 6, 13, 9, 0, 1};
    size_t cn = tx_build(camera + 6, &cs) + 6;
    memcpy(camera, "Exif\0\0", 6);
    tj_layout cl = {3, 0, camera, (unsigned)cn, 300};
    unsigned long cjn;
    unsigned char *cj = tj_encode_ex(13, 9, 80, pattern, &cl, &cjn);
    spit(at("image", "camera6.jpg"), cj, cjn);
    for (int i = 0; i < 4; i++) { /* the EXIF editor's own seeds: both byte orders, SHORT and LONG sizes */
        unsigned char b[160];
        tx_spec bs = {i & 1, 1 + 2 * i, 640, 480, i >> 1, i != 2};
        char name[32];
        snprintf(name, sizeof name, "block-%d.tif", i);
        spit(at("exif", name), b, tx_build(b, &bs));
    }
    free(cj);
    static float cpx[13 * 9 * 3];
    liif_png cimg = {13, 9, 3, 8, cpx, {.exif = camera + 6, .exif_len = cn - 6, .density_unit = LIIF_DENSITY_PER_METRE,
                                         .density_x = 11811, .density_y = 11811, .gamma = 100000}};
    liif_error cerr;
    if (liif_png_write(at("image", "camera.png"), &cimg, &cerr))
        exit(1);
    /* WebP: lossy RGB with the camera EXIF and a profile, lossless RGBA */
    static unsigned char wicc[560];
    tu_icc_profile(wicc, sizeof wicc, 0, 6);
    cimg.meta.icc = wicc;
    cimg.meta.icc_len = sizeof wicc;
    static float apx[13 * 9 * 4];
    for (size_t i = 0; i < sizeof apx / sizeof apx[0]; i++) apx[i] = (float)(i % 7) / 6.0f;
    const struct {
        const char *name;
        int channels, quality;
        const float *px;
    } webps[] = {{"camera.webp", 3, 80, cpx}, {"lossless-alpha.webp", 4, 100, apx}};
    for (size_t i = 0; i < 2; i++) {
        liif_webp_writer *ww;
        if (liif_webp_writer_open_meta(at("image", webps[i].name), 13, 9, webps[i].channels, webps[i].quality,
                                       i == 0 ? &cimg.meta : NULL, NULL, &ww, &cerr) ||
            liif_webp_writer_rows(ww, webps[i].px, 9, (size_t)13 * webps[i].channels, &cerr) ||
            liif_webp_writer_finish(ww, &cerr))
            exit(1);
    }
    size_t np;
    unsigned char *p = slurp(at("png", "c4-d16.png"), &np);
    spit(at("image", "c4-d16.png"), p, np);
    free(p);
    /* ICC profiles: a PNG's iCCP and a JPEG's APP2 markers */
    static unsigned char icc[560];
    static float px[13 * 9 * 3];
    tu_icc_profile(icc, sizeof icc, 0, 4);
    for (size_t i = 0; i < sizeof px / sizeof px[0]; i++) px[i] = (float)(i % 11) / 10.0f;
    liif_png img = {13, 9, 3, 8, px, {.icc = icc, .icc_len = sizeof icc}};
    liif_error err;
    liif_jpeg_writer *jw;
    if (liif_png_write(at("image", "icc.png"), &img, &err) ||
        liif_jpeg_writer_open_meta(at("image", "icc.jpg"), 13, 9, 3, 80, &img.meta, NULL, &jw, &err) ||
        liif_jpeg_writer_rows(jw, px, 9, 39, &err) || liif_jpeg_writer_finish(jw, &err))
        exit(1);
}

static void configs(void)
{
    static const char *texts[] = {
        "[train]\ndata = data\nbatch = 2\ninp_size = 8\nscale_max = 2\nsample_q = 32\nlr = 1e-3\nsteps = 5\n",
        "[train]\ndata = d\nvariant = liif-gan\nw_per = 0\npatch = 16\ninp_size = 16\nn_resblocks = 2\n"
        "adv_loss = minimax\ndisc_nf = 4\ndisc_hidden = 8\nseed = 3\n",
        "# comment\n[train]\ndata = x\nepochs = 3\nepoch_iters = 10\nlr_halve_every = 1\nthreads = 1\n"
        "n_feats = 8\nhidden = 16\nn_hidden = 2\ncheckpoint_every = 2\nbeta1 = 0.5\neps = 1e-6\n",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "seed-%zu.ini", i);
        spit(at("config", name), texts[i], strlen(texts[i]));
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s OUTDIR STAMP\n", argv[0]);
        return 2;
    }
    snprintf(out, sizeof out, "%s", argv[1]);
    if (mkdir(out, 0777) != 0 && errno != EEXIST) return 1;
    models();
    weights();
    pngs();
    train_data();
    images();
    configs();
    spit(argv[2], "", 0);
    return 0;
}
