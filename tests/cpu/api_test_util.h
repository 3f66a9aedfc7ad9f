// Helpers for the API tests that must not reach a GPU.
//
// Data pointers handed to the API are inaccessible host pages (PROT_NONE):
// argument checks must not dereference them, and a check that did would crash
// the test instead of passing silently.
#ifndef OPENMLA_TESTS_CPU_API_TEST_UTIL_H_
#define OPENMLA_TESTS_CPU_API_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cctype>
#include <cstring>
#include <string>
#include <vector>

#include "openmla/openmla.h"

namespace openmla_test {

class NoAccessRegion {
 public:
  explicit NoAccessRegion(size_t bytes = 4096) : bytes_(bytes < 4096 ? 4096 : bytes) {
    p_ = mmap(nullptr, bytes_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p_ == MAP_FAILED) p_ = nullptr;
  }
  ~NoAccessRegion() {
    if (p_) munmap(p_, bytes_);
  }
  NoAccessRegion(const NoAccessRegion&) = delete;
  NoAccessRegion& operator=(const NoAccessRegion&) = delete;
  void* get() const { return p_; }
  size_t size() const { return bytes_; }

 private:
  size_t bytes_;
  void* p_;
};

// True if `name` occurs in `msg` as a whole identifier ("q" matches "q.dtype"
// or "`q`", not "s_q" or "request").
inline bool names_arg(const char* msg, const char* name) {
  const size_t n = std::strlen(name);
  auto ident = [](char c) { return std::isalnum((unsigned char)c) || c == '_'; };
  for (const char* p = std::strstr(msg, name); p; p = std::strstr(p + 1, name)) {
    const bool left = p == msg || !ident(p[-1]);
    const bool right = !ident(p[n]);
    if (left && right) return true;
  }
  return false;
}

inline const char* code_name(openmla_status_code c) {
  switch (c) {
    case OPENMLA_OK: return "OPENMLA_OK";
    case OPENMLA_ERROR_INVALID_ARGUMENT: return "OPENMLA_ERROR_INVALID_ARGUMENT";
    case OPENMLA_ERROR_WORKSPACE_TOO_SMALL: return "OPENMLA_ERROR_WORKSPACE_TOO_SMALL";
    case OPENMLA_ERROR_UNSUPPORTED: return "OPENMLA_ERROR_UNSUPPORTED";
    case OPENMLA_ERROR_CUDA: return "OPENMLA_ERROR_CUDA";
    case OPENMLA_ERROR_BAD_SEQLENS: return "OPENMLA_ERROR_BAD_SEQLENS";
  }
  return "(unknown code)";
}

inline bool message_terminated(const openmla_status& s) {
  return std::memchr(s.message, '\0', sizeof(s.message)) != nullptr;
}

inline std::string describe(const openmla_status& s) {
  std::string m = message_terminated(s) ? std::string(s.message)
                                        : std::string(s.message, sizeof(s.message)) + " (unterminated)";
  return std::string(code_name(s.code)) + ": \"" + m + "\"";
}

enum class Expect {
  kBadArgument,   // INVALID_ARGUMENT (or UNSUPPORTED: a valid-looking request this build rejects)
  kWorkspace,     // WORKSPACE_TOO_SMALL
  kAnyError,      // any error but CUDA
};

// An error status, of the expected kind, whose message names one of `names`.
inline ::testing::AssertionResult IsError(const openmla_status& s, Expect kind,
                                          const std::vector<const char*>& names) {
  if (!message_terminated(s)) return ::testing::AssertionFailure() << "message not NUL-terminated";
  if (s.code == OPENMLA_OK) return ::testing::AssertionFailure() << "accepted: " << describe(s);
  if (s.code == OPENMLA_ERROR_CUDA)
    return ::testing::AssertionFailure() << "reached CUDA instead of rejecting: " << describe(s);
  if (kind == Expect::kBadArgument && s.code != OPENMLA_ERROR_INVALID_ARGUMENT &&
      s.code != OPENMLA_ERROR_UNSUPPORTED)
    return ::testing::AssertionFailure() << "wrong code: " << describe(s);
  if (kind == Expect::kWorkspace && s.code != OPENMLA_ERROR_WORKSPACE_TOO_SMALL)
    return ::testing::AssertionFailure() << "wrong code: " << describe(s);
  if (names.size() == 0) return ::testing::AssertionSuccess();
  std::string wanted;
  for (const char* n : names) {
    if (names_arg(s.message, n)) return ::testing::AssertionSuccess() << describe(s);
    wanted += std::string(wanted.empty() ? "" : " or ") + "\"" + n + "\"";
  }
  return ::testing::AssertionFailure() << "message does not name " << wanted << ": " << describe(s);
}

inline ::testing::AssertionResult IsOk(const openmla_status& s) {
  if (s.code == OPENMLA_OK) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << describe(s);
}

}  // namespace openmla_test

#endif  // OPENMLA_TESTS_CPU_API_TEST_UTIL_H_
