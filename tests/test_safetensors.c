/* test_safetensors.c: safetensors reader/writer: round trip, half conversions, every malformed-file error, write failures, golden weights. */
/* Usage: test-safetensors               unit checks (bad files are made in a mkdtemp folder)
 *        test-safetensors GOLDEN_DIR    unit checks, then the golden ones (skipped if absent)
 *        test-safetensors --golden DIR  golden checks only; exit 77 (meson: skipped) if absent */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"

static int n_checks, n_failed;
static char tmpdir[256];

/* Every check prints what it compared, so a log shows the passing values too. */
static bool check(bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  %s ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    n_checks++;
    n_failed += !ok;
    return ok;
}

static const char *tpath(const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", tmpdir, name);
    return buf;
}

/* ------------------------------------------------------------- raw files */

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write test file %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* 8-byte little-endian length (given, not necessarily the true one), header text,
 * then data_len bytes of data (a ramp, so overlapping reads would differ). */
static void write_raw_n(const char *path, uint64_t hlen, const char *json, size_t data_len)
{
    size_t jl = strlen(json), n = 8 + jl + data_len;
    unsigned char *b = malloc(n);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(b + 8, json, jl);
    for (size_t i = 0; i < data_len; i++)
        b[8 + jl + i] = (unsigned char)i;
    write_bytes(path, b, n);
    free(b);
}

static void write_raw(const char *path, const char *json, size_t data_len)
{
    write_raw_n(path, strlen(json), json, data_len);
}

/* ------------------------------------------------------- error assertions */

static bool has_newline(const char *s)
{
    return strchr(s, '\n') || strchr(s, '\r');
}

/* The status, and a one-line message that starts with "path:" and contains each
 * of the NULL-terminated fragments. */
static void expect_err(const char *what, liif_status got, liif_status want, const liif_error *e,
                       const char *path, ...)
{
    check(got == want, "%s: status '%s' == '%s'", what, liif_status_name(got), liif_status_name(want));
    size_t pl = strlen(path);
    check(strncmp(e->msg, path, pl) == 0 && e->msg[pl] == ':', "%s: message starts with the path: \"%s\"", what,
          e->msg);
    check(!has_newline(e->msg), "%s: message is one line", what);
    va_list ap;
    va_start(ap, path);
    for (const char *frag; (frag = va_arg(ap, const char *));)
        check(strstr(e->msg, frag) != NULL, "%s: message contains \"%s\"", what, frag);
    va_end(ap);
}

/* Open a raw header written by the test and expect a format error. */
static void expect_open_fails(const char *name, const char *json, size_t data_len, liif_status want, ...)
{
    char p[512];
    tpath("bad.safetensors", p, sizeof p);
    write_raw(p, json, data_len);
    liif_st_file *f = (liif_st_file *)1;
    liif_error e = {{0}};
    liif_status s = liif_st_open(p, &f, &e);
    check(f == NULL, "%s: no file handle returned on failure", name);
    expect_err(name, s, want, &e, p, NULL);
    va_list ap;
    va_start(ap, want);
    for (const char *frag; (frag = va_arg(ap, const char *));)
        check(strstr(e.msg, frag) != NULL, "%s: message contains \"%s\"", name, frag);
    va_end(ap);
    if (s == LIIF_OK)
        liif_st_close(f);
    unlink(p);
}

/* ------------------------------------------------------ half conversions */

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bitsf(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Independent decoding of a finite half: m * 2^-24 or (1024 + m) * 2^(e - 25). */
static double f16_value(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e ? ldexp(1024 + m, e - 25) : ldexp(m, -24);
    return h & 0x8000 ? -v : v;
}

/* Reference float -> half for |x| finite: the nearest of the two neighbouring
 * halves (found by bisection over the ordered bit patterns), ties to the even one,
 * 65520 and beyond to inf. Exact in double. */
static uint16_t f16_reference(float x)
{
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    double a = fabs((double)x);
    if (a >= 65520.0)
        return sign | 0x7c00;
    unsigned lo = 0, hi = 0x7bff;
    while (lo < hi) { /* largest pattern whose value is <= a */
        unsigned mid = (lo + hi + 1) / 2;
        if (f16_value((uint16_t)mid) <= a)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (lo == 0x7bff)
        return sign | 0x7bff;
    double dl = a - f16_value((uint16_t)lo), du = f16_value((uint16_t)(lo + 1)) - a;
    unsigned r = dl < du ? lo : du < dl ? lo + 1 : (lo & 1 ? lo + 1 : lo);
    return (uint16_t)(sign | r);
}

/* Reference float -> bf16 the same way: the two candidates are the truncation and
 * one ulp above it (2^128 for the step past the largest, which means inf). */
static uint16_t bf16_reference(float x)
{
    uint32_t b = fbits(x), lo = b & 0xffff0000u, up = lo + 0x10000u;
    double a = fabs((double)x), vl = fabs((double)bitsf(lo));
    double vu = (up & 0x7fffffffu) == 0x7f800000u ? ldexp(1, 128) : fabs((double)bitsf(up));
    double dl = a - vl, du = vu - a;
    uint32_t r = dl < du ? lo : du < dl ? up : ((lo >> 16) & 1 ? up : lo);
    return (uint16_t)(r >> 16);
}

static void test_f16_known(void)
{
    static const struct { float f; uint16_t h; } t[] = {
        {0.0f, 0x0000}, {-0.0f, 0x8000}, {1.0f, 0x3c00}, {-2.0f, 0xc000}, {65504.0f, 0x7bff},
        {65519.0f, 0x7bff}, {65520.0f, 0x7c00}, {1e10f, 0x7c00}, {0x1p-14f, 0x0400},
        {0x1p-24f, 0x0001}, {0x1p-25f, 0x0000}, {0x1.8p-25f, 0x0001}, {0x3ffp-24f, 0x03ff},
        {0x1.002p0f, 0x3c00} /* tie, even stays */, {0x1.006p0f, 0x3c02} /* tie, rounds up to even */,
        {0x1.ffep-15f, 0x0400} /* subnormal rounding up into the smallest normal */,
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        uint16_t h = liif_f32_to_f16(t[i].f);
        check(h == t[i].h, "f32_to_f16(%a) = 0x%04x, expected 0x%04x", (double)t[i].f, h, t[i].h);
    }
    check(liif_f32_to_f16(INFINITY) == 0x7c00 && liif_f32_to_f16(-INFINITY) == 0xfc00,
          "f32_to_f16(+-inf) = 0x7c00 / 0xfc00");
    uint16_t hn = liif_f32_to_f16(bitsf(0x7f800001u)); /* signalling nan, payload only in low bits */
    check((hn & 0x7c00) == 0x7c00 && (hn & 0x3ff), "f32_to_f16(snan) = 0x%04x stays a nan", hn);
    check(isnan(liif_f16_to_f32(0x7e00)) && isinf(liif_f16_to_f32(0xfc00)), "f16_to_f32(nan, -inf)");
    check(liif_f16_to_f32(0x0001) == 0x1p-24f && liif_f16_to_f32(0x8001) == -0x1p-24f,
          "f16_to_f32(smallest subnormals) = +-2^-24");
}

static void test_f16_exhaustive(void)
{
    int bad_decode = 0, bad_trip = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = liif_f16_to_f32((uint16_t)h);
        bool nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff);
        if (nan) {
            bad_decode += !isnan(f);
            bad_trip += !((liif_f32_to_f16(f) & 0x7fff) > 0x7c00);
        } else {
            bool inf = (h & 0x7fff) == 0x7c00;
            bad_decode += inf ? !isinf(f) || (signbit(f) != 0) != ((h & 0x8000) != 0)
                              : (double)f != f16_value((uint16_t)h);
            bad_trip += liif_f32_to_f16(f) != h;
        }
    }
    check(bad_decode == 0, "f16_to_f32 of all 65536 halves matches the reference decoding (%d differ)", bad_decode);
    check(bad_trip == 0, "f32_to_f16(f16_to_f32(h)) == h for all 65536 halves (%d differ)", bad_trip);
}

