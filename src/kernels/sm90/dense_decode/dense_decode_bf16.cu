// Explicit instantiation of the dense decode kernels for bf16.
#include "kernels/sm90/dense_decode/mma_sync_launch.cuh"
#include "kernels/sm90/dense_decode/wgmma_launch.cuh"

namespace openmla::kernels {
template <>
cudaError_t launch_dense_decode<Dtype::kBf16>(DenseDecodeParams& p, cudaStream_t stream) {
  if (p.variant == kDenseMmaSync) {
    if (p.multicast == 2 || p.split_columns == 2) return cudaErrorNotSupported;  // forced, but this kernel has none
    p.fused_merge = p.pair_merge = p.multicast = p.split_columns = p.steal = 0;
    return dense_decode::launch<__nv_bfloat16>(p, stream);
  }
  return dense_decode_wgmma::launch<__nv_bfloat16>(p, p.k_num_blocks, stream);
}
}  // namespace openmla::kernels
#ifdef OPENMLA_SEESAW_TRACE
extern "C" void openmla_debug_seesaw_trace(long long* host) {
  cudaMemcpyFromSymbol(host, openmla::kernels::dense_decode_seesaw::g_seesaw_trace, sizeof(long long) * 2 * 64 * 16);
}
extern "C" void openmla_debug_seesaw_cta(long long* host) {
  cudaMemcpyFromSymbol(host, openmla::kernels::dense_decode_seesaw::g_seesaw_cta,
                       sizeof(long long) * openmla::kernels::dense_decode_seesaw::kTraceCtas * 8);
}
#endif
