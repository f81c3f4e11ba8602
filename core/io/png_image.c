/* png_image.c: PNG reading into float pixels and streaming, atomic PNG writing, with libpng. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <omp.h>
#include <png.h>

#include "png_idat.h"
#include "png_image.h"
#include "exif.h"
#include "outfile.h"

/* ------------------------------------------------------------ libpng glue */

/* What a libpng callback learned before it longjmp'd: libpng's text, and whether the
 * cause was the system (errno) or an allocation, so the caller can pick the status. */
typedef struct {
    char msg[200];
    int sys_errno;
    int oom;
} png_fault;

/* libpng's default error handler prints to stderr; core/ never prints, so the text is
 * kept for the caller's message and control returns to the setjmp point. */
static void on_png_error(png_structp png, png_const_charp msg)
{
    png_fault *f = png_get_error_ptr(png);
    snprintf(f->msg, sizeof f->msg, "%s", msg ? msg : "libpng error");
    png_longjmp(png, 1);
}

/* A warning about one of libpng's limits (chunk size, chunk cache, image size, memory) means the
 * file asked for more than a reader should give it: it stops the read. */
static int limit_warning(const char *msg)
{
    static const char *const limits[] = {"limit", "chunk cache", "too large", "too much memory", "nsufficient memory",
                                         "ut of memory", "ut of Memory", "too many"};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
        if (strstr(msg, limits[i]))
            return 1;
    return 0;
}

/* Other warnings (bad ancillary chunks, benign errors) do not stop a read and are not shown. */
static void on_png_warning(png_structp png, png_const_charp msg)
{
    if (msg && strstr(msg, "exceeds user limit in IHDR"))
        png_error(png, "image too large (more than " LIIF_PNG_SIDE_TEXT " pixels per side)");
    if (msg && limit_warning(msg))
        png_error(png, msg);
}

/* libpng's own allocator failures surface as a png_error with a text; this flag lets the
 * caller report them as LIIF_ERR_NOMEM rather than as a malformed file. */
static png_voidp on_png_malloc(png_structp png, png_alloc_size_t size)
{
    void *p = malloc(size);
    if (!p) {
        png_fault *f = png_get_mem_ptr(png);
        if (f)
            f->oom = 1;
    }
    return p;
}

static void on_png_free(png_structp png, png_voidp p)
{
    (void)png;
    free(p);
}

static liif_status fault_status(const png_fault *f, liif_status otherwise)
{
    if (f->oom)
        return LIIF_ERR_NOMEM;
    if (f->sys_errno)
        return LIIF_ERR_IO;
    return otherwise;
}

/* "<path>: <libpng text>[: <strerror>]"; libpng's text may quote a chunk's bytes. */
static liif_status fault_report(const png_fault *f, const char *path, liif_status otherwise,
                                liif_error *err)
{
    liif_status st = fault_status(f, otherwise);
    char text[sizeof f->msg];
    liif_printable(f->msg, text, sizeof text);
    if (f->sys_errno)
        return liif_error_set(err, st, "%s: %s: %s", path, text, strerror(f->sys_errno));
    return liif_error_set(err, st, "%s: %s", path, text);
}

/* a * b, or 0 when it does not fit in size_t */
static size_t mul_size(size_t a, size_t b)
{
    if (a != 0 && b > SIZE_MAX / a)
        return 0;
    return a * b;
}

static liif_status check_dims(const char *path, uint32_t w, uint32_t h, liif_status st,
                              liif_error *err)
{
    if (w == 0 || h == 0)
        return liif_error_set(err, st, "%s: empty image (%ux%u)", path, (unsigned)w, (unsigned)h);
    if (w > LIIF_MAX_SIDE || h > LIIF_MAX_SIDE || (int64_t)w * h > LIIF_MAX_PIXELS)
        return liif_error_set(err, st,
                              "%s: image too large (%ux%u; at most %d per side and %lld pixels)",
                              path, (unsigned)w, (unsigned)h, LIIF_MAX_SIDE,
                              (long long)LIIF_MAX_PIXELS);
    return LIIF_OK;
}

