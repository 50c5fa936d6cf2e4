// conv2d on CUDA: im2col + cuBLAS SGEMM (float32, no TF32). Images go in chunks whose column
// matrices fit a bounded workspace; within a chunk each group is one strided-batched SGEMM over
// the images. Backward: the weight gradient accumulates image by image in order (beta = 1: the
// same sum on every run), the input gradient is one batched SGEMM into columns and then a
// gathering col2im (each input element sums the column entries that read it: no atomics), the
// bias gradient a fixed-order block reduction per channel. Every option: stride, per-side
// padding, dilation, groups.
//
// cuBLAS is column-major: a row-major (r, c) matrix is its (c, r) transpose with leading
// dimension c. Row-major y_n (C_out, L) = w (C_out, K) col_n (K, L) is, column-major,
// y_n^T (L, C_out) = col_n^T (L, K) w^T (K, C_out): gemm(N, N) on (col_n, w).
#include <algorithm>

#include "../../core/cuda/check.cuh"
#include "ops.h"

namespace cnn::cuda {

namespace {

constexpr int kThreads = 256;
// The columns of one chunk of images at most (the chunk is at least one image).
constexpr int64_t kWorkspaceBytes = int64_t{256} << 20;

struct Geo {
  int64_t C, H, W;         // input channels and size
  int64_t kh, kw;          // kernel
  int64_t Ho, Wo;          // output size
  int64_t sh, sw, dh, dw;  // stride, dilation
  int64_t pt, pl;          // top and left padding (bottom/right show only in Ho, Wo)
};

// col (images, C * kh * kw, Ho * Wo) from x (images, C, H, W); zeros where the tap is padding.
__global__ void im2col_kernel(const float* __restrict__ x, float* __restrict__ col, int64_t images,
                              Geo g) {
  const int64_t L = g.Ho * g.Wo, K = g.C * g.kh * g.kw, total = images * K * L;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total;
       t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t l = t % L, k = (t / L) % K, n = t / (L * K);
    const int64_t j = k % g.kw, i = (k / g.kw) % g.kh, c = k / (g.kw * g.kh);
    const int64_t oh = l / g.Wo, ow = l % g.Wo;
    const int64_t ih = oh * g.sh - g.pt + i * g.dh, iw = ow * g.sw - g.pl + j * g.dw;
    col[t] = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? x[((n * g.C + c) * g.H + ih) * g.W + iw]
                                                        : 0.0f;
  }
}

// dx (images, C, H, W) = the sum of the column entries that read each element, kernel taps in
// order.
__global__ void col2im_kernel(const float* __restrict__ col, float* __restrict__ dx, int64_t images,
                              Geo g) {
  const int64_t L = g.Ho * g.Wo, K = g.C * g.kh * g.kw, total = images * g.C * g.H * g.W;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total;
       t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t iw = t % g.W, ih = (t / g.W) % g.H, c = (t / (g.W * g.H)) % g.C,
                  n = t / (g.W * g.H * g.C);
    float s = 0.0f;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t hs = ih + g.pt - i * g.dh;
      if (hs < 0 || hs % g.sh != 0) continue;
      const int64_t oh = hs / g.sh;
      if (oh >= g.Ho) continue;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t ws = iw + g.pl - j * g.dw;
        if (ws < 0 || ws % g.sw != 0) continue;
        const int64_t ow = ws / g.sw;
        if (ow >= g.Wo) continue;
        s += col[(n * K + (c * g.kh + i) * g.kw + j) * L + oh * g.Wo + ow];
      }
    }
    dx[t] = s;
  }
}

// y (N, C_out, L) = b[c] everywhere, for the products to add to.
__global__ void broadcast_bias_kernel(const float* __restrict__ b, float* __restrict__ y,
                                      int64_t total, int64_t c_out, int64_t L) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total;
       t += int64_t(gridDim.x) * blockDim.x) {
    y[t] = b[(t / L) % c_out];
  }
}

// db[c] += the sum of dy[:, c, :], one block per channel, in double, a fixed-order tree.
__global__ void bias_grad_kernel(const float* __restrict__ dy, float* __restrict__ db, int64_t N,
                                 int64_t c_out, int64_t L) {
  __shared__ double shared[kThreads];
  const int64_t c = blockIdx.x;
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < N * L; i += kThreads) {
    s += dy[((i / L) * c_out + c) * L + i % L];
  }
  shared[threadIdx.x] = s;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) db[c] += static_cast<float>(shared[0]);
}

Geo geometry(const Tensor& x, const Tensor& w, const Conv2dGeometry& g, int64_t Ho, int64_t Wo) {
  return {x.size(1),  x.size(2),  x.size(3),    w.size(2),    w.size(3), Ho,        Wo,
          g.stride.h, g.stride.w, g.dilation.h, g.dilation.w, g.pad_top, g.pad_left};
}

int as_int(int64_t v) { return static_cast<int>(std::max<int64_t>(v, 1)); }

