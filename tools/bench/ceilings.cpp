#include "ceilings.h"

#include <cublas_v2.h>

#include <cstdio>
#include <string>

#include "common.h"
#include "datagen.h"

namespace bench {

namespace {

const char* cublas_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "unknown cuBLAS status";
  }
}

#define BENCH_CUBLAS(call)                                                               \
  do {                                                                                   \
    cublasStatus_t bench_s_ = (call);                                                    \
    if (bench_s_ != CUBLAS_STATUS_SUCCESS)                                               \
      throw BenchError(std::string(#call) + " failed: " + cublas_name(bench_s_) + " (" + \
                       std::to_string((int)bench_s_) + ")");                             \
  } while (0)

struct CublasHandle {
  cublasHandle_t h = nullptr;
  CublasHandle() { BENCH_CUBLAS(cublasCreate(&h)); }
  ~CublasHandle() { if (h) cublasDestroy(h); }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
};

}  // namespace

HbmCeiling measure_hbm(size_t copy_bytes, int warmup, int repeats, cudaStream_t stream, ClockSampler* clocks,
                       ClockStats* clock_stats) {
  size_t free_b = 0, total_b = 0;
  BENCH_CUDA(cudaMemGetInfo(&free_b, &total_b));
  const size_t margin = (size_t)512 << 20;
  while (copy_bytes > ((size_t)64 << 20) && 2 * copy_bytes + margin > free_b) copy_bytes /= 2;

  DeviceBuffer src(copy_bytes, "the HBM copy source");
  DeviceBuffer dst(copy_bytes, "the HBM copy destination");
  BENCH_CUDA(cudaMemsetAsync(src.get(), 0x5a, copy_bytes, stream));
  BENCH_CUDA(cudaMemsetAsync(dst.get(), 0, copy_bytes, stream));
  for (int i = 0; i < warmup; ++i)
    BENCH_CUDA(cudaMemcpyAsync(dst.get(), src.get(), copy_bytes, cudaMemcpyDeviceToDevice, stream));
  BENCH_CUDA(cudaStreamSynchronize(stream));  // the clock samples cover only the timed copies
  ClockSampler::Window window(clocks);
  EventPairs ev(repeats);
  for (int i = 0; i < repeats; ++i) {
    BENCH_CUDA(cudaEventRecord(ev.start(i), stream));
    BENCH_CUDA(cudaMemcpyAsync(dst.get(), src.get(), copy_bytes, cudaMemcpyDeviceToDevice, stream));
    BENCH_CUDA(cudaEventRecord(ev.stop(i), stream));
  }
  BENCH_CUDA(cudaStreamSynchronize(stream));
  *clock_stats = window.stop();
  const double ms = median(ev.elapsed_ms());
  HbmCeiling c;
  c.copy_bytes = copy_bytes;
  c.gbps = 2.0 * (double)copy_bytes / (ms * 1e-3) / 1e9;
  return c;
}

double measure_tensor_tflops(bool fp16, int n, int warmup, int repeats, cudaStream_t stream, ClockSampler* clocks,
                             ClockStats* clock_stats) {
  const size_t elems = (size_t)n * n;
  DeviceBuffer a(elems * 2, "the GEMM's A"), b(elems * 2, "the GEMM's B"), c(elems * 2, "the GEMM's C");
  // torch.randn-like inputs (unclamped N(0, 1)), so the tensor cores switch
  // real bits.
  BENCH_CUDA(fill_random_16bit(a.get(), fp16, elems, 0xa11ce, 1.0f, 1e30f, nullptr, 0, stream));
  BENCH_CUDA(fill_random_16bit(b.get(), fp16, elems, 0xb0b, 1.0f, 1e30f, nullptr, 0, stream));
  const cudaDataType dt = fp16 ? CUDA_R_16F : CUDA_R_16BF;
  BENCH_CUDA(cudaMemsetAsync(c.get(), 0, elems * 2, stream));

  CublasHandle handle;
  BENCH_CUBLAS(cublasSetStream(handle.h, stream));
  const float alpha = 1.0f, beta = 0.0f;
  auto gemm = [&]() {
    BENCH_CUBLAS(cublasGemmEx(handle.h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a.get(),
                              dt, n, b.get(), dt, n, &beta, c.get(), dt, n, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
  };
  for (int i = 0; i < warmup; ++i) gemm();
  BENCH_CUDA(cudaStreamSynchronize(stream));
  ClockSampler::Window window(clocks);
  EventPairs ev(repeats);
  for (int i = 0; i < repeats; ++i) {
    BENCH_CUDA(cudaEventRecord(ev.start(i), stream));
    gemm();
    BENCH_CUDA(cudaEventRecord(ev.stop(i), stream));
  }
  BENCH_CUDA(cudaStreamSynchronize(stream));
  *clock_stats = window.stop();
  const double ms = median(ev.elapsed_ms());
  return 2.0 * (double)n * n * n / (ms * 1e-3) / 1e12;
}

}  // namespace bench
