/* webp_image.c: WebP reading (libwebp's decoder, its demuxer for the ICCP and EXIF chunks) and writing (its encoder,
 * its muxer), with the limits of webp_image.h checked before anything is sized from a header. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <webp/decode.h>
#include <webp/demux.h>
#include <webp/encode.h>
#include <webp/mux.h>

#include "exif.h"
#include "outfile.h"
#include "webp_image.h"

/* ------------------------------------------------------------ reading */

/* The whole file into *data (the decoder wants it in one piece). */
static liif_status slurp(const char *path, int fd, size_t size, uint8_t **data, liif_error *err)
{
    *data = NULL;
    if (size > LIIF_WEBP_FILE_MAX) {
        close(fd);
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: a %zu-byte WebP file (at most %zu MiB)", path, size,
                              LIIF_WEBP_FILE_MAX >> 20);
    }
    FILE *fp = fdopen(fd, "rb");
    if (!fp) {
        int e = errno;
        close(fd);
        return liif_error_set(err, LIIF_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    uint8_t *d = malloc(size ? size : 1);
    size_t got = d ? fread(d, 1, size, fp) : 0;
    int e = errno, bad = ferror(fp);
    fclose(fp);
    if (!d)
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, size);
    if (got != size) {
        free(d);
        return bad ? liif_error_set(err, LIIF_ERR_IO, "%s: read failed: %s", path, strerror(e))
                   : liif_error_set(err, LIIF_ERR_IO, "%s: the file shrank while it was read", path);
    }
    *data = d;
    return LIIF_OK;
}

/* A malloc'd copy of chunk `fourcc` (the first of its kind), or nothing. */
static void demux_chunk(const WebPDemuxer *dmux, const char *fourcc, unsigned char **out, size_t *n)
{
    WebPChunkIterator it;
    if (WebPDemuxGetChunk(dmux, fourcc, 1, &it)) {
        if (it.chunk.size > 0 && it.chunk.size <= LIIF_PNG_CHUNK_MAX && (*out = malloc(it.chunk.size))) {
            memcpy(*out, it.chunk.bytes, it.chunk.size);
            *n = it.chunk.size;
        }
        WebPDemuxReleaseChunkIterator(&it);
    }
}

/* The ICC profile and EXIF of an extended-format file (a simple one has neither). */
static void read_meta(const uint8_t *data, size_t size, liif_image_meta *m)
{
    WebPData wd = {data, size};
    WebPDemuxer *dmux = WebPDemux(&wd);
    if (!dmux)
        return;
    demux_chunk(dmux, "ICCP", &m->icc, &m->icc_len);
    unsigned char *exif = NULL;
    size_t n = 0;
    demux_chunk(dmux, "EXIF", &exif, &n);
    size_t skip = n >= 6 && memcmp(exif, "Exif\0\0", 6) == 0 ? 6 : 0; /* some writers keep JPEG's prefix */
    if (exif && liif_exif_check(exif + skip, n - skip)) {
        memmove(exif, exif + skip, n - skip);
        m->exif = exif;
        m->exif_len = n - skip;
    } else {
        free(exif);
    }
    WebPDemuxDelete(dmux);
}

