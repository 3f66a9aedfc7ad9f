// The SM clock and board power while something is timed, read through NVML
// (loaded at run time: no build dependency, and no figures where the driver
// library is missing). Under the 700 W cap the clock falls with sustained
// tensor load, so a case's percentage of a ceiling means most next to the
// clock each ran at.
#ifndef OPENMLA_TOOLS_BENCH_GPU_CLOCKS_H_
#define OPENMLA_TOOLS_BENCH_GPU_CLOCKS_H_

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace bench {

constexpr double kMinEnergyWindowS = 0.5;

struct ClockStats {
  int samples = 0;          // 0: nothing read (no NVML, or too short a window)
  double sm_mhz_median = 0;  // SM clock, median of the samples
  double sm_mhz_min = 0;
  // Board power as nvmlDeviceGetPowerUsage gives it: on Hopper a trailing
  // average over about a second, so for a window of tens of milliseconds it
  // mostly shows what ran before (0: not read).
  double power_w_trailing = 0;
  unsigned long long reasons = 0;  // OR of the clock-event (throttle) reasons seen
  // Board energy over the window (nvmlDeviceGetTotalEnergyConsumption, read
  // at start and stop) and the window's length. On the H100 the counter
  // moves in steps of ~100 ms (windows of 50-170 ms read 0 or ~970 W under a
  // 700 W cap), so only windows of kMinEnergyWindowS or more keep it;
  // energy_j < 0: not read.
  double energy_j = -1;
  double window_s = 0;
  double power_w_window() const { return energy_j >= 0 && window_s > 0 ? energy_j / window_s : 0; }
};

// Names of the reasons that bit set carries, comma-separated ("" if none).
std::string clock_reason_names(unsigned long long reasons);

// Samples every `period_us` on a thread of its own between start() and stop().
class ClockSampler {
 public:
  // pci_bus_id as cudaDeviceGetPCIBusId gives it; an empty one, or a failed
  // NVML load, makes a sampler that reads nothing (available() false).
  explicit ClockSampler(const std::string& pci_bus_id, int period_us = 2000);
  ~ClockSampler();
  ClockSampler(const ClockSampler&) = delete;
  ClockSampler& operator=(const ClockSampler&) = delete;

  bool available() const { return device_ != nullptr; }
  // A start() while running drops what the earlier window sampled.
  void start();
  ClockStats stop();

  // Stops the sampler when it leaves scope (a throw between start and stop
  // must not leave it sampling into the next window); null does nothing.
  class Window {
   public:
    explicit Window(ClockSampler* s) : s_(s) {
      if (s_) s_->start();
    }
    ~Window() {
      if (s_) s_->stop();
    }
    ClockStats stop() {
      ClockSampler* s = s_;
      s_ = nullptr;
      return s ? s->stop() : ClockStats{};
    }
    Window(const Window&) = delete;
    Window& operator=(const Window&) = delete;

   private:
    ClockSampler* s_;
  };

 private:
  struct Sample {
    unsigned sm_mhz;
    unsigned power_mw;  // 0: not read
    unsigned long long reasons;
  };
  void run();
  long long energy_mj() const;  // -1: not read

  void* device_ = nullptr;  // nvmlDevice_t
  int period_us_;
  std::atomic<bool> running_{false};
  std::thread thread_;
  std::vector<Sample> samples_;
  long long energy_start_mj_ = -1;
  std::chrono::steady_clock::time_point t_start_;
};

}  // namespace bench

#endif  // OPENMLA_TOOLS_BENCH_GPU_CLOCKS_H_
