/* test_model_limits.c: liif_model_load refuses every model shape a backend cannot run, and every backend runs
 * the extreme shapes it accepts (run under ASan in the sanitizer build, so an overrun fails the test).
 * usage: test-model-limits refused | extremes */
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "randmodel.h"
#include "testutil.h"

static char tmpdir[64];

/* sp written (encoder reading in_ch channels, decoders writing out_dim) and loaded must fail with
 * LIIF_ERR_MODEL and a one-line message naming the file and `field`. */
static void expect_refused(const char *what, const rm_spec *sp, int in_ch, int out_dim, const char *field)
{
    char path[128];
    snprintf(path, sizeof path, "%s/refused.safetensors", tmpdir);
    if (rm_write_channels(path, sp, in_ch, out_dim)) {
        CHECK(0, "%s: cannot write the model", what);
        return;
    }
    liif_model *m = NULL;
    liif_error err = {{0}};
    liif_status s = liif_model_load(path, &m, &err);
    printf("%-34s -> %s\n", what, err.msg);
    CHECK(s == LIIF_ERR_MODEL && !m, "%s: status %d, want LIIF_ERR_MODEL", what, (int)s);
    CHECK(strstr(err.msg, path) != NULL, "%s: message does not name the file", what);
    CHECK(strstr(err.msg, field) != NULL, "%s: message does not name '%s'", what, field);
    CHECK(!strchr(err.msg, '\n') && !strchr(err.msg, '\x1b'), "%s: message is not one printable line", what);
    liif_model_free(m);
    unlink(path);
}

