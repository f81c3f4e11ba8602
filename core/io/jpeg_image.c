/* jpeg_image.c: JPEG reading (EXIF orientation applied) into 8-bit or float pixels, and atomic streaming JPEG
 * writing, with libjpeg. Every libjpeg call that can fail runs under one setjmp per function, with all the state
 * it changes in a struct outside that function, as png_image.c does with libpng. */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>

#include "exif.h"
#include "jpeg_image.h"
#include "outfile.h"

/* ------------------------------------------------------------ libjpeg glue */

/* At most this many scans: a progressive file may hold thousands of tiny ones, each a pass over the whole
 * coefficient buffer (a few kilobytes that keep a decoder busy for minutes on a large image). Encoders write
 * about 10 (libjpeg's progressive script for colour) to 20; ImageMagick stops at 100 too. */
enum { JPEG_MAX_SCANS = 100 };

typedef struct {
    struct jpeg_error_mgr mgr;
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    int sys_errno; /* errno when a write failed */
    int bad_data;  /* a warning that means missing or corrupt image data (msg holds it) */
} jpeg_fault;

/* libjpeg's default handler prints and exits; core/ does neither: the text is kept and control goes back. */
static void on_jpeg_error(j_common_ptr c)
{
    jpeg_fault *f = (jpeg_fault *)c->err;
    int e = errno;
    (*c->err->format_message)(c, f->msg);
    if (c->err->msg_code == JERR_FILE_WRITE)
        f->sys_errno = e ? e : EIO;
    longjmp(f->jump, 1);
}

/* Warnings that mean the pixels are not the file's (a truncated file padded with grey, corrupt entropy data decoded
 * as noise) stop the read; benign ones (extraneous bytes before a marker, an unknown JFIF revision) do not. */
static void on_jpeg_message(j_common_ptr c, int level)
{
    jpeg_fault *f = (jpeg_fault *)c->err;
    if (level >= 0)
        return; /* trace messages */
    c->err->num_warnings++;
    switch (c->err->msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_MUST_RESYNC:
    case JWRN_ARITH_BAD_CODE:
        if (!f->bad_data)
            (*c->err->format_message)(c, f->msg);
        f->bad_data = 1;
        break;
    default:
        break;
    }
}

static void on_jpeg_progress(j_common_ptr c)
{
    if (c->is_decompressor && ((j_decompress_ptr)c)->input_scan_number > JPEG_MAX_SCANS)
        ERREXIT1(c, JERR_NOT_COMPILED, 0); /* any error: the message is replaced by the caller */
}

static void fault_init(jpeg_fault *f, struct jpeg_error_mgr **err)
{
    *err = jpeg_std_error(&f->mgr);
    f->mgr.error_exit = on_jpeg_error;
    f->mgr.emit_message = on_jpeg_message;
    f->progress.progress_monitor = on_jpeg_progress;
}

/* "<path>: <libjpeg text>[: <strerror>]" with the status its cause calls for. */
static liif_status fault_report(const jpeg_fault *f, const char *path, liif_status otherwise, liif_error *err)
{
    char text[JMSG_LENGTH_MAX];
    liif_printable(f->msg, text, sizeof text);
    if (f->mgr.msg_code == JERR_OUT_OF_MEMORY)
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory (%s)", path, text);
    if (f->sys_errno)
        return liif_error_set(err, LIIF_ERR_IO, "%s: write failed: %s", path, strerror(f->sys_errno));
    return liif_error_set(err, otherwise, "%s: %s", path, text);
}

/* ------------------------------------------------------------ orientation and density */

/* The stored pixel (*sx, *sy) of the w x h image that a viewer shows at (x, y) under EXIF orientation o. */
static void stored_pixel(int o, int w, int h, int x, int y, int *sx, int *sy)
{
    switch (o) {
    case 2: *sx = w - 1 - x, *sy = y; break;             /* mirrored left-right */
    case 3: *sx = w - 1 - x, *sy = h - 1 - y; break;     /* turned 180 degrees */
    case 4: *sx = x, *sy = h - 1 - y; break;             /* mirrored top-bottom */
    case 5: *sx = y, *sy = x; break;                     /* transposed */
    case 6: *sx = y, *sy = h - 1 - x; break;             /* to be turned 90 degrees clockwise */
    case 7: *sx = w - 1 - y, *sy = h - 1 - x; break;     /* transversed */
    case 8: *sx = w - 1 - y, *sy = x; break;             /* to be turned 90 degrees anticlockwise */
    default: *sx = x, *sy = y; break;
    }
}

/* The stored w x h image (c bytes per pixel) as a viewer shows it under EXIF orientation o: the output pixel (x, y)
 * comes from the stored (sx, sy). 5..8 swap the sides. Returns a new buffer, or NULL when out of memory. */
static uint8_t *orient(const uint8_t *src, int w, int h, int c, int o, int *ow, int *oh)
{
    int swap = o >= 5;
    *ow = swap ? h : w;
    *oh = swap ? w : h;
    uint8_t *dst = malloc((size_t)w * h * c);
    if (!dst)
        return NULL;
    for (int y = 0; y < *oh; y++)
        for (int x = 0; x < *ow; x++) {
            int sx, sy;
            stored_pixel(o, w, h, x, y, &sx, &sy);
            memcpy(dst + ((size_t)y * *ow + x) * c, src + ((size_t)sy * w + sx) * c, (size_t)c);
        }
    return dst;
}

/* A JFIF density in pixels per metre or as a ratio (exact both ways for whole dots per inch or per cm). */
static void density_from_jfif(int unit, unsigned x, unsigned y, liif_image_meta *m)
{
    if (x == 0 || y == 0 || unit < 0 || unit > 2 || (unit == 0 && x == y))
        return; /* 1:1 with no unit is libjpeg's default: it says nothing */
    m->density_unit = unit == 0 ? LIIF_DENSITY_ASPECT : LIIF_DENSITY_PER_METRE;
    m->density_x = unit == 1 ? (uint32_t)(x / 0.0254 + 0.5) : unit == 2 ? x * 100u : x;
    m->density_y = unit == 1 ? (uint32_t)(y / 0.0254 + 0.5) : unit == 2 ? y * 100u : y;
}

