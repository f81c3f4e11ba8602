/* plugin/liif-render.h: the plug-in's work: parameters, model lookup, layer pixels in and out, the upscale itself. */
#ifndef LIIF_RENDER_H
#define LIIF_RENDER_H

#include <libgimp/gimp.h>

#include "liif.h"

#define LIIF_PLUG_IN_PROC   "plug-in-liif-upscale"
#define LIIF_PLUG_IN_BINARY "liif-upscale"
#define LIIF_PLUG_IN_ROLE   "liif-upscale"
#define LIIF_HELP_DOMAIN    "liif-upscale"

/* The plug-in's help folder (help/LANG/index.html beside the binary); help_page_uri: its page's file:// URI. */
gchar   *liif_help_dir           (void);
gchar   *liif_help_page_uri      (void);

/* Largest scale factor the procedure accepts per axis; the engine has its own size limits. */
#define LIIF_GIMP_MAX_SCALE 64.0

#define LIIF_GIMP_ERROR (liif_gimp_error_quark ())
GQuark liif_gimp_error_quark (void);

/* The procedure's arguments, read once from the config. */
typedef struct
{
  gdouble           scale_x, scale_y; /* used when width and height are both 0 */
  gint              width, height;    /* exact output size of the image; 0 = from the scale (see README) */
  gdouble           detail;           /* LIIF-GAN detail in [0,1] */
  gchar            *model;            /* installed model name, or a path to a .safetensors file; "" = first installed */
  liif_backend_kind device;
  liif_precision    precision;        /* of the final render (previews always use the fastest) */
  gboolean          ensemble;         /* the final render as the self-ensemble (previews: never) */
  gboolean          deblock;          /* JPEG artifacts removed first (liif_pixels_deblocked) */
  gchar            *jpeg_file;        /* the JPEG the layers were decoded from (scripts); NULL: the image's file */
} LiifParams;

void     liif_params_from_config (GimpProcedureConfig *config, LiifParams *params);
void     liif_params_clear       (LiifParams *params);

/* Output size of an in_w x in_h image for params (exact size, one side with the aspect kept, or scale). */
gboolean liif_params_output_size (const LiifParams *params, gint in_w, gint in_h,
                                  gint *out_w, gint *out_h, GError **error);

/* Size and offsets a layer gets when its image (img_w x img_h) is scaled to out_w x out_h,
 * computed as GIMP's own item scaling does, so the LIIF result lines up with the other layers. */
void     liif_layer_geometry     (gint img_w, gint img_h, gint out_w, gint out_h,
                                  gint off_x, gint off_y, gint layer_w, gint layer_h,
                                  gint *new_off_x, gint *new_off_y, gint *new_w, gint *new_h);

/* Model folders: the user's (in the GIMP profile) and the installed one. */
gchar   *liif_user_model_dir     (void);
/* Names of the models found (user folder first), sorted; free with g_strfreev. */
gchar  **liif_model_list         (void);
/* The file a model name or path stands for; NULL and an error when there is none. */
gchar   *liif_model_resolve      (const gchar *model, GError **error);

/* The first "# " heading of the model card beside a model file (NAME.md; for a folder model
 * also its README.md): a one-line description; NULL when there is no card. */
gchar   *liif_model_card_title   (const gchar *file);
/* Decoders of a model name or path (1: LIIF, 2: LIIF-GAN with a detail control); 0 when it cannot be loaded.
 * default_detail (may be NULL): the detail the model is meant to be used at (liif_model_default_detail; 1 when
 * the file says none or cannot be loaded). */
gint     liif_model_decoders     (const gchar *model, gdouble *default_detail);

/* A loaded model and an engine on the chosen device. */
typedef struct
{
  gchar       *path;
  liif_model  *model;
  liif_engine *engine;
  gchar        note[256]; /* why the engine fell back to another device, or "" */
  liif_precision precision; /* of its renders: FAST when opened (a preview's speed), the final render sets
                             * the user's choice (LIIF_PRECISION_FAST: invisible at 8 bits, see the README) */
  gboolean       ensemble;  /* its renders as the self-ensemble: FALSE when opened, the final render sets it */
} LiifSession;

LiifSession *liif_session_open   (const gchar *model, liif_backend_kind device, GError **error);
void         liif_session_free   (LiifSession *session);

/* One layer's pixels as the engine reads them. */
typedef struct
{
  gint     w, h;
  gboolean gray;      /* write back luma (Rec.601) instead of RGB */
  gboolean has_alpha;
  float   *rgb;       /* (h, w, 3), gray replicated to RGB */
  float   *alpha;     /* (h, w, 1); NULL without alpha */
  guint64  id;        /* unique per read: the engine's reuse_key (the pixels never change) */
} LiifPixels;

LiifPixels *liif_pixels_read     (GimpDrawable *drawable, GError **error);
void        liif_pixels_free     (LiifPixels *pixels);
/* The local file of the JPEG the image was opened from (imported, else its file, when that is a JPEG); NULL when
 * there is none. */
gchar      *liif_image_jpeg_file (GimpImage *image);
/* A copy of the layer's pixels with the JPEG's blocks and ringing removed (liif_jpeg_deblock_pixels), when they
 * are still the pixels of that file, upright or as stored; otherwise NULL and *note says why (translated). Any
 * thread. */
LiifPixels *liif_pixels_deblocked (const LiifPixels *pixels, const gchar *jpeg, gchar **note);
/* Channels per output pixel: 1 or 2 for gray (Y', alpha), 3 or 4 for RGB. */
gint        liif_pixels_out_channels (const LiifPixels *pixels);

/* The one computation shared by the preview and the final render: region r of the
 * out_w x out_h result, written to out as (r.h, r.w, liif_pixels_out_channels) floats. */
gboolean liif_render_region      (LiifSession *session, const LiifPixels *pixels,
                                  const liif_region *r, gdouble detail,
                                  liif_progress_fn progress, void *progress_user,
                                  float *out, GError **error);

/* The two halves of liif_render_region. liif_render_rgb: the model's RGB of region r as (r.h, r.w, 3)
 * floats; unclamped: as the model computes it (it may leave [0,1] a little), which is linear in the
 * detail, so two renders at different details give any other with liif_blend_detail (the preview's
 * instant detail slider). liif_render_finish: clamps rgb in place and writes the layer's channels
 * (luma for gray layers, the alpha resampled) to out, which may be rgb for RGB layers. */
gboolean liif_render_rgb         (LiifSession *session, const LiifPixels *pixels,
                                  const liif_region *r, gdouble detail, gboolean unclamped,
                                  liif_progress_fn progress, void *progress_user,
                                  float *rgb, GError **error);
gboolean liif_render_finish      (const LiifPixels *pixels, const liif_region *r, float *rgb,
                                  float *out, GError **error);
/* out = a + (detail - detail_a) / (detail_b - detail_a) * (b - a), n floats: the unclamped render at
 * `detail` from unclamped renders at detail_a != detail_b (to float rounding). */
void     liif_blend_detail       (const float *a, gdouble detail_a, const float *b, gdouble detail_b,
                                  gdouble detail, gsize n, float *out);

/* The whole operation: upscale the layers with LIIF and scale the image around them,
 * as one undo step. Nothing in the image changes unless everything was computed. */
gboolean liif_upscale_image      (GimpImage *image, GimpDrawable **drawables,
                                  const LiifParams *params, GError **error);

#endif