/* ------------------------------------------------------------------ reading */

/* Everything the decoder changes lives here, outside the function that calls setjmp,
 * so nothing local to that function needs to be volatile to survive a longjmp, and
 * the caller can release whatever was acquired whichever way decoding ended. */
typedef struct {
    png_fault fault; /* libpng's error and mem pointers point here */
    const char *path;
    FILE *fp;
    png_structp png;
    png_infop info;
    unsigned char *row; /* one decoded row (full width) */
    size_t file_size;   /* bytes, for the memory cap */
} png_reader;

/* A custom read callback so a short file reads as "truncated" and a failed read keeps
 * its errno, instead of libpng's generic "Read Error". */
static void read_bytes(png_structp png, png_bytep data, size_t n)
{
    png_reader *r = png_get_io_ptr(png);
    if (fread(data, 1, n, r->fp) == n)
        return;
    if (ferror(r->fp)) {
        r->fault.sys_errno = errno ? errno : EIO;
        png_error(png, "read failed");
    }
    png_error(png, "file is truncated");
}

/* The reader's stream on fd (a regular file, liif_open_regular's), which it now owns. */
static liif_status open_stream(png_reader *r, int fd, liif_error *err)
{
    if (!(r->fp = fdopen(fd, "rb"))) {
        int e = errno;
        close(fd);
        return liif_error_set(err, LIIF_ERR_IO, "%s: cannot open: %s", r->path, strerror(e));
    }
    return LIIF_OK;
}

/* Reads the signature from r->fp and sets libpng up with the reader's limits. */
static liif_status reader_start(png_reader *r, liif_error *err)
{
    unsigned char sig[8];
    size_t n = fread(sig, 1, sizeof sig, r->fp);
    if (n < sizeof sig && ferror(r->fp))
        return liif_error_set(err, LIIF_ERR_IO, "%s: read failed: %s", r->path, strerror(errno));
    if (n < sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0)
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: not a PNG file", r->path);

    r->png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &r->fault, on_png_error,
                                      on_png_warning, &r->fault, on_png_malloc, on_png_free);
    if (r->png)
        r->info = png_create_info_struct(r->png);
    if (!r->png || !r->info)
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory", r->path);
    png_set_read_fn(r->png, r, read_bytes);
    png_set_sig_bytes(r->png, (int)sizeof sig);
    /* Bounds on what a file can make libpng allocate before a pixel is decoded: the image
     * size, each ancillary chunk (text, ICC profile, ...) and the number of them kept. */
    png_set_user_limits(r->png, LIIF_MAX_SIDE, LIIF_MAX_SIDE);
    png_set_chunk_malloc_max(r->png, LIIF_PNG_CHUNK_MAX);
    png_set_chunk_cache_max(r->png, LIIF_PNG_CHUNK_CACHE_MAX);
    return LIIF_OK;
}

static void reader_close(png_reader *r)
{
    if (r->png)
        png_destroy_read_struct(&r->png, r->info ? &r->info : NULL, NULL);
    free(r->row);
    if (r->fp)
        fclose(r->fp); /* read-only: nothing to lose if close fails */
}

/* Asks libpng for 8- or 16-bit gray, gray+alpha, RGB or RGBA: palettes and low bit
 * depths expand to 8 bits, tRNS becomes an alpha channel. */
static void request_plain_samples(png_reader *r)
{
    png_set_expand(r->png);
    png_read_update_info(r->png, r->info);
}

/* Converts one decoded row (ncols pixels, big-endian when 16-bit) into image row y,
 * placing pixel c at column x0 + c * dx; interlace passes fill every dx-th column. */
static void store_row(liif_png *img, const unsigned char *src, uint32_t y, uint32_t x0,
                      uint32_t dx, uint32_t ncols)
{
    int ch = img->channels;
    float *dst = img->px + ((size_t)y * (size_t)img->w + x0) * (size_t)ch;
    size_t step = (size_t)dx * (size_t)ch;
    for (uint32_t c = 0; c < ncols; c++, dst += step) {
        for (int k = 0; k < ch; k++) {
            if (img->bit_depth == 16) {
                unsigned v = ((unsigned)src[0] << 8) | src[1];
                dst[k] = (float)v / 65535.0f;
                src += 2;
            } else {
                dst[k] = (float)*src++ / 255.0f;
            }
        }
    }
}

