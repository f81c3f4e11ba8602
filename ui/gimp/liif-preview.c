/* ui/gimp/liif-preview.c: live before/after preview: GIMP's Cubic | the LIIF result, at output resolution. */
#include "liif-config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "liif-intl.h"
#include "liif-preview.h"

#define PREVIEW_MIN  256 /* smallest view, per side; the view grows with the dialog */
#define GRAB_PIXELS  6   /* how close to the divider a press grabs it */
#define DETAIL_BLOCK 64  /* input pixels per side of the blocks searched for detail */
#define MIN_SPREAD   0.05 /* least detail between two renders that are blended (their rounding grows as 1/spread) */

/* Why the worker renders a request. */
typedef enum
{
  RENDER_SHOW,        /* the current parameters: shown */
  RENDER_COMPLEMENT,  /* the same view at a second detail, kept so that detail changes blend at once */
  RENDER_VERIFY,      /* LIIF_PREVIEW_VERIFY: the shown blend rendered directly, compared in the log */
} RenderKind;

/* What the worker is asked to render. */
typedef struct
{
  gint              gen;
  gchar            *model;
  liif_backend_kind device;
  gdouble           detail;
  liif_region       region;
  RenderKind        kind;
  gboolean          deblock;   /* from the JPEG's deblocked pixels (when they are the file's) */
} Request;

/* What it hands back to the main loop. */
typedef struct
{
  LiifPreview *preview;    /* a reference */
  gint         gen;
  liif_region  region;
  gdouble      detail;
  RenderKind   kind;
  gint         decoders;   /* of the model: 2 = a detail control */
  float       *rgb;        /* (region.h, region.w, 3), unclamped */
  GError      *error;
  gdouble      seconds;    /* render time, model loading excluded */
  gboolean     deblock_tried; /* this request deblocked the layer (the first to ask): deblock_note says how */
  gchar       *deblock_note;  /* why the layer was not deblocked; NULL when it was */
  gdouble      deblock_seconds; /* how long deblocking took, when it was done */
} Result;

/* An unclamped model render of one rectangle of the output at one detail: the output is linear in the detail,
 * so two at different details give every other (liif_blend_detail) without running the model. */
typedef struct
{
  gchar      *model;
  liif_backend_kind device;
  liif_region region;      /* out_w, out_h: the output it belongs to */
  gdouble     detail;
  float      *rgb;         /* (region.h, region.w, 3) */
} Render;

/* Bytes of one rectangle of the output, (h, w, channels) as the preview area draws them. */
typedef struct
{
  gint    out_w, out_h;    /* the output they belong to */
  gint    x, y, w, h;
  guchar *bytes;
} Picture;

struct _LiifPreview
{
  GtkGrid        parent_instance;

  GtkWidget     *area;
  GtkAdjustment *hadj, *vadj;
  GtkWidget     *status, *spinner;

  LiifPixels    *input;      /* the layer, read once; the worker reads it too (never written) */
  gint           img_w, img_h, off_x, off_y;
  gint           out_w, out_h; /* the layer's output size for the current parameters */
  gint           view_w, view_h; /* the drawing area's size */
  gdouble        focus_x, focus_y; /* where the first view is centred, as fractions of the layer */
  gchar         *model;
  liif_backend_kind device;
  gdouble        detail;
  gboolean       have_params, placed;
  gdouble        split;      /* divider position, fraction of the view width */
  gdouble        seconds_per_pixel; /* slowest measured rate for this model and device; 0 = none yet */
  gchar         *jpeg;       /* the JPEG the image was opened from (liif_image_jpeg_file); NULL: none */
  gboolean       deblock;    /* the model's half from the deblocked layer */
  gchar         *deblock_note;  /* NULL until the worker has tried; then why the layer could not be deblocked, or "" */
  gdouble        deblock_seconds; /* what deblocking the layer took; 0 when not done */

  Picture        cubic;      /* GIMP's Cubic for the current view (left of the divider, and a stand-in) */
  Picture        liif;       /* the latest model result */
  Render         renders[2]; /* the latest unclamped render, and one of the same rectangle at another detail */
  gint           decoders;   /* of the current model (from its renders); 2: detail changes can blend */
  gdouble        seconds;    /* the time of the latest render shown */
  guint          render_timeout; /* a render after the view's size settles */

  enum { DRAG_NONE, DRAG_PAN, DRAG_SPLIT } drag;
  gint           drag_x, drag_y;
  gdouble        drag_h, drag_v;

  /* Worker: one request slot; a newer request replaces an older one, and bumping
   * `generation` makes the one being computed stop at its next progress poll. */
  GThread       *thread;
  GMutex         lock;
  GCond          cond;
  Request       *pending;
  gboolean       quit;
  gint           generation; /* atomic */
  LiifSession   *session;    /* worker-owned */
  LiifPixels    *deblocked;  /* worker-owned: the layer deblocked, made at the first request that asks */
  gboolean       deblock_tried; /* worker-owned */
  gchar         *session_model;
  liif_backend_kind session_device;
};

enum { PROP_0, PROP_SECONDS_PER_PIXEL, PROP_DEBLOCK_NOTE, N_PROPS };
static GParamSpec *props[N_PROPS];

G_DEFINE_TYPE (LiifPreview, liif_preview, GTK_TYPE_GRID)

