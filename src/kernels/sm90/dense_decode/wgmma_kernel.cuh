// Split-KV dense MLA decode on Hopper tensor cores (wgmma + TMA).
//
// CTA = (64-row query tile of one kv head, plan part), two warpgroups:
//   WG0: S = Q K^T (64x64, k=576), online softmax, writes P (bf16) to smem,
//        O[:, 0:256] += P V.
//   WG1: O[:, 256:512] += P V, and its first thread issues the TMA loads.
// A 64-token cache block is loaded once (9 TMA boxes of 64x64, 128-byte
// swizzle) and serves as K (all 576 columns) and V (first 512). Two stages;
// a stage is refilled as soon as both warpgroups' PV on it retired, and WG0
// issues S for the next block before waiting on its PV, so the tensor cores
// see S(i+1), PV0(i), PV1(i) queued together.
#ifndef OPENMLA_KERNELS_SM90_DENSE_DECODE_WGMMA_KERNEL_CUH_
#define OPENMLA_KERNELS_SM90_DENSE_DECODE_WGMMA_KERNEL_CUH_

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "common/split_plan.h"
#include "kernels/common/params.h"
#include "kernels/common/part_cursor.cuh"
#include "kernels/common/ptx.cuh"
#include "kernels/common/wgmma.cuh"
#include "kernels/sm90/dense_decode/tile_io.cuh"

#ifndef OPENMLA_L2_PREFETCH
#define OPENMLA_L2_PREFETCH 0  // measured: 2 and 4 slowed every shape (L2 was not the limit)
#endif

namespace openmla::kernels::dense_decode_wgmma {

using namespace tile_io;

constexpr int kThreads = 256;
constexpr int kTileN = kPageBlock;  // 64
constexpr int kStages = 2;
constexpr int kPrefetch = OPENMLA_L2_PREFETCH;  // blocks pulled into L2 beyond the smem stages

constexpr int kOffQ = 0;
constexpr int kOffK = kOffQ + kTileBytes;
constexpr int kOffP = kOffK + kStages * kTileBytes;
constexpr int kOffAlpha = kOffP + kChunkBytes;
constexpr int kOffL = kOffAlpha + kTileM * 4;
constexpr int kOffM = kOffL + kTileM * 4;
constexpr int kOffBar = kOffM + kTileM * 4;
constexpr int kSmemUsed = kOffBar + 4 * 8;
constexpr int kSmemBytes = kSmemUsed + 1024;  // slack to align the base to 1024
static_assert(kSmemBytes <= 232448, "over the sm_90 shared memory limit");

// Named barriers (0 is __syncthreads).
constexpr int kBarPReady = 1;  // WG0 arrives, WG1 syncs: P(i), alpha(i) in smem
constexpr int kBarPFree = 2;   // WG1 arrives, WG0 syncs: WG1 done reading P(i)
constexpr int kBarWg0 = 3;     // WG0 only

__device__ __forceinline__ int physical_block(const DenseDecodeParams& p, const Cursor& c) {
  return p.block_table[(int64_t)c.r * p.block_table_stride + c.blk];
}

__device__ __forceinline__ void issue_block_load(const CUtensorMap* tmap, unsigned char* stage,
                                                 uint64_t* full, int phys, int kv_head,
                                                 uint64_t policy) {
  ptx::mbar_arrive_expect_tx(full, kTileBytes);
#pragma unroll
  for (int c = 0; c < kChunks; ++c)
    ptx::tma_load_4d(stage + c * kChunkBytes, tmap, full, c * 64, 0, kv_head, phys, policy);
}

__device__ __forceinline__ void prefetch_block_l2(const CUtensorMap* tmap, int phys, int kv_head) {
#pragma unroll
  for (int c = 0; c < kChunks; ++c) ptx::tma_prefetch_l2_4d(tmap, c * 64, 0, kv_head, phys);
}

// The producer's view of the part: which block to load next and, already in
// a register, its physical index. Reading the table entry one load ahead
// keeps two dependent global loads (lengths, table) off the critical path.
struct BlockStream {
  Cursor c;
  int item, phys;
  __device__ __forceinline__ void begin(const DenseDecodeParams& p, const Cursor& first, int n) {
    c = first;
    item = 0;
    phys = n > 0 ? physical_block(p, c) : 0;
  }
  __device__ __forceinline__ void advance(const DenseDecodeParams& p, const PartMeta& pm, int n) {
    if (++item < n) {
      cursor_next(c, pm, p.seqlens);
      phys = physical_block(p, c);
    }
  }
};

template <typename T>
__global__ void __launch_bounds__(kThreads, 1)
    dense_decode_wgmma_kernel(const __grid_constant__ CUtensorMap tmap, const DenseDecodeParams p,
                              int evict_first) {
  ptx::griddep_wait();  // a no-op unless launched as a programmatic dependent
  ptx::griddep_launch_dependents();  // the combine may launch: it waits on this grid
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  unsigned char* sQ = smem + kOffQ;
  unsigned char* sK = smem + kOffK;
  unsigned char* sP = smem + kOffP;
  float* sAlpha = reinterpret_cast<float*>(smem + kOffAlpha);
  float* sL = reinterpret_cast<float*>(smem + kOffL);
  float* sM = reinterpret_cast<float*>(smem + kOffM);
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + kOffBar);
  uint64_t* empty = full + kStages;

