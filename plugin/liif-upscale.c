/* plugin/liif-upscale.c: the GIMP 3 plug-in "LIIF Upscale": one image procedure, a thin shell over liif-render. */
#include "liif-config.h"

#include <libgimp/gimp.h>

#include "liif-dialog.h"
#include "liif-intl.h"
#include "liif-render.h"

typedef struct { GimpPlugIn parent_instance; } LiifUpscale;
typedef struct { GimpPlugInClass parent_class; } LiifUpscaleClass;

#define LIIF_TYPE_UPSCALE (liif_upscale_get_type ())
GType liif_upscale_get_type (void) G_GNUC_CONST;

G_DEFINE_TYPE (LiifUpscale, liif_upscale, GIMP_TYPE_PLUG_IN)

GIMP_MAIN (LIIF_TYPE_UPSCALE)

/* Catalogs live in the plug-in's own folder (locale/LANG/LC_MESSAGES/liif-gan.mo), as GIMP requires. */
static gboolean
liif_upscale_set_i18n (GimpPlugIn *plug_in, const gchar *name, gchar **domain, gchar **catalog_dir)
{
  (void) plug_in;
  (void) name;
  *domain      = g_strdup (GETTEXT_PACKAGE);
  *catalog_dir = g_strdup ("locale");
  return TRUE;
}

/* The help page is installed beside the binary (help/LANG/), as a GIMP help domain: the dialog's Help opens it. */
static GList *
liif_upscale_query (GimpPlugIn *plug_in)
{
  gchar *dir  = liif_help_dir ();
  GFile *file = g_file_new_for_path (dir);

  gimp_plug_in_set_help_domain (plug_in, LIIF_HELP_DOMAIN, file);
  g_object_unref (file);
  g_free (dir);
  return g_list_append (NULL, g_strdup (LIIF_PLUG_IN_PROC));
}

static GimpValueArray *
liif_upscale_run (GimpProcedure *procedure, GimpRunMode run_mode, GimpImage *image,
                  GimpDrawable **drawables, GimpProcedureConfig *config, gpointer run_data)
{
  LiifParams        params = { 0 };
  GError           *error  = NULL;
  GimpPDBStatusType status = GIMP_PDB_SUCCESS;

  (void) run_data;
  gegl_init (NULL, NULL);

  if (run_mode != GIMP_RUN_NONINTERACTIVE) /* the last run's file belongs to its image */
    g_object_set (config, "jpeg-file", NULL, NULL);
  if (run_mode == GIMP_RUN_INTERACTIVE && ! liif_dialog_run (procedure, config, image, drawables))
    return gimp_procedure_new_return_values (procedure, GIMP_PDB_CANCEL, NULL);

  liif_params_from_config (config, &params);
  if (! liif_upscale_image (image, drawables, &params, &error))
    {
      if (error != NULL && error->code == LIIF_ERR_CANCELLED)
        status = GIMP_PDB_CANCEL;
      else if (error != NULL && error->code == LIIF_ERR_ARG)
        status = GIMP_PDB_CALLING_ERROR;
      else
        status = GIMP_PDB_EXECUTION_ERROR;
    }
  liif_params_clear (&params);

  if (run_mode != GIMP_RUN_NONINTERACTIVE)
    gimp_displays_flush ();
  return gimp_procedure_new_return_values (procedure, status, error);
}

