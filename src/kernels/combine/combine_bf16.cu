#include "kernels/combine/combine_kernel.cuh"

namespace openmla::kernels {
template <>
cudaError_t launch_combine<Dtype::kBf16>(const DenseDecodeParams& p, cudaStream_t stream) {
  return combine::launch<__nv_bfloat16>(p, stream);
}
}  // namespace openmla::kernels
#ifdef OPENMLA_SEESAW_TRACE
extern "C" void openmla_debug_combine_cta(long long* host) {
  cudaMemcpyFromSymbol(host, openmla::kernels::combine::g_combine_cta,
                       sizeof(long long) * 2 * openmla::kernels::combine::kTraceCombineCtas * 6);
}
#endif