/* Values near every rounding boundary (each midpoint and its float neighbours),
 * plus a stride through all finite floats. */
static void test_f32_to_f16_sweep(void)
{
    long n = 0, bad = 0;
    for (uint32_t h = 0; h < 0x7bff; h++) {
        float mid = (float)((f16_value((uint16_t)h) + f16_value((uint16_t)(h + 1))) / 2);
        float v[] = {mid, nextafterf(mid, 0), nextafterf(mid, INFINITY), -mid};
        for (int k = 0; k < 4; k++, n++)
            bad += liif_f32_to_f16(v[k]) != f16_reference(v[k]);
    }
    for (uint64_t b = 0; b < 0x7f800000u; b += 4099, n += 2) {
        float x = bitsf((uint32_t)b);
        bad += liif_f32_to_f16(x) != f16_reference(x);
        bad += liif_f32_to_f16(-x) != f16_reference(-x);
    }
    check(bad == 0, "f32_to_f16 equals the reference on %ld values at and around every tie (%ld differ)", n, bad);
}

static void test_bf16(void)
{
    check(liif_f32_to_bf16(1.0f) == 0x3f80 && liif_f32_to_bf16(-2.0f) == 0xc000, "f32_to_bf16(1, -2)");
    check(liif_f32_to_bf16(bitsf(0x3f808000u)) == 0x3f80, "f32_to_bf16(tie below even) = 0x3f80");
    check(liif_f32_to_bf16(bitsf(0x3f818000u)) == 0x3f82, "f32_to_bf16(tie above odd) = 0x3f82");
    check(liif_f32_to_bf16(bitsf(0x7f7fffffu)) == 0x7f80, "f32_to_bf16(FLT_MAX) rounds to inf 0x7f80");
    uint16_t n = liif_f32_to_bf16(bitsf(0x7f800001u));
    check((n & 0x7f80) == 0x7f80 && (n & 0x7f), "f32_to_bf16(snan with low payload) = 0x%04x stays a nan", n);
    check(liif_f32_to_bf16(bitsf(0x00000001u)) == 0x0000 && liif_f32_to_bf16(bitsf(0x00008001u)) == 0x0001,
          "f32_to_bf16(float subnormals) round to nearest");
    long cnt = 0, bad = 0, bad_trip = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = liif_bf16_to_f32((uint16_t)h);
        bad_trip += isnan(f) ? !isnan(liif_bf16_to_f32(liif_f32_to_bf16(f))) : liif_f32_to_bf16(f) != h;
        if ((h & 0x7f80) == 0x7f80)
            continue;
        float mid = bitsf((h << 16) | 0x8000u); /* exactly half way to the next bf16 */
        float v[] = {mid, nextafterf(mid, 0), nextafterf(mid, INFINITY)};
        for (int k = 0; k < 3; k++, cnt++)
            bad += liif_f32_to_bf16(v[k]) != bf16_reference(v[k]);
    }
    for (uint64_t b = 0; b < 0x7f800000u; b += 4099, cnt++)
        bad += liif_f32_to_bf16(bitsf((uint32_t)b)) != bf16_reference(bitsf((uint32_t)b));
    check(bad_trip == 0, "bf16 -> f32 -> bf16 is the identity on all 65536 patterns (%ld differ)", bad_trip);
    check(bad == 0, "f32_to_bf16 equals the reference on %ld values around every tie (%ld differ)", cnt, bad);
}

static void test_dtype_table(void)
{
    static const char *const names[] = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"};
    static const size_t sizes[] = {8, 4, 2, 2, 8, 4, 2, 1, 1, 1};
    for (int t = 0; t < 10; t++)
        check(strcmp(liif_dtype_name((liif_dtype)t), names[t]) == 0 && liif_dtype_size((liif_dtype)t) == sizes[t],
              "dtype %d is %s, %zu bytes", t, liif_dtype_name((liif_dtype)t), liif_dtype_size((liif_dtype)t));
}

/* -------------------------------------------------------------- round trip */

/* Every dtype, a scalar, an empty tensor, non-ASCII and escaped names; a 3-byte
 * tensor first so everything after it sits at odd addresses in the mapping. */
