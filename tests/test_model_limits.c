/* test_model_limits.c: liif_model_load refuses every model shape a backend cannot run, and every backend runs
 * the extreme shapes it accepts (run under ASan in the sanitizer build, so an overrun fails the test).
 * usage: test-model-limits refused | extremes */
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "randmodel.h"
#include "testutil.h"

static char tmpdir[64];

/* A small valid LIIF model to start each case from. */
static rm_spec base_spec(void)
{
    return (rm_spec){.n_feats = 4, .n_resblocks = 2, .n_hidden = 2, .hidden = 8, .feat_unfold = 1,
                     .local_ensemble = 1, .cell_decode = 1, .variant = "liif", .seed = 3, .out_gain = 2.0f};
}

/* Channel counts of the refused models (rm_write_channels); 3 unless a case changes them. */
static int in_ch = 3, out_dim = 3;

/* sp written and loaded must fail with LIIF_ERR_MODEL and a one-line message naming the file and `field`. */
static void expect_refused(const char *what, const rm_spec *sp, const char *field)
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

static void refused(void)
{
    rm_spec sp = base_spec();
    in_ch = out_dim = 1;
    expect_refused("1 input channel", &sp, "input channel count");
    in_ch = out_dim = 4;
    expect_refused("4 input channels", &sp, "input channel count");
    in_ch = 3;
    expect_refused("4 outputs", &sp, "output width");
    out_dim = 3;
    sp = base_spec();
    sp.n_feats = LIIF_MAX_FEATS + 1;
    sp.n_resblocks = 0;
    sp.feat_unfold = 0;
    expect_refused("n_feats above the limit", &sp, "n_feats");
    sp = base_spec();
    sp.n_feats = 1;
    sp.n_resblocks = LIIF_MAX_RESBLOCKS + 1;
    expect_refused("n_resblocks above the limit", &sp, "n_resblocks");
    sp = base_spec();
    sp.n_hidden = 0;
    expect_refused("no hidden layer", &sp, "hidden layer count");
    sp = base_spec();
    sp.n_hidden = LIIF_MAX_HIDDEN + 1;
    expect_refused("too many hidden layers", &sp, "imnet");
    sp = base_spec();
    sp.n_hidden = 1;
    sp.hidden = LIIF_MAX_WIDTH + 1;
    expect_refused("hidden width above the limit", &sp, "hidden layer 0");
    sp = base_spec();
    sp.variant = "liif\x1b[31m";
    expect_refused("unknown variant (escape sequence)", &sp, "liif\\x1b[31m");
    sp = base_spec();
    sp.variant = "liif-gan";
    sp.n_resblocks = 1;
    expect_refused("mid-layer decoder, 1 block", &sp, "residual blocks");
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
