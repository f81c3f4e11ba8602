/* ui/gimp/liif-preview.h: live before/after preview: GIMP's Cubic | the LIIF result, at output resolution. */
#ifndef LIIF_PREVIEW_H
#define LIIF_PREVIEW_H

#include <libgimp/gimpui.h>

#include "liif-render.h"

#define LIIF_TYPE_PREVIEW (liif_preview_get_type ())
G_DECLARE_FINAL_TYPE (LiifPreview, liif_preview, LIIF, PREVIEW, GtkGrid)

/* A preview of drawable's LIIF result; reads the layer's pixels once (main thread). */
GtkWidget *liif_preview_new        (GimpImage *image, GimpDrawable *drawable, GError **error);

/* New parameters: the image's output size and the model settings. Shows GIMP's Cubic at
 * once, cancels the work in flight and renders the model's half of the view in a worker
 * thread; never blocks. */
void       liif_preview_set_params (LiifPreview *preview, const gchar *model, liif_backend_kind device,
                                    gdouble detail, gboolean deblock, gint image_out_w, gint image_out_h);
/* deblock: the model's half from the layer with its JPEG artifacts removed (liif_pixels_deblocked, done once in the
 * worker); the Cubic half stays the layer as it is. Why it could not be done (translated), "" when it was or has not
 * been tried yet: property "deblock-note", notified once the worker has tried. */
const gchar *liif_preview_get_deblock_note (LiifPreview *preview);
/* Seconds deblocking the layer took in the worker (what the final render will spend on it too); 0 before, or when it
 * could not be done. Known when "deblock-note" is notified. */
gdouble    liif_preview_get_deblock_seconds (LiifPreview *preview);

/* Seconds per output pixel the model took here (the slowest render so far with this model and
 * device; 0 before the first): what the dialog's time estimate scales. Property "seconds-per-pixel". */
gdouble    liif_preview_get_seconds_per_pixel (LiifPreview *preview);
/* Whether a detail change shows at once: the model has a detail control and the preview holds renders of the
 * view at two details, which blend exactly to any other (the output is linear in the detail). */
gboolean   liif_preview_detail_is_instant (LiifPreview *preview);

#endif