/* The density as JFIF's unit (0 ratio, 1 per inch, 2 per cm) and 16-bit values: dots per inch when they fit, else
 * per cm; 0 when it cannot be said in 16 bits. */
static int density_to_jfif(const liif_image_meta *m, unsigned *x, unsigned *y)
{
    if (m->density_unit == LIIF_DENSITY_ASPECT) {
        uint32_t a = m->density_x, b = m->density_y;
        while (a > 0xffff || b > 0xffff) { /* the ratio, near enough */
            a = (a + 1) / 2;
            b = (b + 1) / 2;
        }
        *x = a ? a : 1;
        *y = b ? b : 1;
        return 1;
    }
    if (m->density_unit != LIIF_DENSITY_PER_METRE)
        return 0;
    double ix = m->density_x * 0.0254, iy = m->density_y * 0.0254;
    if (ix >= 0.5 && iy >= 0.5 && ix < 65535.5 && iy < 65535.5) {
        *x = (unsigned)(ix + 0.5);
        *y = (unsigned)(iy + 0.5);
        return 2; /* unit 1 */
    }
    double cx = m->density_x / 100.0, cy = m->density_y / 100.0;
    if (cx >= 0.5 && cy >= 0.5 && cx < 65535.5 && cy < 65535.5) {
        *x = (unsigned)(cx + 0.5);
        *y = (unsigned)(cy + 0.5);
        return 3; /* unit 2 */
    }
    return 0;
}

/* ------------------------------------------------------------ reading */

int liif_jpeg_magic(const unsigned char *b, size_t n)
{
    return n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff;
}

/* Deblocking's view of a file (see the deblocking section below): each component's quantised coefficients. */
typedef struct {
    int w, h;       /* the component's samples */
    int bw, bh;     /* its blocks across and down */
    int fx, fy;     /* image pixels per sample across and down: 1, or 2 for 4:2:0 chroma */
    int16_t *coef;  /* bw * bh blocks of 64 quantised coefficients, natural order */
    uint16_t q[64]; /* its quantisation steps, natural order */
} deblock_plane;

typedef struct {
    int supported; /* gray, or YCbCr with full-resolution luma and chroma at 1 or 1/2 of it */
    int n;         /* planes: 1 or 3 */
    deblock_plane p[3];
} deblock_coefs;

typedef struct {
    jpeg_fault fault; /* cinfo.err points here */
    struct jpeg_decompress_struct cinfo;
    int cinfo_ready;
    const char *path;
    FILE *fp;
    size_t file_size;
    int rgb;
    int dct_float; /* libjpeg's float IDCT (GIMP's) instead of its default, the accurate integer one */
    int want_meta; /* the ICC profile, EXIF and density too */
    uint8_t *px; /* stored orientation */
    int w, h, channels, orientation;
    JOCTET *icc; /* the APP2 profile (malloc'd by libjpeg) */
    unsigned icc_len;
    uint8_t *exif; /* the first APP1 "Exif" marker's TIFF block, made upright (liif_exif_for_image), or NULL */
    size_t exif_len;
    liif_image_meta density; /* only the density fields */
    deblock_coefs *db; /* not NULL: read the coefficients into it (deblock_read_coefs) instead of the pixels */
} jpeg_reader;

static liif_status deblock_read_coefs(jpeg_reader *r, liif_error *err);

static liif_status check_header(jpeg_reader *r, liif_error *err)
{
    const struct jpeg_decompress_struct *ci = &r->cinfo;
    uint64_t w = ci->image_width, h = ci->image_height;
    if (w == 0 || h == 0)
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: empty image (%llux%llu)", r->path, (unsigned long long)w,
                              (unsigned long long)h);
    if (w > LIIF_MAX_SIDE || h > LIIF_MAX_SIDE || (int64_t)(w * h) > LIIF_MAX_PIXELS)
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: image too large (%llux%llu; at most %d per side and %lld "
                              "pixels)", r->path, (unsigned long long)w, (unsigned long long)h, LIIF_MAX_SIDE,
                              (long long)LIIF_MAX_PIXELS);
    if (ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK)
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: a CMYK JPEG (print colours): convert it to RGB first", r->path);
    if (ci->jpeg_color_space == JCS_UNKNOWN || (ci->num_components != 1 && ci->num_components != 3))
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: unsupported JPEG colour layout (%d components)", r->path,
                              ci->num_components);
    uint64_t c = r->rgb || ci->num_components == 3 ? 3 : 1;
    uint64_t need = w * h * c * sizeof(float), cap = LIIF_JPEG_MEM_BASE + (uint64_t)r->file_size * LIIF_JPEG_MEM_PER_FILE_BYTE;
    if (cap > LIIF_PNG_MEM_MAX)
        cap = LIIF_PNG_MEM_MAX;
    if (need > cap)
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: a %llux%llu image cannot come from a %zu-byte file (corrupt "
                              "header or a decompression bomb)", r->path, (unsigned long long)w, (unsigned long long)h,
                              r->file_size);
    return LIIF_OK;
}