static gboolean
logging (void)
{
  return g_getenv ("LIIF_PREVIEW_LOG") != NULL;
}

static void
request_free (Request *r)
{
  if (r == NULL)
    return;
  g_free (r->model);
  g_free (r);
}

/* --------------------------------------------------------------- worker */

typedef struct
{
  LiifPreview *preview;
  gint         gen;
} CancelCheck;

static int
stale (void *user, double fraction)
{
  CancelCheck *c = user;

  (void) fraction;
  return g_atomic_int_get (&c->preview->generation) != c->gen;
}

static gboolean
deliver (gpointer data);

/* Worker side: make sure the session matches the request (loading a model may take a while). */
static gboolean
ensure_session (LiifPreview *self, const Request *req, GError **error)
{
  if (self->session != NULL && g_strcmp0 (self->session_model, req->model) == 0 &&
      self->session_device == req->device)
    return TRUE;
  g_clear_pointer (&self->session, liif_session_free);
  g_clear_pointer (&self->session_model, g_free);
  self->session = liif_session_open (req->model, req->device, error);
  if (self->session == NULL)
    return FALSE;
  self->session_model  = g_strdup (req->model);
  self->session_device = req->device;
  return TRUE;
}

/* Worker side: the pixels a request renders from; the first that asks for deblocking makes them (once). */
static const LiifPixels *
request_pixels (LiifPreview *self, const Request *req, Result *res)
{
  if (! req->deblock || self->jpeg == NULL)
    return self->input;
  if (! self->deblock_tried)
    {
      gint64 t0 = g_get_monotonic_time ();

      self->deblock_tried = TRUE;
      res->deblock_tried  = TRUE;
      self->deblocked     = liif_pixels_deblocked (self->input, self->jpeg, &res->deblock_note);
      if (self->deblocked != NULL)
        res->deblock_seconds = (g_get_monotonic_time () - t0) / 1e6;
      if (logging ())
        fprintf (stderr, "liif-preview: deblocking the %dx%d layer: %s (%.2f s)\n", self->input->w, self->input->h,
                 self->deblocked ? "done" : res->deblock_note, (g_get_monotonic_time () - t0) / 1e6);
    }
  return self->deblocked ? self->deblocked : self->input;
}

static void
render_request (LiifPreview *self, Request *req)
{
  Result     *res    = g_new0 (Result, 1);
  CancelCheck cancel = { self, req->gen };
  gint        repeat = 1;
  const char *bench  = g_getenv ("LIIF_PREVIEW_BENCH"); /* re-render N times and log each, for bench */
  const LiifPixels *pixels = request_pixels (self, req, res);

  res->gen    = req->gen;
  res->region = req->region;
  res->detail = req->detail;
  res->kind   = req->kind;
  if (bench != NULL)
    repeat = MAX (1, atoi (bench));

  if (ensure_session (self, req, &res->error))
    {
      res->decoders = liif_model_config (self->session->model)->n_decoders;
      res->rgb      = g_try_new (float, (gsize) req->region.w * req->region.h * 3);
      for (gint i = 0; i < repeat && res->error == NULL; i++)
        {
          gint64 t0 = g_get_monotonic_time ();

          if (res->rgb == NULL ||
              ! liif_render_rgb (self->session, pixels, &req->region, req->detail, TRUE,
                                 stale, &cancel, res->rgb, &res->error))
            break;
          res->seconds = (g_get_monotonic_time () - t0) / 1e6;
          if (logging () || bench != NULL)
            fprintf (stderr, "liif-preview: %s %dx%d at (%d,%d) of %dx%d on %s: %.3f s (detail %.2f)\n",
                     req->kind == RENDER_SHOW ? "region" : req->kind == RENDER_COMPLEMENT ? "second detail" : "verify",
                     req->region.w, req->region.h, req->region.x, req->region.y,
                     req->region.out_w, req->region.out_h,
                     liif_engine_backend_name (self->session->engine), res->seconds, req->detail);
        }
      if (res->rgb == NULL && res->error == NULL)
        g_set_error_literal (&res->error, LIIF_GIMP_ERROR, LIIF_ERR_NOMEM, _("Not enough memory."));
    }
  if (res->error != NULL && logging ())
    fprintf (stderr, "liif-preview: error: %s\n", res->error->message);
  res->preview = g_object_ref (self);
  g_idle_add (deliver, res);
}

static gpointer
worker_main (gpointer data)
{
  LiifPreview *self = data;

  for (;;)
    {
      Request *req;

      g_mutex_lock (&self->lock);
      while (! self->quit && self->pending == NULL)
        g_cond_wait (&self->cond, &self->lock);
      if (self->quit)
        {
          g_mutex_unlock (&self->lock);
          break;
        }
      req = self->pending;
      self->pending = NULL;
      g_mutex_unlock (&self->lock);

      if (req->gen == g_atomic_int_get (&self->generation))
        render_request (self, req);
      request_free (req);
    }
  g_clear_pointer (&self->session, liif_session_free);
  g_clear_pointer (&self->session_model, g_free);
  g_clear_pointer (&self->deblocked, liif_pixels_free);
  return NULL;
}

/* ------------------------------------------------------------- pictures */

static GimpImageType
image_type (const LiifPixels *px)
{
  if (px->gray)
    return px->has_alpha ? GIMP_GRAYA_IMAGE : GIMP_GRAY_IMAGE;
  return px->has_alpha ? GIMP_RGBA_IMAGE : GIMP_RGB_IMAGE;
}