/* One model per field just outside what the backends run (a small LIIF model otherwise). */
static void refused(void)
{
    static const struct {
        const char *what;
        int F, R, n_hidden, hidden, unfold;
        const char *variant;
        int in_ch, out_dim;
        const char *field;
    } cases[] = {
        {"1 input channel", 4, 2, 2, 8, 1, "liif", 1, 1, "input channel count"},
        {"4 input channels", 4, 2, 2, 8, 1, "liif", 4, 4, "input channel count"},
        {"4 outputs", 4, 2, 2, 8, 1, "liif", 3, 4, "output width"},
        {"n_feats above the limit", LIIF_MAX_FEATS + 1, 0, 2, 8, 0, "liif", 3, 3, "n_feats"},
        {"n_resblocks above the limit", 1, LIIF_MAX_RESBLOCKS + 1, 2, 8, 1, "liif", 3, 3, "n_resblocks"},
        {"no hidden layer", 4, 2, 0, 8, 1, "liif", 3, 3, "hidden layer count"},
        {"too many hidden layers", 4, 2, LIIF_MAX_HIDDEN + 1, 8, 1, "liif", 3, 3, "imnet"},
        {"hidden width above the limit", 4, 2, 1, LIIF_MAX_WIDTH + 1, 1, "liif", 3, 3, "hidden layer 0"},
        {"unknown variant (escape sequence)", 4, 2, 2, 8, 1, "liif\x1b[31m", 3, 3, "liif\\x1b[31m"},
        {"mid-layer decoder, 1 block", 4, 1, 2, 8, 1, "liif-gan", 3, 3, "residual blocks"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rm_spec sp = {cases[i].F, cases[i].R, cases[i].n_hidden, cases[i].hidden, cases[i].unfold, 1, 1,
                      cases[i].variant, (unsigned)i, 2.0f};
        expect_refused(cases[i].what, &sp, cases[i].in_ch, cases[i].out_dim, cases[i].field);
    }
}

/* Runs m on a w x h image to an out_w x out_h output on backend kind; 0 and the output when it ran. */
static float *run_on(const liif_model *m, liif_backend_kind kind, int w, int h, int out_w, int out_h, int *ran)
{
    liif_engine *e = NULL;
    liif_error err = {{0}};
    char note[256] = "";
    *ran = 0;
    if (liif_engine_new(m, kind, &e, note, sizeof note, &err)) {
        CHECK(kind == LIIF_BACKEND_CUDA && (err.msg[0] || note[0]), "engine: %s", err.msg);
        return NULL;
    }
    if (kind == LIIF_BACKEND_CUDA && strcmp(liif_engine_backend_name(e), "cuda")) {
        liif_engine_free(e); /* no GPU here: the CPU fallback is tested on its own */
        return NULL;
    }
    float *img = rm_image(w, h, 5), *out = malloc((size_t)out_w * out_h * 3 * sizeof(float));
    liif_image in = {img, w, h, (size_t)w * 3};
    liif_region r = {out_w, out_h, 0, 0, out_w, out_h};
    liif_options o;
    liif_options_init(&o);
    o.detail = 0.5;
    liif_status s = liif_upscale_region(e, &in, &r, out, (size_t)out_w * 3, &o, &err);
    CHECK(s == LIIF_OK, "%s backend refused an accepted model: %s", liif_engine_backend_name(e), err.msg);
    for (size_t i = 0; !s && i < (size_t)out_w * out_h * 3; i++)
        if (!(out[i] >= 0.0f && out[i] <= 1.0f)) {
            CHECK(0, "%s backend: output %zu = %g is not in [0,1]", liif_engine_backend_name(e), i, out[i]);
            break;
        }
    *ran = s == LIIF_OK;
    liif_engine_free(e);
    free(img);
    return out;
}

/* The shapes at the edges of what check_config accepts, each on every backend, against the reference. */
static void extremes(void)
{
    struct {
        const char *name;
        rm_spec sp;
    } cases[] = {
        {"1 feature, no block, 1 hidden layer of 1", {1, 0, 1, 1, 0, 0, 0, "liif", 1, 2.0f}},
        {"max n_feats, no unfold", {LIIF_MAX_FEATS, 0, 1, 4, 0, 1, 1, "liif", 2, 2.0f}},
        {"max n_feats, unfold (widest decoder input)", {LIIF_MAX_FEATS, 0, 1, 2, 1, 0, 0, "liif-gan-s", 3, 2.0f}},
        {"max blocks, mid-layer decoder", {2, LIIF_MAX_RESBLOCKS, 1, 4, 1, 1, 1, "liif-gan", 4, 2.0f}},
        {"max hidden layers of max width", {2, 1, LIIF_MAX_HIDDEN, LIIF_MAX_WIDTH, 1, 1, 1, "liif-gan-s", 5, 2.0f}},
        {"2 blocks, mid block 0", {3, 2, 2, 5, 0, 1, 0, "liif-gan", 6, 2.0f}},
    };
    const liif_backend_kind kinds[] = {LIIF_BACKEND_CPU, LIIF_BACKEND_CUDA};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        liif_model *m = rm_load(tmpdir, &cases[i].sp);
        int w = 3, h = 2, W = 5, H = 3, ran;
        float *ref = run_on(m, LIIF_BACKEND_CPU_REF, w, h, W, H, &ran);
        printf("%-46s reference %s\n", cases[i].name, ran ? "ran" : "FAILED");
        for (size_t k = 0; ref && ran && k < sizeof kinds / sizeof kinds[0]; k++) {
            int ok;
            float *out = run_on(m, kinds[k], w, h, W, H, &ok);
            if (out && ok) {
                char what[128];
                snprintf(what, sizeof what, "  %s vs reference", kinds[k] == LIIF_BACKEND_CPU ? "fast CPU" : "CUDA");
                tu_close(what, out, ref, (size_t)W * H * 3, kinds[k] == LIIF_BACKEND_CPU ? 1e-4 : 2e-3);
            }
            free(out);
        }
        free(ref);
        liif_model_free(m);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s refused|extremes\n", argv[0]);
        return 2;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/liif-limits-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    if (!strcmp(argv[1], "refused")) refused();
    else if (!strcmp(argv[1], "extremes")) extremes();
    else return 2;
    rmdir(tmpdir);
    printf("%s: %d failure(s)\n", argv[1], tu_failures);
    return tu_failures ? 1 : 0;
}