// Images per chunk: the columns of a chunk within the workspace bound, at least one image.
int64_t chunk_images(int64_t N, int64_t K, int64_t L) {
  const int64_t per_image = std::max<int64_t>(K * L * int64_t(sizeof(float)), 1);
  return std::max<int64_t>(1, std::min<int64_t>(N, kWorkspaceBytes / per_image));
}

}  // namespace

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dGeometry& g,
                      const Shape& y_shape) {
  const int64_t N = x.size(0), c_out = w.size(0), groups = g.groups;
  const int64_t L = y_shape[2] * y_shape[3];
  const Geo geo = geometry(x, w, g, y_shape[2], y_shape[3]);
  const int64_t K = geo.C * geo.kh * geo.kw, Kg = K / groups, cg_out = c_out / groups;
  Tensor y = b.defined() ? Tensor::empty(y_shape, Device::CUDA) : Tensor(y_shape, Device::CUDA);
  if (y.numel() == 0) return y;
  if (b.defined()) {
    broadcast_bias_kernel<<<blocks_for(y.numel()), kThreads>>>(b.data(), y.data(), y.numel(), c_out,
                                                               L);
    CNN_CUDA_CHECK(cudaGetLastError());
  }
  if (Kg == 0) return y;
  const int64_t chunk = chunk_images(N, K, L);
  Tensor col = Tensor::empty({chunk, K, L}, Device::CUDA);
  const float one = 1.0f;
  for (int64_t n0 = 0; n0 < N; n0 += chunk) {
    const int64_t images = std::min(chunk, N - n0);
    im2col_kernel<<<blocks_for(images * K * L), kThreads>>>(x.data() + n0 * geo.C * geo.H * geo.W,
                                                            col.data(), images, geo);
    CNN_CUDA_CHECK(cudaGetLastError());
    for (int64_t gi = 0; gi < groups; ++gi) {
      CNN_CUBLAS_CHECK(cublas_api().sgemm_strided_batched(
          cublas(), CUBLAS_OP_N, CUBLAS_OP_N, as_int(L), as_int(cg_out), as_int(Kg), &one,
          col.data() + gi * Kg * L, as_int(L), K * L, w.data() + gi * cg_out * Kg, as_int(Kg), 0,
          &one, y.data() + n0 * c_out * L + gi * cg_out * L, as_int(L), c_out * L,
          static_cast<int>(images)));
    }
  }
  return y;
}

void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dGeometry& g,
                     Tensor* dx, Tensor* dw, Tensor* db) {
  const int64_t N = x.size(0), c_out = w.size(0), groups = g.groups;
  const Geo geo = geometry(x, w, g, dy.size(2), dy.size(3));
  const int64_t L = geo.Ho * geo.Wo;
  const int64_t K = geo.C * geo.kh * geo.kw, Kg = K / groups, cg_out = c_out / groups;
  if (db && c_out > 0) {
    bias_grad_kernel<<<static_cast<unsigned>(c_out), kThreads>>>(dy.data(), db->data(), N, c_out,
                                                                 L);
    CNN_CUDA_CHECK(cudaGetLastError());
  }
  if (dx && dx->numel() > 0 && (L == 0 || Kg == 0 || cg_out == 0)) {
    CNN_CUDA_CHECK(cudaMemsetAsync(dx->data(), 0, dx->numel() * sizeof(float), 0));
  }
  if ((!dx && !dw) || N == 0 || L == 0 || Kg == 0 || cg_out == 0) return;
  const int64_t chunk = chunk_images(N, K, L);
  Tensor col = Tensor::empty({chunk, K, L}, Device::CUDA);
  const float one = 1.0f, zero = 0.0f;
  for (int64_t n0 = 0; n0 < N; n0 += chunk) {
    const int64_t images = std::min(chunk, N - n0);
    const float* dy_chunk = dy.data() + n0 * c_out * L;
    if (dw) {
      im2col_kernel<<<blocks_for(images * K * L), kThreads>>>(x.data() + n0 * geo.C * geo.H * geo.W,
                                                              col.data(), images, geo);
      CNN_CUDA_CHECK(cudaGetLastError());
      // dw_g^T (Kg, C_out/g) += col_n,g (Kg, L) dy_n,g^T (L, C_out/g), image by image in order.
      for (int64_t n = 0; n < images; ++n) {
        for (int64_t gi = 0; gi < groups; ++gi) {
          CNN_CUBLAS_CHECK(cublas_api().sgemm(cublas(), CUBLAS_OP_T, CUBLAS_OP_N, as_int(Kg),
                                              as_int(cg_out), as_int(L), &one,
                                              col.data() + (n * K + gi * Kg) * L, as_int(L),
                                              dy_chunk + (n * c_out + gi * cg_out) * L, as_int(L),
                                              &one, dw->data() + gi * cg_out * Kg, as_int(Kg)));
        }
      }
    }
    if (dx) {
      // dcol_n,g^T (L, Kg) = dy_n,g^T (L, C_out/g) w_g (C_out/g, Kg), over the chunk's images.
      for (int64_t gi = 0; gi < groups; ++gi) {
        CNN_CUBLAS_CHECK(cublas_api().sgemm_strided_batched(
            cublas(), CUBLAS_OP_N, CUBLAS_OP_T, as_int(L), as_int(Kg), as_int(cg_out), &one,
            dy_chunk + gi * cg_out * L, as_int(L), c_out * L, w.data() + gi * cg_out * Kg,
            as_int(Kg), 0, &zero, col.data() + gi * Kg * L, as_int(L), K * L,
            static_cast<int>(images)));
      }
      col2im_kernel<<<blocks_for(images * geo.C * geo.H * geo.W), kThreads>>>(
          col.data(), dx->data() + n0 * geo.C * geo.H * geo.W, images, geo);
      CNN_CUDA_CHECK(cudaGetLastError());
    }
  }
}

}  // namespace cnn::cuda