struct rt_data {
    uint8_t u8[3];
    float f32[6];
    uint16_t f16[4], bf16[3];
    double f64[3];
    int64_t i64[2];
    int32_t i32[1];
    int16_t i16[2];
    int8_t i8[2];
    uint8_t b[3];
    float scalar;
};
static struct rt_data rt;

static const char *const rt_meta[] = {"format", "pt", "note", "line 1\nline 2 \"quoted\" \\ tab\t caf\xc3\xa9"};

static int rt_entries(liif_st_entry *e)
{
    rt = (struct rt_data){.u8 = {1, 2, 255}, .f32 = {1.5f, -0.0f, 0x1p-140f, INFINITY, -3.25f, 1e30f},
                      .f64 = {0.1, -1e300, 0x1.000001p0}, .i64 = {-1, INT64_MAX}, .i32 = {-123456},
                      .i16 = {-32768, 32767}, .i8 = {-128, 127}, .b = {0, 1, 1}, .scalar = 42.0f};
    const float f16v[] = {1.0f, -2.5f, 65504.0f, 0x1p-24f}, bf16v[] = {3.140625f, -0x1p-130f, 1e38f};
    for (int i = 0; i < 4; i++)
        rt.f16[i] = liif_f32_to_f16(f16v[i]);
    for (int i = 0; i < 3; i++)
        rt.bf16[i] = liif_f32_to_bf16(bf16v[i]);
    int n = 0;
    e[n++] = (liif_st_entry){"u8", LIIF_DT_U8, 1, {3}, rt.u8};
    e[n++] = (liif_st_entry){"layer.f32", LIIF_DT_F32, 2, {2, 3}, rt.f32};
    e[n++] = (liif_st_entry){"f16", LIIF_DT_F16, 1, {4}, rt.f16};
    e[n++] = (liif_st_entry){"bf16", LIIF_DT_BF16, 1, {3}, rt.bf16};
    e[n++] = (liif_st_entry){"f64", LIIF_DT_F64, 1, {3}, rt.f64};
    e[n++] = (liif_st_entry){"i64", LIIF_DT_I64, 1, {2}, rt.i64};
    e[n++] = (liif_st_entry){"i32", LIIF_DT_I32, 3, {1, 1, 1}, rt.i32};
    e[n++] = (liif_st_entry){"i16", LIIF_DT_I16, 1, {2}, rt.i16};
    e[n++] = (liif_st_entry){"i8", LIIF_DT_I8, 1, {2}, rt.i8};
    e[n++] = (liif_st_entry){"flags", LIIF_DT_BOOL, 1, {3}, rt.b};
    e[n++] = (liif_st_entry){"scalar", LIIF_DT_F32, 0, {0}, &rt.scalar};
    e[n++] = (liif_st_entry){"empty", LIIF_DT_F32, 2, {0, 5}, NULL};
    e[n++] = (liif_st_entry){"na\xc3\xafve \"q\" \\ \xf0\x9f\x98\x80", LIIF_DT_I8, 1, {1}, rt.i8};
    return n;
}

static void check_rt_tensors(const liif_st_file *f, const liif_st_entry *e, int n)
{
    check(liif_st_count(f) == n, "round trip: %d tensors read back, %d written", liif_st_count(f), n);
    for (int i = 0; i < n && i < liif_st_count(f); i++) {
        const liif_st_tensor *t = liif_st_at(f, i);
        size_t nb = liif_dtype_size(e[i].dtype);
        for (int d = 0; d < e[i].ndim; d++)
            nb *= (size_t)e[i].shape[d];
        bool same = strcmp(t->name, e[i].name) == 0 && t->dtype == e[i].dtype && t->ndim == e[i].ndim &&
                    memcmp(t->shape, e[i].shape, (size_t)e[i].ndim * sizeof(int64_t)) == 0 &&
                    t->nbytes == nb && (nb == 0 || memcmp(t->data, e[i].data, nb) == 0);
        check(same, "round trip: tensor %d '%s' %s ndim %d, %zu bytes: name, dtype, shape, bytes equal", i,
              t->name, liif_dtype_name(t->dtype), t->ndim, t->nbytes);
        check(liif_st_find(f, e[i].name) == t, "round trip: find('%s') returns tensor %d", e[i].name, i);
    }
    check(liif_st_find(f, "nope") == NULL && liif_st_at(f, n) == NULL && liif_st_at(f, -1) == NULL,
          "round trip: find(absent) and at(out of range) give NULL");
    const liif_st_tensor *s = liif_st_find(f, "scalar");
    check(s && s->ndim == 0 && s->numel == 1, "round trip: scalar has ndim 0, numel 1");
    const liif_st_tensor *z = liif_st_find(f, "empty");
    check(z && z->numel == 0 && z->nbytes == 0, "round trip: [0, 5] tensor has numel 0, 0 bytes");
}

static void check_rt_f32(const liif_st_file *f)
{
    liif_error e = {{0}};
    float out[6];
    const int64_t s23[] = {2, 3}, s4[] = {4}, s3[] = {3};
    bool ok = liif_st_read_f32(f, "layer.f32", 2, s23, out, &e) == LIIF_OK && memcmp(out, rt.f32, sizeof rt.f32) == 0;
    check(ok, "read_f32(F32, from an unaligned address %% 4 = %d) is bit-exact",
          (int)((uintptr_t)liif_st_find(f, "layer.f32")->data % 4));
    ok = liif_st_read_f32(f, "f16", 1, s4, out, &e) == LIIF_OK && out[0] == 1.0f && out[1] == -2.5f &&
         out[2] == 65504.0f && out[3] == 0x1p-24f;
    check(ok, "read_f32(F16) = {%g, %g, %g, %a}", out[0], out[1], out[2], (double)out[3]);
    ok = liif_st_read_f32(f, "bf16", 1, s3, out, &e) == LIIF_OK && out[0] == 3.140625f &&
         out[1] == liif_bf16_to_f32(liif_f32_to_bf16(-0x1p-130f)) && out[2] == liif_bf16_to_f32(liif_f32_to_bf16(1e38f));
    check(ok, "read_f32(BF16) = {%g, %a, %g}", out[0], (double)out[1], out[2]);
    ok = liif_st_read_f32(f, "f64", 1, s3, out, &e) == LIIF_OK && out[0] == 0.1f && isinf(out[1]) && out[1] < 0 &&
         out[2] == 1.0f;
    check(ok, "read_f32(F64) = {%g, %g, %a}: rounded, overflow to -inf, tie to even", out[0], out[1], (double)out[2]);
    ok = liif_st_read_f32(f, "scalar", 0, NULL, out, &e) == LIIF_OK && out[0] == 42.0f;
    check(ok, "read_f32(scalar, ndim 0) = %g", out[0]);
    const int64_t s05[] = {0, 5};
    check(liif_st_read_f32(f, "empty", 2, s05, NULL, &e) == LIIF_OK, "read_f32(empty [0, 5]) into NULL is ok");
}