/* pic takes floats (h, w, ch) in [0,1] of rectangle r of the out_w x out_h output, as bytes. */
static void
picture_set (Picture *pic, const liif_region *r, const float *pixels, gint ch)
{
  gsize n = (gsize) r->w * r->h * ch;

  g_free (pic->bytes);
  pic->bytes = g_new (guchar, n);
  for (gsize i = 0; i < n; i++)
    pic->bytes[i] = (guchar) (CLAMP (pixels[i], 0.0f, 1.0f) * 255.0f + 0.5f);
  *pic = (Picture) { r->out_w, r->out_h, r->x, r->y, r->w, r->h, pic->bytes };
}

static void
picture_clear (Picture *pic)
{
  g_clear_pointer (&pic->bytes, g_free);
  pic->w = pic->h = 0;
}

/* pic takes the unclamped model RGB of rectangle r (modified: clamped), in the layer's channels. */
static gboolean
picture_from_rgb (LiifPreview *self, Picture *pic, const liif_region *r, float *rgb)
{
  gint   ch  = liif_pixels_out_channels (self->input);
  float *out = ch == 3 ? rgb : g_try_new (float, (gsize) r->w * r->h * ch);
  gboolean ok = out != NULL && liif_render_finish (self->input, r, rgb, out, NULL);

  if (ok)
    picture_set (pic, r, out, ch);
  if (out != rgb)
    g_free (out);
  return ok;
}

static void
render_clear (Render *r)
{
  g_clear_pointer (&r->rgb, g_free);
  g_clear_pointer (&r->model, g_free);
}

/* Whether render r is of rectangle `region` under model and device. */
static gboolean
render_matches (const Render *r, const gchar *model, liif_backend_kind device, const liif_region *region)
{
  return r->rgb != NULL && g_strcmp0 (r->model, model) == 0 && r->device == device &&
         memcmp (&r->region, region, sizeof *region) == 0;
}

/* Keep a new render (takes rgb): it becomes renders[0]; of the two before, the one of the same rectangle
 * farthest from its detail (at least MIN_SPREAD away) stays as renders[1], for blending. */
static void
keep_render (LiifPreview *self, const Result *res, float *rgb)
{
  Render  fresh = { g_strdup (self->model), self->device, res->region, res->detail, rgb };
  Render *best  = NULL;

  for (gint i = 0; i < 2; i++)
    {
      Render *r = &self->renders[i];

      if (render_matches (r, fresh.model, fresh.device, &fresh.region) &&
          fabs (r->detail - fresh.detail) >= MIN_SPREAD &&
          (best == NULL || fabs (r->detail - fresh.detail) > fabs (best->detail - fresh.detail)))
        best = r;
    }
  if (best != NULL && best != &self->renders[1])
    {
      render_clear (&self->renders[1]);
      self->renders[1] = *best;
      *best = (Render) { 0 };
    }
  else if (best == NULL)
    render_clear (&self->renders[1]);
  render_clear (&self->renders[0]);
  self->renders[0] = fresh;
}

/* Whether the kept renders blend to any detail of the model's half of the view as it is now. */
static gboolean
can_blend (LiifPreview *self, const liif_region *region)
{
  return self->decoders == 2 && render_matches (&self->renders[0], self->model, self->device, region) &&
         render_matches (&self->renders[1], self->model, self->device, region);
}

/* Where the view is now: its rectangle of the output. */
static liif_region
view_region (LiifPreview *self)
{
  return (liif_region) {
    self->out_w, self->out_h,
    (gint) gtk_adjustment_get_value (self->hadj), (gint) gtk_adjustment_get_value (self->vadj),
    MIN (self->view_w, self->out_w), MIN (self->view_h, self->out_h)
  };
}

/* GIMP's Cubic interpolation (what Scale Image gives by default) of the view: fast, so it
 * is shown at once, before and while the model renders. Gray layers hold Y' in every RGB channel. */
static void
update_cubic (LiifPreview *self)
{
  liif_region r     = view_region (self);
  gint        ch    = liif_pixels_out_channels (self->input);
  gint        color = self->input->gray ? 1 : 3;
  float      *out   = g_try_new (float, (gsize) r.w * r.h * ch);

  if (out == NULL)
    return;
  for (gint c = 0; c < color; c++)
    liif_resample_bicubic_region (self->input->rgb, self->input->w, self->input->h,
                                  (size_t) self->input->w * 3, 3, c, &r,
                                  out, (size_t) r.w * ch, ch, c, NULL);
  if (self->input->has_alpha)
    liif_resample_bicubic_region (self->input->alpha, self->input->w, self->input->h,
                                  (size_t) self->input->w, 1, 0, &r,
                                  out, (size_t) r.w * ch, ch, ch - 1, NULL);
  picture_set (&self->cubic, &r, out, ch);
  g_free (out);
}

/* Width of the picture in the view: the view, or less when the whole output is narrower. */
static gint
picture_width (LiifPreview *self)
{
  return MAX (1, MIN (self->view_w, self->out_w > 0 ? self->out_w : self->view_w));
}

/* The divider's column in the view: a fraction of the picture's width. */
static gint
split_column (LiifPreview *self)
{
  return CLAMP ((gint) floor (self->split * picture_width (self) + 0.5), 0, picture_width (self));
}

