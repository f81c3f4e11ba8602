/* progress.c: the stderr progress bar of the liif command and its Ctrl-C (SIGINT) cancel. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "cli.h"

enum { BAR_CELLS = 30 };
#define REDRAW_INTERVAL_US (G_USEC_PER_SEC / 10) /* at most ~10 redraws per second */

static volatile sig_atomic_t sigint_seen;

struct cli_progress {
    int show;            /* draw the bar (stderr is a TTY and not --quiet) */
    int drawn;           /* a bar is on screen and must be cleared */
    gint64 start_us;     /* monotonic time of cli_progress_new */
    gint64 last_draw_us; /* throttles redraws */
    double done, span;   /* see cli_progress_set_span */
    GMutex lock;         /* the engine may report from worker threads */
    struct sigaction old_sigint;
};

static void on_sigint(int sig)
{
    (void)sig;
    sigint_seen = 1;
}

int cli_progress_interrupted(void)
{
    return sigint_seen != 0;
}

cli_progress *cli_progress_new(int show)
{
    cli_progress *p = g_new0(cli_progress, 1);
    p->show = show && isatty(STDERR_FILENO);
    p->start_us = g_get_monotonic_time();
    p->last_draw_us = p->start_us - REDRAW_INTERVAL_US;
    p->span = 1;
    g_mutex_init(&p->lock);

    /* SA_RESETHAND: a second Ctrl-C kills at once, for a cancel that seems stuck. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, &p->old_sigint);
    return p;
}

static void draw(cli_progress *p, double fraction, gint64 now_us)
{
    fraction = CLAMP(fraction, 0.0, 1.0);
    double elapsed = (double)(now_us - p->start_us) / G_USEC_PER_SEC;
    char bar[BAR_CELLS + 1];
    int filled = (int)(fraction * BAR_CELLS);
    for (int i = 0; i < BAR_CELLS; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[BAR_CELLS] = '\0';

    char eta[32] = "";
    if (fraction > 0.01)
        g_snprintf(eta, sizeof eta, "  ETA %.1f s", elapsed * (1 - fraction) / fraction);
    fprintf(stderr, "\r[%s] %3d%%  %.1f s%s\033[K", bar, (int)(fraction * 100), elapsed, eta);
    fflush(stderr);
    p->drawn = 1;
}

void cli_progress_set_span(cli_progress *p, double done, double span)
{
    g_mutex_lock(&p->lock);
    p->done = done;
    p->span = span;
    g_mutex_unlock(&p->lock);
}

int cli_progress_update(void *user, double fraction)
{
    cli_progress *p = user;
    if (p->show && g_mutex_trylock(&p->lock)) {
        gint64 now = g_get_monotonic_time();
        if (now - p->last_draw_us >= REDRAW_INTERVAL_US) {
            p->last_draw_us = now;
            draw(p, p->done + p->span * fraction, now);
        }
        g_mutex_unlock(&p->lock);
    }
    return cli_progress_interrupted();
}

void cli_progress_free(cli_progress *p)
{
    if (!p)
        return;
    if (p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    sigaction(SIGINT, &p->old_sigint, NULL);
    g_mutex_clear(&p->lock);
    g_free(p);
}
