/* plugin/liif-render.c: the plug-in's work: model lookup, layer pixels through GEGL, LIIF upscale, image scaling. */
#include "liif-config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <libgimp/gimp.h>

#include "jpeg_image.h"
#include "liif-intl.h"
#include "liif-render.h"

/* Output rows are computed in stripes of at most this many bytes of floats, so a large
 * result never needs one huge allocation; the stripes go to a GEGL buffer (which swaps). */
#define LIIF_STRIPE_BYTES ((gsize) 256 << 20)

G_DEFINE_QUARK (liif-gimp-error-quark, liif_gimp_error)

/* ------------------------------------------------------------- parameters */

void
liif_params_from_config (GimpProcedureConfig *config, LiifParams *params)
{
  GFile *file = NULL;

  g_object_get (config,
                "scale-x", &params->scale_x,
                "scale-y", &params->scale_y,
                "width",   &params->width,
                "height",  &params->height,
                "detail",  &params->detail,
                "model",   &params->model,
                "ensemble", &params->ensemble,
                "deblock", &params->deblock,
                NULL);
  g_object_get (config, "jpeg-file", &file, NULL);
  params->jpeg_file = file != NULL ? g_file_get_path (file) : NULL;
  g_clear_object (&file);
  params->device = (liif_backend_kind) gimp_procedure_config_get_choice_id (config, "device");
  params->precision = (liif_precision) gimp_procedure_config_get_choice_id (config, "precision");
  if (params->model == NULL)
    params->model = g_strdup ("");
}

void
liif_params_clear (LiifParams *params)
{
  g_clear_pointer (&params->model, g_free);
  g_clear_pointer (&params->jpeg_file, g_free);
}

static gint
round_half_away (gdouble v)
{
  return (gint) (v < 0.0 ? v - 0.5 : v + 0.5);
}

gboolean
liif_params_output_size (const LiifParams *params, gint in_w, gint in_h,
                         gint *out_w, gint *out_h, GError **error)
{
  liif_error e = { { 0 } };
  gint       w, h;

  if (params->width > 0 && params->height > 0)
    {
      w = params->width;
      h = params->height;
    }
  else if (params->width > 0)
    {
      w = params->width;
      h = MAX (1, round_half_away ((gdouble) params->width * in_h / in_w));
    }
  else if (params->height > 0)
    {
      h = params->height;
      w = MAX (1, round_half_away ((gdouble) params->height * in_w / in_h));
    }
  else
    {
      if (! (params->scale_x > 0.0 && params->scale_y > 0.0 &&
             params->scale_x <= LIIF_GIMP_MAX_SCALE && params->scale_y <= LIIF_GIMP_MAX_SCALE))
        {
          g_set_error (error, LIIF_GIMP_ERROR, LIIF_ERR_ARG,
                       _("Invalid scale %g × %g: the scale factors must be greater than 0 and at most %g."),
                       params->scale_x, params->scale_y, LIIF_GIMP_MAX_SCALE);
          return FALSE;
        }
      if (liif_size_for_scale (in_w, in_h, params->scale_x, params->scale_y, &w, &h, &e) != LIIF_OK)
        {
          g_set_error (error, LIIF_GIMP_ERROR, LIIF_ERR_ARG,
                       _("Invalid scale %g × %g: %s"), params->scale_x, params->scale_y, e.msg);
          return FALSE;
        }
    }
  if (liif_check_size (in_w, in_h, w, h, &e) != LIIF_OK)
    {
      g_set_error (error, LIIF_GIMP_ERROR, LIIF_ERR_ARG,
                   _("The output size %d × %d is not possible: %s"), w, h, e.msg);
      return FALSE;
    }
  *out_w = w;
  *out_h = h;
  return TRUE;
}