static liif_status decode(const char *path, const uint8_t *data, size_t size, liif_png *img, liif_error *err)
{
    WebPBitstreamFeatures f;
    VP8StatusCode vs = WebPGetFeatures(data, size, &f);
    if (vs == VP8_STATUS_NOT_ENOUGH_DATA)
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: truncated WebP file", path);
    if (vs != VP8_STATUS_OK)
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: not a valid WebP file (libwebp status %d)", path, (int)vs);
    if (f.has_animation)
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: an animated WebP: save one frame as an image first", path);
    uint64_t w = (uint64_t)f.width, h = (uint64_t)f.height, c = f.has_alpha ? 4 : 3;
    if (f.width < 1 || f.height < 1 || w > LIIF_WEBP_MAX_SIDE || h > LIIF_WEBP_MAX_SIDE)
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: bad WebP size %dx%d", path, f.width, f.height);
    uint64_t need = w * h * c * sizeof(float), cap = LIIF_WEBP_MEM_BASE + (uint64_t)size * LIIF_WEBP_MEM_PER_FILE_BYTE;
    if (cap > LIIF_PNG_MEM_MAX)
        cap = LIIF_PNG_MEM_MAX;
    if (need > cap || (int64_t)(w * h) > LIIF_MAX_PIXELS)
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: a %llux%llu image cannot come from a %zu-byte file (corrupt "
                              "header or a decompression bomb)", path, (unsigned long long)w, (unsigned long long)h,
                              size);
    size_t n = (size_t)(w * h * c);
    uint8_t *px = malloc(n);
    img->px = malloc(n * sizeof(float));
    if (!px || !img->px) {
        free(px);
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory (%llux%llu image)", path,
                              (unsigned long long)w, (unsigned long long)h);
    }
    int stride = (int)(w * c);
    uint8_t *ok = c == 4 ? WebPDecodeRGBAInto(data, size, px, n, stride) : WebPDecodeRGBInto(data, size, px, n, stride);
    if (!ok) {
        free(px);
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: corrupt or truncated WebP data", path);
    }
    for (size_t i = 0; i < n; i++)
        img->px[i] = px[i] * (1.0f / 255.0f);
    free(px);
    img->w = (int)w;
    img->h = (int)h;
    img->channels = (int)c;
    img->bit_depth = 8;
    read_meta(data, size, &img->meta);
    return LIIF_OK;
}

liif_status liif_webp_read_fd(const char *path, int fd, size_t file_size, liif_png *img, liif_error *err)
{
    memset(img, 0, sizeof *img);
    uint8_t *data;
    liif_status st = slurp(path, fd, file_size, &data, err);
    if (st != LIIF_OK)
        return st;
    st = decode(path, data, file_size, img, err);
    free(data);
    if (st != LIIF_OK)
        liif_png_free(img);
    return st;
}

liif_status liif_webp_read(const char *path, liif_png *img, liif_error *err)
{
    memset(img, 0, sizeof *img);
    size_t size;
    int fd = liif_open_regular(path, &size, err);
    if (fd < 0)
        return LIIF_ERR_IO;
    return liif_webp_read_fd(path, fd, size, img, err);
}

/* ------------------------------------------------------------ writing */

struct liif_webp_writer {
    liif_outfile file;
    uint8_t *px;       /* w * h * c: the picture so far */
    int w, h, channels; /* channels: what the caller hands in (1-4) */
    int c;             /* stored: 3 (RGB) or 4 (RGBA) */
    int quality;
    int rows_done;
    int failed;        /* a step failed: the temporary file is gone and only free remains */
    unsigned char *icc, *exif; /* what goes in with the picture (copies) */
    size_t icc_len, exif_len;
};

static void wwriter_free(liif_webp_writer *wr)
{
    liif_outfile_free(&wr->file);
    free(wr->px);
    free(wr->icc);
    free(wr->exif);
    free(wr);
}

static liif_status wwriter_fail(liif_webp_writer *wr, liif_status st)
{
    wr->failed = 1;
    liif_outfile_discard(&wr->file);
    return st;
}

