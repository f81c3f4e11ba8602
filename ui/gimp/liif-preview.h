/* ui/gimp/liif-preview.h: live preview of the LIIF result at output resolution, computed in a worker thread. */
#ifndef LIIF_PREVIEW_H
#define LIIF_PREVIEW_H

#include <libgimp/gimpui.h>

#include "liif-render.h"

#define LIIF_TYPE_PREVIEW (liif_preview_get_type ())
G_DECLARE_FINAL_TYPE (LiifPreview, liif_preview, LIIF, PREVIEW, GtkGrid)

/* A preview of drawable's LIIF result; reads the layer's pixels once (main thread). */
GtkWidget *liif_preview_new        (GimpImage *image, GimpDrawable *drawable, GError **error);

/* New parameters: the image's output size and the model settings. Cancels the work in
 * flight and renders the visible region again; never blocks. The "n-decoders" property
 * tells, once a model is loaded, whether it has a detail control (2 decoders). */
void       liif_preview_set_params (LiifPreview *preview, const gchar *model, liif_backend_kind device,
                                    gdouble detail, gint image_out_w, gint image_out_h);

#endif
