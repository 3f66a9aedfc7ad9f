#include "kernels/sm90/dense_decode/launch.cuh"

namespace openmla::kernels {
template <>
cudaError_t launch_dense_decode<Dtype::kBf16>(const DenseDecodeParams& p, cudaStream_t stream) {
  return dense_decode::launch<__nv_bfloat16>(p, stream);
}
}  // namespace openmla::kernels
