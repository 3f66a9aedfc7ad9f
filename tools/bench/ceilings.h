// The two ceilings every figure is a percentage of, measured in the same run
// (as ../shared/ANCHORS.md measured them next to FlashMLA).
#ifndef OPENMLA_TOOLS_BENCH_CEILINGS_H_
#define OPENMLA_TOOLS_BENCH_CEILINGS_H_

#include <cuda_runtime_api.h>

#include <cstddef>

#include "gpu_clocks.h"

namespace bench {

struct HbmCeiling {
  double gbps = 0;       // (bytes read + bytes written) / median time, 1e9 B/s
  size_t copy_bytes = 0; // size of the copy that was timed
};

// Device-to-device cudaMemcpyAsync of `copy_bytes` (4 GiB by default; halved
// while the device lacks the memory for source + destination), timed with
// CUDA events: `warmup` untimed copies, then the median of `repeats`.
// `clocks` (may be null) samples the timed part into *clock_stats (not null).
HbmCeiling measure_hbm(size_t copy_bytes, int warmup, int repeats, cudaStream_t stream, ClockSampler* clocks,
                       ClockStats* clock_stats);

// cublasGemmEx n x n x n, bf16 (or fp16) A/B/C with random normal data,
// fp32 compute: median TFLOP/s (2 n^3 / time) of `repeats` after `warmup`.
double measure_tensor_tflops(bool fp16, int n, int warmup, int repeats, cudaStream_t stream, ClockSampler* clocks,
                             ClockStats* clock_stats);

}  // namespace bench

#endif  // OPENMLA_TOOLS_BENCH_CEILINGS_H_