/* The only setjmp of reading: the pixels, or with r->db the coefficients. */
static liif_status decode(jpeg_reader *r, liif_error *err)
{
    if (setjmp(r->fault.jump)) {
        if (r->cinfo_ready && r->cinfo.input_scan_number > JPEG_MAX_SCANS)
            return liif_error_set(err, LIIF_ERR_FORMAT, "%s: more than %d scans (a crafted file?)", r->path,
                                  JPEG_MAX_SCANS);
        return fault_report(&r->fault, r->path, LIIF_ERR_FORMAT, err);
    }
    fault_init(&r->fault, &r->cinfo.err);
    jpeg_create_decompress(&r->cinfo);
    r->cinfo_ready = 1;
    r->cinfo.progress = &r->fault.progress;
    jpeg_stdio_src(&r->cinfo, r->fp);
    jpeg_save_markers(&r->cinfo, JPEG_APP0 + 1, 0xffff);
    if (r->want_meta)
        jpeg_save_markers(&r->cinfo, JPEG_APP0 + 2, 0xffff); /* held in memory: at most the file's size */
    jpeg_read_header(&r->cinfo, TRUE);
    liif_status st = check_header(r, err); /* before libjpeg sizes its buffers from the header */
    if (st != LIIF_OK)
        return st;
    if (r->db) /* within this setjmp: libjpeg's errors come back here */
        return deblock_read_coefs(r, err);
    r->orientation = 1;
    for (jpeg_saved_marker_ptr m = r->cinfo.marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0 &&
            liif_exif_check(m->data + 6, m->data_length - 6)) {
            const uint8_t *t = m->data + 6;
            size_t n = m->data_length - 6;
            r->orientation = liif_exif_orientation(t, n);
            int turned = r->orientation != 1, swap = r->orientation >= 5;
            int w = (int)r->cinfo.image_width, h = (int)r->cinfo.image_height;
            if (r->want_meta && liif_exif_for_image(t, n, swap ? h : w, swap ? w : h, turned, &r->exif, &r->exif_len))
                r->exif = NULL; /* out of memory: the output goes without */
            break;
        }
    if (r->cinfo.saw_JFIF_marker)
        density_from_jfif(r->cinfo.density_unit, r->cinfo.X_density, r->cinfo.Y_density, &r->density);
    /* a profile split over APP2 markers, joined (libjpeg checks their sequence numbers; a bad set gives none) */
    if (r->want_meta && (!jpeg_read_icc_profile(&r->cinfo, &r->icc, &r->icc_len) || r->icc_len > LIIF_PNG_CHUNK_MAX)) {
        free(r->icc);
        r->icc = NULL;
        r->icc_len = 0;
    }
    r->cinfo.out_color_space = r->rgb || r->cinfo.num_components == 3 ? JCS_RGB : JCS_GRAYSCALE;
    if (r->dct_float)
        r->cinfo.dct_method = JDCT_FLOAT;
    jpeg_start_decompress(&r->cinfo);
    r->w = (int)r->cinfo.output_width;
    r->h = (int)r->cinfo.output_height;
    r->channels = r->cinfo.output_components;
    if (r->channels != 1 && r->channels != 3)
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: unsupported JPEG colour layout", r->path);
    if (!(r->px = malloc((size_t)r->w * r->h * r->channels)))
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory (%dx%d image)", r->path, r->w, r->h);
    while (r->cinfo.output_scanline < r->cinfo.output_height && !r->fault.bad_data) {
        JSAMPROW row = r->px + (size_t)r->cinfo.output_scanline * r->w * r->channels;
        jpeg_read_scanlines(&r->cinfo, &row, 1);
    }
    if (r->fault.bad_data) {
        char text[JMSG_LENGTH_MAX];
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: corrupt or truncated JPEG data (%s)", r->path,
                              liif_printable(r->fault.msg, text, sizeof text));
    }
    jpeg_finish_decompress(&r->cinfo);
    return LIIF_OK;
}

