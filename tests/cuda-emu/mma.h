/* mma.h of the CUDA emulation (tests/cuda-emu): the warp matrix functions (nvcuda::wmma) the module uses, for
 * m16n16k16 with bf16 operands and m16n16k8 with TF32 operands, float accumulators.
 *
 * As on a GPU, a fragment is spread over the 32 lanes of a warp and its layout is unspecified: here lane l holds the
 * elements l, l + 32, l + 64, ... of the fragment's matrix in row-major order (not the hardware's layout, so code that
 * assumes one shows it). Loads and stores are lane-local; mma_sync exchanges the operands among the warp's lanes
 * through a per-warp area, between two warp barriers, so it must run in a cooperative kernel (one that uses
 * __shared__ or __syncthreads) with every lane of the warp. Products are exact in float (bf16 x bf16 and TF32 x TF32
 * both fit a float significand) and summed in k order onto the accumulator.
 *
 * Loads and stores check the hardware's alignment rules (pointer 32 bytes, ldm a multiple of 16 bytes).
 * A TF32 operand must hold TF32 values (the low 13 bits of each float zero: wmma::__float_to_tf32 makes them); the
 * emulation aborts on one that does not, since the hardware's use of the extra bits is unspecified. */
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <type_traits>

#include "cuda_bf16.h"
#include "cuda_runtime.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
namespace precision {
struct tf32 {};
}
enum layout_t { mem_row_major, mem_col_major };

/* Rows and columns of a fragment's matrix: A is M x K, B is K x N, the accumulator M x N. */
template <class Use, int M, int N, int K> struct emu_dims;
template <int M, int N, int K> struct emu_dims<matrix_a, M, N, K> { enum { R = M, C = K }; };
template <int M, int N, int K> struct emu_dims<matrix_b, M, N, K> { enum { R = K, C = N }; };
template <int M, int N, int K> struct emu_dims<accumulator, M, N, K> { enum { R = M, C = N }; };

template <class T> struct emu_storage { typedef T type; };
template <> struct emu_storage<precision::tf32> { typedef float type; };

static inline float emu_value(float v) { return v; }
static inline float emu_value(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment {
    enum { R = emu_dims<Use, M, N, K>::R, C = emu_dims<Use, M, N, K>::C, num_elements = R * C / 32 };
    typedef typename emu_storage<T>::type storage_element_type;
    typedef T element_type;
    storage_element_type x[num_elements];
};

static inline unsigned emu_lane(void) { return threadIdx.x & 31u; }

static inline float __float_to_tf32(float f) { return emu_tf32(f); }

/* The hardware's rules for a load or store: the pointer 256-bit aligned, ldm a multiple of 16 bytes. */
static inline void emu_check_ptr(const void *p, unsigned ldm, size_t elem, const char *what)
{
    if ((uintptr_t)p % 32 || ((size_t)ldm * elem) % 16) {
        fprintf(stderr, "cuda-emu: wmma::%s with a pointer not 32-byte aligned or an ldm (%u) not a multiple of 16 bytes\n",
                what, ldm);
        abort();
    }
}

template <class Use, int M, int N, int K, class T, class L, class P>
static inline void load_matrix_sync(fragment<Use, M, N, K, T, L> &f, const P *p, unsigned ldm)
{
    typedef fragment<Use, M, N, K, T, L> F;
    emu_check_ptr(p, ldm, sizeof(P), "load_matrix_sync");
    for (int e = 0; e < F::num_elements; e++) {
        unsigned idx = (unsigned)e * 32u + emu_lane(), r = idx / F::C, c = idx % F::C;
        f.x[e] = p[std::is_same<L, col_major>::value ? (size_t)c * ldm + r : (size_t)r * ldm + c];
    }
}

template <int M, int N, int K>
static inline void store_matrix_sync(float *p, const fragment<accumulator, M, N, K, float> &f, unsigned ldm, layout_t l)
{
    typedef fragment<accumulator, M, N, K, float> F;
    emu_check_ptr(p, ldm, sizeof(float), "store_matrix_sync");
    for (int e = 0; e < F::num_elements; e++) {
        unsigned idx = (unsigned)e * 32u + emu_lane(), r = idx / F::C, c = idx % F::C;
        p[l == mem_col_major ? (size_t)c * ldm + r : (size_t)r * ldm + c] = f.x[e];
    }
}

template <class Use, int M, int N, int K, class T, class L, class V>
static inline void fill_fragment(fragment<Use, M, N, K, T, L> &f, V v)
{
    for (int e = 0; e < fragment<Use, M, N, K, T, L>::num_elements; e++) f.x[e] = v;
}

extern float emu_wmma_a[32][256], emu_wmma_b[32][256];

template <class T> static inline float emu_operand(typename emu_storage<T>::type v)
{
    float f = emu_value(v);
    if (std::is_same<T, precision::tf32>::value) {
        uint32_t u;
        memcpy(&u, &f, 4);
        if (u & 0x1fffu) {
            fprintf(stderr, "cuda-emu: a TF32 wmma operand that is not a TF32 value (%.9g): round it with __float_to_tf32\n",
                    (double)f);
            abort();
        }
    }
    return f;
}

/* d = a @ b + c over the warp: every lane puts its elements of a and b in the warp's area, then computes its own
 * elements of d. */
template <int M, int N, int K, class T, class LA, class LB>
static inline void mma_sync(fragment<accumulator, M, N, K, float> &d, const fragment<matrix_a, M, N, K, T, LA> &a,
                            const fragment<matrix_b, M, N, K, T, LB> &b, const fragment<accumulator, M, N, K, float> &c)
{
    static_assert(M * K <= 256 && K * N <= 256, "fragment too large for the emulation");
    if (!emu_coop_active()) {
        fprintf(stderr, "cuda-emu: wmma::mma_sync outside a cooperative kernel\n");
        abort();
    }
    unsigned w = threadIdx.x / 32u, lane = emu_lane();
    for (int e = 0; e < fragment<matrix_a, M, N, K, T, LA>::num_elements; e++)
        emu_wmma_a[w][(unsigned)e * 32u + lane] = emu_operand<T>(a.x[e]);
    for (int e = 0; e < fragment<matrix_b, M, N, K, T, LB>::num_elements; e++)
        emu_wmma_b[w][(unsigned)e * 32u + lane] = emu_operand<T>(b.x[e]);
    emu_barrier(1);
    typedef fragment<accumulator, M, N, K, float> F;
    for (int e = 0; e < F::num_elements; e++) {
        unsigned idx = (unsigned)e * 32u + lane, r = idx / N, col = idx % N;
        float s = c.x[e];
        for (int k = 0; k < K; k++) s += emu_wmma_a[w][r * K + k] * emu_wmma_b[w][k * N + col];
        d.x[e] = s;
    }
    emu_barrier(1); /* nobody refills the area before every lane has read it */
}

} // namespace wmma
} // namespace nvcuda
