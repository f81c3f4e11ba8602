/* cuda_util.h: the CUDA tests' and benchmarks' start: the module and a backend, or exit 77 with the reason. */
#ifndef LIIF_CUDA_UTIL_H
#define LIIF_CUDA_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_module.h"

/* The module and a backend on device 0, its name and free memory printed; without one, prints
 * "SKIP: CUDA unavailable: <reason>" and exits 77 (meson's skip). */
static inline liif_backend *tc_gpu_or_skip(const liif_cuda_module **mod)
{
    char reason[400];
    liif_backend *be = NULL;
    *mod = liif_cuda_module_get(reason, sizeof reason);
    if (*mod) be = (*mod)->backend_new(reason, sizeof reason);
    if (!be) {
        printf("SKIP: CUDA unavailable: %s\n", reason);
        exit(77);
    }
    char name[256];
    size_t free_b = 0, total_b = 0;
    if ((*mod)->device_info(name, sizeof name, &free_b, &total_b) == 0)
        printf("device: %s, %.1f of %.1f GiB free\n", name, free_b / 1073741824.0, total_b / 1073741824.0);
    return be;
}

/* The device's compute capability (device_info's "sm_XY"; 0 if unknown): the tensor-core kernels need 80. */
static inline int tc_device_sm(const liif_cuda_module *mod)
{
    char name[256];
    size_t fr, tot;
    const char *p = mod->device_info(name, sizeof name, &fr, &tot) == 0 ? strstr(name, "(sm_") : NULL;
    return p ? atoi(p + 4) : 0;
}

#endif