/* Without libpng's interlace handling every pass arrives as its own reduced image;
 * scattering its rows straight into the float buffer avoids holding a second,
 * full-size copy of the image as bytes. A plain image is a single "pass". */
static void read_pixels(png_reader *r, liif_png *img)
{
    uint32_t w = (uint32_t)img->w, h = (uint32_t)img->h;
    if (png_get_interlace_type(r->png, r->info) == PNG_INTERLACE_NONE) {
        for (uint32_t y = 0; y < h; y++) {
            png_read_row(r->png, r->row, NULL);
            store_row(img, r->row, y, 0, 1, w);
        }
        return;
    }
    for (int pass = 0; pass < 7; pass++) {
        uint32_t cols = PNG_PASS_COLS(w, pass), rows = PNG_PASS_ROWS(h, pass);
        if (cols == 0 || rows == 0)
            continue; /* libpng skips empty passes too */
        for (uint32_t i = 0; i < rows; i++) {
            png_read_row(r->png, r->row, NULL);
            store_row(img, r->row, PNG_ROW_FROM_PASS_ROW(i, pass), PNG_PASS_START_COL(pass),
                      1u << PNG_PASS_COL_SHIFT(pass), cols);
        }
    }
}

_Static_assert(LIIF_MAX_SIDE == 65536, "LIIF_PNG_SIDE_TEXT must spell LIIF_MAX_SIDE");

size_t liif_png_memory_cap(size_t file_size)
{
    if (file_size >= (LIIF_PNG_MEM_MAX - LIIF_PNG_MEM_BASE) / LIIF_PNG_MEM_PER_FILE_BYTE)
        return LIIF_PNG_MEM_MAX;
    return LIIF_PNG_MEM_BASE + file_size * LIIF_PNG_MEM_PER_FILE_BYTE;
}

/* Allocates img->px for the header in r->info, once the decoded image is known to fit the memory
 * cap for the file's size; rows are converted as they are decoded. */
static liif_status alloc_pixels(png_reader *r, liif_png *img, liif_error *err)
{
    size_t n = mul_size(mul_size((size_t)img->w, (size_t)img->h), (size_t)img->channels);
    size_t bytes = mul_size(n, sizeof(float)), cap = liif_png_memory_cap(r->file_size);
    size_t rowbytes = png_get_rowbytes(r->png, r->info);
    if (bytes == 0 || rowbytes == 0 || bytes > cap)
        return liif_error_set(err, LIIF_ERR_FORMAT,
                              "%s: a %dx%d image in a %zu-byte file needs more than the %zu MiB of decoded pixels "
                              "allowed for that file size (a decompression bomb or a corrupt header)",
                              r->path, img->w, img->h, r->file_size, cap >> 20);
    img->px = malloc(bytes);
    r->row = malloc(rowbytes);
    if (!img->px || !r->row)
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory (%dx%d image)", r->path,
                              img->w, img->h);
    return LIIF_OK;
}

/* A malloc'd copy of n bytes into *dst (left NULL, the item dropped, when memory runs out). */
static void keep_copy(unsigned char **dst, size_t *dst_n, const void *src, size_t n)
{
    if (n > 0 && (*dst = malloc(n))) {
        memcpy(*dst, src, n);
        *dst_n = n;
    }
}

/* What goes on to the output, from the chunks before the image data, as libpng accepted them (it checks a profile's
 * header and tags, gAMA and cHRM values, and drops a bad chunk with a warning). */