/* The header on disk: length a multiple of 8, padded with spaces. */
static void check_rt_header(const char *path)
{
    FILE *fp = fopen(path, "rb");
    unsigned char len8[8] = {0};
    uint64_t n = 0;
    if (fp && fread(len8, 1, 8, fp) == 8)
        for (int i = 7; i >= 0; i--)
            n = n << 8 | len8[i];
    char *h = calloc(1, n + 1);
    bool ok = fp && h && fread(h, 1, n, fp) == n;
    if (fp)
        fclose(fp);
    size_t end = ok ? strlen(h) : 0;
    while (end && h[end - 1] == ' ')
        end--;
    check(ok && n % 8 == 0 && end > 0 && h[end - 1] == '}', "written header is %llu bytes (multiple of 8), '}' then spaces",
          (unsigned long long)n);
    check(ok && strstr(h, "\"__metadata__\":{\"format\":\"pt\"") != NULL, "written header starts with __metadata__");
    free(h);
}

static int count_temp_files(void)
{
    int n = 0;
    DIR *d = opendir(tmpdir);
    for (struct dirent *de; d && (de = readdir(d));)
        n += strstr(de->d_name, ".tmp") != NULL;
    if (d)
        closedir(d);
    return n;
}

static void test_round_trip(void)
{
    char p[512];
    liif_st_entry e[16];
    int n = rt_entries(e);
    liif_error err = {{0}};
    tpath("rt.safetensors", p, sizeof p);
    liif_status s = liif_st_write(p, e, n, rt_meta, 2, &err);
    if (!check(s == LIIF_OK, "write %d tensors + 2 metadata: status '%s' %s", n, liif_status_name(s), err.msg))
        return;
    check(count_temp_files() == 0, "no temporary file left after a successful write");
    struct stat st = {0};
    mode_t mask = umask(0); /* the test is single-threaded, so reading the umask this way is safe */
    umask(mask);
    bool st_ok = stat(p, &st) == 0;
    check(st_ok && (st.st_mode & 0777) == (0666 & ~mask), "written file mode %03o == 0666 & ~umask %03o",
          (unsigned)(st.st_mode & 0777), (unsigned)mask);
    check_rt_header(p);
    liif_st_file *f = NULL;
    s = liif_st_open(p, &f, &err);
    if (!check(s == LIIF_OK, "open round-trip file: status '%s' %s", liif_status_name(s), err.msg))
        return;
    check(strcmp(liif_st_path(f), p) == 0, "path() is the path opened");
    check_rt_tensors(f, e, n);
    check_rt_f32(f);
    const char *note = liif_st_meta(f, "note");
    check(note && strcmp(note, rt_meta[3]) == 0, "metadata 'note' with newline, quotes, backslash, tab, UTF-8 survives");
    check(liif_st_meta(f, "format") && strcmp(liif_st_meta(f, "format"), "pt") == 0, "metadata 'format' = 'pt'");
    check(liif_st_meta(f, "absent") == NULL, "metadata of an absent key is NULL");
    liif_st_close(f);
    liif_st_close(NULL);
    unlink(p);
}

/* A second write replaces the first in place. */
static void test_overwrite(void)
{
    char p[512];
    liif_error err = {{0}};
    float a = 1, b = 2;
    liif_st_entry ea = {"x", LIIF_DT_F32, 1, {1}, &a}, eb = {"y", LIIF_DT_F32, 1, {1}, &b};
    tpath("over.safetensors", p, sizeof p);
    liif_st_file *f = NULL;
    bool ok = liif_st_write(p, &ea, 1, NULL, 0, &err) == LIIF_OK && liif_st_write(p, &eb, 1, NULL, 0, &err) == LIIF_OK &&
              liif_st_open(p, &f, &err) == LIIF_OK;
    check(ok && liif_st_count(f) == 1 && liif_st_find(f, "y") && liif_st_meta(f, "format") == NULL,
          "overwrite: the second write (one tensor 'y', no metadata) replaced the first %s", err.msg);
    liif_st_close(f);
    unlink(p);
}

/* Valid JSON spellings a strict parser must still take. */
static void test_json_accepts(void)
{
    static const struct { const char *name, *json; size_t data; const char *tensor; } t[] = {
        {"empty header", "{}", 0, NULL},
        {"whitespace everywhere", " \t\r\n{ \"a\" : { \"dtype\" : \"U8\" , \"shape\" : [ 2 ] , \"data_offsets\" : [ 0 , 2 ] } }  \n ", 2, "a"},
        {"escaped name", "{\"\\u00e9\\ud83d\\ude00\\/\\\"\\t\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}", 1,
         "\xc3\xa9\xf0\x9f\x98\x80/\"\t"},
        {"field order free, hole in data", "{\"b\":{\"data_offsets\":[4,6],\"shape\":[1],\"dtype\":\"I16\"},\"__metadata__\":{}}", 8, "b"},
        {"zero-size tensors share offsets", "{\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[3,0],\"data_offsets\":[2,2]}}", 4, "w"},
    };
    char p[512];
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        tpath("accept.safetensors", p, sizeof p);
        write_raw(p, t[i].json, t[i].data);
        liif_st_file *f = NULL;
        liif_error e = {{0}};
        liif_status s = liif_st_open(p, &f, &e);
        check(s == LIIF_OK && (!t[i].tensor || liif_st_find(f, t[i].tensor)), "accepts %s: status '%s' %s", t[i].name,
              liif_status_name(s), e.msg);
        liif_st_close(f);
        unlink(p);
    }
}