  const PartView view = view_part(p);
  if (!view.usable) return;
  const RequestMeta* reqs = view.reqs;
  const PartMeta pm = view.pm;
  const int row_tile = view.row_tile, kv_head = view.kv_head, n_items = pm.num_blocks;

  const int tid = threadIdx.x;
  // Warp-uniform by construction (shfl), so ptxas sees the role branches as
  // warpgroup-convergent and does not serialise the wgmma.
  const int wg = __shfl_sync(0xffffffff, tid / 128, 0), wtid = tid % 128;
  const int warp = wtid / 32, lane = tid % 32;

  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      ptx::mbar_init(&full[s], 1);
      ptx::mbar_init(&empty[s], 8);  // lane 0 of each of the 8 warps
    }
    ptx::fence_mbar_init();
  }
  __syncthreads();

  uint64_t policy;
  if (evict_first)
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
  else
    asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;\n" : "=l"(policy));

  Cursor cur;
  cursor_begin(cur, pm, p.seqlens);
  const uint32_t sQ_a = ptx::smem_addr(sQ), sK_a = ptx::smem_addr(sK), sP_a = ptx::smem_addr(sP);
  constexpr uint32_t kSbo = 1024, kLboK = 16, kLboV = kChunkBytes;

  // Rows held by this thread: lr0 = 16*warp + lane/4, lr1 = lr0 + 8.
  const int lr[2] = {warp * 16 + lane / 4, warp * 16 + lane / 4 + 8};
  int seg = pm.seg_begin;

  if (wg == 1) {
    // ---------------- WG1: loads, and the second half of PV ----------------
    BlockStream ld, pf;  // smem loads, and L2 prefetches kPrefetch blocks further
    if (wtid == 0) {
      ld.begin(p, cur, n_items);
      pf.begin(p, cur, n_items);
      for (int s = 0; s < kStages && ld.item < n_items; ++s) {
        issue_block_load(&tmap, sK + s * kTileBytes, &full[s], ld.phys, kv_head, policy);
        ld.advance(p, pm, n_items);
        pf.advance(p, pm, n_items);
      }
      for (int k = 0; k < kPrefetch && pf.item < n_items; ++k) {
        prefetch_block_l2(&tmap, pf.phys, kv_head);
        pf.advance(p, pm, n_items);
      }
    }
    float o[128];
#pragma unroll
    for (int j = 0; j < 128; ++j) o[j] = 0.f;
    for (int i = 0; i < n_items; ++i) {
      const int st = i & 1;
      Cursor nxt = cur;
      if (i + 1 < n_items) cursor_next(nxt, pm, p.seqlens);
      const bool seg_end = i + 1 == n_items || nxt.seg_start;
      ptx::named_sync(kBarPReady, 256);
      float alpha[2], l[2], m[2];
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        alpha[k] = sAlpha[lr[k]];
        l[k] = sL[lr[k]];
        m[k] = sM[lr[k]];
      }
#pragma unroll
      for (int j = 0; j < 32; ++j) {
        o[j * 4 + 0] *= alpha[0];
        o[j * 4 + 1] *= alpha[0];
        o[j * 4 + 2] *= alpha[1];
        o[j * 4 + 3] *= alpha[1];
      }
      wgmma::fence();
#pragma unroll
      for (int kk = 0; kk < kTileN / 16; ++kk) {
        const uint64_t da = wgmma::desc_sw128(sP_a + kk * 32, kLboK, kSbo);
        const uint64_t db = wgmma::desc_sw128(sK_a + st * kTileBytes + 4 * kChunkBytes + kk * 16 * 128, kLboV, kSbo);
        wgmma::Wgmma<256, T>::template mma<1>(o, da, db, 1);
      }
      wgmma::commit();
      wgmma::wait<0>();
      wgmma::fence_regs<128>(o);
      if (lane == 0) ptx::mbar_arrive(&empty[st]);
      if (i + 1 < n_items) ptx::named_arrive(kBarPFree, 256);
      if (wtid == 0 && i + 2 < n_items) {
        ptx::mbar_wait(&empty[st], (i >> 1) & 1);
        issue_block_load(&tmap, sK + st * kTileBytes, &full[st], ld.phys, kv_head, policy);
        ld.advance(p, pm, n_items);
        if (pf.item < n_items) {
          prefetch_block_l2(&tmap, pf.phys, kv_head);
          pf.advance(p, pm, n_items);
        }
      }
      if (seg_end) {
        const bool direct = reqs[cur.r].num_segs == 1;
        float inv[2];
#pragma unroll
        for (int k = 0; k < 2; ++k) inv[k] = m[k] == -INFINITY ? 0.f : 1.f / l[k];
        if (!direct) store_partial(partial_tile(p, seg, blockIdx.x), o, inv, tid, p.rows - row_tile * kTileM);
#pragma unroll
        for (int k = 0; k < 2; ++k) {
          const int row = row_tile * kTileM + lr[k];
          if (direct && row < p.rows)
            store_out_row<T>(p, o, k, inv[k], cur.r, row / p.group, kv_head * p.group + row % p.group,
                             256 + 2 * (lane % 4));
        }
        // No zeroing: the next segment's first alpha is exp2(-inf) = 0.
        ++seg;
      }
      cur = nxt;
    }
    return;
  }

  // ---------------- WG0: S, softmax, first half of PV ----------------
  float o[128];
