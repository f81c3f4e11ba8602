/* ui/gimp/liif-dialog.c: the "LIIF Upscale" dialog (GimpProcedureDialog, size fields, model choice, live preview). */
#include "liif-config.h"

#include <math.h>

#include <libgimp/gimpui.h>

#include "liif-dialog.h"
#include "liif-intl.h"
#include "liif-preview.h"
#include "liif-render.h"

/* The dialog's state beyond what the config holds. */
typedef struct
{
  GimpProcedureConfig *config;
  gint                 img_w, img_h;
  GtkWidget           *width_spin, *height_spin, *chain;
  GtkWidget           *detail;
  GtkWidget           *preview;   /* NULL when the layer could not be read */
  gboolean             syncing;   /* true while the dialog itself writes the config */
  guint                preview_timeout;
} Dialog;

static gint
scaled (gint size, gdouble s)
{
  return MAX (1, (gint) floor (size * s + 0.5));
}

static void
set_spins (Dialog *d, gint w, gint h)
{
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (d->width_spin), w);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (d->height_spin), h);
}

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
                             params.detail, w, h);
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

/* The scale slider drives both axes; the size fields follow it. */
static void
config_notify (GimpProcedureConfig *config, GParamSpec *pspec, Dialog *d)
{
  if (! d->syncing && g_strcmp0 (pspec->name, "scale") == 0)
    {
      gdouble s;

      d->syncing = TRUE;
      g_object_get (config, "scale", &s, NULL);
      g_object_set (config, "scale-x", s, "scale-y", s, "width", 0, "height", 0, NULL);
      set_spins (d, scaled (d->img_w, s), scaled (d->img_h, s));
      gimp_chain_button_set_active (GIMP_CHAIN_BUTTON (d->chain), TRUE);
      d->syncing = FALSE;
    }
  schedule_preview (d);
}

/* A size field was edited: the exact size wins; with the chain closed the other side keeps the aspect. */
static void
size_changed (GtkSpinButton *spin, Dialog *d)
{
  gint w, h;

  if (d->syncing)
    return;
  d->syncing = TRUE;
  w = gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (d->width_spin));
  h = gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (d->height_spin));
  if (gimp_chain_button_get_active (GIMP_CHAIN_BUTTON (d->chain)))
    {
      if (spin == GTK_SPIN_BUTTON (d->width_spin))
        h = scaled (d->img_h, (gdouble) w / d->img_w);
      else
        w = scaled (d->img_w, (gdouble) h / d->img_h);
      set_spins (d, w, h);
    }
  g_object_set (d->config,
                "width", w, "height", h,
                "scale-x", (gdouble) w / d->img_w, "scale-y", (gdouble) h / d->img_h,
                "scale", (gdouble) w / d->img_w,
                NULL);
  d->syncing = FALSE;
}

static GtkWidget *
size_fields (Dialog *d)
{
  GtkWidget *grid = gtk_grid_new ();
  GtkWidget *label;
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
  set_spins (d, w, h);

  label = gtk_label_new_with_mnemonic (_("Out_put width:"));
  gtk_label_set_xalign (GTK_LABEL (label), 0.0);
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), d->width_spin);
  gtk_grid_attach (GTK_GRID (grid), label, 0, 0, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), d->width_spin, 1, 0, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), gtk_label_new (_("px")), 2, 0, 1, 1);

  label = gtk_label_new_with_mnemonic (_("Output hei_ght:"));
  gtk_label_set_xalign (GTK_LABEL (label), 0.0);
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), d->height_spin);
  gtk_grid_attach (GTK_GRID (grid), label, 0, 1, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), d->height_spin, 1, 1, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), gtk_label_new (_("px")), 2, 1, 1, 1);

  d->chain = gimp_chain_button_new (GIMP_CHAIN_RIGHT);
  gimp_chain_button_set_active (GIMP_CHAIN_BUTTON (d->chain), fabs (sx - sy) < 1e-9);
  gtk_grid_attach (GTK_GRID (grid), d->chain, 3, 0, 1, 2);

  g_signal_connect (d->width_spin, "value-changed", G_CALLBACK (size_changed), d);
  g_signal_connect (d->height_spin, "value-changed", G_CALLBACK (size_changed), d);
  return grid;
}

static void
model_changed (GtkComboBox *combo, Dialog *d)
{
  const gchar *id = gtk_combo_box_get_active_id (combo);

  if (id != NULL)
    g_object_set (d->config, "model", id, NULL);
}

