/* emu_module.cpp: the whole CUDA module (core/cuda/backend_cuda.cu: inference backend, test ops, training) built as
 * host C++ with the emulation headers of this folder, so the CUDA tests run the module's real kernels and cuBLAS call
 * sequences against the CPU reference on a machine without a GPU. Its sources are the module's own, rewritten by
 * rewrite.pl (launches through emu_launch, cooperative kernels registered); this file adds the launcher: serial
 * blocks, or cooperative blocks of fibers switched at barriers (see cuda_runtime.h). */
#include <sys/mman.h>
#include <ucontext.h>

#include <map>
#include <set>
#include <vector>

#include "cuda_runtime.h"
#include "mma.h"

#if defined(__SANITIZE_ADDRESS__)
#define EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMU_ASAN 1
#endif
#endif
#ifdef EMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

emu_dim3 blockIdx, threadIdx, blockDim, gridDim;
long emu_live_buffers;
double emu_lane_slot[1024];
float nvcuda::wmma::emu_wmma_a[32][256], nvcuda::wmma::emu_wmma_b[32][256];

/* ------------------------------------------------------------ cooperative blocks */

enum { EMU_MAX_THREADS = 1024, EMU_STACK = 256 << 10 };
enum { F_RUN, F_WAIT_BLOCK, F_WAIT_WARP, F_DONE };

/* The switch between fibers. glibc's swapcontext makes a system call (the signal mask) on every switch, 90% of an
 * emulated decode; on x86-64 a switch saves the callee-saved registers and the FP control words on the old stack and
 * pops them from the new one, all it must keep across a call. Elsewhere ucontext. */
#if defined(__x86_64__)
extern "C" void emu_switch(void **save_sp, void *new_sp);
__asm__(".text\n"
        ".globl emu_switch\n"
        ".hidden emu_switch\n"
        ".type emu_switch,@function\n"
        "emu_switch:\n"
        "    pushq %rbp\n    pushq %rbx\n    pushq %r12\n    pushq %r13\n    pushq %r14\n    pushq %r15\n"
        "    subq $8, %rsp\n    stmxcsr (%rsp)\n    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n    movq %rsi, %rsp\n"
        "    ldmxcsr (%rsp)\n    fldcw 4(%rsp)\n    addq $8, %rsp\n"
        "    popq %r15\n    popq %r14\n    popq %r13\n    popq %r12\n    popq %rbx\n    popq %rbp\n"
        "    ret\n"
        ".size emu_switch, .-emu_switch\n");
typedef struct {
    void *sp;
} emu_ctx;
#else
typedef struct {
    ucontext_t uc;
} emu_ctx;
#endif

typedef struct {
    emu_ctx ctx;
    char *stack;
    int state;
    void *fake; /* ASan's fake stack of the fiber while it is switched out */
} emu_fiber;

static std::set<const void *> *coop_kernels;
static emu_fiber fibers[EMU_MAX_THREADS];
static emu_ctx main_ctx;
static const std::function<void()> *cur_body;
static int cur, in_coop;
static const void *main_bottom;
static size_t main_size;

void emu_register_coop(const void *kernel)
{
    if (!coop_kernels) coop_kernels = new std::set<const void *>;
    coop_kernels->insert(kernel);
}

int emu_coop_active(void) { return in_coop; }

static void ctx_switch(emu_ctx *from, emu_ctx *to)
{
#if defined(__x86_64__)
    emu_switch(&from->sp, to->sp);
#else
    swapcontext(&from->uc, &to->uc);
#endif
}

/* ASan must be told about stack switches, or it takes the fibers' frames for overflows. */
static void to_fiber(int t)
{
#ifdef EMU_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, fibers[t].stack, EMU_STACK);
    ctx_switch(&main_ctx, &fibers[t].ctx);
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
    ctx_switch(&main_ctx, &fibers[t].ctx);
#endif
}

static void arrived(emu_fiber *f)
{
#ifdef EMU_ASAN
    __sanitizer_finish_switch_fiber(f->fake, &main_bottom, &main_size);
#else
    (void)f;
#endif
}