/* ------------------------------------------------------------- bad files */

static void test_open_io_errors(void)
{
    char p[512];
    liif_st_file *f = NULL;
    liif_error e = {{0}};
    tpath("does-not-exist.safetensors", p, sizeof p);
    expect_err("missing file", liif_st_open(p, &f, &e), LIIF_ERR_IO, &e, p, "No such file", NULL);
    expect_err("directory", liif_st_open(tmpdir, &f, &e), LIIF_ERR_IO, &e, tmpdir, "not a regular file", NULL);
}

static void test_truncated(void)
{
    char p[512];
    liif_st_file *f = NULL;
    liif_error e = {{0}};
    tpath("empty.safetensors", p, sizeof p);
    write_bytes(p, "", 0);
    expect_err("empty file", liif_st_open(p, &f, &e), LIIF_ERR_FORMAT, &e, p, "truncated", "0 bytes", NULL);
    tpath("short.safetensors", p, sizeof p);
    write_bytes(p, "\x02\0\0\0\0", 5);
    expect_err("truncated to 5 bytes", liif_st_open(p, &f, &e), LIIF_ERR_FORMAT, &e, p, "truncated", "5 bytes", NULL);
    /* A whole file cut short inside its data: the header's last tensor no longer fits. */
    tpath("cut.safetensors", p, sizeof p);
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}   ", 20);
    expect_err("truncated inside the data", liif_st_open(p, &f, &e), LIIF_ERR_FORMAT, &e, p, "'b'", "[8, 24]",
               "past the end of the data (20 bytes)", NULL);
    tpath("cut-header.safetensors", p, sizeof p);
    write_raw_n(p, 200, "{\"a\":{\"dtype\":\"F32\",", 0);
    expect_err("truncated inside the header", liif_st_open(p, &f, &e), LIIF_ERR_FORMAT, &e, p,
               "header length 200 runs past the end of the file (28 bytes)", NULL);
}

static void test_header_length(void)
{
    char p[512];
    liif_st_file *f = NULL;
    liif_error e = {{0}};
    tpath("hlen.safetensors", p, sizeof p);
    write_raw_n(p, 123456, "{}", 8990);
    expect_err("header length past the end", liif_st_open(p, &f, &e), LIIF_ERR_FORMAT, &e, p,
               "header length 123456 runs past the end of the file (9000 bytes)", NULL);
    write_raw_n(p, 1, "{}", 0);
    expect_err("header length 1", liif_st_open(p, &f, &e), LIIF_ERR_FORMAT, &e, p, "header length 1", "too small", NULL);
    write_raw_n(p, UINT64_MAX, "{}", 0);
    expect_err("header length 2^64-1", liif_st_open(p, &f, &e), LIIF_ERR_FORMAT, &e, p, "header length 18446744073709551615",
               NULL);
    unlink(p);
}

#define T(n, shape, off) "\"" n "\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":" off "}"

