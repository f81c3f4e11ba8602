/* ui/gimp/liif-dialog.h: the "LIIF Upscale" dialog (GimpProcedureDialog, size fields, model choice, live preview). */
#ifndef LIIF_DIALOG_H
#define LIIF_DIALOG_H

#include <libgimp/gimp.h>

/* Shows the dialog bound to config; TRUE when the user pressed OK. */
gboolean liif_dialog_run (GimpProcedure *procedure, GimpProcedureConfig *config,
                          GimpImage *image, GimpDrawable **drawables);

#endif