liif_status liif_webp_writer_open_meta(const char *path, int w, int h, int channels, int quality,
                                       const liif_image_meta *meta, unsigned *kept, liif_webp_writer **out,
                                       liif_error *err)
{
    *out = NULL;
    if (kept)
        *kept = 0;
    liif_status st = liif_outfile_check_name(path, "WebP", err);
    if (st != LIIF_OK)
        return st;
    if (channels < 1 || channels > 4)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: %d channels (1 to 4)", path, channels);
    if (quality < 1 || quality > 100)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: WebP quality %d (1 to 99 lossy, 100 lossless)", path, quality);
    if (w < 1 || h < 1 || w > LIIF_WEBP_MAX_SIDE || h > LIIF_WEBP_MAX_SIDE)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: %dx%d: a WebP holds 1 to %d pixels per side", path, w, h,
                              LIIF_WEBP_MAX_SIDE);
    liif_webp_writer *wr = calloc(1, sizeof *wr);
    if (!wr)
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory", path);
    wr->w = w;
    wr->h = h;
    wr->channels = channels;
    wr->c = channels == 2 || channels == 4 ? 4 : 3;
    wr->quality = quality;
    unsigned keep = liif_image_meta_has(meta) & (LIIF_META_ICC | LIIF_META_EXIF);
    if ((keep & LIIF_META_ICC) && meta->icc_len <= LIIF_PNG_CHUNK_MAX && (wr->icc = malloc(meta->icc_len))) {
        memcpy(wr->icc, meta->icc, meta->icc_len);
        wr->icc_len = meta->icc_len;
    } else {
        keep &= ~(unsigned)LIIF_META_ICC;
    }
    if ((keep & LIIF_META_EXIF) && (meta->exif_len > LIIF_PNG_CHUNK_MAX ||
                                    liif_exif_for_image(meta->exif, meta->exif_len, w, h, 0, &wr->exif, &wr->exif_len)))
        keep &= ~(unsigned)LIIF_META_EXIF;
    st = LIIF_OK;
    if (!(wr->px = malloc((size_t)w * h * wr->c)))
        st = liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory for a %dx%d picture", path, w, h);
    if (st == LIIF_OK)
        st = liif_outfile_open(&wr->file, path, err);
    if (st != LIIF_OK) {
        wwriter_free(wr);
        return st;
    }
    if (kept)
        *kept = keep;
    *out = wr;
    return LIIF_OK;
}

liif_status liif_webp_writer_rows(liif_webp_writer *wr, const float *rows, int n_rows, size_t stride,
                                  liif_error *err)
{
    if (!wr)
        return liif_error_set(err, LIIF_ERR_ARG, "WebP output: no writer");
    if (wr->failed)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: writing already failed", wr->file.path);
    liif_status st = liif_outfile_check_rows(wr->file.path, wr->rows_done, wr->h, n_rows, rows, stride, wr->w,
                                             wr->channels, err);
    if (st != LIIF_OK)
        return wwriter_fail(wr, st);
    int k = wr->channels, gray = k <= 2;
    for (int y = 0; y < n_rows; y++) {
        const float *src = rows + (size_t)y * stride;
        uint8_t *dst = wr->px + (size_t)(wr->rows_done + y) * wr->w * wr->c;
        for (int x = 0; x < wr->w; x++, src += k, dst += wr->c) {
            for (int i = 0; i < 3; i++)
                dst[i] = (uint8_t)liif_quantize(src[gray ? 0 : i], 255);
            if (wr->c == 4)
                dst[3] = (uint8_t)liif_quantize(src[k - 1], 255);
        }
    }
    wr->rows_done += n_rows;
    return LIIF_OK;
}

/* libwebp's encoder error as a status and message. */
static liif_status encode_error(const liif_webp_writer *wr, WebPEncodingError e, liif_error *err)
{
    if (e == VP8_ENC_ERROR_OUT_OF_MEMORY || e == VP8_ENC_ERROR_BITSTREAM_OUT_OF_MEMORY)
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory encoding the WebP picture", wr->file.path);
    return liif_error_set(err, LIIF_ERR_IO, "%s: the WebP encoder failed (libwebp error %d)", wr->file.path, (int)e);
}

