// Walks the (request, block) items of one plan part, in the order the plan
// numbers its segments. Shared by the dense decode kernels.
#ifndef OPENMLA_KERNELS_COMMON_PART_CURSOR_CUH_
#define OPENMLA_KERNELS_COMMON_PART_CURSOR_CUH_

#include <cstdint>

#include "common/split_plan.h"
#include "kernels/common/params.h"

namespace openmla::kernels {

// Whether the plan can be used for these shapes: no recorded bad length and
// made for them. The header comes in with four 16-byte loads issued together;
// checking field by field through memory, short-circuited, cost one dependent
// round trip a field (five before the first cache load).
__device__ __forceinline__ bool plan_usable(const DenseDecodeParams& p) {
  union {
    int4 v[sizeof(PlanHeader) / 16];
    PlanHeader h;
  } u;
  const int4* src = static_cast<const int4*>(p.plan);
#pragma unroll
  for (int i = 0; i < (int)(sizeof(PlanHeader) / 16); ++i) u.v[i] = src[i];
  return u.h.error_code == kPlanOk && plan_matches(&u.h, p.batch, p.s_q, p.h_q, p.h_kv, p.num_parts);
}

// What a decode CTA (tile = blockIdx.x, part = blockIdx.y) reads of the plan.
// `usable` is false for a plan that recorded a bad length or was made for
// other shapes (the combine kernel then writes NaN) and for an idle part.
struct PartView {
  const RequestMeta* reqs;
  PartMeta pm;
  int row_tile, kv_head;
  bool plan_ok;  // no recorded bad length, made for these shapes
  bool usable;   // plan_ok and this part has work
};

// tile: (kv head, row tile) of this CTA, blockIdx.x unless a kernel runs
// several CTAs a tile.
__device__ __forceinline__ PartView view_part(const DenseDecodeParams& p, int tile) {
  const PlanHeader* hdr = static_cast<const PlanHeader*>(p.plan);
  const PartMeta* parts = reinterpret_cast<const PartMeta*>(hdr + 1);
  PartView v;
  v.reqs = reinterpret_cast<const RequestMeta*>(parts + p.num_parts);
  v.pm = parts[blockIdx.y];
  v.row_tile = tile % p.num_row_tiles;
  v.kv_head = tile / p.num_row_tiles;
  v.plan_ok = plan_usable(p);
  v.usable = v.plan_ok && v.pm.num_blocks > 0;
  return v;
}
__device__ __forceinline__ PartView view_part(const DenseDecodeParams& p) { return view_part(p, blockIdx.x); }

struct Cursor {
  int r, blk, end;  // end: one past the last block of r within this part
  int len;          // r's cached length, read once a request (not once a block)
  bool seg_start;   // first item of a segment (a new request)
};

__device__ __forceinline__ void cursor_begin(Cursor& c, const PartMeta& pm, const int32_t* len) {
  c.r = pm.r_begin;
  c.blk = pm.blk_begin;
  c.len = len[c.r];
  c.end = pm.r_begin == pm.r_end ? pm.blk_end : blocks_of(c.len);
  c.seg_start = true;
}

__device__ __forceinline__ void cursor_next(Cursor& c, const PartMeta& pm, const int32_t* len) {
  if (++c.blk < c.end) {
    c.seg_start = false;
    return;
  }
  do {
    ++c.r;
    c.len = len[c.r];  // r never passes r_end (inclusive, a real request)
  } while (c.r < pm.r_end && blocks_of(c.len) == 0);
  c.blk = 0;
  c.end = c.r == pm.r_end ? pm.blk_end : blocks_of(c.len);
  c.seg_start = true;
}

}  // namespace openmla::kernels

#endif  // OPENMLA_KERNELS_COMMON_PART_CURSOR_CUH_