/* liif_jpeg_read8, and the metadata into *meta when meta is not NULL. */
static liif_status read8(const char *path, int fd, size_t file_size, int rgb, int dct_float, int *w, int *h,
                         int *channels, uint8_t **px, int *orientation, liif_image_meta *meta, liif_error *err)
{
    *px = NULL;
    jpeg_reader r;
    memset(&r, 0, sizeof r);
    r.path = path;
    r.rgb = rgb;
    r.dct_float = dct_float;
    r.want_meta = meta != NULL;
    r.file_size = file_size;
    if (!(r.fp = fdopen(fd, "rb"))) {
        close(fd);
        return liif_error_set(err, LIIF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    liif_status st = decode(&r, err);
    if (r.cinfo_ready)
        jpeg_destroy_decompress(&r.cinfo);
    fclose(r.fp);
    if (st == LIIF_OK && r.orientation != 1) {
        int ow, oh;
        uint8_t *o = orient(r.px, r.w, r.h, r.channels, r.orientation, &ow, &oh);
        if (!o)
            st = liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory (%dx%d image)", path, r.w, r.h);
        free(r.px);
        r.px = o;
        r.w = ow;
        r.h = oh;
    }
    if (st != LIIF_OK) {
        free(r.px);
        free(r.icc);
        free(r.exif);
        return st;
    }
    *w = r.w;
    *h = r.h;
    *channels = r.channels;
    *px = r.px;
    if (orientation)
        *orientation = r.orientation;
    if (meta) {
        *meta = r.density;
        meta->icc = r.icc;
        meta->icc_len = r.icc_len;
        meta->exif = r.exif;
        meta->exif_len = r.exif_len;
    }
    return LIIF_OK;
}

/* read8 of the file at path (opened by liif_open_regular), without its metadata. */
static liif_status read8_path(const char *path, int rgb, int dct_float, int *w, int *h, int *channels, uint8_t **px,
                              int *orientation, liif_error *err)
{
    size_t size;
    int fd = liif_open_regular(path, &size, err);
    if (fd < 0) {
        *px = NULL;
        return LIIF_ERR_IO;
    }
    return read8(path, fd, size, rgb, dct_float, w, h, channels, px, orientation, NULL, err);
}

liif_status liif_jpeg_read8(const char *path, int rgb, int *w, int *h, int *channels, uint8_t **px,
                            int *orientation, liif_error *err)
{
    return read8_path(path, rgb, 0, w, h, channels, px, orientation, err);
}

liif_status liif_jpeg_read(const char *path, liif_png *img, int *orientation, liif_error *err)
{
    memset(img, 0, sizeof *img);
    size_t size;
    int fd = liif_open_regular(path, &size, err);
    if (fd < 0)
        return LIIF_ERR_IO;
    return liif_jpeg_read_fd(path, fd, size, img, orientation, err);
}

liif_status liif_jpeg_read_fd(const char *path, int fd, size_t file_size, liif_png *img, int *orientation,
                              liif_error *err)
{
    memset(img, 0, sizeof *img);
    uint8_t *px;
    int w, h, c;
    liif_status st = read8(path, fd, file_size, 0, 0, &w, &h, &c, &px, orientation, &img->meta, err);
    if (st != LIIF_OK)
        return st;
    size_t n = (size_t)w * h * c;
    img->px = malloc(n * sizeof(float));
    if (!img->px) {
        free(px);
        liif_png_free(img);
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory (%dx%d image)", path, w, h);
    }
    for (size_t i = 0; i < n; i++)
        img->px[i] = px[i] * (1.0f / 255.0f);
    free(px);
    img->w = w;
    img->h = h;
    img->channels = c;
    img->bit_depth = 8;
    return LIIF_OK;
}

/* ------------------------------------------------------------ deblocking
 * A JPEG stores each 8x8 block of a component as DCT coefficients rounded to multiples of a quantisation step q.
 * The file therefore says only that coefficient k of a block lies in [(c - 1/2) q, (c + 1/2) q]; the decoder takes
 * the middle of that interval, whose errors line up along the block edges. A smoother image that keeps every
 * coefficient inside the interval the file states has fewer block edges and less ringing: projected gradient descent
 * on the smoothed total variation of each component (luma, and chroma at its own resolution), each step followed by
 * the exact projection onto the intervals (the JPEG DCT is orthonormal, so clamping the coefficients gives the
 * nearest allowed plane), stopped early. The changes go into RGB through JFIF's YCbCr -> RGB, chroma's upsampled
 * (centred bilinear, as libjpeg's fancy upsampling). */

enum { DEBLOCK_ITERATIONS = 40 };
/* The first step, in levels, per level of the component's mean quantisation step: small, so that the descent stops
 * well inside the intervals and keeps texture that total variation would flatten. Measured on the three held-out
 * photographs at qualities 30-90 (README): 0.006 gained at all twelve, 0.02 lost up to 0.4 dB at 90. */
#define DEBLOCK_STEP 0.006

/* Every component's quantised coefficients and steps into r->db, after decode has checked the header. */
static liif_status deblock_read_coefs(jpeg_reader *r, liif_error *err)
{
    deblock_coefs *d = r->db;
    const struct jpeg_decompress_struct *ci = &r->cinfo;
    int w = (int)ci->image_width, h = (int)ci->image_height;
    d->n = ci->num_components;
    d->supported = (d->n == 1 && ci->jpeg_color_space == JCS_GRAYSCALE) ||
                   (d->n == 3 && ci->jpeg_color_space == JCS_YCbCr);
    for (int c = 0; d->supported && c < d->n; c++) { /* luma whole, chroma whole or halved along each side */
        const jpeg_component_info *k = &ci->comp_info[c];
        int fx = ci->max_h_samp_factor / k->h_samp_factor, fy = ci->max_v_samp_factor / k->v_samp_factor;
        d->supported = fx * k->h_samp_factor == ci->max_h_samp_factor && fy * k->v_samp_factor == ci->max_v_samp_factor &&
                       (c == 0 ? fx == 1 && fy == 1 : fx <= 2 && fy <= 2);
        d->p[c].fx = fx, d->p[c].fy = fy;
    }
    if (!d->supported)
        return LIIF_OK;
    jvirt_barray_ptr *arrays = jpeg_read_coefficients(&r->cinfo);
    if (r->fault.bad_data)
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: corrupt or truncated JPEG data", r->path);
    for (int c = 0; c < d->n; c++) {
        const jpeg_component_info *k = &ci->comp_info[c];
        deblock_plane *pl = &d->p[c];
        pl->w = (w + pl->fx - 1) / pl->fx;
        pl->h = (h + pl->fy - 1) / pl->fy;
        pl->bw = (int)k->width_in_blocks;
        pl->bh = (int)k->height_in_blocks;
        if (!k->quant_table || (int64_t)pl->bw * 8 < pl->w || (int64_t)pl->bh * 8 < pl->h || pl->bw > pl->w / 8 + 1 ||
            pl->bh > pl->h / 8 + 1) {
            d->supported = 0; /* a layout libjpeg reads but this does not expect: left as decoded */
            return LIIF_OK;
        }
        for (int i = 0; i < 64; i++)
            pl->q[i] = k->quant_table->quantval[i] ? k->quant_table->quantval[i] : 1;
        if (!(pl->coef = malloc((size_t)pl->bw * pl->bh * 64 * sizeof *pl->coef)))
            return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory (deblocking %dx%d)", r->path, w, h);
        for (int by = 0; by < pl->bh; by++) {
            JBLOCKARRAY row = (*r->cinfo.mem->access_virt_barray)((j_common_ptr)&r->cinfo, arrays[c], (JDIMENSION)by,
                                                                   1, FALSE);
            for (int bx = 0; bx < pl->bw; bx++)
                for (int i = 0; i < 64; i++) pl->coef[((size_t)by * pl->bw + bx) * 64 + i] = row[0][bx][i];
        }
    }
    jpeg_finish_decompress(&r->cinfo);
    if (r->fault.bad_data)
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: corrupt or truncated JPEG data", r->path);
    return LIIF_OK;
}

/* The orthonormal 8-point DCT-II matrix: dct8[u][x] = s(u) cos((2x + 1) u pi / 16), s(0) = sqrt(1/8), else 1/2. */
static float dct8[8][8];
static pthread_once_t dct8_once = PTHREAD_ONCE_INIT;
static void dct8_init(void)
{
    for (int u = 0; u < 8; u++)
        for (int x = 0; x < 8; x++)
            dct8[u][x] = (float)((u ? 0.5 : sqrt(0.125)) * cos((2 * x + 1) * u * M_PI / 16));
}

/* One 8-point transform by D (forward: out = D in) or by D^T (inverse: out = D^T in), elements `is` and `os` floats
 * apart. D's rows are even or odd about the middle (D[u][7 - x] = (-1)^u D[u][x]), so each takes 32 products, not
 * 64: the forward one from the sums and differences of mirrored inputs, the inverse one as even and odd halves. */
static void dct8_forward(const float *in, ptrdiff_t is, float *out, ptrdiff_t os)
{
    float sum[4], dif[4];
    for (int k = 0; k < 4; k++) {
        sum[k] = in[k * is] + in[(7 - k) * is];
        dif[k] = in[k * is] - in[(7 - k) * is];
    }
    for (int u = 0; u < 8; u++) {
        const float *half = u & 1 ? dif : sum;
        out[u * os] = half[0] * dct8[u][0] + half[1] * dct8[u][1] + half[2] * dct8[u][2] + half[3] * dct8[u][3];
    }
}

static void dct8_inverse(const float *in, ptrdiff_t is, float *out, ptrdiff_t os)
{
    for (int k = 0; k < 4; k++) {
        float even = in[0] * dct8[0][k] + in[2 * is] * dct8[2][k] + in[4 * is] * dct8[4][k] + in[6 * is] * dct8[6][k];
        float odd = in[is] * dct8[1][k] + in[3 * is] * dct8[3][k] + in[5 * is] * dct8[5][k] + in[7 * is] * dct8[7][k];
        out[k * os] = even + odd;
        out[(7 - k) * os] = even - odd;
    }
}

/* Block at b (rows `stride` floats apart): with clamp, its coefficients F = D (b - 128) D^T are clamped to the
 * intervals of the quantised coefficients c (steps q); without, F = c q (the plain decode). Then b = D^T F D + 128. */
static void deblock_project(float *b, size_t stride, const int16_t *c, const uint16_t *q, int clamp)
{
    float t[64], f[64];
    if (clamp) {
        for (int y = 0; y < 8; y++) { /* rows: t = (b - 128) D^T */
            float r[8];
            for (int x = 0; x < 8; x++) r[x] = b[y * stride + x] - 128.0f;
            dct8_forward(r, 1, t + y * 8, 1);
        }
        for (int u = 0; u < 8; u++) /* columns: f = D t */
            dct8_forward(t + u, 8, f + u, 8);
        for (int k = 0; k < 64; k++) { /* clamped */
            float lo = (c[k] - 0.5f) * q[k], hi = (c[k] + 0.5f) * q[k];
            f[k] = f[k] < lo ? lo : f[k] > hi ? hi : f[k];
        }
    } else {
        for (int k = 0; k < 64; k++) f[k] = (float)c[k] * q[k];
    }
    for (int v = 0; v < 8; v++) /* t = f D along rows */
        dct8_inverse(f + v * 8, 1, t + v * 8, 1);
    for (int x = 0; x < 8; x++) { /* b = D^T t + 128 */
        float col[8];
        dct8_inverse(t + x, 8, col, 1);
        for (int y = 0; y < 8; y++) b[y * stride + x] = col[y] + 128.0f;
    }
}

/* The smoothed total variation of a plane (w x h samples, rows `stride` apart) is the sum over samples of
 * sqrt(dx^2 + dy^2 + 1 level^2), forward differences, none past the last row or column. Sample p's term has the
 * gradient -(dx + dy) / |.| at p, dx / |.| at its right neighbour and dy / |.| at the one below: so the gradient at p
 * is -(nx + ny)(p) + nx(left of p) + ny(above p), with (nx, ny) = (dx, dy) / |.|, one square root a sample.
 * deblock_normals: row y's nx and ny. deblock_descend_row: row y of out (which holds nx there, read before it is
 * overwritten) = a - step * gradient. */
static void deblock_normals(const float *a, float *nx, float *ny, size_t stride, int w, int h, int y)
{
    const float *p = a + (size_t)y * stride;
    for (int x = 0; x < w; x++) {
        float dx = x + 1 < w ? p[x + 1] - p[x] : 0, dy = y + 1 < h ? p[x + stride] - p[x] : 0;
        float r = 1.0f / sqrtf(dx * dx + dy * dy + 1.0f);
        nx[(size_t)y * stride + x] = dx * r;
        ny[(size_t)y * stride + x] = dy * r;
    }
}

static void deblock_descend_row(const float *a, const float *ny, float *out, size_t stride, int w, int y, float step)
{
    const float *p = a + (size_t)y * stride, *n = ny + (size_t)y * stride;
    float *o = out + (size_t)y * stride;
    float left = 0; /* nx of the left neighbour */
    for (int x = 0; x < w; x++) {
        float nx = o[x];
        float g = -(nx + n[x]) + left + (y > 0 ? n[x - (ptrdiff_t)stride] : 0);
        o[x] = p[x] - step * g;
        left = nx;
    }
}

/* The plane's change by deblocking, in levels, as pl->w x pl->h floats (malloc'd; NULL when out of memory). */
static float *deblock_plane_change(const deblock_plane *pl, int nt)
{
    size_t stride = (size_t)pl->bw * 8, rows = (size_t)pl->bh * 8;
    float *a = malloc(stride * rows * sizeof *a), *b = malloc(stride * rows * sizeof *b),
          *ny = malloc(stride * rows * sizeof *ny);
    if (!a || !b || !ny) {
        free(a), free(b), free(ny);
        return NULL;
    }
    int bw = pl->bw, bh = pl->bh, w = pl->w, h = pl->h;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int by = 0; by < bh; by++) /* the plain decode, where the descent starts */
        for (int bx = 0; bx < bw; bx++)
            deblock_project(a + (size_t)by * 8 * stride + bx * 8, stride, pl->coef + ((size_t)by * bw + bx) * 64, pl->q, 0);
    memcpy(b, a, stride * rows * sizeof *a); /* the padding beyond the plane: only the projection moves it */
    double qmean = 0;
    for (int k = 0; k < 64; k++) qmean += pl->q[k] / 64.0;
    float step0 = (float)(DEBLOCK_STEP * qmean);
    for (int it = 0; it < DEBLOCK_ITERATIONS; it++) {
        float step = step0 / sqrtf(1.0f + it); /* shrinking, so the descent settles */
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int y = 0; y < h; y++)
            deblock_normals(a, b, ny, stride, w, h, y);
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int y = 0; y < h; y++)
            deblock_descend_row(a, ny, b, stride, w, y, step);
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int by = 0; by < bh; by++)
            for (int bx = 0; bx < bw; bx++) {
                size_t o = (size_t)by * 8 * stride + bx * 8;
                for (int y = 0; y < 8; y++) memcpy(a + o + y * stride, b + o + y * stride, 8 * sizeof *a);
                deblock_project(a + o, stride, pl->coef + ((size_t)by * bw + bx) * 64, pl->q, 1);
            }
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int by = 0; by < bh; by++) /* the plain decode again, to subtract */
        for (int bx = 0; bx < bw; bx++)
            deblock_project(b + (size_t)by * 8 * stride + bx * 8, stride, pl->coef + ((size_t)by * bw + bx) * 64, pl->q, 0);
    for (int y = 0; y < h; y++) /* in place: row y's change ends before row y's source starts */
        for (int x = 0; x < w; x++) b[(size_t)y * w + x] = a[(size_t)y * stride + x] - b[(size_t)y * stride + x];
    free(a);
    free(ny);
    return b;
}