/* Installed and user-folder models; a model given by path (e.g. by a script) is listed too. */
static GtkWidget *
model_choice (Dialog *d)
{
  GtkWidget *box   = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  GtkWidget *row   = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *combo = gtk_combo_box_text_new ();
  GtkWidget *label = gtk_label_new_with_mnemonic (_("_Model:"));
  gchar    **names = liif_model_list ();
  gchar     *model = NULL;
  gchar     *user  = liif_user_model_dir ();
  gchar     *hint;

  g_object_get (d->config, "model", &model, NULL);
  if (model != NULL && model[0] != '\0' && ! g_strv_contains ((const gchar * const *) names, model))
    {
      gchar *base = g_path_get_basename (model);

      gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (combo), model, base);
      g_free (base);
    }
  for (gint i = 0; names[i] != NULL; i++)
    gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (combo), names[i], names[i]);
  /* the named model, else the shipped default, else the first */
  if ((model == NULL || model[0] == '\0' || ! gtk_combo_box_set_active_id (GTK_COMBO_BOX (combo), model)) &&
      ! gtk_combo_box_set_active_id (GTK_COMBO_BOX (combo), "default"))
    gtk_combo_box_set_active (GTK_COMBO_BOX (combo), 0);
  model_changed (GTK_COMBO_BOX (combo), d);
  g_signal_connect (combo, "changed", G_CALLBACK (model_changed), d);

  gtk_label_set_mnemonic_widget (GTK_LABEL (label), combo);
  gtk_box_pack_start (GTK_BOX (row), label, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (row), combo, TRUE, TRUE, 0);
  gtk_box_pack_start (GTK_BOX (box), row, FALSE, FALSE, 0);

  hint  = g_strdup_printf (_("Your own models go into %s"), user);
  label = gtk_label_new (hint);
  gtk_label_set_xalign (GTK_LABEL (label), 0.0);
  gtk_label_set_line_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (label), 40);
  gtk_label_set_selectable (GTK_LABEL (label), TRUE);
  gimp_label_set_attributes (GTK_LABEL (label), PANGO_ATTR_SCALE, PANGO_SCALE_SMALL, -1);
  gtk_box_pack_start (GTK_BOX (box), label, FALSE, FALSE, 0);

  g_free (hint);
  g_free (user);
  g_free (model);
  g_strfreev (names);
  return box;
}

/* The detail slider only means something for two-decoder (LIIF-GAN) models. */
static void
decoders_known (GObject *preview, GParamSpec *pspec, Dialog *d)
{
  gint n;

  (void) pspec;
  g_object_get (preview, "n-decoders", &n, NULL);
  gtk_widget_set_sensitive (d->detail, n != 1);
}

gboolean
liif_dialog_run (GimpProcedure *procedure, GimpProcedureConfig *config, GimpImage *image,
                 GimpDrawable **drawables)
{
  Dialog     d       = { 0 };
  GError    *error   = NULL;
  GtkWidget *dialog, *hbox, *controls, *scale, *device;
  gdouble    sx;
  gint       w, h;
  gboolean   ok;

  gimp_ui_init (LIIF_PLUG_IN_BINARY);
  d.config = config;
  d.img_w  = gimp_image_get_width (image);
  d.img_h  = gimp_image_get_height (image);

  /* Start the slider where the last run (or script) left the horizontal factor. */
  g_object_get (config, "scale-x", &sx, "width", &w, "height", &h, NULL);
  if (w > 0)
    sx = (gdouble) w / d.img_w;
  g_object_set (config, "scale", sx, NULL);

  dialog = gimp_procedure_dialog_new (procedure, config, _("LIIF Upscale"));

  hbox = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);
  gtk_container_set_border_width (GTK_CONTAINER (hbox), 12);
  gtk_box_pack_start (GTK_BOX (gtk_dialog_get_content_area (GTK_DIALOG (dialog))), hbox,
                      TRUE, TRUE, 0);

  if (drawables != NULL && drawables[0] != NULL)
    d.preview = liif_preview_new (image, drawables[0], &error);
  if (d.preview != NULL)
    gtk_box_pack_start (GTK_BOX (hbox), d.preview, FALSE, FALSE, 0);
  else
    gtk_box_pack_start (GTK_BOX (hbox),
                        gtk_label_new (error ? error->message : _("No preview.")), FALSE, FALSE, 0);
  g_clear_error (&error);

  controls = gtk_box_new (GTK_ORIENTATION_VERTICAL, 8);
  gtk_box_pack_start (GTK_BOX (hbox), controls, TRUE, TRUE, 0);

  scale = gimp_procedure_dialog_get_scale_entry (GIMP_PROCEDURE_DIALOG (dialog), "scale", 1.0);
  gimp_scale_entry_set_bounds (GIMP_SCALE_ENTRY (scale), 1.0, 16.0, FALSE);
  gtk_box_pack_start (GTK_BOX (controls), scale, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (controls), size_fields (&d), FALSE, FALSE, 0);

  d.detail = gimp_procedure_dialog_get_scale_entry (GIMP_PROCEDURE_DIALOG (dialog), "detail", 1.0);
  gtk_box_pack_start (GTK_BOX (controls), d.detail, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (controls), model_choice (&d), FALSE, FALSE, 0);

  device = gimp_procedure_dialog_get_widget (GIMP_PROCEDURE_DIALOG (dialog), "device", G_TYPE_NONE);
  gtk_box_pack_start (GTK_BOX (controls), device, FALSE, FALSE, 0);

  g_signal_connect (config, "notify", G_CALLBACK (config_notify), &d);
  if (d.preview != NULL)
    g_signal_connect (d.preview, "notify::n-decoders", G_CALLBACK (decoders_known), &d);
  gtk_widget_show_all (dialog);
  update_preview (&d);

  ok = gimp_procedure_dialog_run (GIMP_PROCEDURE_DIALOG (dialog));

  g_signal_handlers_disconnect_by_data (config, &d);
  if (d.preview_timeout != 0)
    g_source_remove (d.preview_timeout);
  gtk_widget_destroy (dialog);
  return ok;
}
