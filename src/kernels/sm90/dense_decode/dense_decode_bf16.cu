// Explicit instantiation of the dense decode kernels for bf16.
#include "kernels/sm90/dense_decode/mma_sync_launch.cuh"
#include "kernels/sm90/dense_decode/wgmma_launch.cuh"

namespace openmla::kernels {
template <>
cudaError_t launch_dense_decode<Dtype::kBf16>(const DenseDecodeParams& p, cudaStream_t stream) {
  if (p.variant == kDenseMmaSync) return dense_decode::launch<__nv_bfloat16>(p, stream);
  return dense_decode_wgmma::launch<__nv_bfloat16>(p, p.k_num_blocks, stream);
}
}  // namespace openmla::kernels
