/* ui/gimp/liif-dialog.c: the "LIIF Upscale" dialog: what is upscaled, size and cost, model and device, live preview. */
#include "liif-config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libgimp/gimpui.h>

#include "liif-dialog.h"
#include "liif-intl.h"
#include "liif-preview.h"
#include "liif-render.h"

/* The largest factor the dialog offers (scripts may ask up to LIIF_GIMP_MAX_SCALE). */
#define DIALOG_MAX_SCALE 16.0

/* The dialog's state beyond what the config holds. */
typedef struct
{
  GimpProcedureConfig *config;
  GimpImage           *image;
  GimpDrawable       **drawables;
  gint                 img_w, img_h;
  GtkWidget           *dialog, *scale, *width_spin, *height_spin, *chain, *unit;
  GtkWidget           *size_note, *memory_note, *time_note, *deblock_note;
  GtkWidget           *detail, *model_combo, *model_about;
  gboolean             picked;  /* the model list is the user's: a model chosen brings its own detail */
  GtkWidget           *preview;   /* NULL when no layer could be read */
  gboolean             syncing;   /* true while the dialog itself writes the config */
  gboolean             percent;   /* the size fields show % of the image instead of pixels */
  gboolean             layers_ok; /* every selected drawable is a pixel layer (else the procedure refuses) */
  gdouble              requested; /* a factor asked for outside [1, DIALOG_MAX_SCALE]; 0 = none */
  guint                preview_timeout;
} Dialog;

static gboolean
logging (void)
{
  return g_getenv ("LIIF_PREVIEW_LOG") != NULL;
}

static gint
scaled (gint size, gdouble s)
{
  return MAX (1, (gint) floor (size * s + 0.5));
}

/* A label in the small type GIMP uses for hints, wrapping. */
static GtkWidget *
hint_label (const gchar *text)
{
  GtkWidget *label = gtk_label_new (text);

  gtk_label_set_xalign (GTK_LABEL (label), 0.0);
  gtk_label_set_line_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (label), 44);
  gimp_label_set_attributes (GTK_LABEL (label), PANGO_ATTR_SCALE, PANGO_SCALE_SMALL, -1);
  return label;
}

/* A hint label for a note whose text changes with the size and the preview's measurements: always as wide as its
 * longest line may be and at least `lines` lines high, so that a new text (the time estimate once the first render
 * has measured the machine) does not move the other controls or resize the preview, which would render it again. */
static GtkWidget *
note_label (gint lines)
{
  GtkWidget   *label = hint_label (NULL);
  GString     *sample = g_string_new ("Xg");
  PangoLayout *layout;
  gint         height;

  gtk_label_set_width_chars (GTK_LABEL (label), 44);
  for (gint i = 1; i < lines; i++)
    g_string_append (sample, "\nXg");
  layout = gtk_widget_create_pango_layout (label, sample->str);
  pango_layout_set_attributes (layout, gtk_label_get_attributes (GTK_LABEL (label)));
  pango_layout_get_pixel_size (layout, NULL, &height);
  gtk_widget_set_size_request (label, -1, height);
  g_object_unref (layout);
  g_string_free (sample, TRUE);
  return label;
}

/* A label with a mnemonic for widget, at the start of a row. */
static GtkWidget *
row_label (const gchar *text, GtkWidget *widget)
{
  GtkWidget *label = gtk_label_new_with_mnemonic (text);

  gtk_label_set_xalign (GTK_LABEL (label), 0.0);
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), widget);
  return label;
}

/* ------------------------------------------------------------ size, memory, time */

static gchar *
format_duration (gdouble s)
{
  if (s < 60)
    return g_strdup_printf (_("%d s"), MAX (1, (gint) ceil (s)));
  if (s < 3600)
    return g_strdup_printf (_("%d min %02d s"), (gint) s / 60, (gint) s % 60);
  return g_strdup_printf (_("%d h %02d min"), (gint) s / 3600, ((gint) s % 3600) / 60);
}

/* Preferences > System Resources > "Maximum new image size" (gimprc: a number with k/M/G). */
static guint64
max_new_image_size (void)
{
  gchar  *value = gimp_gimprc_query ("max-new-image-size");
  gchar  *end   = NULL;
  guint64 size  = value ? g_ascii_strtoull (value, &end, 10) : 0;

  if (end != NULL && *end != '\0')
    size <<= (*end == 'k' || *end == 'K') ? 10 : (*end == 'm' || *end == 'M') ? 20 :
             (*end == 'g' || *end == 'G') ? 30 : 0;
  g_free (value);
  return size > 0 ? size : (guint64) 128 << 20;
}

/* Memory of the scaled image (every layer at its new size) and of the float results being
 * computed for the selected layers; output pixels of the selected layers (what the time scales). */
static void
estimate_cost (Dialog *d, gint out_w, gint out_h, guint64 *image_bytes, guint64 *work_bytes,
               gdouble *model_pixels)
{
  GimpLayer **layers = gimp_image_get_layers (d->image);

  *image_bytes = *work_bytes = 0;
  *model_pixels = 0;
  for (gint i = 0; layers != NULL && layers[i] != NULL; i++)
    {
      GimpDrawable *dr = GIMP_DRAWABLE (layers[i]);
      gint          x, y, nx, ny, nw, nh;

      gimp_drawable_get_offsets (dr, &x, &y);
      liif_layer_geometry (d->img_w, d->img_h, out_w, out_h, x, y,
                           gimp_drawable_get_width (dr), gimp_drawable_get_height (dr), &nx, &ny, &nw, &nh);
      *image_bytes += (guint64) nw * nh * babl_format_get_bytes_per_pixel (gimp_drawable_get_format (dr));
    }
  g_free (layers);
  for (gint i = 0; d->drawables != NULL && d->drawables[i] != NULL; i++)
    {
      GimpDrawable *dr = d->drawables[i];
      gint          x, y, nx, ny, nw, nh;

      gimp_drawable_get_offsets (dr, &x, &y);
      liif_layer_geometry (d->img_w, d->img_h, out_w, out_h, x, y,
                           gimp_drawable_get_width (dr), gimp_drawable_get_height (dr), &nx, &ny, &nw, &nh);
      *work_bytes   += (guint64) nw * nh * 4 * sizeof (float);
      *model_pixels += (gdouble) nw * nh;
    }
}