void
liif_layer_geometry (gint img_w, gint img_h, gint out_w, gint out_h,
                     gint off_x, gint off_y, gint layer_w, gint layer_h,
                     gint *new_off_x, gint *new_off_y, gint *new_w, gint *new_h)
{
  gdouble fx = (gdouble) out_w / img_w;
  gdouble fy = (gdouble) out_h / img_h;

  /* Same arithmetic as GIMP's item scaling: round the two edges, not the size. */
  *new_off_x = round_half_away (fx * off_x);
  *new_off_y = round_half_away (fy * off_y);
  *new_w     = MAX (1, round_half_away (fx * (off_x + layer_w)) - *new_off_x);
  *new_h     = MAX (1, round_half_away (fy * (off_y + layer_h)) - *new_off_y);
}

/* ------------------------------------------------------------------- help */

gchar *
liif_help_dir (void)
{
  gchar *bin = g_path_get_dirname (gimp_get_progname ());
  gchar *dir = g_build_filename (bin, "help", NULL);

  g_free (bin);
  return dir;
}

gchar *
liif_help_page_uri (void)
{
  gchar *dir  = liif_help_dir ();
  gchar *page = g_build_filename (dir, "en", "index.html", NULL);
  gchar *uri  = g_filename_to_uri (page, NULL, NULL);

  g_free (page);
  g_free (dir);
  return uri;
}

/* ----------------------------------------------------------------- models */

gchar *
liif_user_model_dir (void)
{
  return g_build_filename (gimp_directory (), "liif", "models", NULL);
}

/* Model file of a folder entry: NAME.safetensors, or NAME/weights.safetensors. */
static gchar *
model_entry_file (const gchar *dir, const gchar *entry, gchar **name)
{
  gchar *path = g_build_filename (dir, entry, NULL);

  if (g_str_has_suffix (entry, ".safetensors") && g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      *name = g_strndup (entry, strlen (entry) - strlen (".safetensors"));
      return path;
    }
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      gchar *weights = g_build_filename (path, "weights.safetensors", NULL);

      g_free (path);
      if (g_file_test (weights, G_FILE_TEST_IS_REGULAR))
        {
          *name = g_strdup (entry);
          return weights;
        }
      g_free (weights);
      return NULL;
    }
  g_free (path);
  return NULL;
}

/* name -> file of every model found, the user's folder winning over the installed ones. */
static GHashTable *
model_table (void)
{
  GHashTable  *table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  gchar       *user  = liif_user_model_dir ();
  const gchar *dirs[] = { user, LIIF_MODEL_DIR, LIIF_SOURCE_MODEL_DIR };

  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      GDir        *dir = g_dir_open (dirs[i], 0, NULL);
      const gchar *entry;

      if (dir == NULL)
        continue;
      while ((entry = g_dir_read_name (dir)) != NULL)
        {
          gchar *name = NULL;
          gchar *file = model_entry_file (dirs[i], entry, &name);

          if (file == NULL)
            continue;
          if (g_hash_table_contains (table, name))
            {
              g_free (name);
              g_free (file);
            }
          else
            {
              g_hash_table_insert (table, name, file);
            }
        }
      g_dir_close (dir);
    }
  g_free (user);
  return table;
}

gchar **
liif_model_list (void)
{
  GHashTable *table = model_table ();
  guint       n     = 0;
  gchar     **names = (gchar **) g_hash_table_get_keys_as_array (table, &n);
  gchar     **copy  = g_new0 (gchar *, n + 1);

  qsort (names, n, sizeof (gchar *), (int (*) (const void *, const void *)) g_strcmp0);
  for (guint i = 0; i < n; i++)
    copy[i] = g_strdup (names[i]);
  g_free (names);
  g_hash_table_unref (table);
  return copy;
}