static void to_main(emu_fiber *f, int dying)
{
#ifdef EMU_ASAN
    __sanitizer_start_switch_fiber(dying ? NULL : &f->fake, main_bottom, main_size);
#else
    (void)dying;
#endif
    ctx_switch(&f->ctx, &main_ctx);
}

static void fiber_main(void)
{
    emu_fiber *f = &fibers[cur];
    f->fake = NULL;
    arrived(f);
    (*cur_body)();
    f->state = F_DONE;
    to_main(f, 1);
}

void emu_barrier(int warp)
{
    emu_fiber *f = &fibers[cur];
    f->state = warp ? F_WAIT_WARP : F_WAIT_BLOCK;
    to_main(f, 0);
    arrived(f);
}

/* A fresh context that enters fiber_main on its own stack at the first switch to it. */
static void fiber_start(emu_fiber *f)
{
#if defined(__x86_64__)
    /* what emu_switch pops: FP control words, r15..rbp (zero), then it returns into fiber_main with the stack as
     * after a call (rsp = 8 mod 16); fiber_main never returns */
    uintptr_t top = ((uintptr_t)f->stack + EMU_STACK) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)top;
    *--sp = 0;                          /* fiber_main's return address: none */
    *--sp = (uint64_t)(uintptr_t)fiber_main;
    for (int i = 0; i < 6; i++) *--sp = 0;
    --sp;
    uint32_t csr;
    uint16_t cw;
    __asm__ volatile("stmxcsr %0" : "=m"(csr));
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    memcpy(sp, &csr, 4);
    memcpy((char *)sp + 4, &cw, 2);
    f->ctx.sp = sp;
#else
    getcontext(&f->ctx.uc);
    f->ctx.uc.uc_stack.ss_sp = f->stack;
    f->ctx.uc.uc_stack.ss_size = EMU_STACK;
    f->ctx.uc.uc_link = NULL;
    makecontext(&f->ctx.uc, fiber_main, 0);
#endif
}

/* The order in which blocks run, and in which a cooperative block's runnable threads run each round, between two
 * barriers: LIIF_EMU_ORDER = forward (default), reverse, or shuffle[:SEED] (a fresh permutation every time, from a
 * fixed seed). A kernel is correct only if every order gives it the same result (up to atomicAdd's rounding), so the
 * CUDA tests run again in the other orders: a read of what another thread writes between the same two barriers, or
 * of another block's output, then reads the 0xff fill or a stale value and the test's comparison fails. */
enum { ORDER_FORWARD, ORDER_REVERSE, ORDER_SHUFFLE };
static int order_kind = -1;
static uint64_t order_state;

static void order_init(void)
{
    if (order_kind >= 0) return;
    const char *e = getenv("LIIF_EMU_ORDER");
    order_kind = ORDER_FORWARD;
    order_state = 0x9e3779b97f4a7c15ull;
    if (!e || !*e || !strcmp(e, "forward")) return;
    if (!strcmp(e, "reverse")) {
        order_kind = ORDER_REVERSE;
        return;
    }
    if (!strncmp(e, "shuffle", 7) && (e[7] == 0 || e[7] == ':')) {
        order_kind = ORDER_SHUFFLE;
        if (e[7] == ':') order_state ^= strtoull(e + 8, NULL, 10) * 0xbf58476d1ce4e5b9ull;
        return;
    }
    fprintf(stderr, "cuda-emu: LIIF_EMU_ORDER must be forward, reverse or shuffle[:SEED], not '%s'\n", e);
    abort();
}