static void
set_note (GtkWidget *label, const gchar *text, gboolean warn)
{
  gchar *markup = warn ? g_markup_printf_escaped ("<b>⚠ %s</b>", text) : g_markup_escape_text (text, -1);

  gtk_label_set_markup (GTK_LABEL (label), markup);
  gtk_widget_set_visible (label, text[0] != '\0');
  if (logging () && text[0] != '\0')
    fprintf (stderr, "liif-dialog: %s%s\n", warn ? "warning: " : "", text);
  g_free (markup);
}

/* What the chosen size means: clamping, memory, time; OK only when there is something to do. */
static void
update_notes (Dialog *d)
{
  LiifParams params = { 0 };
  gint       w = 0, h = 0;
  gboolean   ok = d->layers_ok;
  GError    *error = NULL;

  liif_params_from_config (d->config, &params);
  if (! liif_params_output_size (&params, d->img_w, d->img_h, &w, &h, &error))
    {
      set_note (d->size_note, error->message, TRUE);
      set_note (d->memory_note, "", FALSE);
      set_note (d->time_note, "", FALSE);
      g_clear_error (&error);
      ok = FALSE;
    }
  else
    {
      guint64 image_bytes, work_bytes;
      gdouble pixels, rate = d->preview ? liif_preview_get_seconds_per_pixel (LIIF_PREVIEW (d->preview)) : 0;
      gboolean ensemble = FALSE, deblock = FALSE;
      gdouble  extra = 0; /* seconds beside the model: deblocking the previewed layer, as the preview measured it */
      gchar  *text = NULL, *a, *b;

      if (d->requested > DIALOG_MAX_SCALE)
        text = g_strdup_printf (_("×%g is more than this dialog offers: limited to ×%g "
                                  "(scripts may ask for up to ×%g)."),
                                d->requested, DIALOG_MAX_SCALE, LIIF_GIMP_MAX_SCALE);
      else if (d->requested > 0)
        text = g_strdup_printf (_("×%g would make the image smaller: this filter only enlarges "
                                  "(limited to ×1). To shrink, use Image > Scale Image."), d->requested);
      else if (w == d->img_w && h == d->img_h)
        text = g_strdup (_("The new size equals the image size: there is nothing to enlarge."));
      if (w == d->img_w && h == d->img_h)
        ok = FALSE;
      set_note (d->size_note, text ? text : "", text != NULL);
      g_free (text);

      estimate_cost (d, w, h, &image_bytes, &work_bytes, &pixels);
      a    = g_format_size (image_bytes);
      b    = g_format_size (work_bytes);
      text = g_strdup_printf (_("%d × %d pixels: about %s for the new image, %s more while it is computed."),
                              w, h, a, b);
      g_free (a);
      g_free (b);
      if (image_bytes > max_new_image_size ())
        {
          gchar *limit = g_format_size (max_new_image_size ());
          gchar *more  = g_strdup_printf (_("%s That is more than the %s Preferences allow for new images."),
                                          text, limit);

          g_free (text);
          g_free (limit);
          text = more;
        }
      set_note (d->memory_note, text, image_bytes > max_new_image_size ());
      g_free (text);

      g_object_get (d->config, "ensemble", &ensemble, "deblock", &deblock, NULL);
      if (ensemble) /* the final render's 8 turns; the preview renders one */
        rate *= 8.0;
      if (deblock && d->preview != NULL)
        extra = liif_preview_get_deblock_seconds (LIIF_PREVIEW (d->preview));
      if (extra > 0 && logging ())
        fprintf (stderr, "liif-dialog: the time estimate counts %.2f s of deblocking\n", extra);
      if (rate > 0)
        {
          gchar *t = format_duration (rate * pixels + extra);

          text = ensemble ? g_strdup_printf (_("Estimated time on this machine: about %s (8 times what the preview "
                                               "measured, for Best quality)."), t)
                          : g_strdup_printf (_("Estimated time on this machine: about %s (measured by the preview)."), t);
          g_free (t);
        }
      else
        {
          text = g_strdup (_("Estimated time: known once the preview has rendered."));
        }
      set_note (d->time_note, text, rate * pixels + extra > 600);
      g_free (text);
    }
  gtk_dialog_set_response_sensitive (GTK_DIALOG (d->dialog), GTK_RESPONSE_OK, ok);
  liif_params_clear (&params);
}

/* ------------------------------------------------------------ preview */

/* Parameters settle for a moment before the preview restarts; the preview cancels stale work itself. */
static gboolean
update_preview (gpointer data)
{
  Dialog    *d      = data;
  LiifParams params = { 0 };
  gint       w, h;

  d->preview_timeout = 0;
  liif_params_from_config (d->config, &params);
  if (d->preview != NULL && liif_params_output_size (&params, d->img_w, d->img_h, &w, &h, NULL))
    liif_preview_set_params (LIIF_PREVIEW (d->preview), params.model, params.device,
                             params.detail, params.deblock, w, h);
  liif_params_clear (&params);
  return G_SOURCE_REMOVE;
}

