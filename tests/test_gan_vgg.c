/* test_gan_vgg.c: VGG19 features, perceptual loss and its input gradient against vgg19_trunc8 / vgg19_full. */
#include "nn.h"
#include "test_gan_util.h"
#include "vgg.h"

static int use_cpu;

static void run_case(const char *file, int last, int prng)
{
    liif_error err;
    liif_st_file *f = tg_open(file);
    gan_vgg *v = NULL;
    if (prng) {
        CHECK(gan_vgg_new(last, NULL, &v, &err) == LIIF_OK, "%s", err.msg);
        if (!v) exit(1);
        tg_vgg_regen(v, f);
    } else {
        CHECK(gan_vgg_from_file(f, last, &v, &err) == LIIF_OK, "%s", err.msg);
        if (!v) exit(1);
    }
    size_t nimg, nfeat;
    const float *img_a = tg_f32(f, "img_a", &nimg), *img_b = tg_f32(f, "img_b", NULL);
    const liif_st_tensor *ta = liif_st_find(f, "img_a");
    int B = (int)ta->shape[0], H = (int)ta->shape[2], W = (int)ta->shape[3];
    gan_vgg_acts *aa, *ab;
    CHECK(gan_vgg_acts_new(v, B, H, W, &aa, &err) == LIIF_OK, "%s", err.msg);
    CHECK(gan_vgg_acts_new(v, B, H, W, &ab, &err) == LIIF_OK, "%s", err.msg);
    if (use_cpu) {
        CHECK(gan_vgg_acts_use_cpu(v, aa, 0, &err) == LIIF_OK, "%s", err.msg);
        CHECK(gan_vgg_acts_use_cpu(v, ab, 0, &err) == LIIF_OK, "%s", err.msg);
    }
    printf("%s: modules 0..%d, %zu parameters, batch %d %dx%d\n", file, last, v->n_params, B, H, W);

    double t0 = tg_seconds();
    gan_vgg_forward(v, ab, img_b);
    double t1 = tg_seconds();
    const float *fb = gan_vgg_output(v, ab, &nfeat);
    float *dimg = calloc(nimg, sizeof(float));
    float loss = gan_vgg_perceptual(v, aa, img_a, fb, dimg, 1.0f);
    double t2 = tg_seconds();
    const float *fa = gan_vgg_output(v, aa, NULL);

    size_t nwant;
    const float *want_a = tg_f32(f, "feat_a", &nwant);
    CHECK(nwant == nfeat, "feature count %zu, want %zu", nfeat, nwant);
    tu_close("feat_a (1e-5 * max|f|)", fa, want_a, nfeat, 1e-5 * tg_maxabs(want_a, nfeat));
    const float *want_b = tg_f32(f, "feat_b", NULL);
    tu_close("feat_b (1e-5 * max|f|)", fb, want_b, nfeat, 1e-5 * tg_maxabs(want_b, nfeat));
    int flips = 0;
    double closest = INFINITY;
    for (size_t i = 0; i < nfeat; i++) {
        double dw = (double)want_a[i] - want_b[i], dg = (double)fa[i] - fb[i];
        flips += (dw > 0) != (dg > 0) || (dw < 0) != (dg < 0);
        closest = fabs(dw) < closest ? fabs(dw) : closest;
    }
    printf("sign(feat_a - feat_b) differs from PyTorch's at %d of %zu elements; smallest |diff| %.3g\n", flips, nfeat,
           closest);
    float want_loss = tg_f32(f, "loss", NULL)[0];
    printf("loss %.9g, want %.9g, rel %.2g\n", loss, want_loss, fabs(loss - want_loss) / want_loss);
    CHECK(fabs(loss - want_loss) <= 1e-5 * want_loss, "loss");
    tg_grad("grad_img_a (1e-4 * max|g|)", dimg, tg_f32(f, "grad_img_a", NULL), nimg, 1e-4, 0);

    {
        const float *wg = tg_f32(f, "grad_img_a", NULL);
        size_t im = 0;
        int cnt = 0;
        for (size_t i = 0; i < nimg; i++) {
            if (fabs(dimg[i] - wg[i]) > fabs(dimg[im] - wg[im])) im = i;
            cnt += fabs(dimg[i] - wg[i]) > 1e-4 * tg_maxabs(wg, nimg);
        }
        printf("worst at %zu (b %zu c %zu y %zu x %zu): got %g want %g; %d elements over tol\n", im, im / (3 * H * W),
               im / (H * W) % 3, im / W % H, im % W, dimg[im], wg[im], cnt);
    }
    /* debug aid: conv outputs of img_a against act_sum.features.N where stored */
    char name[64];
    for (int i = 0; i <= last; i++) {
        snprintf(name, sizeof name, "act_sum.features.%d", i);
        if (v->mod[i].kind != GAN_VGG_CONV || !liif_st_find(f, name)) continue;
        size_t n = (size_t)B * aa->ch[i] * aa->side_h[i] * aa->side_w[i];
        double sum[4];
        tg_check_sum(name, aa->out[i], n, tg_f64(f, name, sum), 1e-5);
    }
    printf("%s: forward %.3f s, forward + backward %.3f s\n", file, t1 - t0, t2 - t1);
    free(dimg);
    gan_vgg_acts_free(aa);
    gan_vgg_acts_free(ab);
    gan_vgg_free(v);
    liif_st_close(f);
}

int main(int argc, char **argv)
{
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/components", argc > 1 ? argv[1] : "../shared/golden");
    tu_require_dir(dir);
    tg_dir = dir;
    const char *which = argc > 2 ? argv[2] : "trunc8";
    use_cpu = argc > 3 && !strcmp(argv[3], "cpu"); /* the fast convolutions instead of the reference */
    printf("ops: %s\n", use_cpu ? "fast CPU (im2col + sgemm)" : "reference");
    if (!strcmp(which, "trunc8")) run_case("vgg19_trunc8.safetensors", GAN_VGG_RELU2_2, 0);
    else run_case("vgg19_full.safetensors", GAN_VGG_CONV5_4, 1);
    return tu_finish("gan-vgg");
}
