// Split-KV dense MLA decode, tensor cores via mma.sync m16n8k16.
//
// CTA = (row tile of one kv head, plan part). 8 warps; warp w owns query rows
// 16*(w%4).. and, for QK^T, tokens 32*(w/4).. of the block, for PV, output
// columns 256*(w/4).. . The two warps of a row group exchange row maxima and
// P through shared memory. K of a cache block doubles as V (its first 512
// columns), so each block is loaded once; blocks are double-buffered with
// cp.async. Shared tiles are 16-byte-chunk XOR swizzled (chunk ^ row%8) so
// ldmatrix is conflict-free.
#ifndef OPENMLA_KERNELS_SM90_DENSE_DECODE_MMA_SYNC_KERNEL_CUH_
#define OPENMLA_KERNELS_SM90_DENSE_DECODE_MMA_SYNC_KERNEL_CUH_

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "common/split_plan.h"
#include "kernels/common/params.h"
#include "kernels/common/partials.cuh"
#include "kernels/common/part_cursor.cuh"
#include "kernels/common/ptx.cuh"
#include "kernels/sm90/dense_decode/config.h"

namespace openmla::kernels::dense_decode {

__device__ __forceinline__ int swz(int row, int chunk) {
  return (chunk & ~7) | ((chunk ^ row) & 7);
}

// Element offset of (row, chunk) in a swizzled tile of `row_chunks` chunks.
__device__ __forceinline__ int tile_off(int row, int chunk, int row_chunks) {
  return row * row_chunks * kChunk + swz(row, chunk) * kChunk;
}

template <typename T>
__device__ __forceinline__ void load_cache_block(const DenseDecodeParams& p, T* dst, int r,
                                                 int blk, int kv_head, uint64_t policy) {
  const int phys = p.block_table[(int64_t)r * p.block_table_stride + blk];
  const int len = p.seqlens[r];
  const T* base = static_cast<const T*>(p.k_cache) + (int64_t)phys * p.k_stride_block +
                  (int64_t)kv_head * p.k_stride_head;
  const uint32_t dst_s = ptx::smem_addr(dst);
#pragma unroll
  for (int i = 0; i < kTileN * kRowChunks / kThreads; ++i) {
    const int idx = threadIdx.x + i * kThreads;
    const int tok = idx / kRowChunks, chunk = idx % kRowChunks;
    const bool valid = blk * kTileN + tok < len;
    const T* src = valid ? base + (int64_t)tok * p.k_stride_token + chunk * kChunk : base;
    ptx::cp_async_16_evict_first(dst_s + tile_off(tok, chunk, kRowChunks) * 2, src, valid,
                                 policy);
  }
}

template <typename T>
__device__ __forceinline__ void load_q_tile(const DenseDecodeParams& p, T* dst, int r,
                                            int row_tile, int kv_head) {
  const T* qb = static_cast<const T*>(p.q) + (int64_t)r * p.q_stride_b;
  const uint32_t dst_s = ptx::smem_addr(dst);
#pragma unroll
  for (int i = 0; i < kTileM * kRowChunks / kThreads; ++i) {
    const int idx = threadIdx.x + i * kThreads;
    const int m = idx / kRowChunks, chunk = idx % kRowChunks;
    const int row = row_tile * kTileM + m;
    const bool valid = row < p.rows;
    const int s = valid ? row / p.group : 0;
    const int h = kv_head * p.group + (valid ? row % p.group : 0);
    const T* src = qb + (int64_t)s * p.q_stride_s + (int64_t)h * p.q_stride_h + chunk * kChunk;
    ptx::cp_async_16(dst_s + tile_off(m, chunk, kRowChunks) * 2, valid ? src : qb, valid);
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads, 1) dense_decode_kernel(const DenseDecodeParams p) {
  ptx::griddep_wait();  // a no-op unless launched as a programmatic dependent
  ptx::griddep_launch_dependents();  // the combine may launch: it waits on this grid
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sK = sQ + kTileElems;                       // kStages tiles
  T* sP = sK + kStages * kTileElems;             // [64][64]
  float* sMax = reinterpret_cast<float*>(sP + kPElems);  // [2][64]
  float* sSum = sMax + 2 * kTileM;                        // [2][64]

  const PartView view = view_part(p);
  if (!view.usable) return;
  const RequestMeta* reqs = view.reqs;
  const PartMeta pm = view.pm;
  const int row_tile = view.row_tile, kv_head = view.kv_head, num_items = pm.num_blocks;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int mg = warp % 4;    // row group: rows 16*mg ..
  const int half = warp / 4;  // QK: tokens 32*half.., PV: columns 256*half..
  const uint64_t policy = ptx::evict_first_policy();

  // Rows this thread's accumulators hold (two: lane/4 and lane/4 + 8).
  int row_end[2];   // exclusive attended key index, per held row, for the current request
  float m_run[2], l_run[2];
  float o_acc[32][4];

  Cursor cur, nxt;
  cursor_begin(cur, pm, p.seqlens);
  nxt = cur;
  int seg = pm.seg_begin;

  for (int it = 0; it < num_items; ++it) {
    if (it == 0) {
      load_cache_block(p, sK, cur.r, cur.blk, kv_head, policy);
      ptx::cp_async_commit();
    }
    if (cur.seg_start) {
      load_q_tile(p, sQ, cur.r, row_tile, kv_head);
      ptx::cp_async_commit();
      const int len = p.seqlens[cur.r];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int row = row_tile * kTileM + mg * 16 + lane / 4 + 8 * i;
        const int s = row < p.rows ? row / p.group : 0;
        row_end[i] = p.causal ? min(len, len - p.s_q + s + 1) : len;
        m_run[i] = -INFINITY;
        l_run[i] = 0.f;
      }
#pragma unroll
      for (int n = 0; n < 32; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) o_acc[n][e] = 0.f;
    }
    if (it + 1 < num_items) {
      cursor_next(nxt, pm, p.seqlens);
      load_cache_block(p, sK + ((it + 1) % kStages) * kTileElems, nxt.r, nxt.blk, kv_head, policy);
      ptx::cp_async_commit();
      ptx::cp_async_wait<1>();
    } else {
      ptx::cp_async_wait<0>();
    }
    __syncthreads();

    const T* sKc = sK + (it % kStages) * kTileElems;
    const uint32_t sQ_s = ptx::smem_addr(sQ), sK_s = ptx::smem_addr(sKc), sP_s = ptx::smem_addr(sP);

    // S = Q K^T for 16 rows x 32 tokens.
    float s_acc[4][4];
#pragma unroll
    for (int n = 0; n < 4; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) s_acc[n][e] = 0.f;
#pragma unroll 4
    for (int kk = 0; kk < kD / 16; ++kk) {
      uint32_t a[4];
      ptx::ldmatrix_x4(sQ_s + tile_off(mg * 16 + lane % 16, kk * 2 + lane / 16, kRowChunks) * 2,
                       a[0], a[1], a[2], a[3]);
#pragma unroll
      for (int nb = 0; nb < 2; ++nb) {
        const int tok = half * 32 + nb * 16 + lane % 8 + 8 * (lane / 16);
        uint32_t b0, b1, b2, b3;
        ptx::ldmatrix_x4(sK_s + tile_off(tok, kk * 2 + (lane / 8) % 2, kRowChunks) * 2, b0, b1,
                         b2, b3);
        ptx::mma_16816<T>(s_acc[nb * 2], a, b0, b1);
        ptx::mma_16816<T>(s_acc[nb * 2 + 1], a, b2, b3);
      }
    }

    // Mask, scale to log2 units, row max across the warp pair.
    const int tok0 = cur.blk * kTileN + half * 32 + 2 * (lane % 4);
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < 4; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = e / 2;
        const int j = tok0 + n * 8 + (e % 2);
        const float v = j < row_end[i] ? s_acc[n][e] * p.scale_log2 : -INFINITY;
        s_acc[n][e] = v;
        mx[i] = fmaxf(mx[i], v);
      }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffff, mx[i], 1));
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffff, mx[i], 2));
    }
    if (lane % 4 == 0) {
      sMax[half * kTileM + mg * 16 + lane / 4] = mx[0];
      sMax[half * kTileM + mg * 16 + lane / 4 + 8] = mx[1];
    }
    __syncthreads();
    float alpha[2], m_use[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int lr = mg * 16 + lane / 4 + 8 * i;
      const float m_new = fmaxf(m_run[i], fmaxf(sMax[lr], sMax[kTileM + lr]));
      m_use[i] = m_new == -INFINITY ? 0.f : m_new;  // all masked so far: keep exp2 finite
      alpha[i] = exp2f(m_run[i] - m_use[i]);
      m_run[i] = m_new;
    }
    float rs[2] = {0.f, 0.f};