static void
schedule_preview (Dialog *d)
{
  if (d->preview_timeout != 0)
    g_source_remove (d->preview_timeout);
  d->preview_timeout = g_timeout_add (120, update_preview, d);
}

/* ------------------------------------------------------------ scale and size fields */

/* The size fields show pixels, or percent of the image. */
static void
set_spins (Dialog *d, gint w, gint h)
{
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (d->width_spin), d->percent ? 100.0 * w / d->img_w : w);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (d->height_spin), d->percent ? 100.0 * h / d->img_h : h);
}

static gint
spin_pixels (Dialog *d, GtkWidget *spin, gint size)
{
  gdouble v = gtk_spin_button_get_value (GTK_SPIN_BUTTON (spin));

  return d->percent ? scaled (size, v / 100.0) : (gint) v;
}

/* Factors outside [1, DIALOG_MAX_SCALE] are limited, and the note says so. */
static gdouble
limit_scale (Dialog *d, gdouble s)
{
  if (s > DIALOG_MAX_SCALE + 1e-9 || s < 1.0 - 1e-9)
    {
      d->requested = s;
      return CLAMP (s, 1.0, DIALOG_MAX_SCALE);
    }
  return s;
}

/* LIIF_PREVIEW_LOG: a point in a control (for a spin button: in its text, left of its - and + buttons), in the
 * dialog's window, for the tests that type into it or scroll over it. name: what the log calls it. */
static void
control_allocated (GtkWidget *widget, GdkRectangle *alloc, const gchar *name)
{
  gint x, y;

  if (gtk_widget_translate_coordinates (widget, gtk_widget_get_toplevel (widget), alloc->width / 6,
                                        alloc->height / 2, &x, &y))
    fprintf (stderr, "liif-dialog: %s at %d,%d\n", name, x, y);
}

/* The scale slider drives both axes; the size fields follow it. */
static void
config_notify (GimpProcedureConfig *config, GParamSpec *pspec, Dialog *d)
{
  if (! d->syncing && g_strcmp0 (pspec->name, "scale") == 0)
    {
      gdouble s;

      d->syncing = TRUE;
      g_object_get (config, "scale", &s, NULL);
      if (s > 1.0 + 1e-9 && s < DIALOG_MAX_SCALE - 1e-9)
        d->requested = 0; /* a value inside the range: no clamping to report */
      g_object_set (config, "scale-x", s, "scale-y", s, "width", 0, "height", 0, NULL);
      set_spins (d, scaled (d->img_w, s), scaled (d->img_h, s));
      gimp_chain_button_set_active (GIMP_CHAIN_BUTTON (d->chain), TRUE);
      d->syncing = FALSE;
    }
  if (! d->syncing)
    {
      update_notes (d);
      /* the detail blends two kept renders when it can: shown at once, no pause for the slider to settle */
      if (g_strcmp0 (pspec->name, "detail") == 0 && d->preview != NULL && d->preview_timeout == 0 &&
          liif_preview_detail_is_instant (LIIF_PREVIEW (d->preview)))
        update_preview (d);
      else
        schedule_preview (d);
    }
}

/* A factor typed into the scale field: remember one outside the range before the field clamps it. */
static gint
scale_input (GtkSpinButton *spin, gdouble *new_value, Dialog *d)
{
  gdouble v = g_strtod (gtk_entry_get_text (GTK_ENTRY (spin)), NULL);

  (void) new_value;
  d->requested = 0;
  if (v > 0)
    limit_scale (d, v);
  if (d->requested > 0)
    update_notes (d);
  return FALSE; /* the spin button parses and clamps as usual */
}

/* A size field was edited: the exact size wins; with the chain closed the other side keeps the aspect. */
static void
size_changed (GtkSpinButton *spin, Dialog *d)
{
  gint    w, h;
  gdouble sx, sy;

  if (d->syncing)
    return;
  d->syncing   = TRUE;
  d->requested = 0;
  w = spin_pixels (d, d->width_spin, d->img_w);
  h = spin_pixels (d, d->height_spin, d->img_h);
  if (gimp_chain_button_get_active (GIMP_CHAIN_BUTTON (d->chain)))
    {
      if (spin == GTK_SPIN_BUTTON (d->width_spin))
        h = scaled (d->img_h, (gdouble) w / d->img_w);
      else
        w = scaled (d->img_w, (gdouble) h / d->img_h);
    }
  sx = limit_scale (d, (gdouble) w / d->img_w);
  sy = limit_scale (d, (gdouble) h / d->img_h);
  if (sx != (gdouble) w / d->img_w)
    w = scaled (d->img_w, sx);
  if (sy != (gdouble) h / d->img_h)
    h = scaled (d->img_h, sy);
  set_spins (d, w, h);
  g_object_set (d->config,
                "width", w, "height", h,
                "scale-x", (gdouble) w / d->img_w, "scale-y", (gdouble) h / d->img_h,
                "scale", (gdouble) w / d->img_w,
                NULL);
  d->syncing = FALSE;
  update_notes (d);
  schedule_preview (d);
}

