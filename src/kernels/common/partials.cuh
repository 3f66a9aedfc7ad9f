// Layout of the split-KV fp32 partials (o_accum): one 64 x 512 block per
// (segment, tile), tile = kv_head * num_row_tiles + row_tile, stored in the
// order the wgmma accumulators sit in registers. Thread t (of 256; t / 128
// picks the 256-column half) holds, for column group q (0..31), rows
// r0 = 16 * warp + lane / 4 and r0 + 8 at columns 8 q + 2 (lane % 4) + {0, 1};
// that float4 lives at (q * 256 + t) * 4, so a warp's stores and loads are
// 512 contiguous bytes instead of 8 rows' worth of scattered 32-byte pieces.
#ifndef OPENMLA_KERNELS_COMMON_PARTIALS_CUH_
#define OPENMLA_KERNELS_COMMON_PARTIALS_CUH_

#include <cstdint>

#include "common/split_plan.h"
#include "kernels/common/params.h"

namespace openmla::kernels {

constexpr int kPartialTileFloats = kRowsPerTile * kHeadDimV;  // 32768

__device__ __forceinline__ float* partial_tile(const DenseDecodeParams& p, int seg, int tile) {
  return p.o_accum + ((int64_t)seg * p.h_kv * p.num_row_tiles + tile) * kPartialTileFloats;
}

// Offset of a tile row (kv head, row in s_q x group order) in one segment's
// slice of lse_accum ([s_q, h_q]).
__device__ __forceinline__ int64_t lse_row_offset(const DenseDecodeParams& p, int kv_head, int row) {
  const int s = row / p.group, h = kv_head * p.group + row % p.group;
  return (int64_t)s * p.h_q + h;
}

// Offset of (row, col) of a tile, for kernels whose registers hold another layout.
__device__ __forceinline__ int partial_offset(int row, int col) {
  const int wg = col >> 8, cc = col & 255, q = cc >> 3, c = (cc & 7) >> 1, e = cc & 1;
  const int warp = row >> 4, r16 = row & 15;
  const int t = wg * 128 + warp * 32 + (r16 & 7) * 4 + c;
  return (q * 256 + t) * 4 + (r16 >> 3) * 2 + e;
}

}  // namespace openmla::kernels

#endif  // OPENMLA_KERNELS_COMMON_PARTIALS_CUH_