/* The part of the output the model's half shows: the view right of the divider. */
static liif_region
model_region (LiifPreview *self)
{
  liif_region r = view_region (self);
  gint        s = MIN (split_column (self), r.w);

  r.x += s;
  r.w -= s;
  return r;
}

/* Whether the latest model result covers the model's half of the view. */
static gboolean
model_half_covered (LiifPreview *self)
{
  liif_region    r = model_region (self);
  const Picture *p = &self->liif;

  return p->bytes != NULL && p->out_w == self->out_w && p->out_h == self->out_h &&
         p->x <= r.x && p->x + p->w >= r.x + r.w && p->y <= r.y && p->y + p->h >= r.y + r.h;
}

/* The view: the model's result right of the divider where it has one, Cubic elsewhere. */
static void
compose (LiifPreview *self)
{
  liif_region    r      = view_region (self);
  gint           ch     = liif_pixels_out_channels (self->input);
  gint           split  = split_column (self);
  const Picture *liif   = &self->liif;
  gboolean       usable = liif->bytes != NULL && liif->out_w == self->out_w && liif->out_h == self->out_h;
  guchar        *bytes;

  if (self->cubic.bytes == NULL || ! gtk_widget_get_realized (self->area))
    return;
  bytes = g_memdup2 (self->cubic.bytes, (gsize) r.w * r.h * ch);
  for (gint y = 0; usable && y < r.h; y++)
    {
      gint oy = r.y + y - liif->y;
      gint x0 = MAX (split, liif->x - r.x);
      gint x1 = MIN (r.w, liif->x + liif->w - r.x);

      if (oy < 0 || oy >= liif->h || x0 >= x1)
        continue;
      memcpy (bytes + ((gsize) y * r.w + x0) * ch,
              liif->bytes + ((gsize) oy * liif->w + (r.x + x0 - liif->x)) * ch,
              (gsize) (x1 - x0) * ch);
    }
  gimp_preview_area_fill (GIMP_PREVIEW_AREA (self->area), 0, 0, self->view_w, self->view_h,
                          0x80, 0x80, 0x80);
  gimp_preview_area_draw (GIMP_PREVIEW_AREA (self->area), 0, 0, r.w, r.h,
                          image_type (self->input), bytes, r.w * ch);
  g_free (bytes);
}

/* The divider and the names of the two halves, over the picture. */
static gboolean
area_draw_after (GtkWidget *widget, cairo_t *cr, LiifPreview *self)
{
  gdouble      x     = split_column (self) + 0.5;
  const gchar *names[2] = { C_("preview", "Cubic"), C_("preview", "LIIF") };

  (void) widget;
  cairo_set_line_width (cr, 1.0);
  cairo_set_source_rgba (cr, 1, 1, 1, 0.9);
  cairo_move_to (cr, x, 0);
  cairo_line_to (cr, x, MIN (self->view_h, self->out_h > 0 ? self->out_h : self->view_h));
  cairo_stroke (cr);
  for (gint i = 0; i < 2; i++)
    {
      PangoLayout   *layout = gtk_widget_create_pango_layout (self->area, names[i]);
      PangoRectangle ink;
      gdouble        lx;

      pango_layout_get_pixel_extents (layout, NULL, &ink);
      lx = i == 0 ? x - ink.width - 8 : x + 4;
      cairo_set_source_rgba (cr, 0, 0, 0, 0.6);
      cairo_rectangle (cr, lx - 2, 2, ink.width + 4, ink.height + 2);
      cairo_fill (cr);
      cairo_set_source_rgb (cr, 1, 1, 1);
      cairo_move_to (cr, lx, 3);
      pango_cairo_show_layout (cr, layout);
      g_object_unref (layout);
    }
  return FALSE;
}

/* ------------------------------------------------------------ main loop */

static void
set_status (LiifPreview *self, const gchar *text, gboolean busy)
{
  gtk_label_set_text (GTK_LABEL (self->status), text);
  gtk_widget_set_tooltip_text (self->status, text); /* the whole line where a narrow view ellipsizes it */
  if (busy)
    gtk_spinner_start (GTK_SPINNER (self->spinner));
  else
    gtk_spinner_stop (GTK_SPINNER (self->spinner));
}

/* The status line after a render of the current view. */
static void
render_status (LiifPreview *self)
{
  gchar *text;

  if (self->decoders == 2 && ! can_blend (self, &self->renders[0].region))
    text = g_strdup_printf (_("Right of the line: the model, computed in %.1f s; preparing instant detail changes…"),
                            self->seconds);
  else if (self->decoders == 2)
    text = g_strdup_printf (_("Right of the line: the model, computed in %.1f s; detail changes show at once"),
                            self->seconds);
  else
    text = g_strdup_printf (_("Right of the line: the model, computed in %.1f s"), self->seconds);
  set_status (self, text, self->decoders == 2 && ! can_blend (self, &self->renders[0].region));
  g_free (text);
}

