// GoogleTest fixtures of the GPU tests: every test skips when main() found no
// usable GPU (it prints one visible line saying so).
#ifndef OPENMLA_TESTS_GPU_GPU_FIXTURE_H_
#define OPENMLA_TESTS_GPU_GPU_FIXTURE_H_

#include <gtest/gtest.h>

#include "gpu_test_util.h"

namespace openmla_test {

class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!g_has_gpu) GTEST_SKIP() << g_skip_reason;
  }
};

template <class Param>
class GpuTestWithParam : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    if (!g_has_gpu) GTEST_SKIP() << g_skip_reason;
  }
};

// GoogleTest prints parameters on failure; print the case name, not bytes.
inline void PrintTo(const DecodeCase& c, std::ostream* os) {
  *os << (c.name.empty() ? default_name(c) : c.name) << " lens=" << lens_string(c.seqlens);
}

}  // namespace openmla_test

#endif  // OPENMLA_TESTS_GPU_GPU_FIXTURE_H_
