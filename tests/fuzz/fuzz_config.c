/* fuzz_config.c: libFuzzer harness: the `liif train` config reader (INI text, every key range-checked).
 * train.c is compiled into the harness so its static parser is reachable; cli_error is replaced by a
 * check that every message is one printable line. */
#include <stdarg.h>

#include "../../ui/cli/train.c"

void cli_error(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (const char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            abort(); /* a message must stay one line, without terminal escapes */
}

int cli_exit_for_status(liif_status s) { return s == LIIF_OK ? CLI_EXIT_OK : CLI_EXIT_RUNTIME; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    run_config c;
    if (config_parse(text, "fuzz.ini", &c) == 0) {
        /* what the trainer then sizes its buffers from */
        if (c.inp_size < 4 || c.inp_size > 512 || c.batch < 1 || c.sample_q < 1 || c.steps < 1 ||
            c.n_hidden < 1 || c.n_hidden > LIIF_MAX_HIDDEN || !(c.scale_max >= c.scale_min))
            abort();
        long long hr = (long long)ceil(c.inp_size * c.scale_max);
        if (hr > 2048) abort();
    }
    config_free(&c);
    free(text);
    return 0;
}