/* LIIF_PREVIEW_VERIFY: the picture shown (a blend) against the same detail rendered by the model. */
static void
verify_blend (LiifPreview *self, Result *res)
{
  Picture direct = { 0 };
  gint    ch     = liif_pixels_out_channels (self->input);
  gsize   n      = (gsize) res->region.w * res->region.h * ch, differ = 0;
  gint    worst  = 0;

  if (self->liif.bytes == NULL || self->liif.x != res->region.x || self->liif.y != res->region.y ||
      self->liif.w != res->region.w || self->liif.h != res->region.h ||
      ! picture_from_rgb (self, &direct, &res->region, res->rgb))
    return;
  for (gsize i = 0; i < n; i++)
    {
      gint d = abs ((gint) direct.bytes[i] - (gint) self->liif.bytes[i]);

      differ += d != 0;
      worst = MAX (worst, d);
    }
  fprintf (stderr, "liif-preview: verify detail %.2f: the blend shown and the model's render differ in %"
           G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " samples, by at most %d levels\n", res->detail, differ, n, worst);
  picture_clear (&direct);
}

static void queue_request (LiifPreview *self, RenderKind kind, gdouble detail);

static gboolean
deliver (gpointer data)
{
  Result      *res  = data;
  LiifPreview *self = res->preview;

  if (res->deblock_tried) /* whatever became of the render: deblocking is done once */
    {
      g_free (self->deblock_note);
      self->deblock_note = res->deblock_note ? res->deblock_note : g_strdup ("");
      res->deblock_note  = NULL;
      self->deblock_seconds = res->deblock_seconds;
      g_object_notify_by_pspec (G_OBJECT (self), props[PROP_DEBLOCK_NOTE]);
    }
  if (self->thread != NULL && res->gen == g_atomic_int_get (&self->generation))
    {
      if (res->error != NULL)
        {
          set_status (self, res->error->message, FALSE);
        }
      else if (res->kind == RENDER_VERIFY)
        {
          verify_blend (self, res);
        }
      else
        {
          gdouble rate  = res->seconds / ((gdouble) res->region.w * res->region.h);
          gsize   n     = (gsize) res->region.w * res->region.h * 3;
          float  *shown = res->kind == RENDER_SHOW ? g_memdup2 (res->rgb, n * sizeof (float)) : NULL;

          self->decoders = res->decoders;
          keep_render (self, res, res->rgb);
          res->rgb = NULL;
          if (shown != NULL)
            {
              self->seconds = res->seconds;
              picture_from_rgb (self, &self->liif, &res->region, shown);
              g_free (shown);
              compose (self);
              if (logging ())
                fprintf (stderr, "liif-preview: shown %dx%d (model region %dx%d): Cubic left of column %d, the model right of it\n",
                         self->view_w, self->view_h, res->region.w, res->region.h, split_column (self));
              if (rate > self->seconds_per_pixel)
                {
                  self->seconds_per_pixel = rate;
                  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_SECONDS_PER_PIXEL]);
                }
            }
          else if (logging ())
            fprintf (stderr, "liif-preview: kept the render at detail %.2f beside the one at %.2f: detail changes blend\n",
                     res->detail, self->renders[1].detail);
          render_status (self);
          /* A detail control: the same view at a second detail, in the background, so that moving the detail
           * blends the two at once. The farther of 0 and 1 keeps the blend's rounding small. */
          if (self->decoders == 2 && ! can_blend (self, &res->region))
            queue_request (self, RENDER_COMPLEMENT, res->detail >= 0.5 ? 0.0 : 1.0);
        }
    }
  g_clear_error (&res->error);
  g_free (res->rgb);
  g_free (res->deblock_note);
  g_object_unref (res->preview);
  g_free (res);
  return G_SOURCE_REMOVE;
}

/* Ask the worker for the model's half of the view at a detail; the worker drops stale work. */
static void
queue_request (LiifPreview *self, RenderKind kind, gdouble detail)
{
  Request *req;

  if (! self->have_params || self->thread == NULL)
    return;
  req          = g_new0 (Request, 1);
  req->gen     = g_atomic_int_add (&self->generation, 1) + 1; /* also stops the one in flight */
  req->model   = g_strdup (self->model);
  req->device  = self->device;
  req->detail  = detail;
  req->kind    = kind;
  req->deblock = self->deblock && self->jpeg != NULL;
  req->region  = model_region (self);
  if (req->region.w <= 0 || req->region.h <= 0)
    {
      set_status (self, _("Drag the line to the left to see the model."), FALSE);
      request_free (req);
      return;
    }
  if (kind == RENDER_SHOW)
    set_status (self, req->deblock && self->deblock_note == NULL
                      ? _("Removing JPEG artifacts, then rendering the model’s half…")
                      : _("Rendering the model’s half…"), TRUE);

  g_mutex_lock (&self->lock);
  request_free (self->pending);
  self->pending = req;
  g_cond_signal (&self->cond);
  g_mutex_unlock (&self->lock);
}

/* Ask for the visible region under the current parameters. */
static void
queue_render (LiifPreview *self)
{
  queue_request (self, RENDER_SHOW, self->detail);
}

