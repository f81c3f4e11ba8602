/* ui/gimp/liif-preview.c: live preview of the LIIF result at output resolution, computed in a worker thread. */
#include "liif-config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "liif-intl.h"
#include "liif-preview.h"

#define PREVIEW_SIZE 256 /* pixels of the output shown at once, per side */

/* What the worker is asked to render. */
typedef struct
{
  gint              gen;
  gchar            *model;
  liif_backend_kind device;
  gdouble           detail;
  liif_region       region;
} Request;

/* What it hands back to the main loop. */
typedef struct
{
  LiifPreview *preview;    /* a reference */
  gint         gen;
  liif_region  region;
  float       *pixels;     /* (region.h, region.w, channels) */
  GError      *error;
  gdouble      seconds;    /* render time, model loading excluded */
  gint         n_decoders; /* of the loaded model; 0 when none */
} Result;

struct _LiifPreview
{
  GtkGrid        parent_instance;

  GtkWidget     *area;
  GtkAdjustment *hadj, *vadj;
  GtkWidget     *status;

  LiifPixels    *input;      /* the layer, read once; the worker reads it too (never written) */
  gint           img_w, img_h, off_x, off_y;
  gint           out_w, out_h; /* the layer's output size for the current parameters */
  gchar         *model;
  liif_backend_kind device;
  gdouble        detail;
  gint           n_decoders;
  gboolean       have_params;
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
  gchar         *session_model;
  liif_backend_kind session_device;
};

enum { PROP_0, PROP_N_DECODERS, N_PROPS };
static GParamSpec *props[N_PROPS];

G_DEFINE_TYPE (LiifPreview, liif_preview, GTK_TYPE_GRID)

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

static void
render_request (LiifPreview *self, Request *req)
{
  Result     *res    = g_new0 (Result, 1);
  CancelCheck cancel = { self, req->gen };
  gint        ch     = liif_pixels_out_channels (self->input);
  gint        repeat = 1;
  const char *bench  = g_getenv ("LIIF_PREVIEW_BENCH"); /* re-render N times and log each, for bench */

  res->gen    = req->gen;
  res->region = req->region;
  if (bench != NULL)
    repeat = MAX (1, atoi (bench));

  if (ensure_session (self, req, &res->error))
    {
      res->n_decoders = liif_model_config (self->session->model)->n_decoders;
      res->pixels     = g_try_new (float, (gsize) req->region.w * req->region.h * ch);
      for (gint i = 0; i < repeat && res->error == NULL; i++)
        {
          gint64 t0 = g_get_monotonic_time ();

          if (res->pixels == NULL ||
              ! liif_render_region (self->session, self->input, &req->region, req->detail,
                                    stale, &cancel, res->pixels, &res->error))
            break;
          res->seconds = (g_get_monotonic_time () - t0) / 1e6;
          if (g_getenv ("LIIF_PREVIEW_LOG") != NULL || bench != NULL)
            fprintf (stderr, "liif-preview: region %dx%d at (%d,%d) of %dx%d on %s: %.3f s\n",
                     req->region.w, req->region.h, req->region.x, req->region.y,
                     req->region.out_w, req->region.out_h,
                     liif_engine_backend_name (self->session->engine), res->seconds);
        }
      if (res->pixels == NULL && res->error == NULL)
        g_set_error_literal (&res->error, LIIF_GIMP_ERROR, LIIF_ERR_NOMEM, _("Not enough memory."));
    }
  if (res->error != NULL && g_getenv ("LIIF_PREVIEW_LOG") != NULL)
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
  return NULL;
}

/* ------------------------------------------------------------ main loop */