static unsigned order_rand(unsigned n) /* 0..n-1, splitmix64 */
{
    uint64_t z = (order_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (unsigned)((z ^ (z >> 31)) % n);
}

/* ord[0..n-1]: the order of this round (or of this launch's blocks). */
static void order_fill(unsigned *ord, unsigned n)
{
    for (unsigned i = 0; i < n; i++) ord[i] = order_kind == ORDER_REVERSE ? n - 1 - i : i;
    if (order_kind == ORDER_SHUFFLE)
        for (unsigned i = n; i > 1; i--) {
            unsigned j = order_rand(i), t = ord[i - 1];
            ord[i - 1] = ord[j];
            ord[j] = t;
        }
}

static void run_block(unsigned n)
{
    static unsigned ord[EMU_MAX_THREADS];
    for (unsigned t = 0; t < n; t++) {
        emu_fiber *f = &fibers[t];
        if (!f->stack) {
            f->stack = (char *)mmap(NULL, EMU_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                                    -1, 0);
            if (f->stack == MAP_FAILED) {
                fprintf(stderr, "cuda-emu: no memory for a fiber stack\n");
                abort();
            }
        }
        fiber_start(f);
        f->state = F_RUN;
    }
    for (;;) {
        order_fill(ord, n);
        for (unsigned i = 0; i < n; i++) { /* each runnable thread until its next barrier or its end */
            unsigned t = ord[i];
            if (fibers[t].state == F_RUN) {
                cur = (int)t;
                threadIdx.x = t;
                to_fiber((int)t);
            }
        }
        int released = 0, live = 0, at_block = 0;
        for (unsigned w = 0; w < n; w += 32) { /* a warp whose live lanes all wait at a shuffle goes on */
            unsigned end = w + 32 < n ? w + 32 : n, lanes = 0, waiting = 0;
            for (unsigned t = w; t < end; t++) {
                lanes += fibers[t].state != F_DONE;
                waiting += fibers[t].state == F_WAIT_WARP;
            }
            if (lanes && waiting == lanes) {
                for (unsigned t = w; t < end; t++) fibers[t].state = F_RUN;
                released = 1;
            }
        }
        if (released) continue;
        for (unsigned t = 0; t < n; t++) {
            live += fibers[t].state != F_DONE;
            at_block += fibers[t].state == F_WAIT_BLOCK;
        }
        if (!live) return;
        if (at_block != live) {
            fprintf(stderr, "cuda-emu: deadlock in block %u: %d threads at __syncthreads, %d at a warp shuffle\n",
                    blockIdx.x, at_block, live - at_block);
            abort();
        }
        for (unsigned t = 0; t < n; t++)
            if (fibers[t].state == F_WAIT_BLOCK) fibers[t].state = F_RUN;
    }
}

/* The b-th block to run of a grid: forward, reverse, or a random rotation and stride (a permutation without a table:
 * the stride is odd and the grid's size is made a power of two by skipping what lies past it). */
static unsigned block_at(unsigned long b, unsigned long grid)
{
    if (order_kind == ORDER_FORWARD || grid < 2) return (unsigned)b;
    if (order_kind == ORDER_REVERSE) return (unsigned)(grid - 1 - b);
    static unsigned long pow2, stride, rot, next_i; /* of the running launch, set at its first block */
    if (b == 0) {
        for (pow2 = 1; pow2 < grid; pow2 <<= 1) {}
        unsigned span = (unsigned)(pow2 < 0x40000000ul ? pow2 : 0x40000000ul);
        stride = (order_rand(span) | 1ul) & (pow2 - 1);
        rot = order_rand(span);
        next_i = 0;
    }
    for (;;) { /* i -> (rot + i * stride) mod pow2 is a bijection of 0..pow2-1 */
        unsigned long v = (rot + next_i++ * stride) & (pow2 - 1);
        if (v < grid) return (unsigned)v;
    }
}

/* ------------------------------------------------------------ the work queue (cuda_runtime.h: emu_enqueue) */

static std::vector<std::function<void()>> *work;
static std::map<uintptr_t, size_t> *pinned; /* cudaHostAlloc blocks: start -> bytes */
static int flushing;

void emu_enqueue(std::function<void()> op)
{
    if (!work) work = new std::vector<std::function<void()>>;
    work->push_back(std::move(op));
}

void emu_flush(void)
{
    if (flushing || !work) return; /* a wait inside a queued op (none has one) would find its own queue running */
    flushing = 1;
    for (size_t i = 0; i < work->size(); i++) { /* an op may queue more (none does today): they run too */
        std::function<void()> op = std::move((*work)[i]);
        op();
    }
    work->clear();
    flushing = 0;
}

void emu_pin(const void *p, size_t n, int on)
{
    if (!pinned) pinned = new std::map<uintptr_t, size_t>;
    if (on) (*pinned)[(uintptr_t)p] = n;
    else pinned->erase((uintptr_t)p);
}

int emu_pinned(const void *p)
{
    if (!pinned || pinned->empty()) return 0;
    auto it = pinned->upper_bound((uintptr_t)p);
    if (it == pinned->begin()) return 0;
    --it;
    return (uintptr_t)p - it->first < it->second;
}

cudaError_t emu_last_error = cudaSuccess;
static std::map<const void *, int> *dyn_limit;
static unsigned char *dyn_shared; /* 128-byte aligned, as a GPU's shared memory is at least */
static size_t dyn_shared_bytes, dyn_cur; /* its size; the running launch's bytes */

cudaError_t emu_func_set_dynamic_shared(const void *kernel, int bytes)
{
    if (bytes < 0 || bytes > EMU_MAX_DYNAMIC_SHARED) return cudaErrorInvalidValue;
    if (!dyn_limit) dyn_limit = new std::map<const void *, int>;
    (*dyn_limit)[kernel] = bytes;
    return cudaSuccess;
}

void *emu_dynamic_shared(void) { return dyn_cur ? dyn_shared : NULL; }

static unsigned long block_serial = 1; /* of the running block, counting every block of every launch */

void emu_shared_fresh(void *p, size_t n)
{
    static std::map<void *, unsigned long> *filled; /* array -> the block that last filled it */
    if (!filled) filled = new std::map<void *, unsigned long>;
    unsigned long &b = (*filled)[p];
    if (b != block_serial) {
        memset(p, 0xff, n);
        b = block_serial;
    }
}

/* A new block: its shared memory, static and dynamic, holds nothing it wrote. */
static void block_begins(void)
{
    block_serial++;
    if (dyn_cur) memset(dyn_shared, 0xff, dyn_cur);
}

int emu_launch_ok(const void *kernel, size_t shared)
{
    size_t limit = 48 << 10;
    if (dyn_limit && dyn_limit->count(kernel)) limit = (size_t)(*dyn_limit)[kernel];
    if (shared > limit) { /* the launch fails, as on a GPU */
        emu_last_error = cudaErrorInvalidValue;
        return 0;
    }
    return 1;
}

void emu_run(const void *kernel, const std::function<void()> &body, unsigned long grid, unsigned long block,
             size_t shared)
{
    if (shared > dyn_shared_bytes) {
        free(dyn_shared);
        dyn_shared = (unsigned char *)aligned_alloc(128, (shared + 127) / 128 * 128);
        if (!dyn_shared) {
            fprintf(stderr, "cuda-emu: no memory for %zu bytes of dynamic shared memory\n", shared);
            abort();
        }
        dyn_shared_bytes = shared;
    }
    dyn_cur = shared; /* 0xff-filled for each block (block_begins) */
    gridDim.x = (unsigned)grid;
    order_init();
    if (!coop_kernels || !coop_kernels->count(kernel)) { /* serial: one thread per block */
        blockDim.x = 1;
        threadIdx.x = 0;
        for (unsigned long b = 0; b < grid; b++) {
            blockIdx.x = block_at(b, grid);
            block_begins();
            body();
        }
        return;
    }
    if (block < 1 || block > EMU_MAX_THREADS) {
        fprintf(stderr, "cuda-emu: a block of %lu threads\n", block);
        abort();
    }
    blockDim.x = (unsigned)block;
    cur_body = &body;
    in_coop = 1;
    for (unsigned long b = 0; b < grid; b++) {
        blockIdx.x = block_at(b, grid);
        block_begins();
        run_block((unsigned)block);
    }
    in_coop = 0;
    threadIdx.x = 0;
}

/* ------------------------------------------------------------ the module */

#include "backend_cuda_cu.h" /* core/cuda/backend_cuda.cu, rewritten */