static void
configure_spins (Dialog *d)
{
  for (gint i = 0; i < 2; i++)
    {
      GtkSpinButton *spin = GTK_SPIN_BUTTON (i == 0 ? d->width_spin : d->height_spin);
      gint           size = i == 0 ? d->img_w : d->img_h;

      gtk_spin_button_set_digits (spin, d->percent ? 1 : 0);
      if (d->percent)
        gtk_spin_button_set_range (spin, 100.0 / size, 100.0 * LIIF_MAX_SIDE / size);
      else
        gtk_spin_button_set_range (spin, 1, LIIF_MAX_SIDE);
      gtk_spin_button_set_increments (spin, d->percent ? 5 : 1, d->percent ? 50 : 100);
    }
}

static void
unit_changed (GtkComboBox *combo, Dialog *d)
{
  LiifParams params = { 0 };
  gint       w, h;

  liif_params_from_config (d->config, &params);
  d->percent = gtk_combo_box_get_active (combo) == 1;
  d->syncing = TRUE;
  configure_spins (d);
  if (liif_params_output_size (&params, d->img_w, d->img_h, &w, &h, NULL))
    set_spins (d, w, h);
  d->syncing = FALSE;
  liif_params_clear (&params);
}

static GtkWidget *
size_fields (Dialog *d)
{
  GtkWidget *grid = gtk_grid_new ();
  gint       w, h;
  gdouble    sx, sy;

  g_object_get (d->config, "width", &w, "height", &h, "scale-x", &sx, "scale-y", &sy, NULL);
  if (w <= 0 || h <= 0)
    {
      w = scaled (d->img_w, sx);
      h = scaled (d->img_h, sy);
    }
  gtk_grid_set_row_spacing (GTK_GRID (grid), 4);
  gtk_grid_set_column_spacing (GTK_GRID (grid), 6);

  d->width_spin  = gtk_spin_button_new_with_range (1, LIIF_MAX_SIDE, 1);
  d->height_spin = gtk_spin_button_new_with_range (1, LIIF_MAX_SIDE, 1);
  gtk_entry_set_activates_default (GTK_ENTRY (d->width_spin), TRUE);
  gtk_entry_set_activates_default (GTK_ENTRY (d->height_spin), TRUE);
  set_spins (d, w, h);
  gtk_widget_set_tooltip_text (d->width_spin, _("Width of the new image. With the chain closed the height "
                                                "follows; open it to stretch."));
  gtk_widget_set_tooltip_text (d->height_spin, _("Height of the new image. With the chain closed the width "
                                                 "follows; open it to stretch."));

  gtk_grid_attach (GTK_GRID (grid), row_label (_("_Width"), d->width_spin), 0, 0, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), d->width_spin, 1, 0, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), row_label (_("_Height"), d->height_spin), 0, 1, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), d->height_spin, 1, 1, 1, 1);

  d->chain = gimp_chain_button_new (GIMP_CHAIN_RIGHT);
  gimp_chain_button_set_active (GIMP_CHAIN_BUTTON (d->chain), fabs (sx - sy) < 1e-9);
  gimp_help_set_help_data (d->chain, _("Keep the aspect ratio"), NULL);
  gtk_grid_attach (GTK_GRID (grid), d->chain, 2, 0, 1, 2);

  d->unit = gtk_combo_box_text_new ();
  gtk_combo_box_text_append_text (GTK_COMBO_BOX_TEXT (d->unit), _("px"));
  gtk_combo_box_text_append_text (GTK_COMBO_BOX_TEXT (d->unit), _("%"));
  gtk_combo_box_set_active (GTK_COMBO_BOX (d->unit), 0);
  gtk_widget_set_tooltip_text (d->unit, _("Size in pixels or in percent of the image"));
  gtk_widget_set_valign (d->unit, GTK_ALIGN_CENTER);
  gtk_grid_attach (GTK_GRID (grid), d->unit, 3, 0, 1, 2);

  g_signal_connect (d->width_spin, "value-changed", G_CALLBACK (size_changed), d);
  g_signal_connect (d->height_spin, "value-changed", G_CALLBACK (size_changed), d);
  g_signal_connect (d->unit, "changed", G_CALLBACK (unit_changed), d);
  return grid;
}

/* ------------------------------------------------------------ model */

/* Detail means something only for two-decoder (LIIF-GAN) models; known before the preview loads it. A model the user
 * picks brings its own detail (liif.detail in its file, else 1); at the dialog's start the detail stays what the
 * caller or the last run gave. */
static void
model_changed (GtkComboBox *combo, Dialog *d)
{
  const gchar *id = gtk_combo_box_get_active_id (combo);
  gchar       *file, *title = NULL;
  gint         decoders;
  gdouble      detail;

  if (id == NULL)
    return;
  g_object_set (d->config, "model", id, NULL);
  file = liif_model_resolve (id, NULL);
  if (file != NULL)
    title = liif_model_card_title (file);
  gtk_label_set_text (GTK_LABEL (d->model_about),
                      title ? title : _("No description (no model card beside the file)."));
  gtk_widget_set_tooltip_text (GTK_WIDGET (combo), file);

  decoders = liif_model_decoders (id, &detail);
  if (decoders == 2 && d->picked)
    {
      g_object_set (d->config, "detail", detail, NULL);
      if (logging ())
        fprintf (stderr, "liif-dialog: detail set to the model's own, %.2f\n", detail);
    }
  gtk_widget_set_sensitive (d->detail, decoders == 2);
  gtk_widget_set_tooltip_text (d->detail, decoders == 2
    ? _("How much fine texture the model invents: 0 = faithful to the original, "
        "1 = the sharpest invented detail.")
    : _("Only for models with a detail decoder (LIIF-GAN); this model shows only what the photo holds."));
  if (logging ())
    fprintf (stderr, "liif-dialog: model %s (%s): %d decoders, detail %s\n", id, title ? title : "no card",
             decoders, decoders == 2 ? "enabled" : "disabled");
  g_free (title);
  g_free (file);
}