/* The current detail from the two kept renders, without the model: shown at once. */
static void
show_blend (LiifPreview *self)
{
  liif_region r   = model_region (self);
  gsize       n   = (gsize) r.w * r.h * 3;
  float      *rgb = g_try_new (float, n);
  gint64      t0  = g_get_monotonic_time ();

  if (rgb == NULL)
    {
      queue_render (self);
      return;
    }
  g_atomic_int_inc (&self->generation); /* what is in flight was for another detail */
  liif_blend_detail (self->renders[0].rgb, self->renders[0].detail, self->renders[1].rgb, self->renders[1].detail,
                     self->detail, n, rgb);
  picture_from_rgb (self, &self->liif, &r, rgb);
  g_free (rgb);
  compose (self);
  gtk_widget_queue_draw (self->area);
  render_status (self);
  if (logging ())
    fprintf (stderr, "liif-preview: detail %.2f blended from the renders at %.2f and %.2f in %.1f ms (no model run)\n",
             self->detail, self->renders[0].detail, self->renders[1].detail,
             (g_get_monotonic_time () - t0) / 1e3);
  if (g_getenv ("LIIF_PREVIEW_VERIFY") != NULL)
    queue_request (self, RENDER_VERIFY, self->detail);
}

/* The view moved: Cubic at once; the model when the user lets go. */
static void
adjustment_changed (GtkAdjustment *adj, LiifPreview *self)
{
  (void) adj;
  update_cubic (self);
  compose (self);
  if (self->drag != DRAG_PAN)
    queue_render (self);
  else if (logging ())
    fprintf (stderr, "liif-preview: panning: view at (%d,%d), Cubic now, the model on release\n",
             (gint) gtk_adjustment_get_value (self->hadj), (gint) gtk_adjustment_get_value (self->vadj));
}

/* page = the view, upper = the output; centre on (fx, fy), fractions of the output. */
static void
place (GtkAdjustment *adj, gint size, gint view, gdouble f)
{
  gdouble page  = MIN (view, size);
  gdouble value = CLAMP (floor (f * size - page / 2), 0, size - page);

  gtk_adjustment_configure (adj, value, 0, size, 16, page, page);
}

static gdouble
centre (GtkAdjustment *adj)
{
  gdouble upper = gtk_adjustment_get_upper (adj);

  return upper > 0 ? (gtk_adjustment_get_value (adj) + gtk_adjustment_get_page_size (adj) / 2) / upper : 0.5;
}

static gboolean
render_timeout (gpointer data)
{
  LiifPreview *self = data;

  self->render_timeout = 0;
  queue_render (self);
  return G_SOURCE_REMOVE;
}

/* New output size or view size: keep the view centred where it was (at first: on the detail).
 * A view that is being resized renders once it has kept its size for a moment. */
static void
relayout (LiifPreview *self, gboolean settle)
{
  gdouble fx = self->placed ? centre (self->hadj) : self->focus_x;
  gdouble fy = self->placed ? centre (self->vadj) : self->focus_y;

  g_signal_handlers_block_by_func (self->hadj, adjustment_changed, self);
  g_signal_handlers_block_by_func (self->vadj, adjustment_changed, self);
  place (self->hadj, self->out_w, self->view_w, fx);
  place (self->vadj, self->out_h, self->view_h, fy);
  g_signal_handlers_unblock_by_func (self->hadj, adjustment_changed, self);
  g_signal_handlers_unblock_by_func (self->vadj, adjustment_changed, self);
  self->placed = TRUE;
  update_cubic (self);
  compose (self);
  if (self->render_timeout != 0)
    g_source_remove (self->render_timeout);
  self->render_timeout = 0;
  if (settle)
    self->render_timeout = g_timeout_add (100, render_timeout, self);
  else
    queue_render (self);
}

void
liif_preview_set_params (LiifPreview *self, const gchar *model, liif_backend_kind device,
                         gdouble detail, gboolean deblock, gint image_out_w, gint image_out_h)
{
  gint nx, ny, w, h;

  g_return_if_fail (LIIF_IS_PREVIEW (self));

  liif_layer_geometry (self->img_w, self->img_h, image_out_w, image_out_h,
                       self->off_x, self->off_y, self->input->w, self->input->h,
                       &nx, &ny, &w, &h);
  if (g_strcmp0 (self->model, model) != 0 || self->device != device)
    {
      self->seconds_per_pixel = 0.0; /* measured again for this model and device */
      picture_clear (&self->liif);
      render_clear (&self->renders[0]);
      render_clear (&self->renders[1]);
      self->decoders = 0;
      g_object_notify_by_pspec (G_OBJECT (self), props[PROP_SECONDS_PER_PIXEL]);
    }
  if (deblock != self->deblock && self->jpeg != NULL)
    { /* other input pixels: nothing kept applies (the rate does) */
      picture_clear (&self->liif);
      render_clear (&self->renders[0]);
      render_clear (&self->renders[1]);
      self->decoders = 0;
    }
  self->deblock     = deblock;
  g_free (self->model);
  self->model       = g_strdup (model ? model : "");
  self->device      = device;
  self->detail      = detail;
  self->have_params = TRUE;
  if (w != self->out_w || h != self->out_h)
    {
      self->out_w = w;
      self->out_h = h;
      relayout (self, FALSE);
    }
  else if (liif_preview_detail_is_instant (self))
    {
      show_blend (self); /* only the detail changed, or nothing did: no model run */
    }
  else
    {
      queue_render (self);
    }
}

gboolean
liif_preview_detail_is_instant (LiifPreview *self)
{
  liif_region r;

  g_return_val_if_fail (LIIF_IS_PREVIEW (self), FALSE);
  r = model_region (self);
  return self->have_params && r.w > 0 && r.h > 0 && can_blend (self, &r);
}

