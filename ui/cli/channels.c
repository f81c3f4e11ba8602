/* channels.c: between an image's channel layout (gray, gray+alpha, RGB, RGBA) and the model's RGB. */
#include "cli.h"

void cli_pixels_to_rgb(const float *px, int w, int h, int channels, float *rgb)
{
    size_t n = (size_t)w * (size_t)h;
    for (size_t i = 0; i < n; i++) {
        const float *s = px + i * (size_t)channels;
        float *d = rgb + i * 3;
        if (channels <= 2) { /* gray (+ alpha): replicate */
            d[0] = d[1] = d[2] = s[0];
        } else {
            d[0] = s[0];
            d[1] = s[1];
            d[2] = s[2];
        }
    }
}

void cli_pixels_from_rgb(const float *rgb, size_t n, int channels, float *dst)
{
    for (size_t i = 0; i < n; i++) {
        const float *s = rgb + i * 3;
        float *d = dst + i * (size_t)channels;
        if (channels <= 2) {
            float y = 0.299f * s[0] + 0.587f * s[1] + 0.114f * s[2];
            d[0] = y < 0 ? 0 : y > 1 ? 1 : y;
        } else {
            d[0] = s[0];
            d[1] = s[1];
            d[2] = s[2];
        }
    }
}
