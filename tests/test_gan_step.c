/* test_gan_step.c: one LIIF-GAN training step (generator, gradient blocking, D/VGG losses, Adam) against gan_*.safetensors. */
#include "nn.h"
#include "gan_step.h"
#include "test_gan_util.h"

static liif_st_file *fw, *fs, *fg, *fa; /* gan_weights, gan_step, gan_grads, gan_after_adam */

static void load_models(gan_gen **g, gan_disc **d, gan_vgg **v)
{
    char path[1200];
    liif_error err;
    snprintf(path, sizeof path, "%s/gan_weights.safetensors", tg_dir);
    if (gan_gen_load(path, g, &err) || gan_disc_from_file(fw, d, &err)) {
        printf("FAIL %s\n", err.msg);
        exit(1);
    }
    if (v) {
        snprintf(path, sizeof path, "%s/vgg19_trunc8.safetensors", tg_dir);
        if (gan_vgg_load(path, GAN_VGG_RELU2_2, v, &err)) {
            printf("FAIL %s\n", err.msg);
            exit(1);
        }
    }
}

static void close_f(const char *what, const float *got, const char *key, double atol)
{
    size_t n;
    const float *want = tg_f32(fs, key, &n);
    tu_close(what, got, want, n, atol);
}

/* Every G gradient of prefix ("grad", "grad_ld1", ...) against the golden, criterion rel. */
static double check_gen_grads(const gan_gen *g, const float *grads, const char *prefix, double rel)
{
    char name[160];
    double worst = 0;
    for (int i = 0; i < g->n_tensors; i++) {
        const liif_train_tensor *t = &g->tensors[i];
        snprintf(name, sizeof name, "%s.%s", prefix, t->name);
        double r = tg_grad(name, grads + t->offset, tg_f32(fg, name, NULL), t->numel, rel, 1e-9);
        worst = r > worst ? r : worst;
    }
    return worst;
}

static int is_zero(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (x[i] != 0.0f) return 0;
    return 1;
}

