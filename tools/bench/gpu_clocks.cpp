#include "gpu_clocks.h"

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <system_error>

#include "common.h"

namespace bench {

namespace {

// The few NVML entry points used, with NVML's C signatures (nvml.h): the
// return code is an int enum (0: success), nvmlDevice_t an opaque pointer.
using NvmlDevice = void*;
struct Nvml {
  int (*init)() = nullptr;
  int (*by_pci)(const char*, NvmlDevice*) = nullptr;
  int (*clock)(NvmlDevice, int, unsigned*) = nullptr;
  int (*power)(NvmlDevice, unsigned*) = nullptr;
  int (*reasons)(NvmlDevice, unsigned long long*) = nullptr;
  int (*energy)(NvmlDevice, unsigned long long*) = nullptr;  // mJ since the driver loaded
  bool ok = false;
};

constexpr int kNvmlClockSm = 1;  // NVML_CLOCK_SM

// Loaded and initialised once a process; never shut down or unloaded (the
// process ends soon after the last window).
const Nvml& nvml() {
  static const Nvml n = [] {
    Nvml m;
    void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return m;
    auto sym = [&](const char* name) { return dlsym(lib, name); };
    m.init = reinterpret_cast<int (*)()>(sym("nvmlInit_v2"));
    m.by_pci = reinterpret_cast<int (*)(const char*, NvmlDevice*)>(sym("nvmlDeviceGetHandleByPciBusId_v2"));
    m.clock = reinterpret_cast<int (*)(NvmlDevice, int, unsigned*)>(sym("nvmlDeviceGetClockInfo"));
    m.power = reinterpret_cast<int (*)(NvmlDevice, unsigned*)>(sym("nvmlDeviceGetPowerUsage"));
    void* r = sym("nvmlDeviceGetCurrentClocksEventReasons");
    if (!r) r = sym("nvmlDeviceGetCurrentClocksThrottleReasons");  // drivers before 535
    m.reasons = reinterpret_cast<int (*)(NvmlDevice, unsigned long long*)>(r);
    m.energy = reinterpret_cast<int (*)(NvmlDevice, unsigned long long*)>(sym("nvmlDeviceGetTotalEnergyConsumption"));
    m.ok = m.init && m.by_pci && m.clock && m.init() == 0;
    return m;
  }();
  return n;
}

}  // namespace

std::string clock_reason_names(unsigned long long reasons) {
  static const struct {
    unsigned long long bit;
    const char* name;
  } kNames[] = {{0x1, "idle"},           {0x2, "app clocks"},   {0x4, "power cap"},
                {0x8, "hw slowdown"},    {0x10, "sync boost"},  {0x20, "sw thermal"},
                {0x40, "hw thermal"},    {0x80, "power brake"}, {0x100, "display clocks"}};
  std::string s;
  for (const auto& n : kNames) {
    if (!(reasons & n.bit)) continue;
    if (!s.empty()) s += ',';
    s += n.name;
  }
  return s;
}

ClockSampler::ClockSampler(const std::string& pci_bus_id, int period_us) : period_us_(period_us) {
  const Nvml& n = nvml();
  NvmlDevice d = nullptr;
  if (n.ok && !pci_bus_id.empty() && n.by_pci(pci_bus_id.c_str(), &d) == 0) device_ = d;
}

ClockSampler::~ClockSampler() { stop(); }

long long ClockSampler::energy_mj() const {
  const Nvml& n = nvml();
  unsigned long long mj = 0;
  if (!device_ || !n.energy || n.energy(device_, &mj) != 0) return -1;
  return (long long)mj;
}

void ClockSampler::start() {
  if (!device_) return;
  if (running_) stop();
  samples_.clear();
  energy_start_mj_ = energy_mj();
  t_start_ = std::chrono::steady_clock::now();
  running_ = true;
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::system_error&) {
    running_ = false;  // no thread: this window reads nothing
  }
}

void ClockSampler::run() {
  const Nvml& n = nvml();
  while (running_) {
    Sample s{0, 0, 0};
    if (n.clock(device_, kNvmlClockSm, &s.sm_mhz) == 0) {
      if (n.power && n.power(device_, &s.power_mw) != 0) s.power_mw = 0;
      if (n.reasons && n.reasons(device_, &s.reasons) != 0) s.reasons = 0;
      samples_.push_back(s);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(period_us_));
  }
}

ClockStats ClockSampler::stop() {
  ClockStats st;
  if (!running_) return st;
  running_ = false;
  const long long e1 = energy_mj();
  st.window_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start_).count();
  if (energy_start_mj_ >= 0 && e1 >= energy_start_mj_ && st.window_s >= kMinEnergyWindowS)
    st.energy_j = (e1 - energy_start_mj_) / 1000.0;
  if (thread_.joinable()) thread_.join();
  if (samples_.empty()) return st;
  std::vector<double> mhz;
  double power = 0;
  int with_power = 0;
  for (const Sample& s : samples_) {
    mhz.push_back(s.sm_mhz);
    if (s.power_mw) {
      power += s.power_mw / 1000.0;
      ++with_power;
    }
    st.reasons |= s.reasons;
  }
  st.samples = (int)mhz.size();
  st.sm_mhz_median = median(mhz);
  st.sm_mhz_min = *std::min_element(mhz.begin(), mhz.end());
  st.power_w_trailing = with_power ? power / with_power : 0;
  return st;
}

}  // namespace bench