/* A model given by path (Browse…, or a script) joins the list under its file name. */
static void
add_model_path (Dialog *d, const gchar *path)
{
  gchar *base = g_path_get_basename (path);

  gtk_combo_box_text_prepend (GTK_COMBO_BOX_TEXT (d->model_combo), path, base);
  g_free (base);
}

static void
browse_clicked (GtkButton *button, Dialog *d)
{
  GtkWidget     *chooser;
  GtkFileFilter *filter = gtk_file_filter_new ();

  (void) button;
  chooser = gtk_file_chooser_dialog_new (_("Choose a LIIF model"), GTK_WINDOW (d->dialog),
                                         GTK_FILE_CHOOSER_ACTION_OPEN,
                                         _("_Cancel"), GTK_RESPONSE_CANCEL,
                                         _("_Open"), GTK_RESPONSE_ACCEPT, NULL);
  gtk_file_filter_set_name (filter, _("Models (*.safetensors)"));
  gtk_file_filter_add_pattern (filter, "*.safetensors");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), filter);
  if (gtk_dialog_run (GTK_DIALOG (chooser)) == GTK_RESPONSE_ACCEPT)
    {
      gchar *path = gtk_file_chooser_get_filename (GTK_FILE_CHOOSER (chooser));

      if (! gtk_combo_box_set_active_id (GTK_COMBO_BOX (d->model_combo), path))
        {
          add_model_path (d, path);
          gtk_combo_box_set_active_id (GTK_COMBO_BOX (d->model_combo), path);
        }
      g_free (path);
    }
  gtk_widget_destroy (chooser);
}

static void
folder_clicked (GtkButton *button, Dialog *d)
{
  gchar  *dir   = liif_user_model_dir ();
  gchar  *uri   = g_filename_to_uri (dir, NULL, NULL);
  GError *error = NULL;

  (void) button;
  g_mkdir_with_parents (dir, 0755);
  if (! gtk_show_uri_on_window (GTK_WINDOW (d->dialog), uri, GDK_CURRENT_TIME, &error))
    {
      g_message (_("Could not open “%s”: %s"), dir, error->message);
      g_clear_error (&error);
    }
  g_free (uri);
  g_free (dir);
}

/* Installed and user-folder models, each with its card's one-line description; Browse… for any file. */
static GtkWidget *
model_choice (Dialog *d)
{
  GtkWidget *grid   = gtk_grid_new ();
  GtkWidget *browse = gtk_button_new_with_mnemonic (_("_Browse…"));
  GtkWidget *folder = gtk_button_new_from_icon_name ("folder", GTK_ICON_SIZE_BUTTON);
  gchar    **names  = liif_model_list ();
  gchar     *model  = NULL;
  gchar     *user   = liif_user_model_dir ();
  gchar     *tip;

  d->model_combo = gtk_combo_box_text_new ();
  d->model_about = hint_label (NULL);
  gtk_widget_set_hexpand (d->model_combo, TRUE);
  g_object_get (d->config, "model", &model, NULL);
  for (gint i = 0; names[i] != NULL; i++)
    gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (d->model_combo), names[i], names[i]);
  if (model != NULL && model[0] != '\0' && ! g_strv_contains ((const gchar * const *) names, model))
    add_model_path (d, model);
  if (logging ())
    for (gint i = 0; names[i] != NULL; i++)
      fprintf (stderr, "liif-dialog: model listed: %s\n", names[i]);
  if (logging () && model != NULL && model[0] != '\0' && ! g_strv_contains ((const gchar * const *) names, model))
    fprintf (stderr, "liif-dialog: model listed: %s\n", model);
  /* the named model, else the shipped default, else the first */
  if ((model == NULL || model[0] == '\0' ||
       ! gtk_combo_box_set_active_id (GTK_COMBO_BOX (d->model_combo), model)) &&
      ! gtk_combo_box_set_active_id (GTK_COMBO_BOX (d->model_combo), "default"))
    gtk_combo_box_set_active (GTK_COMBO_BOX (d->model_combo), 0);

  tip = g_strdup_printf (_("Open your models folder, %s: .safetensors files put there are listed here."), user);
  gtk_widget_set_tooltip_text (folder, tip);
  gtk_widget_set_tooltip_text (browse, _("Use a .safetensors model file from anywhere"));
  g_signal_connect (browse, "clicked", G_CALLBACK (browse_clicked), d);
  g_signal_connect (folder, "clicked", G_CALLBACK (folder_clicked), d);

  gtk_grid_set_column_spacing (GTK_GRID (grid), 6);
  gtk_grid_set_row_spacing (GTK_GRID (grid), 2);
  gtk_grid_attach (GTK_GRID (grid), row_label (_("_Model"), d->model_combo), 0, 0, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), d->model_combo, 1, 0, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), browse, 2, 0, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), folder, 3, 0, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), d->model_about, 1, 1, 3, 1);

  g_free (tip);
  g_free (user);
  g_free (model);
  g_strfreev (names);
  return grid;
}

/* ------------------------------------------------------------ device */

static void
device_changed (GtkComboBox *combo, Dialog *d)
{
  const gchar *id = gtk_combo_box_get_active_id (combo);

  if (id != NULL)
    g_object_set (d->config, "device", id, NULL);
}