#pragma unroll
  for (int j = 0; j < 128; ++j) o[j] = 0.f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};
  int row_end[2] = {0, 0};
  bool pv_pending = false;  // PV0 of the previous item still in flight
  for (int i = 0; i < n_items; ++i) {
    const int st = i & 1;
    Cursor nxt = cur;
    if (i + 1 < n_items) cursor_next(nxt, pm, p.seqlens);
    const bool seg_end = i + 1 == n_items || nxt.seg_start;
    const int len = p.seqlens[cur.r];
    if (cur.seg_start) {
      load_q_tile<T, 128>(p, sQ, cur.r, row_tile, kv_head, wtid);
      ptx::cp_async_commit();
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const int row = row_tile * kTileM + lr[k];
        const int s = row < p.rows ? row / p.group : 0;
        row_end[k] = p.causal ? min(len, len - p.s_q + s + 1) : len;
        m_run[k] = -INFINITY;
        l_run[k] = 0.f;
      }
      ptx::cp_async_wait<0>();
      ptx::fence_proxy_async();
      ptx::named_sync(kBarWg0, 128);
    }
    ptx::mbar_wait(&full[st], (i >> 1) & 1);

    float s_acc[32];
    wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < kHeadDimQK / 16; ++kk) {
      const uint32_t koff = (kk / 4) * kChunkBytes + (kk % 4) * 32;
      const uint64_t da = wgmma::desc_sw128(sQ_a + koff, kLboK, kSbo);
      const uint64_t db = wgmma::desc_sw128(sK_a + st * kTileBytes + koff, kLboK, kSbo);
      wgmma::Wgmma<64, T>::template mma<0>(s_acc, da, db, kk > 0 ? 1 : 0);
    }
    wgmma::commit();
    if (pv_pending) {
      wgmma::wait<1>();  // PV0(i-1) retired: its stage can be refilled
      if (lane == 0) ptx::mbar_arrive(&empty[st ^ 1]);
      pv_pending = false;
    }
    wgmma::wait<0>();
    wgmma::fence_regs<32>(s_acc);
    wgmma::fence_regs<128>(o);

    // Cache rows past the request's end may hold NaN: zero them in V so that
    // P = 0 times V stays 0 (S is masked below regardless).
    const int valid = len - cur.blk * kTileN;
    if (valid < kTileN) {
      unsigned char* stage = sK + st * kTileBytes;
      const int bad = kTileN - valid;
      for (int idx = wtid; idx < bad * 8 * 8; idx += 128) {
        const int t = valid + idx / 64, c = (idx / 8) % 8, piece = idx % 8;
        *reinterpret_cast<int4*>(stage + c * kChunkBytes + t * 128 + piece * 16) = make_int4(0, 0, 0, 0);
      }
      ptx::fence_proxy_async();
    }

    // Online softmax in log2 units; each row's 64 scores sit in one lane quad.
    const int tok0 = cur.blk * kTileN + 2 * (lane % 4);
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int k = e / 2;
        const int t = tok0 + j * 8 + (e % 2);
        const float v = t < row_end[k] ? s_acc[j * 4 + e] * p.scale_log2 : -INFINITY;
        s_acc[j * 4 + e] = v;
        mx[k] = fmaxf(mx[k], v);
      }
    float alpha[2], m_use[2], rs[2] = {0.f, 0.f};
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      mx[k] = fmaxf(mx[k], __shfl_xor_sync(0xffffffff, mx[k], 1));
      mx[k] = fmaxf(mx[k], __shfl_xor_sync(0xffffffff, mx[k], 2));
      const float m_new = fmaxf(m_run[k], mx[k]);
      m_use[k] = m_new == -INFINITY ? 0.f : m_new;
      alpha[k] = exp2f(m_run[k] - m_use[k]);
      m_run[k] = m_new;
    }
    uint32_t pk[8][2];
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const float p0 = exp2f(s_acc[j * 4 + 2 * k] - m_use[k]);
        const float p1 = exp2f(s_acc[j * 4 + 2 * k + 1] - m_use[k]);
        rs[k] += p0 + p1;
        pk[j][k] = ptx::pack2<T>(p0, p1);
      }
