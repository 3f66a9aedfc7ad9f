// Shared-memory tile geometry and the global <-> tile copies that both wgmma
// dense decode kernels use: Q tile in, output rows (or fp32 partials) out.
#ifndef OPENMLA_KERNELS_SM90_DENSE_DECODE_TILE_IO_CUH_
#define OPENMLA_KERNELS_SM90_DENSE_DECODE_TILE_IO_CUH_

#include <cstdint>

#include "common/split_plan.h"
#include "kernels/common/params.h"
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
template <typename T, int kThreadsLoading>
__device__ __forceinline__ void load_q_tile(const DenseDecodeParams& p, unsigned char* sq, int r,
                                            int row_tile, int kv_head, int t) {
  const T* qb = static_cast<const T*>(p.q) + (int64_t)r * p.q_stride_b;
  const uint32_t base = ptx::smem_addr(sq);
#pragma unroll 4
  for (int idx = t; idx < kTileM * kChunks * 8; idx += kThreadsLoading) {
    const int m = idx / (kChunks * 8), piece = idx % (kChunks * 8);  // piece: 16-byte unit in the row
    const int row = row_tile * kTileM + m;
    const bool valid = row < p.rows;
    const int s = valid ? row / p.group : 0;
    const int h = kv_head * p.group + (valid ? row % p.group : 0);
    const T* src = qb + (int64_t)s * p.q_stride_s + (int64_t)h * p.q_stride_h + piece * 8;
    const int c = piece / 8, col = (piece % 8) * 8;
    ptx::cp_async_16(base + c * kChunkBytes + sw128(m, col), valid ? src : qb, valid);
  }
}

// One of this thread's two accumulator rows (i), 256 columns from col0 with
// stride 8, scaled by inv: to the output (direct) or to the fp32 partials.
template <typename T>
__device__ __forceinline__ void store_row_pair(const DenseDecodeParams& p, const float* o, int i,
                                               float inv, int r, int s, int h, int col0,
                                               bool direct, int seg) {
  if (direct) {
    T* orow = static_cast<T*>(p.out) + (int64_t)r * p.o_stride_b + (int64_t)s * p.o_stride_s +
              (int64_t)h * p.o_stride_h;
#pragma unroll
    for (int j = 0; j < 32; ++j)
      *reinterpret_cast<uint32_t*>(orow + col0 + j * 8) =
          ptx::pack2<T>(o[j * 4 + 2 * i] * inv, o[j * 4 + 2 * i + 1] * inv);
  } else {
    const int64_t grow = (int64_t)seg * p.s_q * p.h_q + (int64_t)s * p.h_q + h;
    float* orow = p.o_accum + grow * kHeadDimV;
#pragma unroll
    for (int j = 0; j < 32; ++j)
      *reinterpret_cast<float2*>(orow + col0 + j * 8) =
          make_float2(o[j * 4 + 2 * i] * inv, o[j * 4 + 2 * i + 1] * inv);
  }
}

}  // namespace openmla::kernels::tile_io

#endif  // OPENMLA_KERNELS_SM90_DENSE_DECODE_TILE_IO_CUH_