static void test_bad_json(void)
{
    static const struct { const char *name, *json, *frag; } t[] = {
        {"bad JSON: unclosed object", "{\"a\":{\"dtype\":\"F32\"", "unexpected end"},
        {"bad JSON: trailing garbage", "{}  x", "trailing characters"},
        {"bad JSON: second object", "{}{}", "trailing characters"},
        {"bad JSON: trailing comma", "{" T("a", "[1]", "[0,4]") ",}", "expected a string key"},
        {"bad JSON: missing colon", "{\"a\" {}}", "expected ':'"},
        {"bad JSON: float", "{" T("a", "[1.0]", "[0,4]") "}", "only integers"},
        {"bad JSON: exponent", "{" T("a", "[1e0]", "[0,4]") "}", "only integers"},
        {"bad JSON: leading zero", "{" T("a", "[01]", "[0,4]") "}", "leading zero"},
        {"bad JSON: integer overflow", "{" T("a", "[99999999999999999999]", "[0,4]") "}", "out of range"},
        {"bad JSON: literal true", "{\"__metadata__\":{\"x\":true}}", "unexpected character"},
        {"bad JSON: unknown escape", "{\"a\\q\":{}}", "unknown escape"},
        {"bad JSON: lone surrogate", "{\"\\ud800x\":{}}", "surrogate"},
        {"bad JSON: \\u0000", "{\"a\\u0000b\":{}}", "\\u0000"},
        {"bad JSON: bad hex", "{\"\\u12g4\":{}}", "hex digit"},
        {"bad JSON: raw newline in string", "{\"a\nb\":{}}", "control character"},
        {"bad JSON: invalid UTF-8", "{\"a\xff\":{}}", "invalid UTF-8"},
        {"bad JSON: overlong UTF-8", "{\"\xc0\xaf\":{}}", "invalid UTF-8"},
        {"bad JSON: UTF-8 surrogate", "{\"\xed\xa0\x80\":{}}", "invalid UTF-8"},
        {"bad JSON: unterminated string", "{\"abc", "unterminated string"},
        {"bad JSON: NUL padding", "{}\0\0\0\0\0\0", "trailing characters"},
        {"bad JSON: top level array", "[]", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        /* The NUL-padding case needs its true length; no other entry starts with "{}\0". */
        size_t len = strlen(t[i].json);
        if (strcmp(t[i].name, "bad JSON: NUL padding") == 0)
            len = 8;
        char p[512];
        liif_st_file *f = NULL;
        liif_error e = {{0}};
        tpath("json.safetensors", p, sizeof p);
        unsigned char b[256] = {0};
        b[0] = (unsigned char)len;
        memcpy(b + 8, t[i].json, len);
        write_bytes(p, b, 8 + len);
        expect_err(t[i].name, liif_st_open(p, &f, &e), LIIF_ERR_FORMAT, &e, p, t[i].frag, NULL);
        unlink(p);
    }
}

static void test_nesting_limit(void)
{
    char json[256] = "{\"__metadata__\":", p[512];
    for (int i = 0; i < 40; i++)
        strcat(json, "[");
    for (int i = 0; i < 40; i++)
        strcat(json, "]");
    strcat(json, "}");
    liif_st_file *f = NULL;
    liif_error e = {{0}};
    tpath("deep.safetensors", p, sizeof p);
    write_raw(p, json, 0);
    expect_err("bad JSON: nesting 41 deep", liif_st_open(p, &f, &e), LIIF_ERR_FORMAT, &e, p, "nesting too deep", NULL);
    unlink(p);
}

static void test_bad_entries(void)
{
    expect_open_fails("offsets out of range", "{" T("w", "[2,2]", "[0,16]") "}", 12, LIIF_ERR_FORMAT,
                      "tensor 'w'", "[0, 16]", "past the end of the data (12 bytes)", NULL);
    expect_open_fails("offsets reversed", "{" T("w", "[0]", "[8,4]") "}", 12, LIIF_ERR_FORMAT, "tensor 'w'",
                      "begin after end", NULL);
    expect_open_fails("offsets not a pair", "{" T("w", "[1]", "[0,4,8]") "}", 12, LIIF_ERR_FORMAT, "tensor 'w'",
                      "[begin, end]", NULL);
    expect_open_fails("negative offset", "{" T("w", "[1]", "[-4,0]") "}", 12, LIIF_ERR_FORMAT, "tensor 'w'",
                      "non-negative", NULL);
    expect_open_fails("overlapping offsets", "{" T("a", "[4]", "[0,16]") "," T("b", "[4]", "[8,24]") "}", 24,
                      LIIF_ERR_FORMAT, "tensor 'b'", "overlaps tensor 'a'", "[8, 24) vs [0, 16)", NULL);
    expect_open_fails("identical offsets", "{" T("a", "[1]", "[0,4]") "," T("b", "[1]", "[0,4]") "}", 4,
                      LIIF_ERR_FORMAT, "overlaps", NULL);
    expect_open_fails("unknown dtype", "{\"x\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
                      LIIF_ERR_FORMAT, "unknown dtype 'Q7' for tensor 'x'", NULL);
    expect_open_fails("size mismatch", "{" T("w", "[2,2]", "[0,12]") "}", 16, LIIF_ERR_FORMAT, "tensor 'w'",
                      "[0, 12]", "F32 [2, 2] needs 16 bytes", "size mismatch", NULL);
    expect_open_fails("duplicate name", "{" T("w", "[1]", "[0,4]") "," T("w", "[1]", "[4,8]") "}", 8,
                      LIIF_ERR_FORMAT, "duplicate tensor name 'w'", NULL);
    expect_open_fails("negative dimension", "{" T("w", "[-1]", "[0,0]") "}", 0, LIIF_ERR_FORMAT, "tensor 'w'",
                      "non-negative", NULL);
    expect_open_fails("9 dimensions", "{" T("w", "[1,1,1,1,1,1,1,1,1]", "[0,4]") "}", 4, LIIF_ERR_FORMAT,
                      "tensor 'w'", "has 9 dimensions", NULL);
    expect_open_fails("numel overflow", "{" T("w", "[4294967296,4294967296]", "[0,4]") "}", 4, LIIF_ERR_FORMAT,
                      "tensor 'w'", "too many elements", NULL);
    expect_open_fails("byte size overflow", "{" T("w", "[4611686018427387904]", "[0,4]") "}", 4, LIIF_ERR_FORMAT,
                      "tensor 'w'", "too many bytes", NULL);
    expect_open_fails("missing field", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, LIIF_ERR_FORMAT,
                      "tensor 'w'", "lacks 'data_offsets'", NULL);
    expect_open_fails("unknown field", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4,
                      LIIF_ERR_FORMAT, "tensor 'w'", "unknown field 'x'", NULL);
    expect_open_fails("repeated field", "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\"}}", 4, LIIF_ERR_FORMAT,
                      "tensor 'w'", "'dtype' twice", NULL);
    expect_open_fails("entry not an object", "{\"w\":[1]}", 0, LIIF_ERR_FORMAT, "tensor 'w'", "not described by an object",
                      NULL);
    expect_open_fails("metadata value not a string", "{\"__metadata__\":{\"epoch\":3}}", 0, LIIF_ERR_FORMAT,
                      "__metadata__ value of 'epoch' is not a string", NULL);
    expect_open_fails("metadata not an object", "{\"__metadata__\":[]}", 0, LIIF_ERR_FORMAT,
                      "__metadata__ is not an object", NULL);
    expect_open_fails("metadata duplicate key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, LIIF_ERR_FORMAT,
                      "'k' twice", NULL);
    expect_open_fails("metadata twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, LIIF_ERR_FORMAT,
                      "__metadata__ appears twice", NULL);
    /* A name with an escaped newline must not split the message. */
    expect_open_fails("newline in tensor name", "{\"a\\nb\":{\"dtype\":\"Q7\",\"shape\":[],\"data_offsets\":[0,1]}}", 1,
                      LIIF_ERR_FORMAT, "tensor 'a\\x0ab'", NULL);
}

/* ------------------------------------------------------------ read_f32 */

static void test_read_f32_errors(void)
{
    char p[512];
    liif_st_file *f = NULL;
    liif_error e = {{0}};
    tpath("w.safetensors", p, sizeof p);
    write_raw(p, "{" T("imnet.layers.0.weight", "[256,68]", "[0,69632]")
                 ",\"idx\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[69632,69648]}}", 69648);
    if (!check(liif_st_open(p, &f, &e) == LIIF_OK, "open a file for the read_f32 errors %s", e.msg))
        return;
    float *buf = malloc(256 * 580 * sizeof *buf);
    const int64_t want[] = {256, 580}, got[] = {256, 68}, two[] = {2};
    expect_err("missing tensor", liif_st_read_f32(f, "imnet.layers.9.weight", 2, want, buf, &e), LIIF_ERR_MODEL, &e, p,
               "tensor 'imnet.layers.9.weight' is missing", NULL);
    expect_err("wrong shape", liif_st_read_f32(f, "imnet.layers.0.weight", 2, want, buf, &e), LIIF_ERR_MODEL, &e, p,
               "tensor 'imnet.layers.0.weight' has shape [256, 68], expected [256, 580]", NULL);
    expect_err("wrong rank", liif_st_read_f32(f, "imnet.layers.0.weight", 1, want, buf, &e), LIIF_ERR_MODEL, &e, p,
               "has shape [256, 68], expected [256]", NULL);
    expect_err("non-float dtype", liif_st_read_f32(f, "idx", 1, two, buf, &e), LIIF_ERR_MODEL, &e, p,
               "tensor 'idx' has dtype I64", NULL);
    bool ok = liif_st_read_f32(f, "imnet.layers.0.weight", 2, got, buf, &e) == LIIF_OK;
    uint32_t first;
    memcpy(&first, &buf[0], 4);
    check(ok && first == 0x03020100u, "read_f32 with the right shape succeeds (first word 0x%08x)", first);
    free(buf);
    liif_st_close(f);
    unlink(p);
}

/* --------------------------------------------------------- write failures */

static void test_write_unwritable(void)
{
    float x = 1;
    liif_st_entry en = {"x", LIIF_DT_F32, 1, {1}, &x};
    liif_error e = {{0}};
    char p[512];
    tpath("no-such-dir/out.safetensors", p, sizeof p);
    expect_err("write into a missing folder", liif_st_write(p, &en, 1, NULL, 0, &e), LIIF_ERR_IO, &e, p,
               "No such file or directory", NULL);
    /* Root may write anywhere on disk, but not create files in /proc. */
    const char *proc = "/proc/liif-test-out.safetensors";
    liif_status s = liif_st_write(proc, &en, 1, NULL, 0, &e);
    expect_err("write into /proc", s, LIIF_ERR_IO, &e, proc, "temporary file", NULL);
    expect_err("write onto a folder", liif_st_write(tmpdir, &en, 1, NULL, 0, &e), LIIF_ERR_IO, &e, tmpdir,
               "not a regular file", NULL);
    /* As root a rename could replace /dev/full itself: the writer must refuse. */
    struct stat st;
    if (stat("/dev/full", &st) == 0) {
        expect_err("write onto /dev/full", liif_st_write("/dev/full", &en, 1, NULL, 0, &e), LIIF_ERR_IO, &e,
                   "/dev/full", "not a regular file", NULL);
        check(stat("/dev/full", &st) == 0 && S_ISCHR(st.st_mode), "/dev/full is still a character device");
    }
}

/* A write that fails part way (RLIMIT_FSIZE stands in for a full disk: write()
 * fails with EFBIG where a full disk gives ENOSPC, through the same path). The old
 * file must survive and the temporary must be gone. */
static void test_write_fails_midway(void)
{
    char p[512];
    liif_error e = {{0}};
    float small = 7;
    liif_st_entry es = {"old", LIIF_DT_F32, 1, {1}, &small};
    tpath("keep.safetensors", p, sizeof p);
    if (!check(liif_st_write(p, &es, 1, NULL, 0, &e) == LIIF_OK, "write the file to keep %s", e.msg))
        return;
    size_t n = 1 << 16;
    float *big = calloc(n, sizeof *big);
    liif_st_entry eb = {"new", LIIF_DT_F32, 1, {(int64_t)n}, big};
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN); /* else the kernel kills us instead of failing write() */
    setrlimit(RLIMIT_FSIZE, &lim);
    liif_status s = liif_st_write(p, &eb, 1, NULL, 0, &e);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    expect_err("write fails part way (file size limit)", s, LIIF_ERR_IO, &e, p, "write failed", "File too large", NULL);
    liif_st_file *f = NULL;
    bool ok = liif_st_open(p, &f, &e) == LIIF_OK && liif_st_count(f) == 1 && liif_st_find(f, "old");
    check(ok, "after the failed write the old file (tensor 'old') is untouched");
    liif_st_close(f);
    check(count_temp_files() == 0, "after the failed write no temporary file is left (%d found)", count_temp_files());
    free(big);
    unlink(p);
}