static void
draw_result (LiifPreview *self, const Result *res)
{
  gint    ch     = liif_pixels_out_channels (self->input);
  gint    w      = res->region.w, h = res->region.h;
  guchar *bytes  = g_new (guchar, (gsize) w * h * ch);
  GimpImageType type;

  for (gsize i = 0; i < (gsize) w * h * ch; i++)
    bytes[i] = (guchar) (CLAMP (res->pixels[i], 0.0f, 1.0f) * 255.0f + 0.5f);
  if (self->input->gray)
    type = self->input->has_alpha ? GIMP_GRAYA_IMAGE : GIMP_GRAY_IMAGE;
  else
    type = self->input->has_alpha ? GIMP_RGBA_IMAGE : GIMP_RGB_IMAGE;

  gimp_preview_area_fill (GIMP_PREVIEW_AREA (self->area), 0, 0, PREVIEW_SIZE, PREVIEW_SIZE,
                          0x80, 0x80, 0x80);
  gimp_preview_area_draw (GIMP_PREVIEW_AREA (self->area), 0, 0, w, h, type, bytes, w * ch);
  g_free (bytes);
}

static gboolean
deliver (gpointer data)
{
  Result      *res  = data;
  LiifPreview *self = res->preview;

  if (self->thread != NULL && res->gen == g_atomic_int_get (&self->generation))
    {
      if (res->n_decoders != self->n_decoders)
        {
          self->n_decoders = res->n_decoders;
          g_object_notify_by_pspec (G_OBJECT (self), props[PROP_N_DECODERS]);
        }
      if (res->error != NULL)
        {
          gtk_label_set_text (GTK_LABEL (self->status), res->error->message);
        }
      else
        {
          gchar *text = g_strdup_printf (_("%d × %d, preview took %.2f s"),
                                         res->region.out_w, res->region.out_h, res->seconds);

          draw_result (self, res);
          gtk_label_set_text (GTK_LABEL (self->status), text);
          g_free (text);
        }
    }
  g_clear_error (&res->error);
  g_free (res->pixels);
  g_object_unref (res->preview);
  g_free (res);
  return G_SOURCE_REMOVE;
}

/* Ask for the visible region under the current parameters; the worker drops stale work. */
static void
queue_render (LiifPreview *self)
{
  Request *req;

  if (! self->have_params || self->thread == NULL)
    return;
  req          = g_new0 (Request, 1);
  req->gen     = g_atomic_int_add (&self->generation, 1) + 1;
  req->model   = g_strdup (self->model);
  req->device  = self->device;
  req->detail  = self->detail;
  req->region  = (liif_region) {
    self->out_w, self->out_h,
    (gint) gtk_adjustment_get_value (self->hadj), (gint) gtk_adjustment_get_value (self->vadj),
    MIN (PREVIEW_SIZE, self->out_w), MIN (PREVIEW_SIZE, self->out_h)
  };
  gtk_label_set_text (GTK_LABEL (self->status), _("Rendering preview…"));

  g_mutex_lock (&self->lock);
  request_free (self->pending);
  self->pending = req;
  g_cond_signal (&self->cond);
  g_mutex_unlock (&self->lock);
}

static void
adjustment_changed (GtkAdjustment *adj, LiifPreview *self)
{
  (void) adj;
  queue_render (self);
}

/* Keep the same relative view position when the output size changes. */
static void
set_adjustment_range (GtkAdjustment *adj, gint size)
{
  gdouble page  = MIN (PREVIEW_SIZE, size);
  gdouble upper = gtk_adjustment_get_upper (adj);
  gdouble frac  = upper > gtk_adjustment_get_page_size (adj)
                  ? (gtk_adjustment_get_value (adj) + gtk_adjustment_get_page_size (adj) / 2) / upper
                  : 0.5;
  gdouble value = CLAMP (floor (frac * size - page / 2), 0, size - page);

  gtk_adjustment_configure (adj, value, 0, size, 16, page, page);
}

void
liif_preview_set_params (LiifPreview *self, const gchar *model, liif_backend_kind device,
                         gdouble detail, gint image_out_w, gint image_out_h)
{
  gint nx, ny;

  g_return_if_fail (LIIF_IS_PREVIEW (self));

  liif_layer_geometry (self->img_w, self->img_h, image_out_w, image_out_h,
                       self->off_x, self->off_y, self->input->w, self->input->h,
                       &nx, &ny, &self->out_w, &self->out_h);
  g_free (self->model);
  self->model       = g_strdup (model ? model : "");
  self->device      = device;
  self->detail      = detail;
  self->have_params = TRUE;

  g_signal_handlers_block_by_func (self->hadj, adjustment_changed, self);
  g_signal_handlers_block_by_func (self->vadj, adjustment_changed, self);
  set_adjustment_range (self->hadj, self->out_w);
  set_adjustment_range (self->vadj, self->out_h);
  g_signal_handlers_unblock_by_func (self->hadj, adjustment_changed, self);
  g_signal_handlers_unblock_by_func (self->vadj, adjustment_changed, self);
  queue_render (self);
}