#pragma unroll
    for (int k = 0; k < 2; ++k) l_run[k] = l_run[k] * alpha[k] + rs[k];

    if (i > 0) ptx::named_sync(kBarPFree, 256);
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int k = 0; k < 2; ++k)
        *reinterpret_cast<uint32_t*>(sP + sw128(lr[k], j * 8 + 2 * (lane % 4))) = pk[j][k];
    float l_tot[2] = {l_run[0], l_run[1]};
    if (seg_end) {
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        l_tot[k] += __shfl_xor_sync(0xffffffff, l_tot[k], 1);
        l_tot[k] += __shfl_xor_sync(0xffffffff, l_tot[k], 2);
      }
    }
    if (lane % 4 == 0) {
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        sAlpha[lr[k]] = alpha[k];
        sL[lr[k]] = l_tot[k];
        sM[lr[k]] = m_run[k];
      }
    }
    ptx::fence_proxy_async();
    ptx::named_arrive(kBarPReady, 256);

#pragma unroll
    for (int j = 0; j < 32; ++j) {
      o[j * 4 + 0] *= alpha[0];
      o[j * 4 + 1] *= alpha[0];
      o[j * 4 + 2] *= alpha[1];
      o[j * 4 + 3] *= alpha[1];
    }
    // P must be visible to this warpgroup's own wgmma too.
    ptx::named_sync(kBarWg0, 128);
    wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < kTileN / 16; ++kk) {
      const uint64_t da = wgmma::desc_sw128(sP_a + kk * 32, kLboK, kSbo);
      const uint64_t db = wgmma::desc_sw128(sK_a + st * kTileBytes + kk * 16 * 128, kLboV, kSbo);
      wgmma::Wgmma<256, T>::template mma<1>(o, da, db, 1);
    }
    wgmma::commit();
    pv_pending = true;

    if (seg_end) {
      wgmma::wait<0>();
      wgmma::fence_regs<128>(o);
      if (lane == 0) ptx::mbar_arrive(&empty[st]);
      pv_pending = false;
      const bool direct = reqs[cur.r].num_segs == 1;
      float inv[2];
#pragma unroll
      for (int k = 0; k < 2; ++k) inv[k] = m_run[k] == -INFINITY ? 0.f : 1.f / l_tot[k];
      if (!direct) store_partial(partial_tile(p, seg, blockIdx.x), o, inv, tid, p.rows - row_tile * kTileM);
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const int row = row_tile * kTileM + lr[k];
        if (row >= p.rows) continue;
        const bool empty_row = m_run[k] == -INFINITY;
        const float lse = empty_row ? -INFINITY : (m_run[k] + log2f(l_tot[k])) * 0.69314718055994530942f;
        const int s = row / p.group, h = kv_head * p.group + row % p.group;
        if (direct) store_out_row<T>(p, o, k, inv[k], cur.r, s, h, 2 * (lane % 4));
        if (lane % 4 == 0) {
          if (direct)
            p.lse[(int64_t)cur.r * p.lse_stride_b + (int64_t)h * p.lse_stride_h + s] =
                empty_row ? INFINITY : lse;
          else
            p.lse_accum[(int64_t)seg * p.s_q * p.h_q + (int64_t)s * p.h_q + h] = lse;
        }
      }
      ++seg;  // o is reset by the next segment's alpha = 0
    }
    cur = nxt;
  }
}

}  // namespace openmla::kernels::dense_decode_wgmma

#endif  // OPENMLA_KERNELS_SM90_DENSE_DECODE_WGMMA_KERNEL_CUH_