static void read_meta(png_reader *r, liif_image_meta *m)
{
    png_charp icc_name;
    int icc_compression;
    png_bytep icc;
    png_uint_32 icc_len;
    if (png_get_iCCP(r->png, r->info, &icc_name, &icc_compression, &icc, &icc_len))
        keep_copy(&m->icc, &m->icc_len, icc, icc_len);
    png_bytep exif;
    png_uint_32 exif_len;
    if (png_get_eXIf_1(r->png, r->info, &exif_len, &exif) && liif_exif_check(exif, exif_len))
        keep_copy(&m->exif, &m->exif_len, exif, exif_len);
    png_uint_32 x, y;
    int unit;
    if (png_get_pHYs(r->png, r->info, &x, &y, &unit) && x > 0 && y > 0 && x <= INT32_MAX && y <= INT32_MAX &&
        (unit == PNG_RESOLUTION_METER || x != y)) { /* an aspect of 1:1 says nothing */
        m->density_unit = unit == PNG_RESOLUTION_METER ? LIIF_DENSITY_PER_METRE : LIIF_DENSITY_ASPECT;
        m->density_x = x;
        m->density_y = y;
    }
    int intent;
    png_fixed_point gamma, c[8];
    if (png_get_sRGB(r->png, r->info, &intent) && intent >= 0 && intent <= 3)
        m->srgb = 1 + intent;
    if (png_get_gAMA_fixed(r->png, r->info, &gamma) && gamma > 0)
        m->gamma = (uint32_t)gamma;
    if (png_get_cHRM_fixed(r->png, r->info, &c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7])) {
        m->has_chrm = 1;
        memcpy(m->chrm, c, sizeof m->chrm);
    }
}

/* The only function that calls setjmp on the read side; see png_reader. */
static liif_status decode(png_reader *r, liif_png *img, liif_error *err)
{
    if (setjmp(png_jmpbuf(r->png)))
        return fault_report(&r->fault, r->path, LIIF_ERR_FORMAT, err);

    png_read_info(r->png, r->info);
    uint32_t w = png_get_image_width(r->png, r->info);
    uint32_t h = png_get_image_height(r->png, r->info);
    liif_status st = check_dims(r->path, w, h, LIIF_ERR_FORMAT, err);
    if (st != LIIF_OK)
        return st;
    request_plain_samples(r);
    img->w = (int)w;
    img->h = (int)h;
    img->channels = png_get_channels(r->png, r->info);
    img->bit_depth = png_get_bit_depth(r->png, r->info) == 16 ? 16 : 8;
    read_meta(r, &img->meta);
    st = alloc_pixels(r, img, err);
    if (st != LIIF_OK)
        return st;
    read_pixels(r, img);
    /* Reading through IEND catches a file cut off after its image data. */
    png_read_end(r->png, NULL);
    return LIIF_OK;
}

liif_status liif_png_read(const char *path, liif_png *img, liif_error *err)
{
    if (!path || !img)
        return liif_error_set(err, LIIF_ERR_ARG, "PNG input: no file name or image");
    memset(img, 0, sizeof *img);
    size_t size;
    int fd = liif_open_regular(path, &size, err); /* a FIFO or device is refused without blocking on it */
    if (fd < 0)
        return LIIF_ERR_IO;
    return liif_png_read_fd(path, fd, size, img, err);
}

liif_status liif_png_read_fd(const char *path, int fd, size_t file_size, liif_png *img, liif_error *err)
{
    png_reader r;
    memset(&r, 0, sizeof r);
    memset(img, 0, sizeof *img);
    r.path = path;
    r.file_size = file_size;
    liif_status st = open_stream(&r, fd, err);
    if (st == LIIF_OK)
        st = reader_start(&r, err);
    if (st == LIIF_OK)
        st = decode(&r, img, err);
    reader_close(&r);
    if (st != LIIF_OK)
        liif_png_free(img);
    return st;
}

void liif_png_free(liif_png *img)
{
    if (!img)
        return;
    free(img->px);
    free(img->meta.icc);
    free(img->meta.exif);
    memset(img, 0, sizeof *img);
}

/* ------------------------------------------------------------------ writing */

struct liif_png_writer {
    png_fault fault;   /* libpng's error and mem pointers point here */
    liif_outfile file; /* the destination and its temporary file */
    png_structp png;
    png_infop info;
    uint8_t *raw;       /* packed output rows of the current call */
    size_t raw_cap;
    liif_idat idat;     /* the image data, filtered and deflated on `threads` threads */
    int idat_ready;
    int threads;        /* 0: all processors */
    int w, h, channels, bit_depth;
    int rows_done;
    int failed; /* a step failed: the temporary file is gone and only free remains */
};

