#include "datagen.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace bench {
namespace {

constexpr int kTokensPerBlock = 64;

__global__ void fill_random_16bit_kernel(uint16_t* __restrict__ dst, bool fp16, size_t n,
                                         uint64_t seed, float stddev, float clamp_abs,
                                         const int32_t* __restrict__ valid_tokens,
                                         size_t token_elems) {
  const size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    bool poison = false;
    if (valid_tokens != nullptr) {
      const size_t token = i / token_elems;
      const size_t block = token / kTokensPerBlock;
      const int t = (int)(token % kTokensPerBlock);
      poison = t >= valid_tokens[block];
    }
    const float v = poison ? __int_as_float(0x7fc00000) : hashed_value(seed, i, stddev, clamp_abs);
    dst[i] = fp16 ? __half_as_ushort(__float2half_rn(v)) : __bfloat16_as_ushort(__float2bfloat16_rn(v));
  }
}

}  // namespace

cudaError_t fill_random_16bit(void* dst, bool fp16, size_t n, uint64_t seed, float stddev,
                              float clamp_abs, const int32_t* valid_tokens, size_t token_elems,
                              cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (valid_tokens != nullptr && token_elems == 0) return cudaErrorInvalidValue;
  int device = 0, sms = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e != cudaSuccess) return e;
  e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e != cudaSuccess) return e;
  const int threads = 256;
  size_t blocks = (n + threads - 1) / threads;
  const size_t max_blocks = (size_t)sms * 16;
  if (blocks > max_blocks) blocks = max_blocks;
  fill_random_16bit_kernel<<<(unsigned)blocks, threads, 0, stream>>>(
      static_cast<uint16_t*>(dst), fp16, n, seed, stddev, clamp_abs, valid_tokens, token_elems);
  return cudaGetLastError();
}

}  // namespace bench