/* Only what works here: the GPU (by name) when the CUDA module loads and finds one; else the CPU and why. */
static GtkWidget *
device_choice (Dialog *d)
{
  GtkWidget *grid  = gtk_grid_new ();
  GtkWidget *combo = gtk_combo_box_text_new ();
  gchar      name[256], reason[400];
  gchar     *device = NULL, *cut;
  gboolean   gpu = liif_cuda_probe (name, sizeof name, reason, sizeof reason);

  if ((cut = strstr (name, " (")) != NULL) /* "NVIDIA H200 (sm_90, 132 SMs)": the name is enough */
    *cut = '\0';
  g_object_get (d->config, "device", &device, NULL);
  if (gpu)
    {
      gchar *label = g_strdup_printf (_("GPU: %s"), name);

      gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (combo), "auto", _("Automatic (the GPU)"));
      gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (combo), "gpu", label);
      g_free (label);
    }
  gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (combo), "cpu", _("CPU"));
  if (! gtk_combo_box_set_active_id (GTK_COMBO_BOX (combo), device))
    gtk_combo_box_set_active_id (GTK_COMBO_BOX (combo), "cpu");
  if (g_strcmp0 (device, "gpu") == 0 && ! gpu)
    g_object_set (d->config, "device", "cpu", NULL);
  if (logging ())
    fprintf (stderr, "liif-dialog: devices: %scpu%s%s\n", gpu ? "auto gpu " : "",
             gpu ? "" : "; no GPU: ", gpu ? "" : reason);
  g_signal_connect (combo, "changed", G_CALLBACK (device_changed), d);
  gtk_widget_set_hexpand (combo, TRUE);
  gtk_widget_set_tooltip_text (combo, _("Where the model runs. A GPU is offered when this machine has one "
                                        "that LIIF can use."));

  gtk_grid_set_column_spacing (GTK_GRID (grid), 6);
  gtk_grid_attach (GTK_GRID (grid), row_label (_("De_vice"), combo), 0, 0, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), combo, 1, 0, 1, 1);
  if (! gpu)
    {
      /* the engine's reason is English; its fixed ones (LIIF_N_ in core/) are in this catalog too */
      gchar *text = g_strdup_printf (_("No GPU offered: %s."), reason[0] ? _(reason) : "");

      if (logging ())
        fprintf (stderr, "liif-dialog: device note: %s\n", text);

      gtk_grid_attach (GTK_GRID (grid), hint_label (text), 1, 1, 1, 1);
      g_free (text);
    }
  g_free (device);
  return grid;
}

/* ------------------------------------------------------------ layers */