static void write_bytes(png_structp png, png_bytep data, size_t n)
{
    liif_png_writer *wr = png_get_io_ptr(png);
    if (fwrite(data, 1, n, wr->file.fp) != n) {
        wr->fault.sys_errno = errno ? errno : EIO;
        png_error(png, "write failed");
    }
}

static void flush_bytes(png_structp png)
{
    liif_png_writer *wr = png_get_io_ptr(png);
    if (fflush(wr->file.fp) != 0) {
        wr->fault.sys_errno = errno ? errno : EIO;
        png_error(png, "write failed");
    }
}

static void writer_free(liif_png_writer *wr)
{
    liif_outfile_free(&wr->file);
    if (wr->png)
        png_destroy_write_struct(&wr->png, wr->info ? &wr->info : NULL);
    if (wr->idat_ready)
        liif_idat_free(&wr->idat);
    free(wr->raw);
    free(wr);
}

/* Any failure is final: the partial file is removed at once, so a caller that only
 * frees the writer later still leaves nothing behind. Returns st. */
static liif_status writer_fail(liif_png_writer *wr, liif_status st)
{
    wr->failed = 1;
    liif_outfile_discard(&wr->file);
    return st;
}

static int color_type_for(int channels)
{
    static const int types[4] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                 PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    return types[channels - 1];
}

/* The metadata items of `want` (LIIF_META_* bits) into png's info; exif is the block for this image
 * (liif_exif_for_image). Colour chunks go in only without a profile: a profile says all they say. */
static void set_meta(png_structp png, png_infop info, const liif_image_meta *m, unsigned want,
                     const unsigned char *exif, size_t exif_len)
{
    if (want & LIIF_META_ICC)
        png_set_iCCP(png, info, "ICC profile", PNG_COMPRESSION_TYPE_BASE, m->icc, (png_uint_32)m->icc_len);
    if ((want & LIIF_META_COLOUR) && !(want & LIIF_META_ICC)) {
        if (m->srgb) {
            png_set_sRGB(png, info, m->srgb - 1);
        } else {
            if (m->gamma)
                png_set_gAMA_fixed(png, info, (png_fixed_point)m->gamma);
            if (m->has_chrm)
                png_set_cHRM_fixed(png, info, m->chrm[0], m->chrm[1], m->chrm[2], m->chrm[3], m->chrm[4], m->chrm[5],
                                   m->chrm[6], m->chrm[7]);
        }
    }
    if ((want & LIIF_META_EXIF) && exif)
        png_set_eXIf_1(png, info, (png_uint_32)exif_len, (png_bytep)exif);
    if (want & LIIF_META_DENSITY)
        png_set_pHYs(png, info, m->density_x, m->density_y,
                     m->density_unit == LIIF_DENSITY_PER_METRE ? PNG_RESOLUTION_METER : PNG_RESOLUTION_UNKNOWN);
}

/* Whether libpng takes these items for an image of this colour type: tried on a scratch write struct, since
 * libpng's checks of a profile or of colour chunks end in png_error on a write struct, which would fail the real
 * file. */
static int meta_accepted(const liif_image_meta *m, unsigned want, int color_type, int bit_depth)
{
    png_fault fault = {{0}, 0, 0};
    png_structp png = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, &fault, on_png_error, on_png_warning, &fault,
                                                on_png_malloc, on_png_free);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    volatile int ok = 0;
    if (png && info && !setjmp(png_jmpbuf(png))) {
        png_set_IHDR(png, info, 1, 1, bit_depth, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                     PNG_FILTER_TYPE_DEFAULT);
        set_meta(png, info, m, want, NULL, 0);
        ok = (!(want & LIIF_META_ICC) || png_get_valid(png, info, PNG_INFO_iCCP)) &&
             (!(want & LIIF_META_COLOUR) || (want & LIIF_META_ICC) ||
              png_get_valid(png, info, PNG_INFO_sRGB | PNG_INFO_gAMA | PNG_INFO_cHRM));
    }
    if (png)
        png_destroy_write_struct(&png, info ? &info : NULL);
    return ok;
}