/* Sample (x, y) of the image from plane d of pl->w x pl->h samples, each pl->fx x pl->fy pixels: bilinear between
 * the samples' centres (JFIF's centred chroma), edges repeated. */
static float deblock_upsampled(const float *d, const deblock_plane *pl, int x, int y)
{
    if (pl->fx == 1 && pl->fy == 1)
        return d[(size_t)y * pl->w + x];
    float sx = (x + 0.5f) / pl->fx - 0.5f, sy = (y + 0.5f) / pl->fy - 0.5f;
    int x0 = (int)floorf(sx), y0 = (int)floorf(sy);
    float tx = sx - x0, ty = sy - y0;
    int x1 = x0 + 1 < pl->w ? x0 + 1 : pl->w - 1, y1 = y0 + 1 < pl->h ? y0 + 1 : pl->h - 1;
    x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0;
    const float *r0 = d + (size_t)y0 * pl->w, *r1 = d + (size_t)y1 * pl->w;
    return (1 - ty) * ((1 - tx) * r0[x0] + tx * r0[x1]) + ty * ((1 - tx) * r1[x0] + tx * r1[x1]);
}

liif_status liif_jpeg_deblock(const char *path, liif_png *img, int orientation, int threads, int *done,
                              liif_error *err)
{
    *done = 0;
    if (img->bit_depth != 8 || (img->channels != 1 && img->channels != 3) || orientation < 1 || orientation > 8)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: not an image read from a JPEG", path);
    size_t size;
    int fd = liif_open_regular(path, &size, err);
    if (fd < 0)
        return LIIF_ERR_IO;
    deblock_coefs r;
    memset(&r, 0, sizeof r);
    jpeg_reader jr;
    memset(&jr, 0, sizeof jr);
    jr.path = path;
    jr.file_size = size;
    jr.db = &r;
    if (!(jr.fp = fdopen(fd, "rb"))) {
        close(fd);
        return liif_error_set(err, LIIF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    liif_status st = decode(&jr, err);
    int w = jr.cinfo_ready ? (int)jr.cinfo.image_width : 0, h = jr.cinfo_ready ? (int)jr.cinfo.image_height : 0;
    if (jr.cinfo_ready)
        jpeg_destroy_decompress(&jr.cinfo);
    fclose(jr.fp);
    int swap = orientation >= 5;
    if (st == LIIF_OK && r.supported &&
        ((swap ? h : w) != img->w || (swap ? w : h) != img->h || (r.n == 1) != (img->channels == 1)))
        st = liif_error_set(err, LIIF_ERR_FORMAT, "%s: changed while it was read (%dx%d, then %dx%d)", path, img->w,
                            img->h, swap ? h : w, swap ? w : h);
    float *d[3] = {NULL, NULL, NULL};
    if (st == LIIF_OK && r.supported) {
        pthread_once(&dct8_once, dct8_init);
        int nt = threads > 0 ? threads : omp_get_num_procs();
        for (int c = 0; c < r.n && st == LIIF_OK; c++)
            if (!(d[c] = deblock_plane_change(&r.p[c], nt)))
                st = liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory (deblocking %dx%d)", path, w, h);
    }
    if (st == LIIF_OK && r.supported) { /* each upright pixel from its stored one: Y, and Cb, Cr upsampled, in RGB */
        int k = img->channels, iw = img->w, ih = img->h;
#pragma omp parallel for num_threads(threads > 0 ? threads : omp_get_num_procs()) schedule(static)
        for (int y = 0; y < ih; y++)
            for (int x = 0; x < iw; x++) {
                int sx, sy;
                stored_pixel(orientation, w, h, x, y, &sx, &sy);
                float ch[3], dy = d[0][(size_t)sy * w + sx] * (1.0f / 255.0f), *px = img->px + ((size_t)y * iw + x) * k;
                if (k == 1) {
                    ch[0] = dy;
                } else {
                    float cb = deblock_upsampled(d[1], &r.p[1], sx, sy) * (1.0f / 255.0f),
                          cr = deblock_upsampled(d[2], &r.p[2], sx, sy) * (1.0f / 255.0f);
                    ch[0] = dy + 1.402f * cr;
                    ch[1] = dy - 0.344136f * cb - 0.714136f * cr;
                    ch[2] = dy + 1.772f * cb;
                }
                for (int c = 0; c < k; c++) {
                    float v = px[c] + ch[c];
                    px[c] = v < 0 ? 0 : v > 1 ? 1 : v;
                }
            }
    }
    for (int c = 0; c < 3; c++) {
        free(r.p[c].coef);
        free(d[c]);
    }
    if (st != LIIF_OK || !r.supported)
        return st;
    *done = 1;
    return LIIF_OK;
}

/* Pixels from another decoder count as the file's when no sample is more than MATCH_MAX_LEVELS from this reader's
 * 8-bit decode and they are MATCH_MEAN_LEVELS apart on average: an IDCT or chroma upsampling that rounds differently
 * moves samples by a level or two, an edit moves some by more or many by some. */
#define MATCH_MAX_LEVELS 2.5
#define MATCH_MEAN_LEVELS 0.5

/* Whether img holds the decode px (upright: ow x oh, k channels, EXIF orientation o applied), standing upright
 * (stored 0) or as the file stores it (stored 1). */
static int pixels_match(const liif_png *img, const uint8_t *px, int ow, int oh, int k, int o, int stored)
{
    int sw = o >= 5 ? oh : ow, sh = o >= 5 ? ow : oh; /* the stored sides */
    if (img->channels != k || img->w != (stored ? sw : ow) || img->h != (stored ? sh : oh))
        return 0;
    double sum = 0;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            int ix = x, iy = y;
            if (stored)
                stored_pixel(o, sw, sh, x, y, &ix, &iy);
            const float *a = img->px + ((size_t)iy * img->w + ix) * k;
            const uint8_t *b = px + ((size_t)y * ow + x) * k;
            for (int c = 0; c < k; c++) {
                double d = fabs(a[c] * 255.0 - b[c]);
                if (!(d <= MATCH_MAX_LEVELS)) /* NaN too */
                    return 0;
                sum += d;
            }
        }
    return sum <= MATCH_MEAN_LEVELS * (double)ow * oh * k;
}

liif_status liif_jpeg_deblock_pixels(const char *path, liif_png *img, int threads, liif_jpeg_match *match,
                                     liif_error *err)
{
    *match = LIIF_JPEG_NOT_THE_FILE;
    if ((img->channels != 1 && img->channels != 3) || img->w < 1 || img->h < 1 || !img->px)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: deblocking takes gray or RGB pixels", path);
    int as = 0; /* the orientation img stands in: the file's (upright) or 1 (as stored); 0 while not found */
    for (int dct_float = 0; dct_float < 2 && !as; dct_float++) { /* libjpeg's default decode, then GIMP's */
        int w, h, k, o;
        uint8_t *px;
        liif_status st = read8_path(path, 0, dct_float, &w, &h, &k, &px, &o, err);
        if (st != LIIF_OK)
            return st;
        as = pixels_match(img, px, w, h, k, o, 0) ? o : o != 1 && pixels_match(img, px, w, h, k, o, 1) ? 1 : 0;
        free(px);
    }
    if (!as)
        return LIIF_OK;
    liif_png view = *img; /* the same pixels, as an 8-bit read (the depth is the caller's, not the file's) */
    view.bit_depth = 8;
    int done;
    liif_status st = liif_jpeg_deblock(path, &view, as, threads, &done, err);
    if (st == LIIF_OK)
        *match = done ? LIIF_JPEG_DEBLOCKED : LIIF_JPEG_LAYOUT;
    return st;
}

/* ------------------------------------------------------------ writing */

/* Above this many samples the Huffman tables are libjpeg's standard ones: optimizing them keeps every DCT
 * coefficient of the image in memory until the end (2 bytes a sample: 128 MiB here). */
#define JPEG_OPTIMIZE_MAX_SAMPLES ((int64_t)64 << 20)

struct liif_jpeg_writer {
    jpeg_fault fault; /* cinfo.err points here */
    struct jpeg_compress_struct cinfo;
    int cinfo_ready;
    liif_outfile file;
    uint8_t *row;
    int w, h, channels, quality;
    int chroma_halved; /* 4:2:0, as cameras and most programs store: chroma at half resolution both ways */
    int rows_done;
    int failed; /* a step failed: the temporary file is gone and only free remains */
};

static void jwriter_free(liif_jpeg_writer *wr)
{
    if (wr->cinfo_ready)
        jpeg_destroy_compress(&wr->cinfo);
    liif_outfile_free(&wr->file);
    free(wr->row);
    free(wr);
}

static liif_status jwriter_fail(liif_jpeg_writer *wr, liif_status st)
{
    wr->failed = 1;
    liif_outfile_discard(&wr->file);
    return st;
}

/* The only setjmp of open(): the header, the density, then EXIF (app1: "Exif\0\0" and its block) and the profile
 * as APP2 markers (NULL: none). */
static liif_status jstart(liif_jpeg_writer *wr, const liif_image_meta *m, unsigned keep, const uint8_t *app1,
                          size_t app1_len, liif_error *err)
{
    if (setjmp(wr->fault.jump))
        return jwriter_fail(wr, fault_report(&wr->fault, wr->file.path, LIIF_ERR_IO, err));
    fault_init(&wr->fault, &wr->cinfo.err);
    jpeg_create_compress(&wr->cinfo);
    wr->cinfo_ready = 1;
    jpeg_stdio_dest(&wr->cinfo, wr->file.fp);
    wr->cinfo.image_width = (JDIMENSION)wr->w;
    wr->cinfo.image_height = (JDIMENSION)wr->h;
    wr->cinfo.input_components = wr->channels;
    wr->cinfo.in_color_space = wr->channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&wr->cinfo);
    jpeg_set_quality(&wr->cinfo, wr->quality, TRUE);
    for (int i = 0; i < wr->cinfo.num_components; i++) /* 4:4:4, or 4:2:0: luma's blocks twice as dense */
        wr->cinfo.comp_info[i].h_samp_factor = wr->cinfo.comp_info[i].v_samp_factor =
            wr->chroma_halved && i == 0 && wr->channels == 3 ? 2 : 1;
    wr->cinfo.optimize_coding = (int64_t)wr->w * wr->h * wr->channels <= JPEG_OPTIMIZE_MAX_SAMPLES;
    unsigned dx, dy;
    int unit = (keep & LIIF_META_DENSITY) ? density_to_jfif(m, &dx, &dy) : 0;
    if (unit) {
        wr->cinfo.density_unit = (UINT8)(unit - 1);
        wr->cinfo.X_density = (UINT16)dx;
        wr->cinfo.Y_density = (UINT16)dy;
    }
    jpeg_start_compress(&wr->cinfo, TRUE);
    if (app1)
        jpeg_write_marker(&wr->cinfo, JPEG_APP0 + 1, app1, (unsigned)app1_len);
    if (keep & LIIF_META_ICC) /* the input's colour profile, so that colour-managed viewers show the colours it had */
        jpeg_write_icc_profile(&wr->cinfo, m->icc, (unsigned)m->icc_len);
    return LIIF_OK;
}