/* The procedure's arguments are its whole parameter model: the dialog and batch callers share them. */
static void
add_arguments (GimpProcedure *procedure)
{
  gimp_procedure_add_double_argument (procedure, "scale-x", _("Scale _X"),
                                      _("Horizontal scale factor (used when width and height are 0)"),
                                      0.0, LIIF_GIMP_MAX_SCALE, 2.0, G_PARAM_READWRITE);
  gimp_procedure_add_double_argument (procedure, "scale-y", _("Scale _Y"),
                                      _("Vertical scale factor (used when width and height are 0)"),
                                      0.0, LIIF_GIMP_MAX_SCALE, 2.0, G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (procedure, "width", _("_Width"),
                                   _("Exact output width of the image in pixels; 0 = from the scale "
                                     "(or from the height, keeping the aspect ratio)"),
                                   0, LIIF_MAX_SIDE, 0, G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (procedure, "height", _("_Height"),
                                   _("Exact output height of the image in pixels; 0 = from the scale "
                                     "(or from the width, keeping the aspect ratio)"),
                                   0, LIIF_MAX_SIDE, 0, G_PARAM_READWRITE);
  gimp_procedure_add_double_argument (procedure, "detail", _("_Detail"),
                                      _("LIIF-GAN models: 0 = structure only, 1 = full detail"),
                                      0.0, 1.0, 1.0, G_PARAM_READWRITE);
  gimp_procedure_add_string_argument (procedure, "model", _("_Model"),
                                      _("Installed model name, or the path of a .safetensors file; "
                                        "empty = the shipped default model"),
                                      "", G_PARAM_READWRITE);
  gimp_procedure_add_choice_argument (procedure, "device", _("De_vice"),
                                      _("Where the model runs"),
                                      gimp_choice_new_with_values (
                                        "auto", LIIF_BACKEND_AUTO, _("Automatic"), NULL,
                                        "cpu",  LIIF_BACKEND_CPU,  _("CPU"), NULL,
                                        "gpu",  LIIF_BACKEND_CUDA, _("GPU (CUDA)"), NULL,
                                        NULL),
                                      "auto", G_PARAM_READWRITE);
  /* Fast: bf16 products on processors with AVX512-BF16 or AMX, int8 hidden products on other CPUs, TF32 on
   * CUDA; measured within a level of fp32 on nearly every 8-bit sample (README, "Precision"), so it is the
   * default. Previews always use it. TF32, bf16 and int8 by name for scripts (a device without the kind
   * computes fp32). */
  gimp_procedure_add_choice_argument (procedure, "precision", _("_Precision"),
                                      _("Arithmetic of the final render"),
                                      gimp_choice_new_with_values (
                                        "fast", LIIF_PRECISION_FAST, _("Fast"), NULL,
                                        "fp32", LIIF_PRECISION_FP32, _("Exact (fp32)"), NULL,
                                        "tf32", LIIF_PRECISION_TF32, _("TF32 (GPU only)"), NULL,
                                        "bf16", LIIF_PRECISION_BF16, _("bf16"), NULL,
                                        "int8", LIIF_PRECISION_INT8, _("int8 (CPU only)"), NULL,
                                        NULL),
                                      "fast", G_PARAM_READWRITE);
  /* The self-ensemble (liif_options.ensemble): the final render only; the preview shows the plain model. */
  gimp_procedure_add_boolean_argument (procedure, "ensemble", _("Best _quality (8 turns)"),
                                       _("Average the model's results for the image turned 8 ways (flips and "
                                         "transposes): a little closer to the original, about 8 times the time"),
                                       FALSE, G_PARAM_READWRITE);
  /* JPEG deblocking (liif_pixels_deblocked): the layer must still hold the pixels of the JPEG the image came from. */
  gimp_procedure_add_boolean_argument (procedure, "deblock", _("Remove _JPEG artifacts"),
                                       _("First smooth the blocks and ringing of JPEG compression, keeping what "
                                         "the file says; for a layer that still holds the pixels of the JPEG the "
                                         "image was opened from"),
                                       FALSE, G_PARAM_READWRITE);
  /* For scripts: an image loaded by gimp-file-load has no file of its own. Not in the dialog, nor kept between runs. */
  gimp_procedure_add_file_argument (procedure, "jpeg-file", _("JPEG _file"),
                                    _("The JPEG file the layer was decoded from, for deblock; none = the file the "
                                      "image was opened from"),
                                    GIMP_FILE_CHOOSER_ACTION_OPEN, TRUE, NULL, G_PARAM_READWRITE);
  /* The dialog's one scale slider (both axes); saved with the other values. */
  gimp_procedure_add_double_aux_argument (procedure, "scale", _("Sc_ale"),
                                          _("Scale factor of both axes"),
                                          0.0, LIIF_GIMP_MAX_SCALE, 2.0, G_PARAM_READWRITE);
}

static GimpProcedure *
liif_upscale_create_procedure (GimpPlugIn *plug_in, const gchar *name)
{
  GimpProcedure *procedure;

  if (g_strcmp0 (name, LIIF_PLUG_IN_PROC) != 0)
    return NULL;

  procedure = gimp_image_procedure_new (plug_in, name, GIMP_PDB_PROC_TYPE_PLUGIN,
                                        liif_upscale_run, NULL, NULL);
  gimp_procedure_set_image_types (procedure, "RGB*, GRAY*");
  gimp_procedure_set_sensitivity_mask (procedure, GIMP_PROCEDURE_SENSITIVE_DRAWABLE |
                                                  GIMP_PROCEDURE_SENSITIVE_DRAWABLES);
  gimp_procedure_set_menu_label (procedure, _("_LIIF Upscale..."));
  gimp_procedure_add_menu_path (procedure, "<Image>/Filters/Enhance");
  gimp_procedure_add_menu_path (procedure, "<Image>/Image/[Scale]"); /* next to Scale Image… */
  gimp_procedure_set_documentation (procedure,
                                    _("Enlarge the image by any factor with a LIIF or LIIF-GAN model"),
                                    _("Scales the image like Image > Scale Image; the selected layers "
                                      "are upscaled by the neural model, the other layers with "
                                      "GIMP's interpolation. One undo step takes it back."),
                                    name);
  gimp_procedure_set_attribution (procedure, "LIIF-GAN authors", "LIIF-GAN authors", "2025");
  add_arguments (procedure);
  return procedure;
}

static void
liif_upscale_class_init (LiifUpscaleClass *klass)
{
  GimpPlugInClass *plug_in_class = GIMP_PLUG_IN_CLASS (klass);

  plug_in_class->query_procedures = liif_upscale_query;
  plug_in_class->create_procedure = liif_upscale_create_procedure;
  plug_in_class->set_i18n         = liif_upscale_set_i18n;
}

static void
liif_upscale_init (LiifUpscale *self)
{
  (void) self;
}