/* The items of m this writer puts in: what m has, less a profile or colour chunks libpng refuses. */
static unsigned meta_to_keep(const liif_image_meta *m, int color_type, int bit_depth)
{
    unsigned want = liif_image_meta_has(m);
    if (m && m->icc_len > LIIF_PNG_CHUNK_MAX)
        want &= ~(unsigned)LIIF_META_ICC;
    if (m && m->exif_len > LIIF_PNG_CHUNK_MAX)
        want &= ~(unsigned)LIIF_META_EXIF;
    if ((want & LIIF_META_ICC) && !meta_accepted(m, LIIF_META_ICC, color_type, bit_depth))
        want &= ~(unsigned)LIIF_META_ICC;
    if ((want & LIIF_META_COLOUR) && !(want & LIIF_META_ICC) &&
        !meta_accepted(m, LIIF_META_COLOUR, color_type, bit_depth))
        want &= ~(unsigned)LIIF_META_COLOUR;
    if (want & LIIF_META_ICC)
        want &= ~(unsigned)LIIF_META_COLOUR; /* said by the profile */
    return want;
}

/* The only setjmp of open(): header out through libpng, with the metadata items of `keep`. State lives in *wr. */
static liif_status start_stream(liif_png_writer *wr, const liif_image_meta *m, unsigned keep, const unsigned char *exif,
                                size_t exif_len, liif_error *err)
{
    if (setjmp(png_jmpbuf(wr->png)))
        return fault_report(&wr->fault, wr->file.path, LIIF_ERR_IO, err);
    png_set_write_fn(wr->png, wr, write_bytes, flush_bytes);
    png_set_IHDR(wr->png, wr->info, (png_uint_32)wr->w, (png_uint_32)wr->h, wr->bit_depth,
                 color_type_for(wr->channels), PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    /* The input's colour description, so that colour-managed viewers show the colours the input had: the samples
     * are written in the encoding they were read in. */
    if (keep)
        set_meta(wr->png, wr->info, m, keep, exif, exif_len);
    /* The image data itself is made by png_idat.c (adaptive filtering as libpng's
     * PNG_ALL_FILTERS, zlib level 6, on several threads) and written as IDAT chunks through
     * libpng. */
    png_write_info(wr->png, wr->info);
    return LIIF_OK;
}

static liif_status check_writer_args(const char *path, int w, int h, int channels, int bit_depth,
                                     liif_error *err)
{
    liif_status st = liif_outfile_check_name(path, "PNG", err);
    if (st != LIIF_OK)
        return st;
    if (channels < 1 || channels > 4)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: %d channels (PNG has 1 to 4)", path, channels);
    if (bit_depth != 8 && bit_depth != 16)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: bit depth %d (8 or 16 supported)", path,
                              bit_depth);
    if (w < 1 || h < 1)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: bad size %dx%d", path, w, h);
    return check_dims(path, (uint32_t)w, (uint32_t)h, LIIF_ERR_ARG, err);
}

static liif_status writer_setup(liif_png_writer *wr, const liif_image_meta *m, unsigned keep,
                                const unsigned char *exif, size_t exif_len, liif_error *err)
{
    /* w * channels * 2 <= 65536 * 8: no overflow possible after check_writer_args */
    int bpp = wr->channels * (wr->bit_depth / 8);
    if (liif_idat_init(&wr->idat, (size_t)wr->w * (size_t)bpp, bpp, 6, 0) != 0) {
        liif_idat_free(&wr->idat);
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory", wr->file.path);
    }
    wr->idat_ready = 1;
    wr->png = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, &wr->fault, on_png_error,
                                        on_png_warning, &wr->fault, on_png_malloc, on_png_free);
    if (wr->png)
        wr->info = png_create_info_struct(wr->png);
    if (!wr->png || !wr->info)
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory", wr->file.path);
    return start_stream(wr, m, keep, exif, exif_len, err);
}