static void test_write_bad_args(void)
{
    char p[512];
    float x = 1;
    liif_error e = {{0}};
    tpath("args.safetensors", p, sizeof p);
    liif_st_entry dup[2] = {{"x", LIIF_DT_F32, 1, {1}, &x}, {"x", LIIF_DT_F32, 1, {1}, &x}};
    expect_err("write duplicate names", liif_st_write(p, dup, 2, NULL, 0, &e), LIIF_ERR_ARG, &e, p, "'x' given twice", NULL);
    liif_st_entry nodata = {"x", LIIF_DT_F32, 1, {4}, NULL};
    expect_err("write without data", liif_st_write(p, &nodata, 1, NULL, 0, &e), LIIF_ERR_ARG, &e, p, "no data", NULL);
    liif_st_entry neg = {"x", LIIF_DT_F32, 1, {-1}, &x};
    expect_err("write negative shape", liif_st_write(p, &neg, 1, NULL, 0, &e), LIIF_ERR_ARG, &e, p, "bad shape", NULL);
    liif_st_entry meta_name = {"__metadata__", LIIF_DT_F32, 1, {1}, &x};
    expect_err("write a tensor named __metadata__", liif_st_write(p, &meta_name, 1, NULL, 0, &e), LIIF_ERR_ARG, &e, p,
               "bad tensor name", NULL);
    const char *meta[] = {"k", "\xff"};
    expect_err("write non-UTF-8 metadata", liif_st_write(p, &dup[0], 1, meta, 1, &e), LIIF_ERR_ARG, &e, p, "UTF-8", NULL);
    check(access(p, F_OK) != 0 && count_temp_files() == 0, "rejected writes created no file");
}

/* ------------------------------------------------------------------ golden */

