/* test_gan_disc.c: the discriminator (train-mode forward, BCE losses, backward) against disc_w8_p48 / disc_full_p48. */
#include <unistd.h>

#include "disc.h"
#include "nn.h"
#include "test_gan_util.h"

/* The README's PRNG weights of disc_full_p48 (seed 0), proved against wfirst8/wsum. */
static void regen_full(gan_disc *d, const liif_st_file *f)
{
    for (int i = 0; i < d->n_tensors; i++) {
        const liif_train_tensor *t = &d->tensors[i];
        float *w = d->params + t->offset;
        const char *dot = strrchr(t->name, '.');
        if (strstr(t->name, ".bn")) {
            if (!strcmp(dot, ".weight")) tg_prng_fill(w, t->numel, 0, t->name, TG_GAMMA, 0);
            else if (!strcmp(dot, ".bias")) tg_prng_fill(w, t->numel, 0, t->name, TG_SYM, 0.2);
            else tg_prng_fill(w, t->numel, 0, t->name, TG_CONST, strstr(t->name, "running_var") ? 1.0 : 0.0);
        } else { /* conv or linear: bound 1/sqrt(fan_in) of the layer's weight */
            char wname[64];
            snprintf(wname, sizeof wname, "%.*s.weight", (int)(dot - t->name), t->name);
            const liif_train_tensor *wt = gan_disc_find(d, wname);
            double fan_in = (double)(wt->numel / (size_t)wt->shape[0]);
            tg_prng_fill(w, t->numel, 0, t->name, TG_SYM, 1.0 / sqrt(fan_in));
        }
        tg_check_regen(f, t->name, w, t->numel);
    }
}

/* Every parameter gradient of one loss: full tensors, or the first rows plus a checksum. */
static void check_grads(const gan_disc *d, const liif_st_file *f, const char *which)
{
    char name[160], what[160];
    for (int i = 0; i < d->n_tensors; i++) {
        const liif_train_tensor *t = &d->tensors[i];
        if (!t->trainable) continue;
        const float *g = d->grads + t->offset;
        snprintf(name, sizeof name, "grad_%s.%s", which, t->name);
        snprintf(what, sizeof what, "grad %s %s", which, t->name);
        if (liif_st_find(f, name)) {
            tg_grad(what, g, tg_f32(f, name, NULL), t->numel, 1e-4, 1e-9);
            continue;
        } else {
            size_t n;
            snprintf(name, sizeof name, "grad_%s_rows.%s", which, t->name);
            const float *want = tg_f32(f, name, &n);
            snprintf(what, sizeof what, "grad %s %s (first rows)", which, t->name);
            tg_grad(what, g, want, n, 1e-4, 1e-9);
        }
        snprintf(name, sizeof name, "grad_%s_sum.%s", which, t->name);
        if (liif_st_find(f, name)) {
            snprintf(what, sizeof what, "grad %s %s (whole)", which, t->name);
            double sum[4];
            tg_check_sum(what, g, t->numel, tg_f64(f, name, sum), 1e-4);
        }
    }
}

static int use_cpu;

static void run_case(const char *file, int prng)
{
    liif_error err;
    liif_st_file *f = tg_open(file);
    gan_disc *d = NULL;
    if (prng) {
        int width[GAN_DISC_STAGES] = {64, 64, 128, 128, 256, 256, 512, 512};
        CHECK(gan_disc_new(width, 100, 48, 3, &d, &err) == LIIF_OK, "%s", err.msg);
        if (!d) exit(1);
        regen_full(d, f);
    } else {
        CHECK(gan_disc_from_file(f, &d, &err) == LIIF_OK, "%s", err.msg);
        if (!d) exit(1);
    }
    printf("%s: %zu parameters (%zu trainable), P %d, widths %d..%d, hidden %d\n", file, d->n_params, d->n_trainable,
           d->P, d->width[0], d->width[7], d->hidden);
    size_t nin;
    const float *inp = tg_f32(f, "input", &nin);
    int B = (int)(nin / (3 * 48 * 48));
    gan_disc_acts *a;
    CHECK(gan_disc_acts_new(d, B, &a, &err) == LIIF_OK, "%s", err.msg);
    if (use_cpu) CHECK(gan_disc_acts_use_cpu(d, a, 0, &err) == LIIF_OK, "%s", err.msg);

    double t0 = tg_seconds();
    gan_disc_forward(d, a, inp);
    double t1 = tg_seconds();
    tu_close("logits (atol 1e-5)", a->logits, tg_f32(f, "logits", NULL), (size_t)B, 1e-5);
    float lr = nn_bce_logits_forward(a->logits, 1.0f, (size_t)B), lf = nn_bce_logits_forward(a->logits, 0.0f, (size_t)B);
    tu_close("loss_real (atol 1e-5)", &lr, tg_f32(f, "loss_real", NULL), 1, 1e-5);
    tu_close("loss_fake (atol 1e-5)", &lf, tg_f32(f, "loss_fake", NULL), 1, 1e-5);
    char name[128];
    for (int i = 1; i < GAN_DISC_STAGES; i++)
        for (int q = 0; q < 2; q++) {
            snprintf(name, sizeof name, "after_fwd.disc.bn%d_%d.running_%s", i / 2, i % 2, q ? "var" : "mean");
            const float *got = q ? d->p.st[i].rvar : d->p.st[i].rmean;
            tu_close(name, got, tg_f32(f, name, NULL), (size_t)d->width[i], 1e-6);
        }

    float *dz = malloc(B * sizeof(float)), *dinp = malloc(nin * sizeof(float));
    double tb = 0;
    for (int which = 0; which < 2; which++) { /* real (target 1), then fake (target 0) */
        const char *wn = which ? "fake" : "real";
        memset(dz, 0, B * sizeof(float));
        nn_bce_logits_backward(dz, a->logits, which ? 0.0f : 1.0f, (size_t)B, 1.0f);
        memset(dinp, 0, nin * sizeof(float));
        gan_disc_zero_grad(d);
        double s = tg_seconds();
        gan_disc_backward(d, a, dz, NULL, dinp, 1);
        tb += tg_seconds() - s;
        snprintf(name, sizeof name, "input_grad_%s", wn);
        tg_grad(name, dinp, tg_f32(f, name, NULL), nin, 1e-4, 1e-9);
        check_grads(d, f, wn);
    }
    printf("%s: forward %.3f s, backward %.3f s per loss (batch %d)\n", file, t1 - t0, tb / 2, B);
    free(dz);
    free(dinp);
    gan_disc_acts_free(a);
    gan_disc_free(d);
    liif_st_close(f);
}

