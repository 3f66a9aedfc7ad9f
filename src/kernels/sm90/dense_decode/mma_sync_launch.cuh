// Launcher of the mma.sync kernel, shared by the per-dtype instantiation files.
#ifndef OPENMLA_KERNELS_SM90_DENSE_DECODE_MMA_SYNC_LAUNCH_CUH_
#define OPENMLA_KERNELS_SM90_DENSE_DECODE_MMA_SYNC_LAUNCH_CUH_

#include "kernels/sm90/dense_decode/mma_sync_kernel.cuh"

namespace openmla::kernels::dense_decode {

template <typename T>
cudaError_t launch(const DenseDecodeParams& p, cudaStream_t stream) {
  // Opting in to >48 KB of shared memory is a per-function attribute; setting
  // it on every call is cheap and needs no lock.
  cudaError_t err = cudaFuncSetAttribute(dense_decode_kernel<T>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes);
  if (err != cudaSuccess) return err;
  dim3 grid(p.num_row_tiles * p.h_kv, p.num_parts);
  dense_decode_kernel<T><<<grid, kThreads, kSmemBytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace openmla::kernels::dense_decode

#endif  // OPENMLA_KERNELS_SM90_DENSE_DECODE_MMA_SYNC_LAUNCH_CUH_
