// Layout of the split-KV partials (o_accum): one 64 x 512 block per
// (segment, tile), tile = kv_head * num_row_tiles + row_tile, stored in the
// order the wgmma accumulators sit in registers. Thread t (of 256; t / 128
// picks the 256-column half) holds, for column group q (0..31), rows
// r0 = 16 * warp + lane / 4 and r0 + 8 at columns 8 q + 2 (lane % 4) + {0, 1};
// that quad of values lives at quad index q * 256 + t, so a warp's stores and
// loads are 256 contiguous bytes instead of 8 rows' worth of scattered pieces.
//
// The values are stored in the output's dtype T (bf16 or fp16), as vLLM's and
// FlashInfer's split-KV partials are: a partial is normalised O, a convex
// combination of V rows, so it is representable in T whenever V is. The
// price is one more rounding of a split request's output (relative 2^-8 in
// bf16, 2^-11 in fp16): on the GPU suite's split bf16 cases the cosine
// distance to the float64 reference goes from ~1.8e-6 (unsplit) to 3.1-3.6e-6
// (the tolerance is 5e-6), the largest elementwise error stays at <= 0.4 of
// its bound (bench/NOTES.md, 2026-12-03 fifth session). fp32 partials cost
// twice the bytes on the split steps' tails, which are bound by the chip's
// write rate: b1 h128 s_k 4096 14.8 -> 13.5-14.0 us on an H200.
#ifndef OPENMLA_KERNELS_COMMON_PARTIALS_CUH_
#define OPENMLA_KERNELS_COMMON_PARTIALS_CUH_

#include <cstdint>

#include "common/split_plan.h"
#include "kernels/common/params.h"
#include "kernels/common/ptx.cuh"

namespace openmla::kernels {

constexpr int kPartialTileQuads = kRowsPerTile * kHeadDimV / 4;  // 8192 quads of 8 bytes

// Quad index 0 of a (segment, tile) block; quads are uint2: (row r0: 2
// columns, row r0 + 8: 2 columns), two T values a 32-bit word.
__device__ __forceinline__ uint2* partial_tile(const DenseDecodeParams& p, int seg, int tile) {
  return static_cast<uint2*>(p.o_accum) + ((int64_t)seg * p.h_kv * p.num_row_tiles + tile) * kPartialTileQuads;
}

template <typename T>
__device__ __forceinline__ uint2 pack_quad(float a0, float a1, float b0, float b1) {
  return make_uint2(ptx::pack2<T>(a0, a1), ptx::pack2<T>(b0, b1));
}

template <typename T>
__device__ __forceinline__ float4 unpack_quad(uint2 v) {
  const float2 a = ptx::unpack2<T>(v.x), b = ptx::unpack2<T>(v.y);
  return make_float4(a.x, a.y, b.x, b.y);
}

// Offset of a tile row (kv head, row in s_q x group order) in one segment's
// slice of lse_accum ([s_q, h_q]).
__device__ __forceinline__ int64_t lse_row_offset(const DenseDecodeParams& p, int kv_head, int row) {
  const int s = row / p.group, h = kv_head * p.group + row % p.group;
  return (int64_t)s * p.h_q + h;
}

// Index, in 32-bit words (two T values), of (row, col) of a tile, col even,
// for kernels whose registers hold another layout.
__device__ __forceinline__ int partial_word(int row, int col) {
  const int wg = col >> 8, cc = col & 255, q = cc >> 3, c = (cc & 7) >> 1;
  const int warp = row >> 4, r16 = row & 15;
  const int t = wg * 128 + warp * 32 + (r16 & 7) * 4 + c;
  return (q * 256 + t) * 2 + (r16 >> 3);
}

}  // namespace openmla::kernels

#endif  // OPENMLA_KERNELS_COMMON_PARTIALS_CUH_