gchar *
liif_model_resolve (const gchar *model, GError **error)
{
  GHashTable *table;
  gchar      *file = NULL;

  if (model != NULL && (strchr (model, G_DIR_SEPARATOR) != NULL || g_str_has_suffix (model, ".safetensors")))
    {
      if (! g_file_test (model, G_FILE_TEST_IS_REGULAR))
        {
          g_set_error (error, LIIF_GIMP_ERROR, LIIF_ERR_IO,
                       _("The model file “%s” does not exist."), model);
          return NULL;
        }
      return g_strdup (model);
    }

  table = model_table ();
  if (model == NULL || model[0] == '\0')
    {
      gchar **names = liif_model_list ();

      /* the shipped default model, else the first by name */
      file = g_strdup (g_hash_table_lookup (table, "default"));
      if (file == NULL && names[0] != NULL)
        file = g_strdup (g_hash_table_lookup (table, names[0]));
      g_strfreev (names);
      if (file == NULL)
        {
          gchar *user = liif_user_model_dir ();

          g_set_error (error, LIIF_GIMP_ERROR, LIIF_ERR_IO,
                       _("No LIIF model is installed. Put a .safetensors model into “%s”."), user);
          g_free (user);
        }
    }
  else
    {
      file = g_strdup (g_hash_table_lookup (table, model));
      if (file == NULL)
        {
          gchar *user = liif_user_model_dir ();

          g_set_error (error, LIIF_GIMP_ERROR, LIIF_ERR_IO,
                       _("No model named “%s” was found in “%s” or “%s”."),
                       model, user, LIIF_MODEL_DIR);
          g_free (user);
        }
    }
  g_hash_table_unref (table);
  return file;
}

/* Candidates for a model's card: NAME.md beside NAME.safetensors; for NAME/weights.safetensors
 * also NAME/README.md and NAME.md beside the folder. */
gchar *
liif_model_card_title (const gchar *file)
{
  gchar *dir   = g_path_get_dirname (file);
  gchar *stem  = g_strndup (file, strlen (file) - (g_str_has_suffix (file, ".safetensors") ? 12 : 0));
  gchar *cands[] = { g_strconcat (stem, ".md", NULL), g_build_filename (dir, "README.md", NULL),
                     g_strconcat (dir, ".md", NULL) };
  gchar *title = NULL;
  guint  n     = g_str_has_suffix (file, G_DIR_SEPARATOR_S "weights.safetensors") ? 3 : 1;

  for (guint i = 0; i < n && title == NULL; i++)
    {
      gchar  *text = NULL;
      gchar **lines;

      if (! g_file_get_contents (cands[i], &text, NULL, NULL))
        continue;
      lines = g_strsplit (text, "\n", 0);
      for (gint j = 0; lines[j] != NULL && title == NULL; j++)
        if (g_str_has_prefix (lines[j], "# "))
          title = g_strstrip (g_strdup (lines[j] + 2));
      g_strfreev (lines);
      g_free (text);
    }
  for (guint i = 0; i < G_N_ELEMENTS (cands); i++)
    g_free (cands[i]);
  g_free (stem);
  g_free (dir);
  return title;
}

gint
liif_model_decoders (const gchar *model, gdouble *default_detail)
{
  gchar      *file = liif_model_resolve (model, NULL);
  liif_model *m    = NULL;
  gint        n    = 0;

  if (default_detail != NULL)
    *default_detail = 1.0;
  if (file != NULL && liif_model_load (file, &m, NULL) == LIIF_OK)
    {
      n = liif_model_config (m)->n_decoders;
      if (default_detail != NULL)
        *default_detail = liif_model_default_detail (m);
      liif_model_free (m);
    }
  g_free (file);
  return n;
}

LiifSession *
liif_session_open (const gchar *model, liif_backend_kind device, GError **error)
{
  LiifSession *s = g_new0 (LiifSession, 1);
  liif_error   e = { { 0 } };
  liif_status  st;

  s->precision = LIIF_PRECISION_FAST;
  s->path = liif_model_resolve (model, error);
  if (s->path == NULL)
    goto fail;

  st = liif_model_load (s->path, &s->model, &e);
  if (st != LIIF_OK)
    {
      g_set_error (error, LIIF_GIMP_ERROR, st,
                   _("Could not load the model “%s”: %s"), s->path, e.msg);
      goto fail;
    }
  st = liif_engine_new (s->model, device, &s->engine, s->note, sizeof s->note, &e);
  if (st != LIIF_OK)
    {
      g_set_error (error, LIIF_GIMP_ERROR, st,
                   _("Could not start the engine on the chosen device: %s"), e.msg);
      goto fail;
    }
  return s;

fail:
  liif_session_free (s);
  return NULL;
}

