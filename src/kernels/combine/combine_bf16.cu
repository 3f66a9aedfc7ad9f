#include "kernels/combine/combine_kernel.cuh"

namespace openmla::kernels {
template <>
cudaError_t launch_combine<Dtype::kBf16>(const DenseDecodeParams& p, cudaStream_t stream) {
  return combine::launch<__nv_bfloat16>(p, stream);
}
}  // namespace openmla::kernels