/* A layer with alpha whose every pixel is fully transparent. */
static gboolean
layer_is_empty (GimpDrawable *drawable)
{
  gint        w = gimp_drawable_get_width (drawable), h = gimp_drawable_get_height (drawable);
  guchar     *alpha;
  GeglBuffer *buffer;
  gboolean    empty = TRUE;

  if (! gimp_drawable_has_alpha (drawable) || (alpha = g_try_malloc ((gsize) w * h)) == NULL)
    return FALSE;
  buffer = gimp_drawable_get_buffer (drawable);
  gegl_buffer_get (buffer, GEGL_RECTANGLE (0, 0, w, h), 1.0, babl_format ("A u8"), alpha,
                   GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref (buffer);
  for (gsize i = 0; empty && i < (gsize) w * h; i++)
    empty = alpha[i] == 0;
  g_free (alpha);
  return empty;
}

/* Names the image and the layers the model works on, with a note for each one it cannot help;
 * picks the drawable to preview (the first pixel layer with content). */
static GtkWidget *
layer_header (Dialog *d, GimpDrawable **preview_drawable)
{
  GtkWidget *box   = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
  GString   *names = g_string_new (NULL);
  GFile     *file  = gimp_image_get_file (d->image);
  gchar     *image_name;
  gchar     *text;
  GtkWidget *label;
  gint       n = 0;

  if (file == NULL)
    file = gimp_image_get_imported_file (d->image);
  image_name = file ? g_file_get_basename (file) : gimp_image_get_name (d->image);
  g_clear_object (&file);
  d->layers_ok = TRUE;
  *preview_drawable = NULL;
  for (gint i = 0; d->drawables != NULL && d->drawables[i] != NULL; i++)
    {
      GimpDrawable *dr   = d->drawables[i];
      const gchar  *name = gimp_item_get_name (GIMP_ITEM (dr));
      gchar        *note = NULL;

      if (! GIMP_IS_LAYER (dr))
        note = g_strdup_printf (_("“%s” is a channel or a mask, not a layer: select a layer."), name);
      else if (gimp_item_is_group (GIMP_ITEM (dr)))
        note = g_strdup_printf (_("“%s” is a layer group: select the layers inside it."), name);
      else if (layer_is_empty (dr))
        note = g_strdup_printf (_("“%s” is empty (fully transparent): the model has nothing to upscale "
                                  "there. Select the layer that holds the photo."), name);
      else if (*preview_drawable == NULL)
        *preview_drawable = dr;
      if (note != NULL)
        {
          GtkWidget *l = hint_label (NULL);

          if (! GIMP_IS_LAYER (dr) || gimp_item_is_group (GIMP_ITEM (dr)))
            d->layers_ok = FALSE;
          set_note (l, note, TRUE);
          gtk_box_pack_end (GTK_BOX (box), l, FALSE, FALSE, 0);
          g_free (note);
        }
      if (n++ > 0)
        g_string_append (names, ", ");
      /* TRANSLATORS: a layer's name in quotes */
      g_string_append_printf (names, _("“%s”"), name);
    }
  text = g_strdup_printf (ngettext ("%s (%d × %d): the model upscales the layer %s; the other layers "
                                    "are scaled as Image > Scale Image does.",
                                    "%s (%d × %d): the model upscales the layers %s; the other layers "
                                    "are scaled as Image > Scale Image does.", n),
                          image_name, d->img_w, d->img_h, names->str);
  label = hint_label (NULL);
  gtk_label_set_max_width_chars (GTK_LABEL (label), 90);
  gimp_label_set_attributes (GTK_LABEL (label), PANGO_ATTR_SCALE, PANGO_SCALE_MEDIUM, -1);
  gtk_label_set_text (GTK_LABEL (label), text);
  gtk_box_pack_start (GTK_BOX (box), label, FALSE, FALSE, 0);
  if (logging ())
    fprintf (stderr, "liif-dialog: header: %s\n", text);
  g_free (text);
  g_free (image_name);
  g_string_free (names, TRUE);
  return box;
}

/* ------------------------------------------------------------ the dialog */

static void
rate_known (GObject *preview, GParamSpec *pspec, Dialog *d)
{
  (void) preview;
  (void) pspec;
  update_notes (d);
}

/* The preview tried to deblock the layer: say why it could not (the final render would not either). */
static void
deblock_known (GObject *preview, GParamSpec *pspec, Dialog *d)
{
  (void) pspec;
  set_note (d->deblock_note, liif_preview_get_deblock_note (LIIF_PREVIEW (preview)), TRUE);
  update_notes (d); /* the time estimate counts deblocking */
}

/* "Remove JPEG artifacts": offered for an image opened from a JPEG file. */
static GtkWidget *
deblock_control (Dialog *d)
{
  GtkWidget *check = gimp_procedure_dialog_get_widget (GIMP_PROCEDURE_DIALOG (d->dialog), "deblock", G_TYPE_NONE);
  gchar     *jpeg  = liif_image_jpeg_file (d->image);

  if (jpeg != NULL)
    {
      gchar *name = g_filename_display_basename (jpeg);
      gchar *tip  = g_strdup_printf (_("Smooths the blocks and ringing of JPEG compression in %s before upscaling, "
                                       "while keeping everything the file says, so the model does not enlarge "
                                       "them (+0.5 dB at JPEG quality 50). The layer must still hold the file's "
                                       "pixels. About half a second per megapixel; the preview shows it on the "
                                       "model's side."), name);

      gtk_widget_set_tooltip_text (check, tip);
      g_free (tip);
      g_free (name);
    }
  else
    {
      g_object_set (d->config, "deblock", FALSE, NULL);
      gtk_widget_set_sensitive (check, FALSE);
      gtk_widget_set_tooltip_text (check, _("For images opened from a JPEG file; this one was not."));
    }
  if (logging ())
    fprintf (stderr, "liif-dialog: JPEG artifacts: %s\n", jpeg ? jpeg : "not offered (no JPEG file)");
  g_free (jpeg);
  return check;
}

/* The scale slider: 1..16, steps of 0.05 by keyboard. */
static GtkWidget *
scale_control (Dialog *d)
{
  GtkWidget *scale = gimp_procedure_dialog_get_scale_entry (GIMP_PROCEDURE_DIALOG (d->dialog), "scale", 1.0);

  gimp_scale_entry_set_bounds (GIMP_SCALE_ENTRY (scale), 1.0, DIALOG_MAX_SCALE, TRUE);
  gimp_label_spin_set_digits (GIMP_LABEL_SPIN (scale), 2); /* first: setting digits re-estimates the increments */
  gimp_label_spin_set_increments (GIMP_LABEL_SPIN (scale), 0.05, 0.5);
  gtk_widget_set_tooltip_text (scale, _("How many times larger the image becomes (both sides). "
                                        "Arrow keys: steps of 0.05; Page Up/Down: 0.5."));
  g_signal_connect (gimp_label_spin_get_spin_button (GIMP_LABEL_SPIN (scale)), "input",
                    G_CALLBACK (scale_input), d);
  return scale;
}

gboolean
liif_dialog_run (GimpProcedure *procedure, GimpProcedureConfig *config, GimpImage *image,
                 GimpDrawable **drawables)
{
  Dialog        d       = { 0 };
  GError       *error   = NULL;
  GimpDrawable *shown   = NULL;
  GtkWidget    *content, *hbox, *controls, *header, *link, *precision, *ensemble, *deblock;
  gchar        *help_uri;
  gdouble       sx, sy;
  gint          w, h;
  gboolean      ok;

  gimp_ui_init (LIIF_PLUG_IN_BINARY);
  d.config    = config;
  d.image     = image;
  d.drawables = drawables;
  d.img_w     = gimp_image_get_width (image);
  d.img_h     = gimp_image_get_height (image);

  /* Start the slider where the last run (or script) left the horizontal factor, within the range. */
  g_object_get (config, "scale-x", &sx, "scale-y", &sy, "width", &w, "height", &h, NULL);
  if (w > 0)
    sx = (gdouble) w / d.img_w;
  if (sx != limit_scale (&d, sx))
    g_object_set (config, "scale-x", limit_scale (&d, sx), "scale-y", limit_scale (&d, sx),
                  "width", 0, "height", 0, NULL);
  g_object_set (config, "scale", limit_scale (&d, sx), NULL);

  d.dialog = gimp_procedure_dialog_new (procedure, config, _("LIIF Upscale"));
  gtk_window_set_resizable (GTK_WINDOW (d.dialog), TRUE);
  content  = gtk_box_new (GTK_ORIENTATION_VERTICAL, 8);
  gtk_container_set_border_width (GTK_CONTAINER (content), 12);
  gtk_box_pack_start (GTK_BOX (gtk_dialog_get_content_area (GTK_DIALOG (d.dialog))), content, TRUE, TRUE, 0);

  header = layer_header (&d, &shown);
  gtk_box_pack_start (GTK_BOX (content), header, FALSE, FALSE, 0);

  hbox = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);
  gtk_box_pack_start (GTK_BOX (content), hbox, TRUE, TRUE, 0);
  if (shown == NULL && drawables != NULL && drawables[0] != NULL && GIMP_IS_LAYER (drawables[0]) &&
      ! gimp_item_is_group (GIMP_ITEM (drawables[0])))
    shown = drawables[0]; /* an empty layer: the preview shows it is empty */
  if (shown != NULL)
    d.preview = liif_preview_new (image, shown, &error);
  if (d.preview != NULL)
    gtk_box_pack_start (GTK_BOX (hbox), d.preview, TRUE, TRUE, 0);
  else
    gtk_box_pack_start (GTK_BOX (hbox), hint_label (error ? error->message : _("No preview.")), FALSE, FALSE, 0);
  g_clear_error (&error);

  controls = gtk_box_new (GTK_ORIENTATION_VERTICAL, 8);
  gtk_widget_set_hexpand (controls, FALSE); /* the preview takes the room the dialog gains */
  gtk_box_pack_start (GTK_BOX (hbox), controls, FALSE, FALSE, 0);

  d.scale = scale_control (&d);
  gtk_box_pack_start (GTK_BOX (controls), d.scale, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (controls), size_fields (&d), FALSE, FALSE, 0);
  d.size_note   = hint_label (NULL);
  d.memory_note = note_label (2);
  d.time_note   = note_label (2);
  gtk_box_pack_start (GTK_BOX (controls), d.size_note, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (controls), d.memory_note, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (controls), d.time_note, FALSE, FALSE, 0);

  d.detail = gimp_procedure_dialog_get_scale_entry (GIMP_PROCEDURE_DIALOG (d.dialog), "detail", 1.0);
  gtk_box_pack_start (GTK_BOX (controls), model_choice (&d), FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (controls), d.detail, FALSE, FALSE, 0);
  if (logging ())
    {
      g_signal_connect_after (gimp_label_spin_get_spin_button (GIMP_LABEL_SPIN (d.detail)), "size-allocate",
                              G_CALLBACK (control_allocated), (gpointer) "detail field");
      g_signal_connect_after (d.model_combo, "size-allocate", G_CALLBACK (control_allocated), (gpointer) "model list");
    }
  model_changed (GTK_COMBO_BOX (d.model_combo), &d);
  d.picked = TRUE; /* from now on a change of model is the user's */
  g_signal_connect (d.model_combo, "changed", G_CALLBACK (model_changed), &d);
  gtk_box_pack_start (GTK_BOX (controls), device_choice (&d), FALSE, FALSE, 0);
  precision = gimp_procedure_dialog_get_widget (GIMP_PROCEDURE_DIALOG (d.dialog), "precision", G_TYPE_NONE);
  gtk_widget_set_tooltip_text (precision, _("Fast: bf16 products on processors that have them, integer products on "
                                            "other processors, TF32 on a GPU; within one level in 255 of Exact on "
                                            "nearly every pixel. The preview always uses Fast."));
  gtk_box_pack_start (GTK_BOX (controls), precision, FALSE, FALSE, 0);
  ensemble = gimp_procedure_dialog_get_widget (GIMP_PROCEDURE_DIALOG (d.dialog), "ensemble", G_TYPE_NONE);
  gtk_widget_set_tooltip_text (ensemble, _("The mean of the model's results for the image turned 8 ways: edges a "
                                           "little cleaner and closer to the original (+0.2 dB on photographs), "
                                           "about 8 times the time. The preview shows the plain model."));
  gtk_box_pack_start (GTK_BOX (controls), ensemble, FALSE, FALSE, 0);
  deblock = deblock_control (&d);
  gtk_box_pack_start (GTK_BOX (controls), deblock, FALSE, FALSE, 0);
  d.deblock_note = hint_label (NULL);
  gtk_box_pack_start (GTK_BOX (controls), d.deblock_note, FALSE, FALSE, 0);

  help_uri = liif_help_page_uri ();
  link     = gtk_link_button_new_with_label (help_uri, _("How LIIF Upscale works"));
  g_free (help_uri);
  gtk_widget_set_halign (link, GTK_ALIGN_START);
  gtk_widget_set_tooltip_text (link, _("The plug-in’s help page: models, sizes, devices, batch use"));
  gtk_box_pack_end (GTK_BOX (controls), link, FALSE, FALSE, 0);

  g_signal_connect (config, "notify", G_CALLBACK (config_notify), &d);
  if (d.preview != NULL)
    {
      g_signal_connect (d.preview, "notify::seconds-per-pixel", G_CALLBACK (rate_known), &d);
      g_signal_connect (d.preview, "notify::deblock-note", G_CALLBACK (deblock_known), &d);
    }
  gtk_widget_show_all (d.dialog);
  set_note (d.deblock_note, "", FALSE);
  update_notes (&d);
  update_preview (&d);

  ok = gimp_procedure_dialog_run (GIMP_PROCEDURE_DIALOG (d.dialog));

  g_signal_handlers_disconnect_by_data (config, &d);
  if (d.preview_timeout != 0)
    g_source_remove (d.preview_timeout);
  gtk_widget_destroy (d.dialog);
  return ok;
}
