// Layout of the split-KV partials (o_accum): one block of kPartialBlockBytes
// per (segment, tile), tile = kv_head * num_row_tiles + row_tile.
//
// Values: the 64 x 512 normalised O in the order the wgmma accumulators sit
// in registers. Thread t (of 256; t / 128 picks the 256-column half) holds,
// for column group q (0..31), rows r0 = 16 * warp + lane / 4 and r0 + 8 at
// columns 8 q + 2 (lane % 4) + {0, 1}; that quad lives at quad index
// q * 256 + t (a quad: two 32-bit words, row r0's pair then row r0 + 8's), so
// a warp's stores and loads are 256 contiguous bytes.
//
// Each value x is stored as fp16(x / s), s = the float scale of its row and
// 128-column quarter (quarter = 2 * half + q / 16), held after the values as
// scales[quarter][row]. A writer takes s >= the largest |x| it stores there
// (its row max over the columns it holds), so x / s never leaves fp16's
// range whatever the dtype, and x keeps fp16's 11 bits (relative error
// <= 2^-11; below 2^-14 s, an absolute 2^-25 s). Half the bytes of fp32
// partials: the split steps' tails are bound by the chip's write rate
// (bench/NOTES.md), and plain bf16 partials (2^-8 relative) would leave the
// absolute tolerance where segments of N(0, 1) values cancel.
#ifndef OPENMLA_KERNELS_COMMON_PARTIALS_CUH_
#define OPENMLA_KERNELS_COMMON_PARTIALS_CUH_

#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

#include "common/split_plan.h"
#include "kernels/common/params.h"

namespace openmla::kernels {

constexpr int kPartialTileQuads = kRowsPerTile * kHeadDimV / 4;  // 8192 quads of 8 bytes
constexpr int kPartialBlockQuads = kPartialBlockBytes / 8;       // + 128 quads of scales
static_assert(kPartialBlockBytes == kPartialTileQuads * 8 + 4 * kRowsPerTile * 4, "partial block layout");
static_assert(kPartialBlockBytes % 256 == 0, "partial blocks keep 256-byte alignment");

// Quad 0 of the (segment, tile) block's values.
__device__ __forceinline__ uint2* partial_tile(const DenseDecodeParams& p, int seg, int tile) {
  return static_cast<uint2*>(p.o_accum) + ((int64_t)seg * p.h_kv * p.num_row_tiles + tile) * kPartialBlockQuads;
}
// Quads from one segment's block of a tile to the next segment's.
__device__ __forceinline__ int64_t partial_seg_stride(const DenseDecodeParams& p) {
  return (int64_t)p.h_kv * p.num_row_tiles * kPartialBlockQuads;
}
// scales[quarter][row] of the block whose values start at `tile`.
__device__ __forceinline__ float* partial_scales(uint2* tile) { return reinterpret_cast<float*>(tile + kPartialTileQuads); }
__device__ __forceinline__ const float* partial_scales(const uint2* tile) {
  return reinterpret_cast<const float*>(tile + kPartialTileQuads);
}

__device__ __forceinline__ uint32_t pack_scaled(float a, float b) {
  __half2 v = __floats2half2_rn(a, b);
  return *reinterpret_cast<uint32_t*>(&v);
}
__device__ __forceinline__ uint2 pack_quad(float a0, float a1, float b0, float b1) {
  return make_uint2(pack_scaled(a0, a1), pack_scaled(b0, b1));
}
// The stored values, still divided by their scale.
__device__ __forceinline__ float4 unpack_quad(uint2 v) {
  const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&v.x));
  const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&v.y));
  return make_float4(a.x, a.y, b.x, b.y);
}

// The scale for a row whose stored values have |x| <= m: tiny and zero
// maxima take a floor (1 / s stays finite); an infinite one takes 1, so inf
// stays inf (and NaN stays NaN: fmaxf drops it from m, x / s keeps it).
__device__ __forceinline__ float partial_scale_for(float m) {
  return isinf(m) ? 1.f : fmaxf(m, 0x1p-100f);
}

// max |x| over this thread's values of row k (0 or 1) of kGroups accumulator
// quads, as 8 independent chains: the stores wait on it at a segment's end.
template <int kGroups>
__device__ __forceinline__ float quads_abs_max(const float* o, int k) {
  constexpr int kChains = kGroups < 8 ? kGroups : 8;
  float m[kChains];
#pragma unroll
  for (int c = 0; c < kChains; ++c) m[c] = fmaxf(fabsf(o[4 * c + 2 * k]), fabsf(o[4 * c + 2 * k + 1]));
#pragma unroll
  for (int q = kChains; q < kGroups; ++q)
    m[q % kChains] = fmaxf(m[q % kChains], fmaxf(fabsf(o[4 * q + 2 * k]), fabsf(o[4 * q + 2 * k + 1])));
#pragma unroll
  for (int w = kChains / 2; w > 0; w /= 2)
#pragma unroll
    for (int c = 0; c < w; ++c) m[c] = fmaxf(m[c], m[c + w]);
  return m[0];
}

// The max of m over the 4 lanes that share a row (lane / 4) of an mma or
// wgmma accumulator; every lane of the warp calls it.
__device__ __forceinline__ float quad_max(float m) {
  m = fmaxf(m, __shfl_xor_sync(0xffffffff, m, 1));
  return fmaxf(m, __shfl_xor_sync(0xffffffff, m, 2));
}

// Offset of a tile row (kv head, row in s_q x group order) in one segment's
// slice of lse_accum ([s_q, h_q]).
__device__ __forceinline__ int64_t lse_row_offset(const DenseDecodeParams& p, int kv_head, int row) {
  const int s = row / p.group, h = kv_head * p.group + row % p.group;
  return (int64_t)s * p.h_q + h;
}

// Index, in 32-bit words (two values), of (row, col) of a tile, col even, for
// kernels whose registers hold another layout.
__device__ __forceinline__ int partial_word(int row, int col) {
  const int wg = col >> 8, cc = col & 255, q = cc >> 3, c = (cc & 7) >> 1;
  const int warp = row >> 4, r16 = row & 15;
  const int t = wg * 128 + warp * 32 + (r16 & 7) * 4 + c;
  return (q * 256 + t) * 2 + (r16 >> 3);
}

}  // namespace openmla::kernels

#endif  // OPENMLA_KERNELS_COMMON_PARTIALS_CUH_