#pragma unroll
    for (int n = 0; n < 4; ++n) {
      uint32_t packed[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const float p0 = exp2f(s_acc[n][2 * i] - m_use[i]);
        const float p1 = exp2f(s_acc[n][2 * i + 1] - m_use[i]);
        rs[i] += p0 + p1;
        packed[i] = ptx::pack2<T>(p0, p1);
      }
      const int chunk = half * 4 + n;
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int lr = mg * 16 + lane / 4 + 8 * i;
        *reinterpret_cast<uint32_t*>(sP + tile_off(lr, chunk, kTileN / kChunk) + 2 * (lane % 4)) =
            packed[i];
      }
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) l_run[i] = l_run[i] * alpha[i] + rs[i];
#pragma unroll
    for (int n = 0; n < 32; ++n) {
      o_acc[n][0] *= alpha[0];
      o_acc[n][1] *= alpha[0];
      o_acc[n][2] *= alpha[1];
      o_acc[n][3] *= alpha[1];
    }
    __syncthreads();

    // O += P V for 16 rows x 256 columns; V = first 512 columns of the block.
#pragma unroll
    for (int kk = 0; kk < kTileN / 16; ++kk) {
      uint32_t a[4];
      ptx::ldmatrix_x4(sP_s + tile_off(mg * 16 + lane % 16, kk * 2 + lane / 16, kTileN / kChunk) * 2,
                       a[0], a[1], a[2], a[3]);
      const int tok = kk * 16 + lane % 8 + 8 * ((lane / 8) % 2);
#pragma unroll
      for (int nb = 0; nb < 16; ++nb) {
        const int chunk = half * 32 + nb * 2 + lane / 16;
        uint32_t b0, b1, b2, b3;
        ptx::ldmatrix_x4_trans(sK_s + tile_off(tok, chunk, kRowChunks) * 2, b0, b1, b2, b3);
        ptx::mma_16816<T>(o_acc[nb * 2], a, b0, b1);
        ptx::mma_16816<T>(o_acc[nb * 2 + 1], a, b2, b3);
      }
    }

    const bool seg_end = it + 1 == num_items || nxt.seg_start;
    if (seg_end) {
      // Row sums: quad, then across the warp pair.
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        l_run[i] += __shfl_xor_sync(0xffffffff, l_run[i], 1);
        l_run[i] += __shfl_xor_sync(0xffffffff, l_run[i], 2);
      }
      if (lane % 4 == 0) {
        sSum[half * kTileM + mg * 16 + lane / 4] = l_run[0];
        sSum[half * kTileM + mg * 16 + lane / 4 + 8] = l_run[1];
      }
      __syncthreads();
      const bool direct = reqs[cur.r].num_segs == 1;
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int lr = mg * 16 + lane / 4 + 8 * i;
        const int row = row_tile * kTileM + lr;
        if (row >= p.rows) continue;
        const float l = sSum[lr] + sSum[kTileM + lr];
        const bool empty = m_run[i] == -INFINITY;
        const float inv = empty ? 0.f : 1.f / l;
        const float lse = empty ? -INFINITY : (m_run[i] + log2f(l)) * 0.69314718055994530942f;
        const int s = row / p.group, h = kv_head * p.group + row % p.group;
        const int col0 = half * 256 + 2 * (lane % 4);
        if (direct) {
          T* orow = static_cast<T*>(p.out) + (int64_t)cur.r * p.o_stride_b +
                    (int64_t)s * p.o_stride_s + (int64_t)h * p.o_stride_h;
#pragma unroll
          for (int n = 0; n < 32; ++n)
            *reinterpret_cast<uint32_t*>(orow + col0 + n * 8) =
                ptx::pack2<T>(o_acc[n][2 * i] * inv, o_acc[n][2 * i + 1] * inv);
          if (half == 0 && lane % 4 == 0)
            p.lse[(int64_t)cur.r * p.lse_stride_b + (int64_t)h * p.lse_stride_h + s] =
                empty ? INFINITY : lse;
        } else {
          const int64_t grow = (int64_t)seg * p.s_q * p.h_q + (int64_t)s * p.h_q + h;
          float* tile = partial_tile(p, seg, blockIdx.x);
#pragma unroll
          for (int n = 0; n < 32; ++n)
            *reinterpret_cast<float2*>(tile + partial_offset(lr, col0 + n * 8)) =
                make_float2(o_acc[n][2 * i] * inv, o_acc[n][2 * i + 1] * inv);
          if (half == 0 && lane % 4 == 0) p.lse_accum[grow] = lse;
        }
      }
      ++seg;
    }
    __syncthreads();  // stage it%2, sP, sMax, sSum and (next segment) sQ are free again
    cur = nxt;
  }
}

}  // namespace openmla::kernels::dense_decode

#endif  // OPENMLA_KERNELS_SM90_DENSE_DECODE_MMA_SYNC_KERNEL_CUH_