liif_status liif_jpeg_writer_open(const char *path, int w, int h, int channels, int quality, liif_jpeg_writer **out,
                                  liif_error *err)
{
    return liif_jpeg_writer_open_meta(path, w, h, channels, quality, NULL, NULL, out, err);
}

/* "Exif\0\0" and the block for a w x h image in one malloc'd APP1 payload, or NULL (too large for a marker,
 * malformed, or out of memory). */
static uint8_t *exif_app1(const liif_image_meta *m, int w, int h, size_t *len)
{
    uint8_t *t;
    size_t n;
    if (m->exif_len > LIIF_EXIF_JPEG_MAX || liif_exif_for_image(m->exif, m->exif_len, w, h, 0, &t, &n) != 0)
        return NULL;
    uint8_t *a = malloc(6 + n);
    if (a) {
        memcpy(a, "Exif\0\0", 6);
        memcpy(a + 6, t, n);
        *len = 6 + n;
    }
    free(t);
    return a;
}

static liif_status jwriter_open(const char *path, int w, int h, int channels, int quality, int chroma_halved,
                                const liif_image_meta *meta, unsigned *kept, liif_jpeg_writer **out, liif_error *err)
{
    *out = NULL;
    if (kept)
        *kept = 0;
    liif_status st = liif_outfile_check_name(path, "JPEG", err);
    if (st != LIIF_OK)
        return st;
    if (channels != 1 && channels != 3)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: %d channels (JPEG holds gray or RGB, no alpha)", path, channels);
    if (quality < 1 || quality > 100)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: JPEG quality %d (1 to 100)", path, quality);
    if (w < 1 || h < 1 || w > JPEG_MAX_DIMENSION || h > JPEG_MAX_DIMENSION)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: %dx%d: a JPEG holds 1 to %d pixels per side", path, w, h,
                              (int)JPEG_MAX_DIMENSION);
    liif_jpeg_writer *wr = calloc(1, sizeof *wr);
    if (!wr)
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory", path);
    wr->w = w;
    wr->h = h;
    wr->channels = channels;
    wr->quality = quality;
    wr->chroma_halved = chroma_halved;
    /* no colour chunks: a JPEG without a profile is sRGB, and a PNG's gAMA or cHRM has no place here */
    unsigned keep = liif_image_meta_has(meta) & ~(unsigned)LIIF_META_COLOUR;
    if (meta && meta->icc_len > LIIF_PNG_CHUNK_MAX)
        keep &= ~(unsigned)LIIF_META_ICC;
    uint8_t *app1 = NULL;
    size_t app1_len = 0;
    if ((keep & LIIF_META_EXIF) && !(app1 = exif_app1(meta, w, h, &app1_len)))
        keep &= ~(unsigned)LIIF_META_EXIF;
    unsigned dx, dy;
    if ((keep & LIIF_META_DENSITY) && !density_to_jfif(meta, &dx, &dy))
        keep &= ~(unsigned)LIIF_META_DENSITY;
    st = liif_outfile_open(&wr->file, path, err);
    if (st == LIIF_OK && !(wr->row = malloc((size_t)w * channels)))
        st = liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory", path);
    if (st == LIIF_OK)
        st = jstart(wr, meta, keep, app1, app1_len, err);
    free(app1);
    if (st != LIIF_OK) {
        jwriter_free(wr);
        return st;
    }
    if (kept)
        *kept = keep;
    *out = wr;
    return LIIF_OK;
}

