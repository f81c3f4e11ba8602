/* fuzz_weights.c: libFuzzer harness: a safetensors file through the loaders of the other weights a user hands in:
 * a training checkpoint (`liif train --resume`), the discriminator of a LIIF-GAN checkpoint, VGG19 (`vgg = FILE`,
 * to relu2_2 and to conv5_4) and the LPIPS weights (`liif eval --lpips`); what loads, when small, runs once. */
#include "disc.h"
#include "fuzz_util.h"
#include "lpips.h"
#include "train.h"
#include "vgg.h"

/* A loaded VGG on a 16 x 16 image (four pools to 1 x 1): its shapes must hold together. */
static void run_vgg(const gan_vgg *v)
{
    if (v->n_params > 200000)
        return;
    enum { S = 16 };
    float img[3 * S * S];
    for (int i = 0; i < 3 * S * S; i++) img[i] = (float)((i * 13) % 17) / 16.0f;
    gan_vgg_acts *a = NULL;
    liif_error err;
    if (gan_vgg_acts_new(v, 1, S, S, &a, &err) == LIIF_OK) {
        gan_vgg_forward(v, a, img);
        gan_vgg_acts_free(a);
    }
}

/* A loaded discriminator on one patch of its side: its shapes must hold together. */
static void run_disc(gan_disc *d)
{
    if (d->n_params > 200000 || d->P > 64 || d->in_ch > 4)
        return;
    float *img = calloc((size_t)d->in_ch * d->P * d->P, sizeof(float));
    gan_disc_acts *a = NULL;
    liif_error err;
    if (img && gan_disc_acts_new(d, 1, &a, &err) == LIIF_OK) {
        gan_disc_forward(d, a, img);
        gan_disc_acts_free(a);
    }
    free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_as_file(data, size);
    liif_error err;
    liif_train_state *s = NULL;
    if (liif_train_state_load(path, &s, &err) == LIIF_OK)
        liif_train_state_free(s);
    gan_disc *d = NULL;
    if (gan_disc_load(path, &d, &err) == LIIF_OK) {
        run_disc(d);
        gan_disc_free(d);
    }
    static const int last[2] = {GAN_VGG_RELU2_2, GAN_VGG_CONV5_4};
    for (int k = 0; k < 2; k++) {
        gan_vgg *v = NULL;
        if (gan_vgg_load(path, last[k], &v, &err) == LIIF_OK) {
            run_vgg(v);
            gan_vgg_free(v);
        }
    }
    liif_lpips *lp = NULL;
    if (liif_lpips_load(path, &lp, &err) == LIIF_OK)
        liif_lpips_free(lp);
    return 0;
}
