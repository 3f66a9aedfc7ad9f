// Walks the (request, block) items of one plan part, in the order the plan
// numbers its segments. Shared by the dense decode kernels.
#ifndef OPENMLA_KERNELS_COMMON_PART_CURSOR_CUH_
#define OPENMLA_KERNELS_COMMON_PART_CURSOR_CUH_

#include <cstdint>

#include "common/split_plan.h"

namespace openmla::kernels {

struct Cursor {
  int r, blk, end;  // end: one past the last block of r within this part
  bool seg_start;   // first item of a segment (a new request)
};

__device__ __forceinline__ void cursor_begin(Cursor& c, const PartMeta& pm, const int32_t* len) {
  c.r = pm.r_begin;
  c.blk = pm.blk_begin;
  c.end = pm.r_begin == pm.r_end ? pm.blk_end : blocks_of(len[c.r]);
  c.seg_start = true;
}

__device__ __forceinline__ void cursor_next(Cursor& c, const PartMeta& pm, const int32_t* len) {
  if (++c.blk < c.end) {
    c.seg_start = false;
    return;
  }
  do {
    ++c.r;
  } while (c.r < pm.r_end && blocks_of(len[c.r]) == 0);
  c.blk = 0;
  c.end = c.r == pm.r_end ? pm.blk_end : blocks_of(len[c.r]);
  c.seg_start = true;
}

}  // namespace openmla::kernels

#endif  // OPENMLA_KERNELS_COMMON_PART_CURSOR_CUH_
