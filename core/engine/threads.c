/* threads.c: the OpenMP thread plan shared by every CPU path (see liif_omp_threads in internal.h). */
#include <omp.h>

#include "internal.h"

int liif_omp_threads(int want)
{
    int t = want > 0 ? want : omp_get_num_procs(), lim = omp_get_thread_limit();
    t = t < lim ? t : lim;
    omp_set_num_threads(t);
    return t;
}