/* Dragging the picture pans the view. */
static gboolean
area_button_press (GtkWidget *w, GdkEventButton *ev, LiifPreview *self)
{
  (void) w;
  self->drag_x = (gint) ev->x_root;
  self->drag_y = (gint) ev->y_root;
  self->drag_h = gtk_adjustment_get_value (self->hadj);
  self->drag_v = gtk_adjustment_get_value (self->vadj);
  return TRUE;
}

static gboolean
area_motion (GtkWidget *w, GdkEventMotion *ev, LiifPreview *self)
{
  (void) w;
  if (ev->state & GDK_BUTTON1_MASK)
    {
      gtk_adjustment_set_value (self->hadj, self->drag_h - (ev->x_root - self->drag_x));
      gtk_adjustment_set_value (self->vadj, self->drag_v - (ev->y_root - self->drag_y));
    }
  return TRUE;
}

static void
liif_preview_get_property (GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
  LiifPreview *self = LIIF_PREVIEW (object);

  if (id == PROP_N_DECODERS)
    g_value_set_int (value, self->n_decoders);
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
}

static void
liif_preview_dispose (GObject *object)
{
  LiifPreview *self = LIIF_PREVIEW (object);

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
  g_free (self->model);
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

  props[PROP_N_DECODERS] = g_param_spec_int ("n-decoders", NULL, NULL, 0, 2, 0,
                                             G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
liif_preview_init (LiifPreview *self)
{
  GtkWidget *frame;

  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  gtk_grid_set_row_spacing (GTK_GRID (self), 2);
  gtk_grid_set_column_spacing (GTK_GRID (self), 2);

  frame = gtk_frame_new (NULL);
  gtk_frame_set_shadow_type (GTK_FRAME (frame), GTK_SHADOW_IN);
  self->area = gimp_preview_area_new ();
  gtk_widget_set_size_request (self->area, PREVIEW_SIZE, PREVIEW_SIZE);
  gtk_widget_add_events (self->area, GDK_BUTTON_PRESS_MASK | GDK_BUTTON1_MOTION_MASK);
  g_signal_connect (self->area, "button-press-event", G_CALLBACK (area_button_press), self);
  g_signal_connect (self->area, "motion-notify-event", G_CALLBACK (area_motion), self);
  gtk_container_add (GTK_CONTAINER (frame), self->area);
  gtk_grid_attach (GTK_GRID (self), frame, 0, 0, 1, 1);

  self->hadj = gtk_adjustment_new (0, 0, 1, 16, 1, 1);
  self->vadj = gtk_adjustment_new (0, 0, 1, 16, 1, 1);
  gtk_grid_attach (GTK_GRID (self), gtk_scrollbar_new (GTK_ORIENTATION_HORIZONTAL, self->hadj), 0, 1, 1, 1);
  gtk_grid_attach (GTK_GRID (self), gtk_scrollbar_new (GTK_ORIENTATION_VERTICAL, self->vadj), 1, 0, 1, 1);
  g_signal_connect (self->hadj, "value-changed", G_CALLBACK (adjustment_changed), self);
  g_signal_connect (self->vadj, "value-changed", G_CALLBACK (adjustment_changed), self);

  self->status = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (self->status), 0.0);
  gtk_label_set_line_wrap (GTK_LABEL (self->status), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (self->status), 36);
  gtk_grid_attach (GTK_GRID (self), self->status, 0, 2, 2, 1);
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
  gimp_drawable_get_offsets (drawable, &self->off_x, &self->off_y);
  self->thread = g_thread_new ("liif-preview", worker_main, self);
  return GTK_WIDGET (self);
}
