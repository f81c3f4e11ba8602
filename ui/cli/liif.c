/* liif.c: entry point of the liif command: global options and subcommand dispatch.
 *
 * Exit status (see cli.h): 0 ok, 1 runtime error (I/O, bad model, bad image), 2 usage
 * error (bad option, scale or size), 3 CUDA requested but unavailable, 130 interrupted. */
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "cli.h"
#include "eval.h"
#include "liif-config.h"

void cli_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* one line, whatever the message holds */
    for (char *c = msg; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    fprintf(stderr, "liif: %s\n", msg);
}

int cli_exit_for_status(liif_status s)
{
    switch (s) {
    case LIIF_OK: return CLI_EXIT_OK;
    case LIIF_ERR_ARG: return CLI_EXIT_USAGE;
    case LIIF_ERR_CANCELLED: return CLI_EXIT_INTERRUPTED;
    default: return CLI_EXIT_RUNTIME;
    }
}

/* train.c: `liif train` and `liif export`. */
int cli_train_main(int argc, char **argv);
int cli_export_main(int argc, char **argv);

static const struct {
    const char *name;
    int (*main)(int argc, char **argv);
} commands[] = {
    {"upscale", cli_upscale_main},
    {"train", cli_train_main},
    {"export", cli_export_main},
    {"eval", cli_eval_main},
};

static const char summary[] =
    "Upscale images by any real factor with LIIF / LIIF-GAN models.\n"
    "\n"
    "Commands:\n"
    "  upscale    Upscale PNG, JPEG or WebP images (liif upscale IN OUT --scale S)\n"
    "  train      Train LIIF or LIIF-GAN on a folder of photos (liif train --config RUN.ini [--resume CKPT])\n"
    "  export     Write a checkpoint's generator for upscale (liif export CKPT OUT.safetensors [--fp16])\n"
    "  eval       Measure a model against bicubic (liif eval --model M --data DIR)\n"
    "\n"
    "Run 'liif COMMAND --help' for the options of a command.";

static const char description[] =
    "Exit status: 0 ok, 1 runtime error (I/O, bad model, bad image), 2 usage error (bad\n"
    "option, scale or size), 3 CUDA requested but unavailable, 130 interrupted (Ctrl-C).\n";

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    setlocale(LC_NUMERIC, "C"); /* messages print numbers the way options take them */
    g_set_prgname("liif");

    gboolean version = FALSE;
    const GOptionEntry entries[] = {
        {"version", 'V', 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *ctx = g_option_context_new("COMMAND [ARGS...]");
    g_option_context_set_summary(ctx, summary);
    g_option_context_set_description(ctx, description);
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_strict_posix(ctx, TRUE); /* stop at the command: its options are its own */
    GError *gerr = NULL;
    gboolean ok = g_option_context_parse(ctx, &argc, &argv, &gerr);
    g_option_context_free(ctx);
    if (!ok) {
        cli_error("%s (try 'liif --help')", gerr->message);
        g_error_free(gerr);
        return CLI_EXIT_USAGE;
    }
    if (version) {
        printf("liif %s\n", LIIF_VERSION);
        return CLI_EXIT_OK;
    }
    if (argc < 2) {
        cli_error("no command given (try 'liif --help')");
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].main(argc - 1, argv + 1);
    cli_error("unknown command '%s' (try 'liif --help')", argv[1]);
    return CLI_EXIT_USAGE;
}