gdouble
liif_preview_get_deblock_seconds (LiifPreview *self)
{
  g_return_val_if_fail (LIIF_IS_PREVIEW (self), 0.0);
  return self->deblock_seconds;
}

const gchar *
liif_preview_get_deblock_note (LiifPreview *self)
{
  g_return_val_if_fail (LIIF_IS_PREVIEW (self), "");
  return self->deblock_note ? self->deblock_note : "";
}

gdouble
liif_preview_get_seconds_per_pixel (LiifPreview *self)
{
  g_return_val_if_fail (LIIF_IS_PREVIEW (self), 0.0);
  return self->seconds_per_pixel;
}

static void
area_size_allocate (GtkWidget *widget, GdkRectangle *alloc, LiifPreview *self)
{
  (void) widget;
  if (alloc->width == self->view_w && alloc->height == self->view_h)
    return;
  self->view_w = alloc->width;
  self->view_h = alloc->height;
  if (logging ())
    fprintf (stderr, "liif-preview: view %dx%d\n", self->view_w, self->view_h);
  if (self->have_params)
    relayout (self, TRUE);
}

static gboolean
near_divider (LiifPreview *self, gdouble x)
{
  return fabs (x - split_column (self)) <= GRAB_PIXELS;
}

/* Dragging the divider moves it; dragging elsewhere pans the picture along (the model renders on release). */
static gboolean
area_button_press (GtkWidget *w, GdkEventButton *ev, LiifPreview *self)
{
  (void) w;
  if (ev->button != 1)
    return FALSE;
  self->drag   = near_divider (self, ev->x) ? DRAG_SPLIT : DRAG_PAN;
  self->drag_x = (gint) ev->x_root;
  self->drag_y = (gint) ev->y_root;
  self->drag_h = gtk_adjustment_get_value (self->hadj);
  self->drag_v = gtk_adjustment_get_value (self->vadj);
  return TRUE;
}

static gboolean
area_motion (GtkWidget *w, GdkEventMotion *ev, LiifPreview *self)
{
  GdkWindow *window = gtk_widget_get_window (w);

  if (self->drag == DRAG_SPLIT)
    {
      self->split = CLAMP (ev->x / picture_width (self), 0.0, 1.0);
      compose (self);
      gtk_widget_queue_draw (self->area);
    }
  else if (self->drag == DRAG_PAN)
    {
      gtk_adjustment_set_value (self->hadj, self->drag_h - (ev->x_root - self->drag_x));
      gtk_adjustment_set_value (self->vadj, self->drag_v - (ev->y_root - self->drag_y));
    }
  else if (window != NULL)
    {
      GdkCursor *cursor = gdk_cursor_new_from_name (gdk_window_get_display (window),
                                                    near_divider (self, ev->x) ? "col-resize" : "grab");

      gdk_window_set_cursor (window, cursor);
      g_clear_object (&cursor);
    }
  return TRUE;
}

static gboolean
area_button_release (GtkWidget *w, GdkEventButton *ev, LiifPreview *self)
{
  (void) w;
  (void) ev;
  if (self->drag != DRAG_NONE && ! model_half_covered (self))
    queue_render (self);
  self->drag = DRAG_NONE;
  return TRUE;
}

/* The centre of the input block with the most gradient energy: where a first look shows the most. */
static void
find_detail (const LiifPixels *px, gdouble *fx, gdouble *fy)
{
  gint    bw = (px->w + DETAIL_BLOCK - 1) / DETAIL_BLOCK, bh = (px->h + DETAIL_BLOCK - 1) / DETAIL_BLOCK;
  double *energy = g_new0 (double, (gsize) bw * bh);
  gint    best = 0;

  for (gint y = 1; y < px->h; y++)
    for (gint x = 1; x < px->w; x++)
      {
        const float *p = px->rgb + ((gsize) y * px->w + x) * 3;
        const float *l = p - 3, *u = p - (gsize) px->w * 3;
        double       a = px->alpha ? px->alpha[(gsize) y * px->w + x] : 1.0;
        double       e = 0.0;

        for (gint c = 0; c < 3; c++)
          e += fabs (p[c] - l[c]) + fabs (p[c] - u[c]);
        energy[(y / DETAIL_BLOCK) * bw + x / DETAIL_BLOCK] += a * e;
      }
  for (gint i = 1; i < bw * bh; i++)
    if (energy[i] > energy[best])
      best = i;
  *fx = MIN (1.0, ((best % bw) + 0.5) * DETAIL_BLOCK / px->w);
  *fy = MIN (1.0, ((best / bw) + 0.5) * DETAIL_BLOCK / px->h);
  if (energy[best] == 0.0)
    *fx = *fy = 0.5;
  g_free (energy);
}

static void
liif_preview_get_property (GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
  LiifPreview *self = LIIF_PREVIEW (object);

  if (id == PROP_SECONDS_PER_PIXEL)
    g_value_set_double (value, self->seconds_per_pixel);
  else if (id == PROP_DEBLOCK_NOTE)
    g_value_set_string (value, self->deblock_note ? self->deblock_note : "");
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
}