int main(int argc, char **argv)
{
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/components", argc > 1 ? argv[1] : "../shared/golden");
    tu_require_dir(dir);
    tg_dir = dir;
    fw = tg_open("gan_weights.safetensors");
    fs = tg_open("gan_step.safetensors");
    fg = tg_open("gan_grads.safetensors");
    fa = tg_open("gan_after_adam.safetensors");
    liif_error err;
    gan_gen *g;
    gan_disc *d;
    gan_vgg *v;
    load_models(&g, &d, &v);
    const liif_st_tensor *tl = liif_st_find(fs, "lr"), *tp = liif_st_find(fs, "gt_patch");
    int B = (int)tl->shape[0], h = (int)tl->shape[2], w = (int)tl->shape[3], P = (int)tp->shape[2];
    const float *lr = tg_f32(fs, "lr", NULL), *coord = tg_f32(fs, "coord", NULL), *cell = tg_f32(fs, "cell", NULL);
    const float *gt = tg_f32(fs, "gt_patch", NULL);
    printf("generator %zu parameters (mid block %d), discriminator %zu (P %d), batch %d, LR %dx%d\n", g->n_trainable,
           g->cfg.mid_block, d->n_trainable, d->P, B, h, w);
    gan_step_ws *ws;
    if (gan_step_ws_new(g, d, v, B, h, w, P, &ws, &err)) {
        printf("FAIL %s\n", err.msg);
        return 1;
    }
    int use_cpu = argc > 2 && !strcmp(argv[2], "cpu"); /* the fast CPU ops instead of the reference */
    printf("ops: %s\n", use_cpu ? "fast CPU (im2col + sgemm)" : "reference");
    if (use_cpu && gan_step_ws_use_cpu(g, d, v, ws, 0, &err)) {
        printf("FAIL %s\n", err.msg);
        return 1;
    }
    gan_step_config cfg = gan_step_defaults();
    float *d_init = malloc(d->n_params * sizeof(float)), *grads_full = malloc(g->n_params * sizeof(float));
    memcpy(d_init, d->params, d->n_params * sizeof(float));

    /* ---- generator half, all three terms */
    printf("-- generator half: forward tensors, losses, gradients of loss_g\n");
    double t0 = tg_seconds();
    gan_gen_zero_grad(g);
    gan_step_generator(g, d, v, ws, &cfg, lr, coord, cell, gt, GAN_TERMS_ALL);
    double t1 = tg_seconds();
    int F = g->cfg.n_feats;
    size_t nf = (size_t)B * h * w * F;
    float *nchw = calloc(nf, sizeof(float));
    for (int k = 0; k < 2; k++) {
        const float *src = k ? ws->gen->feat : ws->gen->t + (size_t)(g->cfg.mid_block + 1) * nf;
        for (int b = 0; b < B; b++)
            for (int c = 0; c < F; c++)
                for (int i = 0; i < h * w; i++) nchw[((size_t)b * F + c) * h * w + i] = src[((size_t)b * h * w + i) * F + c];
        close_f(k ? "feat" : "feat_mid", nchw, k ? "feat" : "feat_mid", 1e-6);
    }
    close_f("d1", ws->gen->d1, "d1", 1e-6);
    close_f("d2", ws->gen->d2, "d2", 1e-6);
    close_f("ip", ws->ip, "ip", 1e-6);
    close_f("fake01", ws->fake01, "fake01", 1e-6);
    close_f("gt_norm", ws->gt_norm, "gt_norm", 1e-6);
    close_f("d_logits_g (atol 1e-4)", ws->logits_g, "d_logits_g", 1e-4);
    close_f("vgg_fake", gan_vgg_output(v, ws->vgg_fake, NULL), "vgg_fake", 1e-6);
    close_f("vgg_real", gan_vgg_output(v, ws->vgg_real, NULL), "vgg_real", 1e-6);
    close_f("grad_d1", ws->dd1, "grad_d1", 1e-9);
    tg_grad("grad_ip", ws->dd2, tg_f32(fs, "grad_ip", NULL), (size_t)B * 3 * P * P, 5e-3, 1e-9);
    close_f("loss_d1", &ws->loss_d1, "loss_d1", 1e-6);
    close_f("loss_adv (atol 5e-5)", &ws->loss_adv, "loss_adv", 5e-5);
    close_f("loss_per", &ws->loss_per, "loss_per", 1e-6);
    close_f("loss_g", &ws->loss_g, "loss_g", 1e-6);
    char name[160];
    for (int i = 1; i < GAN_DISC_STAGES; i++)
        for (int q = 0; q < 2; q++) {
            snprintf(name, sizeof name, "after_gstep.disc.bn%d_%d.running_%s", i / 2, i % 2, q ? "var" : "mean");
            size_t n;
            const float *want = tg_f32(fa, name, &n);
            tu_close(name, q ? d->p.st[i].rvar : d->p.st[i].rmean, want, n, 1e-5);
        }
    double worst_g = check_gen_grads(g, g->grads, "grad", 5e-3);
    memcpy(grads_full, g->grads, g->n_params * sizeof(float));

    /* ---- single terms, each from the same initial D (running stats restored) */
    static const char *term[3] = {"grad_ld1", "grad_adv", "grad_per"};
    double worst_t[3];
    for (int k = 0; k < 3; k++) {
        printf("-- %s alone\n", term[k]);
        memcpy(d->params, d_init, d->n_params * sizeof(float));
        gan_gen_zero_grad(g);
        gan_step_generator(g, d, v, ws, &cfg, lr, coord, cell, gt, (gan_terms){k == 0, k == 1, k == 2, 0});
        worst_t[k] = check_gen_grads(g, g->grads, term[k], k == 1 ? 5e-3 : 1e-4);
        for (int i = 0; i < g->n_tensors; i++) { /* gradient blocking */
            const liif_train_tensor *t = &g->tensors[i];
            int imnet = !strncmp(t->name, "imnet.", 6), imnet2 = !strncmp(t->name, "imnet2.", 7);
            if (k == 0 && imnet)
                CHECK(!memcmp(g->grads + t->offset, grads_full + t->offset, t->numel * sizeof(float)),
                      "grad.%s is not bit-identical to its L_D1-only gradient", t->name);
            if (k == 0 && imnet2) CHECK(is_zero(g->grads + t->offset, t->numel), "L_D1 reaches %s", t->name);
            if (k > 0 && imnet) CHECK(is_zero(g->grads + t->offset, t->numel), "%s reaches %s", term[k], t->name);
        }
    }
    printf("gradient blocking: imnet.* of loss_g bit-identical to L_D1 alone; imnet2 untouched by L_D1; "
           "imnet untouched by adv/per: %s\n", tu_failures ? "see above" : "ok");

    /* ---- Adam alone on the stored gradients */
    printf("-- Adam on the stored gradients\n");
    gan_gen *g2;
    gan_disc *d2;
    load_models(&g2, &d2, NULL);
    for (int i = 0; i < g2->n_tensors; i++) {
        const liif_train_tensor *t = &g2->tensors[i];
        snprintf(name, sizeof name, "grad.%s", t->name);
        memcpy(g2->grads + t->offset, tg_f32(fg, name, NULL), t->numel * sizeof(float));
    }
    for (int i = 0; i < d2->n_tensors; i++) {
        const liif_train_tensor *t = &d2->tensors[i];
        if (!t->trainable) continue;
        snprintf(name, sizeof name, "grad.%s", t->name);
        memcpy(d2->grads + t->offset, tg_f32(fg, name, NULL), t->numel * sizeof(float));
    }
    gan_gen_adam_update(g2, &cfg.adam);
    gan_disc_adam_update(d2, &cfg.adam);
    double adam_g = 0, adam_d = 0;
    for (int i = 0; i < g2->n_tensors; i++) {
        const liif_train_tensor *t = &g2->tensors[i];
        double m = tu_maxdiff(g2->params + t->offset, tg_f32(fa, t->name, NULL), t->numel);
        adam_g = m > adam_g ? m : adam_g;
    }
    for (int i = 0; i < d2->n_tensors; i++) {
        const liif_train_tensor *t = &d2->tensors[i];
        if (!t->trainable) continue;
        double m = tu_maxdiff(d2->params + t->offset, tg_f32(fa, t->name, NULL), t->numel);
        adam_d = m > adam_d ? m : adam_d;
    }
    printf("Adam from stored gradients: G max|diff| %.3g, D max|diff| %.3g (atol 1e-7)\n", adam_g, adam_d);
    CHECK(adam_g <= 1e-7 && adam_d <= 1e-7, "Adam on stored gradients");
    gan_gen_free(g2);
    gan_disc_free(d2);

    /* ---- the whole step from the initial weights */
    printf("-- full step: D losses and gradients, parameters after Adam\n");
    load_models(&g2, &d2, NULL);
    double t2 = tg_seconds();
    gan_step(g2, d2, v, ws, &cfg, lr, coord, cell, gt);
    double t3 = tg_seconds();
    close_f("d_logits_real", ws->logits_real, "d_logits_real", 1e-6);
    close_f("d_logits_fake (atol 1e-4)", ws->logits_fake, "d_logits_fake", 1e-4);
    close_f("loss_d_real", &ws->loss_d_real, "loss_d_real", 1e-6);
    close_f("loss_d_fake (atol 5e-5)", &ws->loss_d_fake, "loss_d_fake", 5e-5);
    close_f("loss_d (atol 5e-5)", &ws->loss_d, "loss_d", 5e-5);
    double worst_d = 0;
    for (int i = 0; i < d2->n_tensors; i++) {
        const liif_train_tensor *t = &d2->tensors[i];
        if (!t->trainable) continue;
        snprintf(name, sizeof name, "grad.%s", t->name);
        double r = tg_grad(name, d2->grads + t->offset, tg_f32(fg, name, NULL), t->numel, 5e-3, 1e-9);
        worst_d = r > worst_d ? r : worst_d;
    }
    size_t total = 0, over = 0;
    double worst_p = 0, worst_rs = 0;
    for (int pass = 0; pass < 2; pass++) {
        const gan_disc *dd = d2;
        int nt = pass ? dd->n_tensors : g2->n_tensors;
        for (int i = 0; i < nt; i++) {
            const liif_train_tensor *t = pass ? &dd->tensors[i] : &g2->tensors[i];
            const float *got = (pass ? dd->params : g2->params) + t->offset, *want = tg_f32(fa, t->name, NULL);
            if (!t->trainable) { /* running stats after all three D forwards */
                double m = tu_maxdiff(got, want, t->numel);
                worst_rs = m > worst_rs ? m : worst_rs;
                continue;
            }
            for (size_t k = 0; k < t->numel; k++) {
                double e = fabs((double)got[k] - want[k]);
                worst_p = e > worst_p ? e : worst_p;
                over += !(e <= 1e-7);
                total++;
            }
        }
    }
    printf("after Adam: %zu parameters, max|diff| %.3g (limit 2.5e-4), %zu over 1e-7 (%.3f%%, limit 0.5%%)\n", total,
           worst_p, over, 100.0 * over / total);
    CHECK(worst_p <= 2.5e-4 && over <= total / 200, "parameters after the step");
    printf("running stats after the three D forwards: max|diff| %.3g (atol 1e-5)\n", worst_rs);
    CHECK(worst_rs <= 1e-5, "running stats after the step");
    printf("worst gradient ratios max|diff|/max|g|: loss_g %.2g, L_D1 %.2g, adv %.2g, per %.2g, D %.2g\n", worst_g,
           worst_t[0], worst_t[1], worst_t[2], worst_d);
    printf("timing: generator half %.3f s, full step %.3f s\n", t1 - t0, t3 - t2);
    gan_gen_free(g2);
    gan_disc_free(d2);
    free(nchw);
    free(d_init);
    free(grads_full);
    gan_step_ws_free(ws);
    gan_gen_free(g);
    gan_disc_free(d);
    gan_vgg_free(v);
    liif_st_close(fw);
    liif_st_close(fs);
    liif_st_close(fg);
    liif_st_close(fa);
    return tu_finish("gan-step");
}
