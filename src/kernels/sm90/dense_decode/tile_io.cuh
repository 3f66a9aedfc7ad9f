// Shared-memory tile geometry and the global <-> tile copies that both wgmma
// dense decode kernels use: Q tile in, output rows (or fp32 partials) out.
#ifndef OPENMLA_KERNELS_SM90_DENSE_DECODE_TILE_IO_CUH_
#define OPENMLA_KERNELS_SM90_DENSE_DECODE_TILE_IO_CUH_

#include <cstdint>

#include "common/split_plan.h"
#include "kernels/common/params.h"
#include "kernels/common/partials.cuh"
#include "kernels/common/ptx.cuh"

namespace openmla::kernels::tile_io {

constexpr int kTileM = kRowsPerTile;               // 64 query rows
constexpr int kChunks = kHeadDimQK / 64;           // 9 column chunks of 64 (128 bytes)
constexpr int kChunkBytes = 64 * 128;              // 8 KB: 64 rows x 128 bytes
constexpr int kTileBytes = kChunks * kChunkBytes;  // 73728: a Q tile or a cache block

// Byte offset of (row, col) in a 128-byte-swizzled [rows][64] chunk.
__device__ __forceinline__ uint32_t sw128(int row, int col) {
  return row * 128 + ((((col >> 3) ^ row) & 7) << 4) + (col & 7) * 2;
}

// Byte offset of k-step kk (16 columns) of a [64][576] tile stored as chunks.
__device__ __forceinline__ uint32_t q_koff(int kk) { return (kk / 4) * kChunkBytes + (kk % 4) * 32; }

// Q rows of one row tile into smem (cp.async, rows past p.rows zero-filled);
// kThreadsLoading threads take part, t is this thread's index among them.
// Each warp takes whole rows and its lanes consecutive 16-byte pieces of a
// row, so a row's (s, h) is worked out once per row, not once per piece (the
// divisions made this loop cost several microseconds per tile).
template <typename T, int kThreadsLoading>
__device__ __forceinline__ void load_q_tile(const DenseDecodeParams& p, unsigned char* sq, int r,
                                            int row_tile, int kv_head, int t) {
  constexpr int kWarpsLoading = kThreadsLoading / 32;
  constexpr int kRowsPerWarp = kTileM / kWarpsLoading;
  constexpr int kPieces = kChunks * 8;  // 16-byte pieces in a 576-wide row
  const T* qb = static_cast<const T*>(p.q) + (int64_t)r * p.q_stride_b;
  const uint32_t base = ptx::smem_addr(sq);
  const int warp = t / 32, lane = t % 32;
#pragma unroll 2
  for (int i = 0; i < kRowsPerWarp; ++i) {
    const int m = warp * kRowsPerWarp + i;
    const int row = row_tile * kTileM + m;
    const bool valid = row < p.rows;
    const int s = valid ? row / p.group : 0;
    const int h = kv_head * p.group + (valid ? row - s * p.group : 0);
    const T* src = valid ? qb + (int64_t)s * p.q_stride_s + (int64_t)h * p.q_stride_h : qb;
#pragma unroll
    for (int k = 0; k < (kPieces + 31) / 32; ++k) {
      const int piece = lane + 32 * k;
      if (piece < kPieces)
        ptx::cp_async_16(base + (piece / 8) * kChunkBytes + sw128(m, (piece % 8) * 8),
                         valid ? src + piece * 8 : qb, valid);
    }
  }
}

// One of this thread's two accumulator rows (i), 8 * kGroups columns from
// col0 with stride 8, scaled by inv, to the output row (r, s, h).
template <typename T, int kGroups = 32>
__device__ __forceinline__ void store_out_row(const DenseDecodeParams& p, const float* o, int i, float inv,
                                              int r, int s, int h, int col0) {
  T* orow = static_cast<T*>(p.out) + (int64_t)r * p.o_stride_b + (int64_t)s * p.o_stride_s +
            (int64_t)h * p.o_stride_h;
#pragma unroll
  for (int j = 0; j < kGroups; ++j)
    *reinterpret_cast<uint32_t*>(orow + col0 + j * 8) =
        ptx::pack2<T>(o[j * 4 + 2 * i] * inv, o[j * 4 + 2 * i + 1] * inv);
}

// The same row with 16-byte stores: a quad's 4 lanes hold 2 columns each of
// every 8-column group; two xor exchanges give lane c all 8 columns of group
// 4m + c. Per warp store 8 rows x 64 contiguous bytes instead of 8 x 16
// bytes (4x fewer stores and L2 requests: the 4-byte form took ~5 us for a
// 64-row tile, twice what the 128 KB fp32 partial takes). Every lane
// shuffles; `store` (uniform across a quad: one row) only gates the stores.
template <typename T, int kGroups>
__device__ __forceinline__ void store_out_row16(const DenseDecodeParams& p, const float* o, int i, float inv,
                                                int r, int s, int h, int col_base, int lane, bool store) {
  static_assert(kGroups % 4 == 0, "groups of 4");
  T* orow = static_cast<T*>(p.out) + (int64_t)r * p.o_stride_b + (int64_t)s * p.o_stride_s +
            (int64_t)h * p.o_stride_h + col_base;
  const int c = lane & 3;
  const bool b1 = c & 1, b2 = c & 2;
#pragma unroll
  for (int m = 0; m < kGroups / 4; ++m) {
    uint32_t w[4];  // w[j]: columns 2c, 2c + 1 of group 4m + j
#pragma unroll
    for (int j = 0; j < 4; ++j)
      w[j] = ptx::pack2<T>(o[(4 * m + j) * 4 + 2 * i] * inv, o[(4 * m + j) * 4 + 2 * i + 1] * inv);
    // xor 2: keep groups (c & 2) and (c & 2) + 1, get the partner's words of them.
    const uint32_t k0 = b2 ? w[2] : w[0], k1 = b2 ? w[3] : w[1];
    const uint32_t r0 = __shfl_xor_sync(0xffffffffu, b2 ? w[0] : w[2], 2);
    const uint32_t r1 = __shfl_xor_sync(0xffffffffu, b2 ? w[1] : w[3], 2);
    // xor 1: keep group c (lanes c and c ^ 2's words), get lanes c ^ 1 and c ^ 3's.
    const uint32_t q0 = b1 ? k1 : k0, q1 = b1 ? r1 : r0;
    const uint32_t t0 = __shfl_xor_sync(0xffffffffu, b1 ? k0 : k1, 1);
    const uint32_t t1 = __shfl_xor_sync(0xffffffffu, b1 ? r0 : r1, 1);
    // word j comes from lane j: q0 lane c, t0 lane c ^ 1, q1 lane c ^ 2, t1 lane c ^ 3.
    const uint32_t a = b1 ? t0 : q0, b = b1 ? q0 : t0, d = b1 ? t1 : q1, e = b1 ? q1 : t1;
    if (store) *reinterpret_cast<uint4*>(orow + 8 * (4 * m + c)) = b2 ? make_uint4(d, e, a, b) : make_uint4(a, b, d, e);
  }
}

// This thread's share of a wgmma output tile (both rows, 256 columns) as
// fp32 partials, row k scaled by inv[k] (partials.cuh: t = threadIdx.x).
// Warps whose 16 rows are all past the tile's last row store nothing.
// kGroups < 32: the thread holds column groups q0.. of thread t's share (a
// column half's CTA stores only its half, at the full tile's places).
template <int kGroups = 32>
__device__ __forceinline__ void store_partial(float* tile, const float* o, const float* inv, int t,
                                              int rows_in_tile, int q0 = 0) {
  if (((t % 128) / 32) * 16 >= rows_in_tile) return;
  float4* dst = reinterpret_cast<float4*>(tile) + t + q0 * 256;
#pragma unroll
  for (int q = 0; q < kGroups; ++q)
    dst[q * 256] = make_float4(o[4 * q] * inv[0], o[4 * q + 1] * inv[0], o[4 * q + 2] * inv[1], o[4 * q + 3] * inv[1]);
}

}  // namespace openmla::kernels::tile_io

#endif  // OPENMLA_KERNELS_SM90_DENSE_DECODE_TILE_IO_CUH_