static void
liif_preview_dispose (GObject *object)
{
  LiifPreview *self = LIIF_PREVIEW (object);

  if (self->render_timeout != 0)
    g_source_remove (self->render_timeout);
  self->render_timeout = 0;
  if (self->thread != NULL)
    {
      g_mutex_lock (&self->lock);
      self->quit = TRUE;
      g_atomic_int_inc (&self->generation); /* stops the render in flight */
      g_cond_signal (&self->cond);
      g_mutex_unlock (&self->lock);
      g_thread_join (self->thread);
      self->thread = NULL;
    }
  G_OBJECT_CLASS (liif_preview_parent_class)->dispose (object);
}

static void
liif_preview_finalize (GObject *object)
{
  LiifPreview *self = LIIF_PREVIEW (object);

  request_free (self->pending);
  liif_pixels_free (self->input);
  picture_clear (&self->cubic);
  picture_clear (&self->liif);
  render_clear (&self->renders[0]);
  render_clear (&self->renders[1]);
  g_free (self->model);
  g_free (self->jpeg);
  g_free (self->deblock_note);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (liif_preview_parent_class)->finalize (object);
}

static void
liif_preview_class_init (LiifPreviewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = liif_preview_get_property;
  object_class->dispose      = liif_preview_dispose;
  object_class->finalize     = liif_preview_finalize;

  props[PROP_SECONDS_PER_PIXEL] = g_param_spec_double ("seconds-per-pixel", NULL, NULL, 0, G_MAXDOUBLE, 0,
                                                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  props[PROP_DEBLOCK_NOTE] = g_param_spec_string ("deblock-note", NULL, NULL, "",
                                                  G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
liif_preview_init (LiifPreview *self)
{
  GtkWidget *frame, *row;

  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->split = 0.5;
  gtk_grid_set_row_spacing (GTK_GRID (self), 2);
  gtk_grid_set_column_spacing (GTK_GRID (self), 2);

  frame = gtk_frame_new (NULL);
  gtk_frame_set_shadow_type (GTK_FRAME (frame), GTK_SHADOW_IN);
  self->area = gimp_preview_area_new ();
  gtk_widget_set_size_request (self->area, PREVIEW_MIN, PREVIEW_MIN);
  gtk_widget_set_hexpand (self->area, TRUE);
  gtk_widget_set_vexpand (self->area, TRUE);
  gtk_widget_add_events (self->area, GDK_BUTTON_PRESS_MASK | GDK_BUTTON_RELEASE_MASK |
                                     GDK_POINTER_MOTION_MASK);
  gtk_widget_set_tooltip_text (self->area,
                               _("Left of the line: GIMP’s Cubic interpolation (what Image > Scale Image "
                                 "gives); right of it: the model. Drag the line to compare, drag the "
                                 "picture to look elsewhere."));
  g_signal_connect (self->area, "button-press-event", G_CALLBACK (area_button_press), self);
  g_signal_connect (self->area, "button-release-event", G_CALLBACK (area_button_release), self);
  g_signal_connect (self->area, "motion-notify-event", G_CALLBACK (area_motion), self);
  g_signal_connect_after (self->area, "size-allocate", G_CALLBACK (area_size_allocate), self);
  g_signal_connect_after (self->area, "draw", G_CALLBACK (area_draw_after), self);
  gtk_container_add (GTK_CONTAINER (frame), self->area);
  gtk_grid_attach (GTK_GRID (self), frame, 0, 0, 1, 1);

  self->hadj = gtk_adjustment_new (0, 0, 1, 16, 1, 1);
  self->vadj = gtk_adjustment_new (0, 0, 1, 16, 1, 1);
  gtk_grid_attach (GTK_GRID (self), gtk_scrollbar_new (GTK_ORIENTATION_HORIZONTAL, self->hadj), 0, 1, 1, 1);
  gtk_grid_attach (GTK_GRID (self), gtk_scrollbar_new (GTK_ORIENTATION_VERTICAL, self->vadj), 1, 0, 1, 1);
  g_signal_connect (self->hadj, "value-changed", G_CALLBACK (adjustment_changed), self);
  g_signal_connect (self->vadj, "value-changed", G_CALLBACK (adjustment_changed), self);

  row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 4);
  self->spinner = gtk_spinner_new ();
  self->status  = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (self->status), 0.0);
  gtk_label_set_ellipsize (GTK_LABEL (self->status), PANGO_ELLIPSIZE_END); /* one line: the view keeps its size */
  gtk_label_set_width_chars (GTK_LABEL (self->status), 20);
  gtk_box_pack_start (GTK_BOX (row), self->spinner, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (row), self->status, TRUE, TRUE, 0);
  gtk_grid_attach (GTK_GRID (self), row, 0, 2, 2, 1);
  gtk_widget_show_all (GTK_WIDGET (self));
}

GtkWidget *
liif_preview_new (GimpImage *image, GimpDrawable *drawable, GError **error)
{
  LiifPixels  *input = liif_pixels_read (drawable, error);
  LiifPreview *self;

  if (input == NULL)
    return NULL;
  self        = g_object_new (LIIF_TYPE_PREVIEW, NULL);
  self->input = input;
  self->img_w = gimp_image_get_width (image);
  self->img_h = gimp_image_get_height (image);
  self->jpeg  = liif_image_jpeg_file (image);
  gimp_drawable_get_offsets (drawable, &self->off_x, &self->off_y);
  find_detail (input, &self->focus_x, &self->focus_y);
  self->thread = g_thread_new ("liif-preview", worker_main, self);
  return GTK_WIDGET (self);
}
