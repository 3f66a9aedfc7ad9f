// openmla_gpu_tests: without a usable GPU every test skips, after one visible
// line, and the program exits 0.
#include <cstdio>
#include <string>

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include "gpu_test_util.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  using openmla_test::g_has_gpu;
  using openmla_test::g_skip_reason;

  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    (void)cudaGetLastError();
    g_skip_reason = "no GPU found";
    if (e != cudaSuccess) g_skip_reason += std::string(" (") + cudaGetErrorName(e) + ")";
    std::printf("openmla_gpu_tests: no GPU found, skipping GPU tests (%s)\n",
                e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount returned 0");
  } else {
    int dev = 0, major = 0, minor = 0, sms = 0;
    cudaDeviceProp prop{};
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        cudaGetDeviceProperties(&prop, dev) != cudaSuccess) {
      (void)cudaGetLastError();
      g_skip_reason = "no usable GPU found (device query failed)";
      std::printf("openmla_gpu_tests: no usable GPU found, skipping GPU tests\n");
    } else if (major != 9) {
      g_skip_reason = "GPU is not sm_90 (the kernels are built for sm_90a)";
      std::printf("openmla_gpu_tests: %s is sm_%d%d, the kernels are built for sm_90a; "
                  "skipping GPU tests\n", prop.name, major, minor);
    } else {
      g_has_gpu = true;
      std::printf("openmla_gpu_tests: running on %s (sm_%d%d, %d SMs, device %d), openmla %s\n",
                  prop.name, major, minor, sms, dev, openmla_version());
    }
  }
  std::fflush(stdout);
  return RUN_ALL_TESTS();
}