liif_status liif_png_writer_open(const char *path, int w, int h, int channels, int bit_depth,
                                 liif_png_writer **out, liif_error *err)
{
    return liif_png_writer_open_meta(path, w, h, channels, bit_depth, NULL, NULL, out, err);
}

liif_status liif_png_writer_open_meta(const char *path, int w, int h, int channels, int bit_depth,
                                      const liif_image_meta *meta, unsigned *kept, liif_png_writer **out,
                                      liif_error *err)
{
    *out = NULL;
    if (kept)
        *kept = 0;
    liif_status st = check_writer_args(path, w, h, channels, bit_depth, err);
    if (st != LIIF_OK)
        return st;
    liif_png_writer *wr = calloc(1, sizeof *wr);
    if (!wr)
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory", path);
    wr->w = w;
    wr->h = h;
    wr->channels = channels;
    wr->bit_depth = bit_depth;
    unsigned keep = meta_to_keep(meta, color_type_for(channels), bit_depth);
    uint8_t *exif = NULL;
    size_t exif_len = 0;
    if ((keep & LIIF_META_EXIF) && liif_exif_for_image(meta->exif, meta->exif_len, w, h, 0, &exif, &exif_len) != 0)
        keep &= ~(unsigned)LIIF_META_EXIF;
    st = liif_outfile_open(&wr->file, path, err);
    if (st == LIIF_OK)
        st = writer_setup(wr, meta, keep, exif, exif_len, err);
    free(exif); /* libpng keeps its own copy */
    if (st != LIIF_OK) {
        writer_free(wr);
        return st;
    }
    if (kept)
        *kept = keep;
    *out = wr;
    return LIIF_OK;
}

static void pack_row(const liif_png_writer *wr, const float *src, unsigned char *dst)
{
    size_t n = (size_t)wr->w * (size_t)wr->channels;
    if (wr->bit_depth == 8) {
        for (size_t i = 0; i < n; i++)
            dst[i] = (unsigned char)liif_quantize(src[i], 255);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned v = liif_quantize(src[i], 65535); /* PNG stores 16-bit samples big-endian */
        dst[2 * i] = (unsigned char)(v >> 8);
        dst[2 * i + 1] = (unsigned char)(v & 0xff);
    }
}

/* The only setjmp of rows(): the IDAT chunks out through libpng. */
static liif_status put_idat(liif_png_writer *wr, liif_error *err)
{
    if (setjmp(png_jmpbuf(wr->png))) {
        liif_status st = fault_report(&wr->fault, wr->file.path, LIIF_ERR_IO, err);
        return writer_fail(wr, st);
    }
    for (int i = 0; i < wr->idat.n_out; i++)
        png_write_chunk(wr->png, (png_const_bytep) "IDAT", wr->idat.out[i], wr->idat.out_len[i]);
    return LIIF_OK;
}

/* Rows are packed and compressed at most LIIF_PNG_SLICE_BYTES of them at a time, so that the writer's own buffers
 * stay bounded whatever the caller hands in at once (the pieces are cut at fixed offsets: same bytes either way). */
#define LIIF_PNG_SLICE_BYTES ((size_t)32 << 20)

static liif_status write_slice(liif_png_writer *wr, const float *rows, int n_rows, size_t stride,
                               liif_error *err)
{
    size_t rowbytes = wr->idat.rowbytes;
    if ((size_t)n_rows * rowbytes > wr->raw_cap) {
        free(wr->raw);
        wr->raw_cap = 0;
        wr->raw = malloc((size_t)n_rows * rowbytes);
        if (!wr->raw) {
            liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory", wr->file.path);
            return writer_fail(wr, LIIF_ERR_NOMEM);
        }
        wr->raw_cap = (size_t)n_rows * rowbytes;
    }
    int t = wr->threads > 0 ? wr->threads : omp_get_num_procs();
#pragma omp parallel for schedule(static) num_threads(t) if (n_rows > 8 && t > 1)
    for (int i = 0; i < n_rows; i++)
        pack_row(wr, rows + (size_t)i * stride, wr->raw + (size_t)i * rowbytes);
    wr->idat.threads = t;
    if (liif_idat_rows(&wr->idat, wr->raw, n_rows, rowbytes, wr->rows_done + n_rows == wr->h) != 0) {
        liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory compressing the image", wr->file.path);
        return writer_fail(wr, LIIF_ERR_NOMEM);
    }
    wr->rows_done += n_rows;
    return put_idat(wr, err);
}

