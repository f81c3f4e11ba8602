/* loader.c: finds and opens the CUDA module liif-cuda.so at run time, so that the core never links CUDA. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cuda_module.h"
#include "liif-config.h"

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const liif_cuda_module *loaded;
static char load_reason[400];

/* Opens one candidate; fills load_reason and returns NULL on failure. The module stays loaded
 * for the life of the process (its CUDA runtime must not be unloaded under live streams). */
static const liif_cuda_module *open_module(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_reason, sizeof load_reason, "cannot load the CUDA module (%s)", dlerror());
        return NULL;
    }
    liif_cuda_entry_fn entry;
    *(void **)&entry = dlsym(h, LIIF_CUDA_ENTRY); /* object-to-function pointer, as POSIX allows */
    const liif_cuda_module *mod = entry ? entry() : NULL;
    if (!mod) {
        snprintf(load_reason, sizeof load_reason, "%s is not a LIIF CUDA module (no %s)", path, LIIF_CUDA_ENTRY);
        dlclose(h);
        return NULL;
    }
    if (mod->abi != LIIF_CUDA_ABI || mod->sizeof_backend != sizeof(liif_backend) ||
        mod->sizeof_model != sizeof(liif_model) || mod->sizeof_job != sizeof(liif_decode_job)) {
        snprintf(load_reason, sizeof load_reason, "%s was built for another version of the engine (rebuild it)", path);
        dlclose(h);
        return NULL;
    }
    return mod;
}

/* Whether the NVIDIA driver's library is there; without it nothing in the module can run, and loading
 * the module anyway maps cuBLAS (hundreds of MB), which cost a CPU-only `liif upscale` ~0.4 s at start. */
static int driver_present(void)
{
    void *d = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (!d) {
        snprintf(load_reason, sizeof load_reason, "%s", LIIF_N_("no NVIDIA driver is installed (libcuda.so.1 not found)"));
        return 0;
    }
    dlclose(d);
    return 1;
}

/* Search order: $LIIF_CUDA_MODULE (alone when set, opened as it is: a test may give a module that needs no
 * driver), the build tree, the install libdir (only where the driver is installed). */
static void load(void)
{
    const char *env = getenv("LIIF_CUDA_MODULE");
    if (env && env[0]) {
        loaded = open_module(env);
        return;
    }
    const char *paths[] = {LIIF_CUDA_MODULE_BUILD, LIIF_CUDA_MODULE_INSTALL};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (access(paths[i], F_OK) == 0) {
            if (driver_present()) loaded = open_module(paths[i]);
            return;
        }
    if (LIIF_CUDA_BUILT)
        snprintf(load_reason, sizeof load_reason, "the CUDA module is missing (looked for %s; set LIIF_CUDA_MODULE)",
                 LIIF_CUDA_MODULE_INSTALL);
    else
        snprintf(load_reason, sizeof load_reason, "%s", LIIF_N_("this build has no CUDA backend"));
}

const liif_cuda_module *liif_cuda_module_get(char *reason, size_t reason_size)
{
    pthread_once(&load_once, load);
    if (!loaded && reason && reason_size) snprintf(reason, reason_size, "%s", load_reason);
    return loaded;
}

liif_backend *liif_backend_cuda_new(char *reason, size_t reason_size)
{
    const liif_cuda_module *mod = liif_cuda_module_get(reason, reason_size);
    return mod ? mod->backend_new(reason, reason_size) : NULL;
}