liif_status liif_jpeg_writer_open_meta(const char *path, int w, int h, int channels, int quality,
                                       const liif_image_meta *meta, unsigned *kept, liif_jpeg_writer **out,
                                       liif_error *err)
{
    return jwriter_open(path, w, h, channels, quality, 0, meta, kept, out, err);
}

liif_status liif_jpeg_writer_open_420(const char *path, int w, int h, int channels, int quality,
                                      liif_jpeg_writer **out, liif_error *err)
{
    return jwriter_open(path, w, h, channels, quality, 1, NULL, NULL, out, err);
}

/* The only setjmp of rows(). */
static liif_status jrows(liif_jpeg_writer *wr, const float *rows, int n_rows, size_t stride, liif_error *err)
{
    if (setjmp(wr->fault.jump))
        return jwriter_fail(wr, fault_report(&wr->fault, wr->file.path, LIIF_ERR_IO, err));
    size_t n = (size_t)wr->w * wr->channels;
    for (int y = 0; y < n_rows; y++) {
        const float *src = rows + (size_t)y * stride;
        for (size_t i = 0; i < n; i++)
            wr->row[i] = (uint8_t)liif_quantize(src[i], 255);
        JSAMPROW row = wr->row;
        jpeg_write_scanlines(&wr->cinfo, &row, 1);
        wr->rows_done++;
    }
    return LIIF_OK;
}

