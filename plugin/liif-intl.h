/* plugin/liif-intl.h: gettext for the plug-in and its dialog (domain LIIF_GETTEXT_PACKAGE from liif-config.h). */
#ifndef LIIF_INTL_H
#define LIIF_INTL_H

#include "liif-config.h"

#ifndef GETTEXT_PACKAGE
#define GETTEXT_PACKAGE LIIF_GETTEXT_PACKAGE
#endif
#include <glib/gi18n-lib.h>

#endif