static bool golden_weights(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/liif-edsr-baseline/weights.safetensors", dir);
    liif_st_file *f = NULL;
    liif_error e = {{0}};
    if (!check(liif_st_open(p, &f, &e) == LIIF_OK, "golden: open %s %s", p, e.msg))
        return false;
    int64_t total = 0;
    for (int i = 0; i < liif_st_count(f); i++)
        total += liif_st_at(f, i)->numel;
    check(liif_st_count(f) == 82, "golden: weights hold %d tensors, expected 82", liif_st_count(f));
    check(total == 1567323, "golden: %lld values in all, expected 1,567,323", (long long)total);
    const liif_st_tensor *t = liif_st_find(f, "imnet.layers.0.weight");
    check(t && t->dtype == LIIF_DT_F32 && t->ndim == 2 && t->shape[0] == 256 && t->shape[1] == 580,
          "golden: imnet.layers.0.weight is F32 [256, 580]");
    check(liif_st_meta(f, "format") && strcmp(liif_st_meta(f, "format"), "pt") == 0, "golden: metadata format = pt");
    const int64_t shape[] = {256, 580}, wrong[] = {256, 68};
    float *w = malloc(256 * 580 * sizeof *w);
    bool ok = t && liif_st_read_f32(f, "imnet.layers.0.weight", 2, shape, w, &e) == LIIF_OK &&
              memcmp(w, t->data, t->nbytes) == 0;
    check(ok, "golden: read_f32(imnet.layers.0.weight) equals the stored bytes");
    expect_err("golden: read with the no-unfold shape", liif_st_read_f32(f, "imnet.layers.0.weight", 2, wrong, w, &e),
               LIIF_ERR_MODEL, &e, p, "has shape [256, 580], expected [256, 68]", NULL);
    free(w);
    liif_st_close(f);
    return true;
}

/* inp (F32, NCHW) must be inp_u8_hwc / 255 exactly, as PyTorch computed it. */
static void golden_input(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/liif-edsr-baseline/input.safetensors", dir);
    liif_st_file *f = NULL;
    liif_error e = {{0}};
    if (!check(liif_st_open(p, &f, &e) == LIIF_OK, "golden: open %s %s", p, e.msg))
        return;
    const liif_st_tensor *u = liif_st_find(f, "inp_u8_hwc");
    const int64_t s[] = {1, 3, 24, 20}, su[] = {24, 20, 3};
    float inp[3 * 24 * 20], dummy[3 * 24 * 20];
    int bad = 0;
    if (u && liif_st_read_f32(f, "inp", 4, s, inp, &e) == LIIF_OK)
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 24; y++)
                for (int x = 0; x < 20; x++)
                    bad += inp[(c * 24 + y) * 20 + x] != (float)((const uint8_t *)u->data)[(y * 20 + x) * 3 + c] / 255.0f;
    else
        bad = -1;
    check(bad == 0, "golden: inp [1, 3, 24, 20] == inp_u8_hwc / 255 at every pixel (%d differ)", bad);
    expect_err("golden: read_f32 of a U8 tensor", liif_st_read_f32(f, "inp_u8_hwc", 3, su, dummy, &e), LIIF_ERR_MODEL, &e,
               p, "tensor 'inp_u8_hwc' has dtype U8", NULL);
    liif_st_close(f);
}

/* F64 -> float conversion on real data: feat_f64 and the float32 run's feat agree closely. */
static void golden_encoder(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/liif-edsr-baseline/encoder.safetensors", dir);
    liif_st_file *f = NULL;
    liif_error e = {{0}};
    if (!check(liif_st_open(p, &f, &e) == LIIF_OK, "golden: open %s %s", p, e.msg))
        return;
    enum { N = 64 * 24 * 20 };
    const int64_t s[] = {1, 64, 24, 20};
    float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    double maxd = -1; /* stays negative if a read fails */
    if (liif_st_read_f32(f, "feat", 4, s, a, &e) == LIIF_OK && liif_st_read_f32(f, "feat_f64", 4, s, b, &e) == LIIF_OK) {
        maxd = 0;
        for (int i = 0; i < N; i++)
            maxd = fmax(maxd, fabs((double)a[i] - b[i]));
    }
    check(maxd >= 0 && maxd < 1e-5, "golden: max |feat - (float)feat_f64| = %.3g < 1e-5", maxd);
    free(a);
    free(b);
    liif_st_close(f);
}

/* 0 when the golden checks ran, 77 when the folder is absent. */
static int run_golden(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/liif-edsr-baseline/weights.safetensors", dir);
    if (access(p, R_OK) != 0) {
        printf("SKIP golden checks: %s not found\n", p);
        return 77;
    }
    printf("golden (%s)\n", dir);
    if (golden_weights(dir)) {
        golden_input(dir);
        golden_encoder(dir);
    }
    return 0;
}

/* ------------------------------------------------------------------- main */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void run_unit(void)
{
    static const struct { const char *name; void (*fn)(void); } cases[] = {
        {"dtype table", test_dtype_table},
        {"f16 known values", test_f16_known},
        {"f16 exhaustive", test_f16_exhaustive},
        {"f32 -> f16 against a reference", test_f32_to_f16_sweep},
        {"bf16", test_bf16},
        {"round trip", test_round_trip},
        {"overwrite", test_overwrite},
        {"valid JSON variants", test_json_accepts},
        {"open: I/O errors", test_open_io_errors},
        {"open: truncated files", test_truncated},
        {"open: header length", test_header_length},
        {"open: bad JSON", test_bad_json},
        {"open: nesting limit", test_nesting_limit},
        {"open: bad entries", test_bad_entries},
        {"read_f32 errors", test_read_f32_errors},
        {"write: unwritable paths", test_write_unwritable},
        {"write: failure part way", test_write_fails_midway},
        {"write: bad arguments", test_write_bad_args},
    };
    snprintf(tmpdir, sizeof tmpdir, "%s/liif-st-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", tmpdir, strerror(errno));
        exit(1);
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        printf("%s\n", cases[i].name);
        cases[i].fn();
    }
    nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    bool golden_only = argc == 3 && strcmp(argv[1], "--golden") == 0;
    if (argc > 3 || (argc == 3 && !golden_only)) {
        fprintf(stderr, "usage: %s [GOLDEN_DIR | --golden GOLDEN_DIR]\n", argv[0]);
        return 2;
    }
    int rc = 0;
    if (!golden_only)
        run_unit();
    if (argc >= 2)
        rc = run_golden(argv[argc - 1]);
    printf("%d checks, %d failed\n", n_checks, n_failed);
    if (n_failed)
        return 1;
    return golden_only ? rc : 0;
}