static liif_status write_rows(liif_png_writer *wr, const float *rows, int n_rows, size_t stride,
                              liif_error *err)
{
    size_t per = LIIF_PNG_SLICE_BYTES / wr->idat.rowbytes;
    int slice = per < 1 ? 1 : (per > (size_t)n_rows ? n_rows : (int)per);
    liif_status st = LIIF_OK;
    for (int y = 0; st == LIIF_OK && y < n_rows; y += slice) /* no rows: nothing (the stream ends with the last row) */
        st = write_slice(wr, rows + (size_t)y * stride, slice < n_rows - y ? slice : n_rows - y, stride, err);
    return st;
}

void liif_png_writer_set_threads(liif_png_writer *wr, int threads)
{
    if (wr)
        wr->threads = threads > 0 ? threads : 0;
}

liif_status liif_png_writer_rows(liif_png_writer *wr, const float *rows, int n_rows, size_t stride,
                                 liif_error *err)
{
    if (!wr)
        return liif_error_set(err, LIIF_ERR_ARG, "PNG output: no writer");
    if (wr->failed)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: writing already failed", wr->file.path);
    liif_status st = liif_outfile_check_rows(wr->file.path, wr->rows_done, wr->h, n_rows, rows, stride, wr->w,
                                             wr->channels, err);
    if (st != LIIF_OK)
        return writer_fail(wr, st);
    return write_rows(wr, rows, n_rows, stride, err);
}

/* The only setjmp of finish(): IEND through libpng. */
static liif_status end_stream(liif_png_writer *wr, liif_error *err)
{
    if (setjmp(png_jmpbuf(wr->png))) {
        liif_status st = fault_report(&wr->fault, wr->file.path, LIIF_ERR_IO, err);
        return writer_fail(wr, st);
    }
    png_write_chunk(wr->png, (png_const_bytep) "IEND", NULL, 0); /* the IDATs are ours: png_write_end would refuse */
    return LIIF_OK;
}

static liif_status finish_stream(liif_png_writer *wr, liif_error *err)
{
    if (wr->failed)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: writing already failed", wr->file.path);
    if (wr->rows_done != wr->h) {
        liif_error_set(err, LIIF_ERR_ARG, "%s: only %d of %d rows were written", wr->file.path,
                       wr->rows_done, wr->h);
        return writer_fail(wr, LIIF_ERR_ARG);
    }
    liif_status st = end_stream(wr, err);
    if (st == LIIF_OK && (st = liif_outfile_commit(&wr->file, err)) != LIIF_OK)
        wr->failed = 1;
    return st;
}

liif_status liif_png_writer_finish(liif_png_writer *wr, liif_error *err)
{
    if (!wr)
        return liif_error_set(err, LIIF_ERR_ARG, "PNG output: no writer");
    liif_status st = finish_stream(wr, err);
    writer_free(wr);
    return st;
}

void liif_png_writer_abort(liif_png_writer *wr)
{
    if (wr)
        writer_free(wr);
}

liif_status liif_png_write(const char *path, const liif_png *img, liif_error *err)
{
    if (!img || !img->px)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: no image to write", path ? path : "PNG");
    liif_png_writer *wr;
    liif_status st = liif_png_writer_open_meta(path, img->w, img->h, img->channels, img->bit_depth, &img->meta, NULL,
                                               &wr, err);
    if (st != LIIF_OK)
        return st;
    st = liif_png_writer_rows(wr, img->px, img->h, (size_t)img->w * (size_t)img->channels, err);
    if (st != LIIF_OK) {
        liif_png_writer_abort(wr);
        return st;
    }
    return liif_png_writer_finish(wr, err);
}