liif_status liif_jpeg_writer_rows(liif_jpeg_writer *wr, const float *rows, int n_rows, size_t stride,
                                  liif_error *err)
{
    if (!wr)
        return liif_error_set(err, LIIF_ERR_ARG, "JPEG output: no writer");
    if (wr->failed)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: writing already failed", wr->file.path);
    liif_status st = liif_outfile_check_rows(wr->file.path, wr->rows_done, wr->h, n_rows, rows, stride, wr->w,
                                             wr->channels, err);
    if (st != LIIF_OK)
        return jwriter_fail(wr, st);
    return jrows(wr, rows, n_rows, stride, err);
}

/* The only setjmp of finish(). */
static liif_status jend(liif_jpeg_writer *wr, liif_error *err)
{
    if (setjmp(wr->fault.jump))
        return jwriter_fail(wr, fault_report(&wr->fault, wr->file.path, LIIF_ERR_IO, err));
    jpeg_finish_compress(&wr->cinfo); /* flushes libjpeg's buffer into the stdio stream */
    return LIIF_OK;
}

liif_status liif_jpeg_writer_finish(liif_jpeg_writer *wr, liif_error *err)
{
    if (!wr)
        return liif_error_set(err, LIIF_ERR_ARG, "JPEG output: no writer");
    liif_status st;
    if (wr->failed)
        st = liif_error_set(err, LIIF_ERR_ARG, "%s: writing already failed", wr->file.path);
    else if (wr->rows_done != wr->h)
        st = jwriter_fail(wr, liif_error_set(err, LIIF_ERR_ARG, "%s: only %d of %d rows were written", wr->file.path,
                                             wr->rows_done, wr->h));
    else if ((st = jend(wr, err)) == LIIF_OK)
        st = liif_outfile_commit(&wr->file, err);
    jwriter_free(wr);
    return st;
}

void liif_jpeg_writer_abort(liif_jpeg_writer *wr)
{
    if (wr)
        jwriter_free(wr);
}
