/* eval.h: the `liif eval` subcommand (benchmark a model against bicubic on a folder of PNGs). */
#ifndef LIIF_CLI_EVAL_H
#define LIIF_CLI_EVAL_H

/* `liif eval ...`: argv[0] is "eval". Returns the exit code (cli.h). */
int cli_eval_main(int argc, char **argv);

#include <glib.h>

/* The *.png, *.jpg and *.jpeg files of dir (not hidden), sorted by name; NULL after a one-line error when the folder
 * cannot be read or holds none. */
GPtrArray *cli_list_images(const char *dir);

#endif