/* The picture encoded into *mw. */
static liif_status encode(liif_webp_writer *wr, WebPMemoryWriter *mw, liif_error *err)
{
    WebPConfig config;
    WebPPicture pic;
    if (!WebPConfigInit(&config) || !WebPPictureInit(&pic))
        return liif_error_set(err, LIIF_ERR_IO, "%s: libwebp version mismatch", wr->file.path);
    if (wr->quality == 100) {
        config.lossless = 1;
        config.quality = 75; /* for lossless, the effort: libwebp's default */
    } else {
        config.quality = (float)wr->quality;
    }
    config.use_sharp_yuv = !config.lossless; /* sharper colour edges in 4:2:0, which an upscale is full of */
    pic.use_argb = config.lossless;
    pic.width = wr->w;
    pic.height = wr->h;
    pic.writer = WebPMemoryWrite;
    pic.custom_ptr = mw;
    int imported = wr->c == 4 ? WebPPictureImportRGBA(&pic, wr->px, wr->w * 4)
                              : WebPPictureImportRGB(&pic, wr->px, wr->w * 3);
    free(wr->px); /* the picture holds its own copy */
    wr->px = NULL;
    if (!imported) {
        WebPPictureFree(&pic);
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory for the WebP picture", wr->file.path);
    }
    int ok = WebPEncode(&config, &pic);
    WebPEncodingError e = pic.error_code;
    WebPPictureFree(&pic);
    return ok ? LIIF_OK : encode_error(wr, e, err);
}

/* The encoded picture with its ICCP and EXIF chunks (libwebp's muxer makes the extended format) into the file. */
static liif_status put_file(liif_webp_writer *wr, const WebPMemoryWriter *mw, liif_error *err)
{
    WebPData image = {mw->mem, mw->size}, whole = {NULL, 0};
    WebPMux *mux = NULL;
    if (wr->icc || wr->exif) {
        WebPData icc = {wr->icc, wr->icc_len}, exif = {wr->exif, wr->exif_len};
        int ok = (mux = WebPMuxNew()) && WebPMuxSetImage(mux, &image, 0) == WEBP_MUX_OK &&
                 (!wr->icc || WebPMuxSetChunk(mux, "ICCP", &icc, 0) == WEBP_MUX_OK) &&
                 (!wr->exif || WebPMuxSetChunk(mux, "EXIF", &exif, 0) == WEBP_MUX_OK) &&
                 WebPMuxAssemble(mux, &whole) == WEBP_MUX_OK;
        WebPMuxDelete(mux);
        if (!ok) {
            WebPDataClear(&whole);
            return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory adding the metadata", wr->file.path);
        }
        image = whole;
    }
    liif_status st = LIIF_OK;
    if (fwrite(image.bytes, 1, image.size, wr->file.fp) != image.size)
        st = liif_outfile_fail(&wr->file, "write failed", errno ? errno : EIO, err);
    WebPDataClear(&whole);
    return st;
}

liif_status liif_webp_writer_finish(liif_webp_writer *wr, liif_error *err)
{
    if (!wr)
        return liif_error_set(err, LIIF_ERR_ARG, "WebP output: no writer");
    liif_status st;
    WebPMemoryWriter mw;
    WebPMemoryWriterInit(&mw);
    if (wr->failed)
        st = liif_error_set(err, LIIF_ERR_ARG, "%s: writing already failed", wr->file.path);
    else if (wr->rows_done != wr->h)
        st = wwriter_fail(wr, liif_error_set(err, LIIF_ERR_ARG, "%s: only %d of %d rows were written", wr->file.path,
                                             wr->rows_done, wr->h));
    else if ((st = encode(wr, &mw, err)) != LIIF_OK || (st = put_file(wr, &mw, err)) != LIIF_OK)
        wwriter_fail(wr, st);
    else
        st = liif_outfile_commit(&wr->file, err);
    WebPMemoryWriterClear(&mw);
    wwriter_free(wr);
    return st;
}

void liif_webp_writer_abort(liif_webp_writer *wr)
{
    if (wr)
        wwriter_free(wr);
}
