// Small helpers shared by openmla-bench's files: CUDA error checks that throw
// with a clear message, an owning device buffer, medians.
#ifndef OPENMLA_TOOLS_BENCH_COMMON_H_
#define OPENMLA_TOOLS_BENCH_COMMON_H_

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

// Any failure while running a case: the case is reported as failed.
struct BenchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void throw_cuda(cudaError_t e, const char* what, const char* file, int line) {
  throw BenchError(std::string(what) + " failed: " + cudaGetErrorName(e) + " (" +
                   cudaGetErrorString(e) + ") at " + file + ":" + std::to_string(line));
}

#define BENCH_CUDA(call)                                                     \
  do {                                                                       \
    cudaError_t bench_e_ = (call);                                           \
    if (bench_e_ != cudaSuccess) ::bench::throw_cuda(bench_e_, #call, __FILE__, __LINE__); \
  } while (0)

inline double mib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

// One cudaMalloc allocation, freed on destruction.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(size_t bytes, const std::string& what) { allocate(bytes, what); }
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) {
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      ptr_ = o.ptr_;
      bytes_ = o.bytes_;
      o.ptr_ = nullptr;
      o.bytes_ = 0;
    }
    return *this;
  }

  void allocate(size_t bytes, const std::string& what) {
    reset();
    cudaError_t e = cudaMalloc(&ptr_, bytes ? bytes : 1);
    if (e != cudaSuccess) {
      ptr_ = nullptr;
      char buf[128];
      std::snprintf(buf, sizeof buf, "%.1f MiB", mib(bytes));
      throw BenchError("cudaMalloc of " + std::string(buf) + " for " + what + " failed: " +
                       cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
    }
    bytes_ = bytes;
  }
  void reset() {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }

  template <class T = void>
  T* get() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Pairs of CUDA events, one pair per timed repeat.
class EventPairs {
 public:
  explicit EventPairs(int n) : start_(n, nullptr), stop_(n, nullptr) {
    for (int i = 0; i < n; ++i) {
      BENCH_CUDA(cudaEventCreate(&start_[i]));
      BENCH_CUDA(cudaEventCreate(&stop_[i]));
    }
  }
  ~EventPairs() {
    for (auto e : start_) if (e) cudaEventDestroy(e);
    for (auto e : stop_) if (e) cudaEventDestroy(e);
  }
  EventPairs(const EventPairs&) = delete;
  EventPairs& operator=(const EventPairs&) = delete;
  cudaEvent_t start(int i) const { return start_[i]; }
  cudaEvent_t stop(int i) const { return stop_[i]; }
  // Milliseconds of every pair; the caller has synchronised.
  std::vector<double> elapsed_ms() const {
    std::vector<double> ms(start_.size());
    for (size_t i = 0; i < ms.size(); ++i) {
      float m = 0;
      BENCH_CUDA(cudaEventElapsedTime(&m, start_[i], stop_[i]));
      ms[i] = m;
    }
    return ms;
  }

 private:
  std::vector<cudaEvent_t> start_, stop_;
};

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace bench

#endif  // OPENMLA_TOOLS_BENCH_COMMON_H_
