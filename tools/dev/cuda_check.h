// CK(call): the developer tools' check of a CUDA runtime call (file, line,
// message, exit 1).
#ifndef OPENMLA_TOOLS_DEV_CUDA_CHECK_H_
#define OPENMLA_TOOLS_DEV_CUDA_CHECK_H_

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

#define CK(x)                                                                  \
  do {                                                                         \
    cudaError_t e_ = (x);                                                      \
    if (e_ != cudaSuccess) {                                                   \
      printf("%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_));        \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

#endif  // OPENMLA_TOOLS_DEV_CUDA_CHECK_H_