void
liif_session_free (LiifSession *session)
{
  if (session == NULL)
    return;
  if (session->engine != NULL)
    liif_engine_free (session->engine);
  if (session->model != NULL)
    liif_model_free (session->model);
  g_free (session->path);
  g_free (session);
}

/* ----------------------------------------------------------------- pixels */

/* Float formats in the drawable's own color space, so nothing is converted between spaces. */
static const Babl *
float_format (GimpDrawable *drawable, gboolean gray, gboolean alpha)
{
  const gchar *name = gray ? (alpha ? "Y'A float" : "Y' float")
                           : (alpha ? "R'G'B'A float" : "R'G'B' float");

  return babl_format_with_space (name, gimp_drawable_get_format (drawable));
}

/* A new reuse key: pixels are read on the main thread, deblocked on the preview's worker. */
static guint64
next_pixels_id (void)
{
  static gint last_id = 0;

  return (guint64) g_atomic_int_add (&last_id, 1) + 1;
}

LiifPixels *
liif_pixels_read (GimpDrawable *drawable, GError **error)
{
  LiifPixels *px = g_new0 (LiifPixels, 1);
  GeglBuffer *buffer;
  gint        ch;
  gsize       n;
  float      *raw;

  px->id        = next_pixels_id ();
  px->w         = gimp_drawable_get_width (drawable);
  px->h         = gimp_drawable_get_height (drawable);
  px->gray      = gimp_drawable_is_gray (drawable);
  px->has_alpha = gimp_drawable_has_alpha (drawable);
  ch            = (px->gray ? 1 : 3) + (px->has_alpha ? 1 : 0);
  n             = (gsize) px->w * (gsize) px->h;

  raw     = g_try_new (float, n * ch);
  px->rgb = g_try_new (float, n * 3);
  if (px->has_alpha)
    px->alpha = g_try_new (float, n);
  if (raw == NULL || px->rgb == NULL || (px->has_alpha && px->alpha == NULL))
    {
      g_set_error (error, LIIF_GIMP_ERROR, LIIF_ERR_NOMEM,
                   _("Not enough memory to read a %d × %d layer."), px->w, px->h);
      g_free (raw);
      liif_pixels_free (px);
      return NULL;
    }

  buffer = gimp_drawable_get_buffer (drawable);
  gegl_buffer_get (buffer, GEGL_RECTANGLE (0, 0, px->w, px->h), 1.0,
                   float_format (drawable, px->gray, px->has_alpha),
                   raw, GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref (buffer);

  /* raw is (h, w, ch): split into rgb (h, w, 3), gray replicated, and alpha (h, w). */
  for (gsize i = 0; i < n; i++)
    {
      const float *p = raw + i * ch;

      if (px->gray)
        px->rgb[3 * i] = px->rgb[3 * i + 1] = px->rgb[3 * i + 2] = p[0];
      else
        memcpy (px->rgb + 3 * i, p, 3 * sizeof (float));
      if (px->has_alpha)
        px->alpha[i] = p[ch - 1];
    }
  g_free (raw);
  return px;
}

/* ------------------------------------------------------------ JPEG deblocking */

static gboolean
is_jpeg_file (const gchar *path)
{
  FILE  *f = fopen (path, "rb");
  guchar magic[3] = { 0 };
  gsize  n = 0;

  if (f != NULL)
    {
      n = fread (magic, 1, sizeof magic, f);
      fclose (f);
    }
  return liif_jpeg_magic (magic, n);
}

gchar *
liif_image_jpeg_file (GimpImage *image)
{
  GFile *files[2] = { gimp_image_get_imported_file (image), gimp_image_get_file (image) };
  gchar *path = NULL;

  for (gint i = 0; i < 2; i++)
    {
      if (path == NULL && files[i] != NULL)
        {
          path = g_file_get_path (files[i]);
          if (path != NULL && ! is_jpeg_file (path))
            g_clear_pointer (&path, g_free);
        }
      g_clear_object (&files[i]);
    }
  return path;
}

LiifPixels *
liif_pixels_deblocked (const LiifPixels *px, const gchar *jpeg, gchar **note)
{
  gsize           n   = (gsize) px->w * (gsize) px->h;
  LiifPixels     *out = g_new0 (LiifPixels, 1);
  liif_png        img = { 0 };
  liif_jpeg_match match = LIIF_JPEG_NOT_THE_FILE;
  liif_error      err = { 0 };
  liif_status     st;
  gchar          *name = g_filename_display_basename (jpeg);

  *out       = *px;
  out->id    = next_pixels_id ();
  out->rgb   = g_try_new (float, n * 3);
  out->alpha = px->alpha != NULL ? g_try_new (float, n) : NULL;
  img.w = px->w, img.h = px->h, img.channels = px->gray ? 1 : 3, img.bit_depth = 8;
  img.px = px->gray ? g_try_new (float, n) : out->rgb;
  if (out->rgb == NULL || (px->alpha != NULL && out->alpha == NULL) || img.px == NULL)
    {
      st = liif_error_set (&err, LIIF_ERR_NOMEM, "%s", _("not enough memory"));
    }
  else
    {
      if (px->alpha != NULL)
        memcpy (out->alpha, px->alpha, n * sizeof (float));
      if (px->gray) /* one channel of the replicated three */
        for (gsize i = 0; i < n; i++)
          img.px[i] = px->rgb[3 * i];
      else
        memcpy (out->rgb, px->rgb, n * 3 * sizeof (float));
      st = liif_jpeg_deblock_pixels (jpeg, &img, 0, &match, &err);
    }
  if (st != LIIF_OK)
    *note = g_strdup_printf (_("JPEG artifacts were not removed: %s"), err.msg);
  else if (match == LIIF_JPEG_NOT_THE_FILE)
    *note = g_strdup_printf (_("JPEG artifacts were not removed: the layer no longer holds the pixels of %s "
                               "(edited, or changed in size or mode)."), name);
  else if (match == LIIF_JPEG_LAYOUT)
    *note = g_strdup_printf (_("JPEG artifacts were not removed: %s stores its colours in a way deblocking does "
                               "not take (RGB, or unusual chroma sampling)."), name);
  else
    *note = NULL;
  if (*note == NULL && px->gray)
    for (gsize i = 0; i < n; i++)
      out->rgb[3 * i] = out->rgb[3 * i + 1] = out->rgb[3 * i + 2] = img.px[i];
  if (px->gray)
    g_free (img.px);
  g_free (name);
  if (*note != NULL)
    g_clear_pointer (&out, liif_pixels_free);
  return out;
}

void
liif_pixels_free (LiifPixels *pixels)
{
  if (pixels == NULL)
    return;
  g_free (pixels->rgb);
  g_free (pixels->alpha);
  g_free (pixels);
}

gint
liif_pixels_out_channels (const LiifPixels *pixels)
{
  return (pixels->gray ? 1 : 3) + (pixels->has_alpha ? 1 : 0);
}

gboolean
liif_render_rgb (LiifSession *session, const LiifPixels *px, const liif_region *r, gdouble detail,
                 gboolean unclamped, liif_progress_fn progress, void *progress_user, float *rgb,
                 GError **error)
{
  liif_image   in = { px->rgb, px->w, px->h, (size_t) px->w * 3 };
  liif_options opt;
  liif_error   e  = { { 0 } };
  liif_status  st;

  liif_options_init (&opt);
  opt.detail        = CLAMP (detail, 0.0, 1.0);
  opt.progress      = progress;
  opt.progress_user = progress_user;
  opt.reuse_key     = px->id; /* preview: a detail or scale change re-runs only the decoder */
  opt.precision     = session->precision;
  opt.unclamped     = unclamped;
  opt.ensemble      = session->ensemble;

  st = liif_upscale_region (session->engine, &in, r, rgb, (size_t) r->w * 3, &opt, &e);
  if (st == LIIF_ERR_CANCELLED)
    {
      g_set_error_literal (error, LIIF_GIMP_ERROR, st, _("Cancelled."));
      return FALSE;
    }
  if (st != LIIF_OK)
    {
      g_set_error (error, LIIF_GIMP_ERROR, st, _("Upscaling failed: %s"), e.msg);
      return FALSE;
    }
  return TRUE;
}

void
liif_blend_detail (const float *a, gdouble detail_a, const float *b, gdouble detail_b, gdouble detail,
                   gsize n, float *out)
{
  float f = (float) ((detail - detail_a) / (detail_b - detail_a));

  for (gsize i = 0; i < n; i++)
    out[i] = a[i] + f * (b[i] - a[i]);
}

gboolean
liif_render_finish (const LiifPixels *px, const liif_region *r, float *rgb, float *out, GError **error)
{
  gint       ch = liif_pixels_out_channels (px);
  gsize      n  = (gsize) r->w * (gsize) r->h;
  liif_error e  = { { 0 } };

  for (gsize i = 0; i < 3 * n; i++)
    rgb[i] = CLAMP (rgb[i], 0.0f, 1.0f);
  if (ch == 3)
    {
      if (out != rgb)
        memcpy (out, rgb, 3 * n * sizeof (float));
      return TRUE;
    }
  /* rgb (h, w, 3) -> out (h, w, ch): RGB as is, or Rec.601 luma for gray layers. */
  for (gsize i = 0; i < n; i++)
    {
      const float *p = rgb + 3 * i;
      float       *q = out + ch * i;

      if (px->gray)
        q[0] = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
      else
        memcpy (q, p, 3 * sizeof (float));
    }
  if (px->has_alpha &&
      liif_resample_bicubic_region (px->alpha, px->w, px->h, (size_t) px->w, 1, 0, r,
                                    out, (size_t) r->w * ch, ch, ch - 1, &e) != LIIF_OK)
    {
      g_set_error (error, LIIF_GIMP_ERROR, LIIF_ERR_ARG, _("Upscaling failed: %s"), e.msg);
      return FALSE;
    }
  return TRUE;
}

gboolean
liif_render_region (LiifSession *session, const LiifPixels *px, const liif_region *r,
                    gdouble detail, liif_progress_fn progress, void *progress_user,
                    float *out, GError **error)
{
  gint     ch  = liif_pixels_out_channels (px);
  gsize    n   = (gsize) r->w * (gsize) r->h;
  float   *rgb = out;
  gboolean ok;

  if (ch != 3)
    {
      rgb = g_try_new (float, n * 3);
      if (rgb == NULL)
        {
          g_set_error (error, LIIF_GIMP_ERROR, LIIF_ERR_NOMEM,
                       _("Not enough memory for a %d × %d region."), r->w, r->h);
          return FALSE;
        }
    }
  ok = liif_render_rgb (session, px, r, detail, FALSE, progress, progress_user, rgb, error) &&
       liif_render_finish (px, r, rgb, out, error);
  if (rgb != out)
    g_free (rgb);
  return ok;
}

/* ------------------------------------------------------------ final render */

/* One selected layer on its way through the render. */
typedef struct
{
  GimpDrawable *drawable;
  LiifPixels   *pixels;
  gint          off_x, off_y, w, h; /* where and how large it is after the image is scaled */
  GeglBuffer   *result;             /* the LIIF result, in the layer's float format */
} LayerJob;

/* Progress of the whole render (all layers), shown in GIMP's progress bar. */
typedef struct
{
  gdouble base, span, shown;
} ProgressSpan;

static int
report_progress (void *user, double fraction)
{
  ProgressSpan *p = user;
  gdouble       v = p->base + p->span * fraction;

  if (v - p->shown >= 0.005 || fraction >= 1.0)
    {
      gimp_progress_update (v);
      p->shown = v;
    }
  /* Cancel in GIMP's progress bar ends this process; nothing to poll here. */
  return 0;
}

static gboolean
render_layer (LiifSession *session, LayerJob *job, gdouble detail, ProgressSpan *progress,
              gdouble span, GError **error)
{
  LiifPixels *px       = job->pixels;
  gint        ch       = liif_pixels_out_channels (px);
  gsize       row      = (gsize) job->w * ch * sizeof (float);
  gint        stripe_h = (gint) CLAMP (LIIF_STRIPE_BYTES / row, 1, (gsize) job->h);
  const Babl *format   = float_format (job->drawable, px->gray, px->has_alpha);
  float      *stripe   = g_try_malloc (row * stripe_h);
  gboolean    ok       = TRUE;

  if (stripe == NULL)
    {
      g_set_error (error, LIIF_GIMP_ERROR, LIIF_ERR_NOMEM,
                   _("Not enough memory for a %d × %d result."), job->w, job->h);
      return FALSE;
    }
  job->result = gegl_buffer_new (GEGL_RECTANGLE (0, 0, job->w, job->h), format);

  for (gint y = 0; ok && y < job->h; y += stripe_h)
    {
      liif_region r = { job->w, job->h, 0, y, job->w, MIN (stripe_h, job->h - y) };
      gdouble     base = progress->base;

      progress->span = span * r.h / job->h;
      ok = liif_render_region (session, px, &r, detail, report_progress, progress, stripe, error);
      if (ok)
        gegl_buffer_set (job->result, GEGL_RECTANGLE (0, y, r.w, r.h), 0, format, stripe,
                         GEGL_AUTO_ROWSTRIDE);
      progress->base = base + progress->span;
    }
  g_free (stripe);
  return ok;
}

/* Replace the (already scaled) layer's pixels by the LIIF result; pushes one drawable undo. */
static void
apply_layer (LayerJob *job)
{
  GimpLayer  *layer = GIMP_LAYER (job->drawable);
  GeglBuffer *shadow;
  gint        x, y;

  if (gimp_drawable_get_width (job->drawable) != job->w ||
      gimp_drawable_get_height (job->drawable) != job->h)
    gimp_layer_scale (layer, job->w, job->h, FALSE);
  gimp_drawable_get_offsets (job->drawable, &x, &y);
  if (x != job->off_x || y != job->off_y)
    gimp_layer_set_offsets (layer, job->off_x, job->off_y);

  shadow = gimp_drawable_get_shadow_buffer (job->drawable);
  gegl_buffer_copy (job->result, NULL, GEGL_ABYSS_NONE, shadow, NULL);
  gegl_buffer_flush (shadow);
  g_object_unref (shadow);
  gimp_drawable_merge_shadow (job->drawable, TRUE);
  gimp_drawable_update (job->drawable, 0, 0, job->w, job->h);
}

static gboolean
check_drawable (GimpDrawable *drawable, GError **error)
{
  if (! GIMP_IS_LAYER (drawable) || gimp_item_is_group (GIMP_ITEM (drawable)))
    {
      g_set_error (error, LIIF_GIMP_ERROR, LIIF_ERR_ARG,
                   _("LIIF Upscale works on layers, not on “%s”."),
                   gimp_item_get_name (GIMP_ITEM (drawable)));
      return FALSE;
    }
  return TRUE;
}

gboolean
liif_upscale_image (GimpImage *image, GimpDrawable **drawables, const LiifParams *params,
                    GError **error)
{
  gint          img_w = gimp_image_get_width (image);
  gint          img_h = gimp_image_get_height (image);
  gint          n     = drawables ? (gint) gimp_core_object_array_get_length ((GObject **) drawables) : 0;
  gint          out_w, out_h;
  LayerJob     *jobs;
  LiifSession  *session = NULL;
  gchar        *jpeg = NULL; /* the JPEG the image came from, when its artifacts are to be removed */
  ProgressSpan  progress = { 0.0, 0.0, 0.0 };
  gboolean      ok = TRUE;

  if (n < 1)
    {
      g_set_error_literal (error, LIIF_GIMP_ERROR, LIIF_ERR_ARG, _("No layer is selected."));
      return FALSE;
    }
  if (! liif_params_output_size (params, img_w, img_h, &out_w, &out_h, error))
    return FALSE;

  jobs = g_new0 (LayerJob, n);
  for (gint i = 0; ok && i < n; i++)
    {
      gint x, y;

      jobs[i].drawable = drawables[i];
      ok = check_drawable (drawables[i], error);
      if (! ok)
        break;
      gimp_drawable_get_offsets (drawables[i], &x, &y);
      liif_layer_geometry (img_w, img_h, out_w, out_h, x, y,
                           gimp_drawable_get_width (drawables[i]),
                           gimp_drawable_get_height (drawables[i]),
                           &jobs[i].off_x, &jobs[i].off_y, &jobs[i].w, &jobs[i].h);
    }

  if (ok)
    {
      gimp_progress_init (_("Loading the LIIF model"));
      session = liif_session_open (params->model, params->device, error);
      ok = session != NULL;
      if (ok)
        {
          session->precision = params->precision;
          session->ensemble  = params->ensemble;
        }
    }
  if (ok && session->note[0] != '\0')
    g_message ("%s", session->note);

  /* Everything is computed before the image is touched: a cancel (GIMP ends this
   * process) or an error leaves the image exactly as it was. */
  if (ok)
    gimp_progress_set_text (_("LIIF upscaling"));
  if (ok && params->deblock)
    {
      jpeg = params->jpeg_file != NULL ? g_strdup (params->jpeg_file) : liif_image_jpeg_file (image);
      if (jpeg == NULL)
        g_message (_("JPEG artifacts were not removed: the image was not opened from a JPEG file."));
    }
  for (gint i = 0; ok && i < n; i++)
    {
      jobs[i].pixels = liif_pixels_read (jobs[i].drawable, error);
      ok = jobs[i].pixels != NULL;
      if (ok && jpeg != NULL)
        {
          LiifPixels *deblocked;
          gchar      *note = NULL;

          gimp_progress_set_text (_("Removing JPEG artifacts"));
          gimp_progress_pulse ();
          deblocked = liif_pixels_deblocked (jobs[i].pixels, jpeg, &note);
          if (deblocked != NULL)
            {
              liif_pixels_free (jobs[i].pixels);
              jobs[i].pixels = deblocked;
            }
          else
            {
              g_message ("%s: %s", gimp_item_get_name (GIMP_ITEM (jobs[i].drawable)), note);
              g_free (note);
            }
          gimp_progress_set_text (_("LIIF upscaling"));
        }
      ok = ok && render_layer (session, &jobs[i], params->detail, &progress, 1.0 / n, error);
      g_clear_pointer (&jobs[i].pixels, liif_pixels_free);
    }

  if (ok)
    {
      gimp_image_undo_group_start (image);
      if (out_w != img_w || out_h != img_h)
        gimp_image_scale (image, out_w, out_h);
      for (gint i = 0; i < n; i++)
        apply_layer (&jobs[i]);
      gimp_image_undo_group_end (image);
      gimp_progress_update (1.0);
    }
  gimp_progress_end ();

  for (gint i = 0; i < n; i++)
    {
      g_clear_object (&jobs[i].result);
      liif_pixels_free (jobs[i].pixels);
    }
  g_free (jobs);
  g_free (jpeg);
  liif_session_free (session);
  return ok;
}
