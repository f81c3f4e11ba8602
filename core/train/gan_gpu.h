/* gan_gpu.h: LIIF-GAN training on an NVIDIA GPU (core/cuda/train_gan.cuh through the CUDA module): the GPU twin of gan_step. */
#ifndef LIIF_GAN_GPU_H
#define LIIF_GAN_GPU_H

#include "cuda_module.h"
#include "gan_step.h"

/* A GPU trainer holds copies of a generator and a discriminator (parameters, Adam moments and step
 * counts; D's BN running stats) and of the perceptual loss's VGG19 (frozen) on the device; the first two
 * come back only when pulled (checkpoints, tests), in the CPU's flat layouts, so a checkpoint resumes on
 * either device. A step is gan_step's, op for op: the same loss terms, gradient blocking and Adam; sums
 * run in another order (cuBLAS, atomic adds), so results agree with the CPU to float rounding. */
typedef struct gan_gpu gan_gpu;

/* For batches of B LR images of h x w with one P x P RGS patch each; v: the perceptual loss's network
 * (gan_step's; NULL: none, and steps need w_per = 0); fast_math allows TF32 GEMMs.
 * Without a usable GPU or CUDA module: LIIF_ERR_UNSUPPORTED with the reason. */
liif_status gan_gpu_new(const gan_gen *g, const gan_disc *d, const gan_vgg *v, int B, int h, int w, int P,
                        int fast_math, gan_gpu **out, liif_error *err);
void gan_gpu_free(gan_gpu *t);
/* The CUDA module's description of v (module kinds, channels, weight offsets into v->params). */
void gan_gpu_vgg_shape(const gan_vgg *v, liif_cuda_vgg_shape *out);

/* Queue one whole step (gan_step's order: generator half, Adam on G, discriminator half, Adam on D)
 * and return without waiting: the caller may refill its arrays at once. lr (B,C,h,w) NCHW in [0,1],
 * coord and cell (B,Q,2), gt_patch (B,C,P,P) in [0,1], as gan_step. cfg->w_per > 0 needs a VGG19. */
liif_status gan_gpu_step(gan_gpu *t, const gan_step_config *cfg, const float *lr, const float *coord,
                         const float *cell, const float *gt_patch, liif_error *err);
/* Parts of a step for tests: parts is a mask of GAN_GPU_* below; c as gan_step_generator's. */
enum { GAN_GPU_GEN = 1, GAN_GPU_GEN_ADAM = 2, GAN_GPU_DISC = 4, GAN_GPU_DISC_ADAM = 8, GAN_GPU_ALL = 15 };
liif_status gan_gpu_step_parts(gan_gpu *t, const gan_step_config *cfg, const float *lr, const float *coord,
                               const float *cell, const float *gt_patch, int parts, gan_terms c, liif_error *err);

/* The losses of a step, named as gan_step_ws's (loss_per is 0 without a VGG19). */
typedef struct {
    float loss_d1, loss_adv, loss_per, loss_fm, loss_g, loss_d_real, loss_d_fake, loss_d;
} gan_gpu_losses;

/* Wait for the queued work; the last step's losses (out may be NULL). */
liif_status gan_gpu_wait(gan_gpu *t, gan_gpu_losses *out, liif_error *err);
/* Wait, then copy the device's parameters (D's running stats included), Adam moments and step
 * counts into g and d (the models t was made from, or loads of the same files); with grads also
 * g->grads and the trainable part of d->grads (the last step's gradients). */
liif_status gan_gpu_pull(gan_gpu *t, gan_gen *g, gan_disc *d, int grads, liif_error *err);
/* The last generator half's patches d1, d2 (0 for LIIF-GAN-S) and fake01 (B,C,P,P), and logits
 * (3,B): D(fake01) in the generator half, D(real), D(fake01) in the discriminator half. Any may be NULL. */
liif_status gan_gpu_images(gan_gpu *t, float *d1, float *d2, float *fake01, float *logits, liif_error *err);

/* Mean milliseconds per whole step in each phase (upload, generator forward, D on the fake with the
 * losses and its backward to the image, generator backward, Adam on G, discriminator step, Adam on D)
 * over the *steps steps waited for so far. */
enum { GAN_GPU_PHASES = 7 };
liif_status gan_gpu_profile(const gan_gpu *t, double ms[GAN_GPU_PHASES], long *steps);

#endif
