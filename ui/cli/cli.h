/* cli.h: shared pieces of the liif command: exit codes, error reporting, subcommands. */
#ifndef LIIF_CLI_H
#define LIIF_CLI_H

#include <stddef.h>

#include "liif.h"

/* Exit codes of the liif command (also listed in `liif --help`). */
enum {
    CLI_EXIT_OK = 0,           /* success */
    CLI_EXIT_RUNTIME = 1,      /* I/O error, bad model, bad image, out of memory */
    CLI_EXIT_USAGE = 2,        /* bad option, scale or size */
    CLI_EXIT_NO_CUDA = 3,      /* --device cuda, but CUDA is not available */
    CLI_EXIT_INTERRUPTED = 130 /* SIGINT (Ctrl-C): cancelled, no output written */
};

/* Print "liif: <message>" as one line on stderr. */
void cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Exit code for an engine status: ARG -> usage, CANCELLED -> interrupted, else runtime. */
int cli_exit_for_status(liif_status s);

/* `liif upscale ...`: argv[0] is "upscale". Returns the exit code. */
int cli_upscale_main(int argc, char **argv);

/* ---------------------------------------------------------- channels.c */

/* The model's RGB view of an interleaved image of `channels` (1..4) per pixel: gray is
 * replicated, alpha dropped. rgb is w*h*3 floats. */
void cli_pixels_to_rgb(const float *px, int w, int h, int channels, float *rgb);

/* Turn n pixels of model RGB (3 floats each) into `channels` per pixel in dst:
 * gray = Rec.601 luma (0.299, 0.587, 0.114); the alpha channel (if any) is left alone. */
void cli_pixels_from_rgb(const float *rgb, size_t n, int channels, float *dst);

/* ---------------------------------------------------------- progress.c */

/* Progress bar on stderr (only when enabled and stderr is a TTY) and Ctrl-C handling. */
typedef struct cli_progress cli_progress;

/* Installs the SIGINT handler; the bar is drawn only when show is non-zero and stderr is a TTY. */
cli_progress *cli_progress_new(int show);
/* Clears the bar and restores the previous SIGINT action. */
void cli_progress_free(cli_progress *p);
/* The work done so far: fraction `done` of the whole before the current engine call, and
 * the share `span` of the whole that the current call covers. */
void cli_progress_set_span(cli_progress *p, double done, double span);
/* liif_progress_fn: draws (throttled) and returns non-zero once SIGINT arrived. */
int cli_progress_update(void *user, double fraction);
/* Non-zero once SIGINT arrived. */
int cli_progress_interrupted(void);

#endif
