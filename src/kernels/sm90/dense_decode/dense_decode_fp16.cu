// Explicit instantiation of the dense decode kernels for fp16.
#include "kernels/sm90/dense_decode/mma_sync_launch.cuh"
#include "kernels/sm90/dense_decode/wgmma_launch.cuh"

namespace openmla::kernels {
template <>
cudaError_t launch_dense_decode<Dtype::kFp16>(DenseDecodeParams& p, cudaStream_t stream) {
  if (p.variant == kDenseMmaSync) {
    if (p.multicast == 2 || p.split_columns == 2) return cudaErrorNotSupported;  // forced, but this kernel has none
    p.fused_merge = p.pair_merge = p.multicast = p.split_columns = p.steal = 0;
    return dense_decode::launch<__half>(p, stream);
  }
  return dense_decode_wgmma::launch<__half>(p, p.k_num_blocks, stream);
}
}  // namespace openmla::kernels