/* Crafted discriminator files (what a stranger's --resume checkpoint may hold) are refused in one line naming the
 * tensor, before any division or allocation: a last conv 0 wide, and a linear1 of no rows and 2^62 columns (no bytes,
 * a valid safetensors file), whose patch side would overflow an int. */
static void test_crafted(void)
{
    static const float zero[4 * 5 * 4 * 4];
    const int64_t w[2][GAN_DISC_STAGES] = {{2, 2, 3, 3, 4, 4, 5, 0}, {2, 2, 3, 3, 4, 4, 5, 1}};
    const int64_t l1[2][2] = {{3, 20}, {0, (int64_t)1 << 62}};
    static const char *want[2] = {"disc.conv3_1.weight", "disc.linear1.weight"};
    char names[GAN_DISC_STAGES + 1][32], path[64];
    for (int c = 0; c < 2; c++) {
        liif_st_entry e[GAN_DISC_STAGES + 1];
        for (int i = 0; i < GAN_DISC_STAGES; i++) {
            int64_t k = i % 2 ? 4 : 3, ic = i ? w[c][i - 1] : 3;
            snprintf(names[i], sizeof names[i], "disc.conv%d_%d.weight", i / 2, i % 2);
            e[i] = (liif_st_entry){names[i], LIIF_DT_F32, 4, {w[c][i], ic, k, k}, zero};
        }
        snprintf(names[GAN_DISC_STAGES], sizeof names[0], "disc.linear1.weight");
        e[GAN_DISC_STAGES] = (liif_st_entry){names[GAN_DISC_STAGES], LIIF_DT_F32, 2, {l1[c][0], l1[c][1]}, zero};
        snprintf(path, sizeof path, "/tmp/liif-crafted-disc-%d-%d.safetensors", (int)getpid(), c);
        liif_error err;
        if (liif_st_write(path, e, GAN_DISC_STAGES + 1, NULL, 0, &err)) {
            printf("FAIL cannot write %s: %s\n", path, err.msg);
            tu_failures++;
            continue;
        }
        gan_disc *d = NULL;
        liif_status st = gan_disc_load(path, &d, &err);
        unlink(path);
        int ok = st == LIIF_ERR_MODEL && !d && strstr(err.msg, want[c]) && !strchr(err.msg, '\n');
        printf("crafted discriminator %d refused: %s %s\n", c, st ? err.msg : "(loaded)", ok ? "ok" : "FAIL");
        if (!ok) tu_failures++;
        gan_disc_free(d);
    }
}

int main(int argc, char **argv)
{
    test_crafted();
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/components", argc > 1 ? argv[1] : "../shared/golden");
    tu_require_dir(dir);
    tg_dir = dir;
    const char *which = argc > 2 ? argv[2] : "w8";
    use_cpu = argc > 3 && !strcmp(argv[3], "cpu"); /* the fast convolutions instead of the reference */
    printf("ops: %s\n", use_cpu ? "fast CPU (im2col + sgemm)" : "reference");
    if (!strcmp(which, "w8")) run_case("disc_w8_p48.safetensors", 0);
    else run_case("disc_full_p48.safetensors", 1);
    return tu_finish("gan-disc");
}
