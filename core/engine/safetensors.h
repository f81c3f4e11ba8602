/* safetensors.h: strict, mmap-based reader and atomic writer for safetensors files. */
#ifndef LIIF_SAFETENSORS_H
#define LIIF_SAFETENSORS_H

#include "liif.h"

typedef enum {
    LIIF_DT_F64, LIIF_DT_F32, LIIF_DT_F16, LIIF_DT_BF16,
    LIIF_DT_I64, LIIF_DT_I32, LIIF_DT_I16, LIIF_DT_I8, LIIF_DT_U8, LIIF_DT_BOOL,
} liif_dtype;

enum { LIIF_ST_MAX_DIMS = 8 };

typedef struct {
    const char *name;       /* key, NUL-terminated, owned by the file */
    liif_dtype dtype;
    int ndim;
    int64_t shape[LIIF_ST_MAX_DIMS];
    int64_t numel;          /* product of shape (1 for a scalar) */
    const void *data;       /* points into the mapping; may be unaligned */
    size_t nbytes;          /* numel * dtype size, equal to end - begin in the file */
} liif_st_tensor;

typedef struct liif_st_file liif_st_file;

/* Map and validate a file: 8-byte little-endian header length N with 2 <= N and
 * 8 + N <= file size; the header is one JSON object (strict parser, UTF-8, nesting
 * limited); each entry has a known dtype, a shape of non-negative ints, and
 * data_offsets [begin, end] with begin <= end, end <= file size - 8 - N,
 * end - begin == numel * dtype size; no two tensors overlap; names are unique.
 * "__metadata__" must map strings to strings. Every failure names the file (and
 * the tensor where there is one). */
liif_status liif_st_open(const char *path, liif_st_file **out, liif_error *err);
void liif_st_close(liif_st_file *f);

const char *liif_st_path(const liif_st_file *f);
int liif_st_count(const liif_st_file *f);
const liif_st_tensor *liif_st_at(const liif_st_file *f, int i);       /* in file order */
const liif_st_tensor *liif_st_find(const liif_st_file *f, const char *name); /* NULL if absent */
/* Value of a __metadata__ key, or NULL. */
const char *liif_st_meta(const liif_st_file *f, const char *key);

size_t liif_dtype_size(liif_dtype t);
const char *liif_dtype_name(liif_dtype t);

/* Copy tensor `name` into dst as float32, converting F16/BF16/F64 exactly as IEEE
 * rounding does. Fails with LIIF_ERR_MODEL (message names file and tensor) when the
 * tensor is missing, its dtype is not a float type, or its shape differs from
 * shape[0..ndim). */
liif_status liif_st_read_f32(const liif_st_file *f, const char *name, int ndim,
                             const int64_t *shape, float *dst, liif_error *err);

/* ---- writing ---- */
typedef struct {
    const char *name;
    liif_dtype dtype;
    int ndim;
    int64_t shape[LIIF_ST_MAX_DIMS];
    const void *data;       /* numel * dtype size bytes, little-endian */
} liif_st_entry;

/* Write entries (in the given order, back to back) and metadata (n_meta key/value
 * pairs: meta[2i] = key, meta[2i+1] = value) to path atomically: a temporary file in
 * the same folder, fsync, rename. On any failure the temporary file is removed and
 * an existing file at path is left untouched. */
liif_status liif_st_write(const char *path, const liif_st_entry *entries, int n,
                          const char *const *meta, int n_meta, liif_error *err);

/* float <-> half helpers (round to nearest even). */
float liif_f16_to_f32(uint16_t h);
uint16_t liif_f32_to_f16(float f);
float liif_bf16_to_f32(uint16_t h);
uint16_t liif_f32_to_bf16(float f);

#endif
