#include "kernels/combine/combine_kernel.cuh"

namespace openmla::kernels {
template <>
cudaError_t launch_combine<Dtype::kFp16>(const DenseDecodeParams& p, cudaStream_t stream) {
  return combine::launch<__half>(p, stream);
}
}  // namespace openmla::kernels
