// Split-KV dense MLA decode on Hopper, "seesaw" schedule (two consumer
// warpgroups, one output tile split by columns).
//
// CTA = (64-row query tile of one kv head, plan part). Blocks of a segment are
// taken two at a time: block a in buffer A, block b in buffer B. WG0 owns
// O[:, 0:256], WG1 owns O[:, 256:512]; both keep the same running max m.
//   WG0: S0 = Q K_a^T, m0 = max(m, rowmax S0), P0 = exp(S0 - m0),
//        O_L = O_L * exp(m - m0) + P0 V_aL (P0 from registers)
//   WG1: S1 = Q K_b^T, m1 = max(m0, rowmax S1), P1 = exp(S1 - m1),
//        O_R = O_R * exp(m - m1) + P1 V_bR (P1 from registers)
//   WG0: P0' = P0 exp(m0 - m1) to smem;  O_L = O_L exp(m0 - m1) + P1 V_bL
//   WG1: O_R += P0' V_aR
// so one warpgroup's softmax runs while the other's GEMMs keep the tensor
// cores busy. Each row's sum is split (WG0 sums P0, WG1 sums P1) and added
// at the end of the segment.
//
// Only Q, A and B fit in shared memory (3 x 72 KB), so each buffer is
// refilled in chunk groups as soon as the group's last reader retires, by the
// warpgroup that read it last (no cross-warpgroup wait before a refill):
//   A: rope chunk (free since S0) and chunks 0-3 after P0 V_aL (WG0),
//      chunks 4-7 after P0' V_aR (WG1);
//   B: chunks 4-7 after P1 V_bR (WG1), chunks 0-3 + rope after P1 V_bL (WG0);
//      P1 itself lives in B's rope chunk (free once S1 retired).
// The next S GEMM on a buffer consumes its chunks in the order they come back.
//
// Column halves (kHalves): where the grid would leave at least half the SMs
// idle, each (row tile, part) runs as two CTAs, one per 256 output columns
// (blockIdx.x = 2 tile + half: the halves of a tile start together), as a
// cluster that fetches each block once. Both compute the
// whole S and softmax; each warpgroup's PV is 64 x 128, and each CTA stores
// half of the fp32 partial (the epilogue is bound by the SM's ~26 B/cycle of
// egress and the chip's total write rate: bench/NOTES.md, 2026-12-03). The chunk group that holds the half's
// V columns is read by both warpgroups' PV, so its release waits on a
// handshake (kBarHalfA / kBarHalfB) from the warpgroup that reads it first.
#ifndef OPENMLA_KERNELS_SM90_DENSE_DECODE_SEESAW_KERNEL_CUH_
#define OPENMLA_KERNELS_SM90_DENSE_DECODE_SEESAW_KERNEL_CUH_

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <type_traits>

#include "common/split_plan.h"
#include "kernels/common/params.h"
#include "kernels/common/merge.cuh"
#include "kernels/common/part_cursor.cuh"
#include "kernels/common/ptx.cuh"
#include "kernels/common/wgmma.cuh"
#include "kernels/sm90/dense_decode/steal.cuh"
#include "kernels/sm90/dense_decode/tile_io.cuh"

namespace openmla::kernels::dense_decode_seesaw {

using namespace tile_io;

// Output rows by 16-byte stores after quad shuffles (1) or 4-byte stores (0,
// A/B runs only).
#ifndef OPENMLA_OUT_STORE16
#define OPENMLA_OUT_STORE16 1
#endif
// A part's last pair merge reads the other partial through shared memory
// (1) or in register batches (0, A/B runs only).
#ifndef OPENMLA_MERGE_STAGED
#define OPENMLA_MERGE_STAGED 1
#endif

constexpr int kThreads = 256;
constexpr int kTileN = kPageBlock;  // 64 tokens per block

constexpr int kOffQ = 0;
constexpr int kOffA = kOffQ + kTileBytes;
constexpr int kOffB = kOffA + kTileBytes;
constexpr int kOffP0 = kOffB + kTileBytes;
constexpr int kOffRows = kOffP0 + kChunkBytes;  // m0, m1, l0, l1: 64 floats each
constexpr int kOffBar = kOffRows + 4 * kTileM * 4;
constexpr int kNumGroups = 5;
// full[g] then, under multicast, empty[g] (kOffBar + 8 * (kNumGroups + g)).
constexpr int kOffQBar = kOffBar + 2 * kNumGroups * 8;  // Q's tile landed (TMA path)
// Fused merge: the part's first and last segment {r, seg_begin, num_segs, seg}
// and whether the CTA fills rows of requests without a cached token.
constexpr int kOffSeg = (kOffQBar + 8 + 15) / 16 * 16;
constexpr int kOffFill = kOffSeg + 2 * 16;
constexpr int kOffScale = kOffFill + 16;  // scale_log2, read back to order WG0's m0 arrive
constexpr int kOffPair = kOffScale + 16;  // pair merge: thread 0's counter result for all
constexpr int kOffSteal = kOffPair + 16;  // tail stealing: steal::Shared
constexpr int kSmemUsed = kOffSteal + (int)sizeof(steal::Shared);
constexpr int kSmemBytes = kSmemUsed + 1024;  // slack to align the base to 1024
static_assert(kSmemBytes <= 232448, "over the sm_90 shared memory limit");
// One CTA an SM (the fused merge's residency check counts on it).
static_assert(2 * kSmemBytes > 232448, "two CTAs would fit an SM");
// Segments of one request the fused merge's scratch (Q's buffer) can weigh.
constexpr int kMaxMergeSegments = kTileBytes / (kTileM * 4) - 1;
static_assert(merge::scratch_bytes(kMaxMergeSegments) <= kTileBytes, "merge scratch");

#ifdef OPENMLA_SEESAW_TRACE
__device__ long long g_seesaw_trace[2][64][16];
// Every CTA (y * gridDim.x + x): globaltimer at entry, when its first group
// landed and at the loop's end; its blocks and segments (-1: no work); when
// its last segment's epilogue started and what it wrote (OutMode).
constexpr int kTraceCtas = 1024;
__device__ long long g_seesaw_cta[kTraceCtas][8];
#define TRACE_CTA(slot, val)                                                               \
  do {                                                                                     \
    const unsigned cta_ = blockIdx.y * gridDim.x + blockIdx.x;                             \
    if (threadIdx.x == 0 && cta_ < kTraceCtas) g_seesaw_cta[cta_][slot] = (val);           \
  } while (0)
#define TRACE(ev)                                                                          \
  do {                                                                                     \
    if (blockIdx.x == 0 && blockIdx.y == 0 && wtid == 0 && ia < 64)                        \
      g_seesaw_trace[wg][ia][ev] = clock64();                                              \
  } while (0)
#define TRACE_AT(slot, ev)                                                                 \
  do {                                                                                     \
    if (blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x % 128 == 0)                      \
      g_seesaw_trace[threadIdx.x / 128][slot][ev] = clock64();                             \
  } while (0)
// The clock once `dep` (a loaded value) is in: the asm input makes it wait.
#define TRACE_DEP(slot, ev, dep)                                                           \
  do {                                                                                     \
    if (blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x % 128 == 0) {                   \
      long long t_;                                                                        \
      asm volatile("mov.u64 %0, %%clock64;" : "=l"(t_) : "r"((int)(dep)) : "memory");      \
      g_seesaw_trace[threadIdx.x / 128][slot][ev] = t_;                                    \
    }                                                                                      \
  } while (0)
#else
#define TRACE(ev) \
  do {            \
  } while (0)
#define TRACE_CTA(slot, val) \
  do {                       \
  } while (0)
#define TRACE_AT(slot, ev) \
  do {                     \
  } while (0)
#define TRACE_DEP(slot, ev, dep) \
  do {                           \
  } while (0)
#endif

// Chunk groups, one mbarrier each.
enum Group { kGA0 = 0, kGA1 = 1, kGA2 = 2, kGB0 = 3, kGB1 = 4 };

// Named barriers (0 is __syncthreads).
constexpr int kBarM0 = 1;   // WG0 -> WG1: m0
constexpr int kBarP1 = 2;   // WG1 -> WG0: m1, P1 in B's rope chunk, B's tail rows zeroed
constexpr int kBarP0 = 3;   // WG0 -> WG1: P0' in sP0, A's tail rows zeroed
constexpr int kBarWg0 = 4;  // WG0 only
constexpr int kBarWg1 = 5;  // WG1 only
constexpr int kBarAll = 6;  // both (segment boundaries)
// Column halves only: WG0's P0 V_a retired (A's shared group may go), WG1's
// P1 V_b retired (B's).
constexpr int kBarHalfA = 7;
constexpr int kBarHalfB = 8;

// What a segment's end writes: its request's output (the only segment), a
// partial for the combine kernel, or (pair merge, a request of two segments)
// one of the two; kOutMerge: this CTA merges the pair.
enum OutMode { kOutPartial = 0, kOutDirect = 1, kOutPairFirst = 2, kOutPairSecond = 3, kOutMerge = 4 };

// One TMA per 4-chunk run (map4) and one for the rope chunk (map1).
struct CacheMaps {
  const CUtensorMap* map4;
  const CUtensorMap* map1;
};

__device__ __forceinline__ uint32_t group_bytes(int g) {
  return ((g != kGA0 ? 4 : 0) + (g == kGA0 || g == kGB1 ? 1 : 0)) * kChunkBytes;
}

// Group g of block `phys` into buf, completing on bar; with kMulticast into
// both CTAs of the cluster (each armed its own bar).
template <bool kMulticast>
__device__ __forceinline__ void copy_group(const CacheMaps& maps, unsigned char* buf, uint64_t* bar, int g, int phys,
                                           int kv_head, uint64_t policy) {
  const bool run = g != kGA0;
  const int c_begin = (g == kGA2 || g == kGB0) ? 4 : 0;
  const bool rope = g == kGA0 || g == kGB1;
  if constexpr (kMulticast) {
    if (run)
      ptx::tma_load_5d_multicast(buf + c_begin * kChunkBytes, maps.map4, bar, 0, 0, c_begin, kv_head, phys, 3, policy);
    if (rope) ptx::tma_load_5d_multicast(buf + 8 * kChunkBytes, maps.map1, bar, 0, 0, 8, kv_head, phys, 3, policy);
  } else {
    if (run) ptx::tma_load_5d(buf + c_begin * kChunkBytes, maps.map4, bar, 0, 0, c_begin, kv_head, phys, policy);
    if (rope) ptx::tma_load_5d(buf + 8 * kChunkBytes, maps.map1, bar, 0, 0, 8, kv_head, phys, policy);
  }
}

// Under multicast the two CTAs of a cluster are the two row tiles of one kv
// head, or the two column halves of one tile, on the same part: the same
// blocks in the same order. Each group is
// fetched once, by its owner, into both; 9 chunks each.
__device__ __forceinline__ uint32_t group_owner(int g) { return (g == kGA1 || g == kGB1) ? 0u : 1u; }

template <bool kMulticast>
struct GroupLoader {
  CacheMaps maps;
  uint64_t* full;  // [kNumGroups]; empty[g] = full[kNumGroups + g] under multicast
  int kv_head;
  uint64_t policy;
  uint32_t rank;  // in the cluster (0 without multicast)

  __device__ __forceinline__ void arm(int g) const { ptx::mbar_arrive_expect_tx(&full[g], group_bytes(g)); }
  // Armed first (by every CTA of the cluster), issued by the owner.
  __device__ __forceinline__ void issue(unsigned char* buf, int g, int phys) const {
    if (!kMulticast || rank == group_owner(g)) copy_group<kMulticast>(maps, buf, &full[g], g, phys, kv_head, policy);
  }
  // The calling warpgroup's last reads of group g retired: refill it with
  // block phys (-1: none; known to the issuer only). Under multicast the
  // owner waits (whole warpgroup, so that no wait sits in a branch between
  // wgmma) for the peer to release its copy; the peer's own empty barrier
  // (count 1) completes at once, the owner's (count 2) on both releases.
  // `parity`: releases of g before this one, mod 2.
  __device__ __forceinline__ void refill(unsigned char* buf, int g, int phys, uint32_t parity, bool issuer) const {
    if constexpr (!kMulticast) {
      if (issuer && phys >= 0) {
        arm(g);
        issue(buf, g, phys);
      }
    } else {
      uint64_t* empty = &full[kNumGroups + g];
      if (issuer) {
        if (phys >= 0) arm(g);  // before the release: the copy cannot land first
        ptx::mbar_arrive_cluster(empty, group_owner(g));
        if (rank != group_owner(g)) ptx::mbar_arrive(empty);
      }
      ptx::mbar_wait(empty, parity);
      if (issuer && phys >= 0) issue(buf, g, phys);
    }
  }
};

// Q's row tile of request r by TMA, one box a chunk (72 KB in all; rows past
// p.rows lie outside the map and land as zeros). Off the LSU path that the
// cp.async load shares with the table lookups (bench/NOTES.md: the prologue
// waited ~4600 cycles behind it). The host makes the map only where a row
// tile is whole boxes (64 % group == 0 or group % 64 == 0).
__device__ __forceinline__ void issue_q_tma(const CUtensorMap* mapq, unsigned char* sq, uint64_t* bar,
                                            const DenseDecodeParams& p, int r, int row_tile, int kv_head) {
  ptx::mbar_arrive_expect_tx(bar, kTileBytes);
  const int row0 = row_tile * kTileM;
  const int s = row0 / p.group, hi = row0 - s * p.group;
#pragma unroll
  for (int c = 0; c < kChunks; ++c) ptx::tma_load_5d_nohint(sq + c * kChunkBytes, mapq, bar, 64 * c, hi, s, kv_head, r);
}

// The part's blocks taken as pairs that never straddle a segment.
struct PairWalk {
  Cursor c;  // first block of the current pair
  int left;  // items not yet consumed, this pair included
  __device__ __forceinline__ bool has_b() const { return left >= 2 && c.blk + 1 < c.end; }
  __device__ __forceinline__ void next(const PartMeta& pm, const int32_t* len) {
    const int n = has_b() ? 2 : 1;
    left -= n;
    if (left <= 0) return;
    cursor_next(c, pm, len);
    if (n == 2) cursor_next(c, pm, len);
  }
};

// Physical index of the next block each buffer receives after the pair `nx`
// starts: A takes each pair's first block, B each pair's second. Looked up at
// the start of a pair, used when a group of the buffer frees up.
struct NextBlocks {
  int a, b;  // -1: none
  __device__ __forceinline__ void find(const DenseDecodeParams& p, const PartMeta& pm, PairWalk nx) {
    a = nx.left > 0 ? p.block_table[(int64_t)nx.c.r * p.block_table_stride + nx.c.blk] : -1;
    while (nx.left > 0 && !nx.has_b()) nx.next(pm, p.seqlens);
    b = nx.left > 0 ? p.block_table[(int64_t)nx.c.r * p.block_table_stride + nx.c.blk + 1] : -1;
  }
  // The same, returning how many single-block pairs B's lookup skipped: b's
  // position is nx's + that + 1 (tail stealing claims up to it).
  __device__ __forceinline__ int find_counted(const DenseDecodeParams& p, const PartMeta& pm, PairWalk nx) {
    a = nx.left > 0 ? p.block_table[(int64_t)nx.c.r * p.block_table_stride + nx.c.blk] : -1;
    int skipped = 0;
    for (; nx.left > 0 && !nx.has_b(); ++skipped) nx.next(pm, p.seqlens);
    b = nx.left > 0 ? p.block_table[(int64_t)nx.c.r * p.block_table_stride + nx.c.blk + 1] : -1;
    return skipped;
  }
};

// Tail stealing, thread 0 at a pair's top (`nx`: the next pair): reads the
// part's word (it shows every claim made so far, and any steal), applies a
// steal to the walk, finds the next pair's blocks on the walk as it will be,
// claims past them (fire and forget: nothing held across the pair), and
// leaves both for the others (the blocks for WG1's issuer, the blocks taken
// off for everyone at the pair's end).
__device__ __forceinline__ void steal_pair_top(const DenseDecodeParams& p, const PartMeta& pm, PairWalk nx,
                                               NextBlocks& next, volatile steal::Shared* st, int par, int tile,
                                               int3 victim) {
  const bool claiming = st->claiming != 0;
  uint32_t* const w_ptr = steal::word(p, blockIdx.y, tile);
  // In flight together with the table lookups of the walk as it stands.
  const uint32_t w = claiming ? steal::ld_relaxed_gpu(w_ptr) : 0u;
  int skipped = next.find_counted(p, pm, nx);
  int k = 0;
  if (claiming) {
    int end = st->end;
    const auto take = [&](int e) {  // a steal ended the walk at e
      const int kk = end - e;
      end = e;
      st->end = e;
      st->stolen = st->stolen + kk;
      k += kk;
      nx.left -= kk;
      skipped = next.find_counted(p, pm, nx);
    };
    if (steal::word_end(w) < end) take(steal::word_end(w));
    // Positions below this are ours: a CAS the load did not see lands later
    // and leaves them (it takes from max(claimed, ...) on).
    const int conf = steal::word_claimed(w);
    const int pos = end - nx.left;
    int la = next.b >= 0 ? pos + skipped + 1 : next.a >= 0 ? pos : -1;
    const int target = min(max(la + 1, pos + 2) + steal::kClaimMargin, pm.num_blocks);
    const int claimed = st->claimed;
    if (target > claimed) {
      st->claimed = target;
      if (la >= min(conf, end)) {
        // The look-ahead outran the claims (a run of single-block pairs):
        // claim and wait for the answer before any copy goes out.
        const uint32_t res = atomicAdd(w_ptr, (uint32_t)(target - claimed));
        if (steal::word_end(res) < end) take(steal::word_end(res));
      } else {
        atomicAdd(w_ptr, (uint32_t)(target - claimed));  // the result unused: a RED
      }
    }
  }
  // The walk ends with this pair and warp 0 took a range: it follows (the
  // pair's refills fetch its first blocks, everyone switches at the pair's end).
  st->ext[par] = victim.x >= 0;
  if (victim.x >= 0) {
    const PartMeta* parts = reinterpret_cast<const PartMeta*>(static_cast<const PlanHeader*>(p.plan) + 1);
    PartMeta s = steal::stolen_range(parts[victim.x], victim.y, victim.z, p.steal_slot0 + victim.x);
    s.pad = pm.pad + pm.num_segs;  // Q tiles waited for before it
    st->spm.r_begin = s.r_begin;
    st->spm.blk_begin = s.blk_begin;
    st->spm.r_end = s.r_end;
    st->spm.blk_end = s.blk_end;
    st->spm.seg_begin = s.seg_begin;
    st->spm.num_segs = s.num_segs;
    st->spm.num_blocks = s.num_blocks;
    st->spm.pad = s.pad;
    PairWalk w;
    cursor_begin(w.c, s, p.seqlens);
    w.left = s.num_blocks;
    next.find(p, s, w);
  }
  st->k[par] = k;
  st->next[par][0] = next.a;
  st->next[par][1] = next.b;
}

// k-steps [kBegin, kEnd) of S = Q K^T (64x64, k=576); descriptors advance by
// the byte offset >> 4 (the address field), so each step is one add.
template <typename T, int kBegin, int kEnd>
__device__ __forceinline__ void s_steps(float* s, uint64_t dq, uint64_t dk, bool zero_first) {
#pragma unroll
  for (int kk = kBegin; kk < kEnd; ++kk) {
    const uint64_t off = q_koff(kk) >> 4;
    wgmma::Wgmma<64, T>::template mma<0>(s, dq + off, dk + off, (zero_first && kk == kBegin) ? 0 : 1);
  }
}

// O (64 x kN) += P V for one block: P from registers (pk) or from a smem tile
// (dp), V = 4 chunks of the block from dv, read MN-major.
template <typename T, int kN>
__device__ __forceinline__ void pv_rs(float* o, const uint32_t* pk, uint64_t dv) {
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) wgmma::Wgmma<kN, T>::template mma_rs<1>(o, pk + 4 * kk, dv + kk * 128, 1);
}
template <typename T, int kN>
__device__ __forceinline__ void pv_ss(float* o, uint64_t dp, uint64_t dv) {
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) wgmma::Wgmma<kN, T>::template mma<1>(o, dp + kk * 2, dv + kk * 128, 1);
}

// Row maxima of this thread's two rows of raw scores (quad-reduced); tokens
// at or past a row's end are set to -inf first when the block needs a mask.
__device__ __forceinline__ void mask_rowmax(float* s, bool masked, int tok0, const int* row_end, float* mx) {
  if (masked) {
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        if (tok0 + j * 8 + (e % 2) >= row_end[e / 2]) s[j * 4 + e] = -INFINITY;
  }
  // Four independent chains a row (column groups j and j + 4), not one of
  // 16 dependent steps.
  float m4[2][4];
#pragma unroll
  for (int k = 0; k < 2; ++k)
#pragma unroll
    for (int c = 0; c < 4; ++c)
      m4[k][c] = fmaxf(fmaxf(s[c * 4 + 2 * k], s[c * 4 + 2 * k + 1]),
                       fmaxf(s[(c + 4) * 4 + 2 * k], s[(c + 4) * 4 + 2 * k + 1]));
#pragma unroll
  for (int k = 0; k < 2; ++k) mx[k] = fmaxf(fmaxf(m4[k][0], m4[k][1]), fmaxf(m4[k][2], m4[k][3]));
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    mx[k] = fmaxf(mx[k], __shfl_xor_sync(0xffffffff, mx[k], 1));
    mx[k] = fmaxf(mx[k], __shfl_xor_sync(0xffffffff, mx[k], 2));
  }
}

// P = exp2(S * scale_log2 - u) in place, this thread's part of the row sums,
// and P packed as the register A operand of m64k16 (pk[4 kk .. 4 kk + 3] is
// k-step kk).
template <typename T>
__device__ __forceinline__ void exp_pack(float* s, float scale_log2, const float* u, float* rs, uint32_t* pk) {
  float r4[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};  // independent partial sums
#pragma unroll
  for (int j = 0; j < 8; ++j)
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const float p0 = ptx::exp2_ftz(fmaf(s[j * 4 + 2 * k], scale_log2, -u[k]));
      const float p1 = ptx::exp2_ftz(fmaf(s[j * 4 + 2 * k + 1], scale_log2, -u[k]));
      s[j * 4 + 2 * k] = p0;
      s[j * 4 + 2 * k + 1] = p1;
      r4[k][j % 4] += p0 + p1;
      pk[j * 2 + k] = ptx::pack2<T>(p0, p1);
    }
#pragma unroll
  for (int k = 0; k < 2; ++k) rs[k] = (r4[k][0] + r4[k][1]) + (r4[k][2] + r4[k][3]);
}

// A warp's 16 rows of a packed 64x64 P tile (pk as exp_pack lays it out)
// into a 128-byte-swizzled smem tile: four stmatrix instead of 16 stores.
__device__ __forceinline__ void store_p_tile(uint32_t tile, const uint32_t* pk, int warp, int lane) {
  const int mi = lane / 8;  // matrix this lane addresses: (j = 2q + mi / 2, row half mi % 2)
  const int row = warp * 16 + (mi % 2) * 8 + lane % 8;
#pragma unroll
  for (int q = 0; q < 4; ++q)
    ptx::stmatrix_x4(tile + sw128(row, (2 * q + mi / 2) * 8), pk[4 * q], pk[4 * q + 1], pk[4 * q + 2], pk[4 * q + 3]);
}

// Cache rows past the request's end may hold NaN: zero them in the V part
// (chunks 0-7) so that P = 0 times V stays 0. S is masked regardless.
__device__ __forceinline__ void zero_tail_rows(unsigned char* buf, int valid, int wtid) {
  const int bad = kTileN - valid;
  for (int idx = wtid; idx < bad * 8 * 8; idx += 128) {
    const int t = valid + idx / 64, c = (idx / 8) % 8, piece = idx % 8;
    *reinterpret_cast<int4*>(buf + c * kChunkBytes + t * 128 + piece * 16) = make_int4(0, 0, 0, 0);
  }
}

// Most blocks leave the running max alone: skip the multiplies then.
template <int kGroups>
__device__ __forceinline__ void scale_rows(float* o, const float* f) {
  if (f[0] == 1.f && f[1] == 1.f) return;
#pragma unroll
  for (int j = 0; j < kGroups; ++j) {
    o[j * 4 + 0] *= f[0];
    o[j * 4 + 1] *= f[0];
    o[j * 4 + 2] *= f[1];
    o[j * 4 + 3] *= f[1];
  }
}

// o += w_other x segment `other`'s stored partial (this thread's rows), for
// the stealing kernel's merge. The pair merge keeps its own copy of this
// loop: calling this there changed the default kernels' register allocation.
template <int kGroupsO>
__device__ __forceinline__ void add_stored_partial(float* o, const DenseDecodeParams& p, int other, int tile, int tid,
                                                   int lane, int rows_in_tile, const float* w_other) {
  // Warps whose rows are all padding (never stored) read warp 0's rows
  // instead, weighed 0: no branch around o (C7520 again).
  const int t = ((tid % 128) / 32) * 16 < rows_in_tile ? tid : (tid / 128) * 128 + lane;
  const float4* src = reinterpret_cast<const float4*>(partial_tile(p, other, tile)) + t;
  constexpr int kBatch = 8;  // loads in flight a thread (batches of 4 spilled: ptxas's choice)
#pragma unroll
  for (int q0 = 0; q0 < kGroupsO; q0 += kBatch) {
    float4 v[kBatch];
#pragma unroll
    for (int q = 0; q < kBatch; ++q) v[q] = __ldcg(src + (q0 + q) * 256);
#pragma unroll
    for (int q = 0; q < kBatch; ++q) {
      float* oq = o + 4 * (q0 + q);
      oq[0] += v[q].x * w_other[0];
      oq[1] += v[q].y * w_other[0];
      oq[2] += v[q].z * w_other[1];
      oq[3] += v[q].w * w_other[1];
    }
    asm volatile("" ::: "memory");  // kBatch loads at a time: all 32 at once would spill
  }
}

// Tail stealing: the owner's last segment (o, scaled by inv, its LSE lse2)
// merged with the stolen range's stored partial (segment `other`); inv
// becomes 1 (0: no token) and lse2 the merged LSE, so that whatever the
// segment writes next (output, partial, pair merge) takes the merged state.
template <int kGroupsO>
__device__ __forceinline__ void merge_stolen(const DenseDecodeParams& p, float* o, float* inv, float* lse2, int other,
                                             int tile, int row_tile, int kv_head, const int* lr, int tid, int lane,
                                             int rows_in_tile) {
  float w_self[2], w_other[2];
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    const int row = row_tile * kTileM + lr[k];
    const float lo = row < p.rows ? __ldcg(p.lse_accum + (int64_t)other * p.s_q * p.h_q + lse_row_offset(p, kv_head, row)) *
                                        1.4426950408889634f
                                  : -INFINITY;
    const float mx = fmaxf(lse2[k], lo);
    const float a = mx == -INFINITY ? 0.f : exp2f(lse2[k] - mx);
    const float b = mx == -INFINITY ? 0.f : exp2f(lo - mx);
    const float sum = a + b;
    w_self[k] = mx == -INFINITY ? 0.f : a / sum * inv[k];
    w_other[k] = mx == -INFINITY ? 0.f : b / sum;
    lse2[k] = mx == -INFINITY ? -INFINITY : mx + log2f(sum);
    inv[k] = mx == -INFINITY ? 0.f : 1.f;
  }
#pragma unroll
  for (int j = 0; j < kGroupsO; ++j) {
    o[j * 4 + 0] *= w_self[0];
    o[j * 4 + 1] *= w_self[0];
    o[j * 4 + 2] *= w_self[1];
    o[j * 4 + 3] *= w_self[1];
  }
  add_stored_partial<kGroupsO>(o, p, other, tile, tid, lane, rows_in_tile, w_other);
}

// kFusedMerge: the in-kernel merge (OPENMLA_MERGE=kernel, plain grid only)
// has an instantiation of its own, so that its epilogue's registers do not
// crowd the default kernel's pair loop (with it compiled in, small changes to
// the loop spilled: bench/NOTES.md, 2026-12-03). kSteal: tail stealing
// (steal.cuh), likewise an instantiation of its own, plain grid only.
template <typename T, bool kMulticast, bool kHalves, bool kFusedMerge = false, bool kSteal = false>
__global__ void __launch_bounds__(kThreads, 1)
    dense_decode_seesaw_kernel(const __grid_constant__ CUtensorMap map4, const __grid_constant__ CUtensorMap map1,
                               const __grid_constant__ CUtensorMap mapq, const DenseDecodeParams p, int evict_first,
                               int q_tma) {
  static_assert(!kFusedMerge || (!kMulticast && !kHalves), "the in-kernel merge is written for the plain grid");
  static_assert(!kSteal || (!kMulticast && !kHalves && !kFusedMerge), "stealing is written for the plain grid");
  // Launched as a programmatic dependent (OPENMLA_PDL=2, the default),
  // nothing global is read or written (trace stamps included) before the
  // kernel before it is done. The trigger must follow the wait: the combine
  // reads the plan before its own wait, safe only once this grid's
  // predecessors (the planner among them) are complete.
  ptx::griddep_wait();
  ptx::griddep_launch_dependents();  // the combine may launch: it waits on this grid
#ifdef OPENMLA_SEESAW_TRACE
  // Launches counted for the combine's trace (kernels/combine).
  if (threadIdx.x == 0 && blockIdx.x == 0 && blockIdx.y == 0) atomicAdd(p.steal_stats + kStatsTraceLaunchWord, 1);
#endif
  TRACE_AT(0, 15);
  TRACE_CTA(0, ptx::globaltimer());
  TRACE_CTA(7, clock64());  // the loop end turns it into the cycles since entry
  TRACE_CTA(3, -1);
  extern __shared__ unsigned char smem_raw[];
  // Aligned by an offset on the array, not through an integer cast: the
  // pointer keeps the shared address space (LDS/STS, not generic LD/ST).
  unsigned char* smem = smem_raw + ((1024u - (ptx::smem_addr(smem_raw) & 1023u)) & 1023u);
  unsigned char* sQ = smem + kOffQ;
  unsigned char* sA = smem + kOffA;
  unsigned char* sB = smem + kOffB;
  unsigned char* sP0 = smem + kOffP0;
  float* sM0 = reinterpret_cast<float*>(smem + kOffRows);
  float* sM1 = sM0 + kTileM;
  float* sL = sM1 + kTileM;  // [2][64]: each warpgroup's share of the row sums
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + kOffBar);
  uint64_t* qbar = reinterpret_cast<uint64_t*>(smem + kOffQBar);
  int4* s_seg = reinterpret_cast<int4*>(smem + kOffSeg);
  int* s_fill = reinterpret_cast<int*>(smem + kOffFill);
  float* s_scale = reinterpret_cast<float*>(smem + kOffScale);
  volatile int* s_pair = reinterpret_cast<int*>(smem + kOffPair);
  volatile steal::Shared* st = reinterpret_cast<steal::Shared*>(smem + kOffSteal);

  // kv head * row tiles + row tile; column halves: two CTAs a tile.
  const int tile = kHalves ? (int)blockIdx.x / 2 : (int)blockIdx.x;
  const PartView view = view_part(p, tile);
  if (!view.usable) {
    if (kFusedMerge && p.fused_merge) merge::fill_uncovered_rows<T>(p, view.reqs, view.plan_ok, tile, blockIdx.y, p.num_parts);
    return;
  }
  TRACE_AT(63, 0);  // the plan header and part are in
  TRACE_CTA(3, view.pm.num_blocks);
  TRACE_CTA(4, view.pm.num_segs);
  const RequestMeta* reqs = view.reqs;
  // Under kSteal a stolen range's once the walk switches to it; const otherwise
  // (the default kernels then compile as before the stealing one existed).
  std::conditional_t<kSteal, PartMeta, const PartMeta> pm = view.pm;
  const int row_tile = view.row_tile, kv_head = view.kv_head, n_items = pm.num_blocks;

  const int tid = threadIdx.x;
  // Warp-uniform by construction (shfl): ptxas sees the role branches as
  // warpgroup-convergent and does not serialise the wgmma.
  const int wg = __shfl_sync(0xffffffff, tid / 128, 0), wtid = tid % 128;
  const int warp = wtid / 32, lane = tid % 32;
  const bool issuer = wtid == 0;  // thread 0 loads for WG0, thread 128 for WG1
  // Column halves: this CTA's 256 output columns; each warpgroup owns 128 of
  // them (kWgCols), held in kO accumulators a thread.
  constexpr int kWgCols = kHalves ? 128 : 256, kO = kWgCols / 2, kGroupsO = kO / 4;
  const int half = kHalves ? (int)blockIdx.x % 2 : 0;
  // A's and B's groups released after the warpgroup's PV on them: the one
  // WG0 releases after P0 V_a (ga_wg0), the one WG1 releases last (ga_wg1).
  // Halves: the group with the half's V columns (read by both) goes last.
  const int ga_wg0 = kHalves && half == 0 ? kGA2 : kGA1, ga_wg1 = kHalves && half == 0 ? kGA1 : kGA2;

  if (issuer) {
    ptx::prefetch_tensormap(&map4);
    ptx::prefetch_tensormap(&map1);
  }
  uint64_t policy;
  if (evict_first)
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
  else
    asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;\n" : "=l"(policy));
  const GroupLoader<kMulticast> loader{CacheMaps{&map4, &map1}, full, kv_head, policy,
                                       kMulticast ? ptx::cluster_ctarank() : 0u};

  PairWalk pw;
  cursor_begin(pw.c, pm, p.seqlens);
  pw.left = n_items;
  int first_a = -1;
  NextBlocks first;
  // The first segment's Q goes out before the barrier setup and the table
  // lookups (part -> length -> table -> TMA), so its round trip overlaps
  // theirs.
  if (q_tma) {
    if (tid == 0) {
      ptx::mbar_init(qbar, 1);
      ptx::fence_mbar_init();
      issue_q_tma(&mapq, sQ, qbar, p, pw.c.r, row_tile, kv_head);
    }
  } else {
    load_q_tile<T, kThreads>(p, sQ, pw.c.r, row_tile, kv_head, tid);
    ptx::cp_async_commit();
  }
  // Each later segment's Q goes out at the end of the one before.
  if (tid == 0) {
    for (int g = 0; g < kNumGroups; ++g) ptx::mbar_init(&full[g], 1);
    if constexpr (kMulticast)
      for (int g = 0; g < kNumGroups; ++g) ptx::mbar_init(&full[kNumGroups + g], loader.rank == group_owner(g) ? 2 : 1);
    ptx::fence_mbar_init();
    *s_scale = p.scale_log2;
    first_a = p.block_table[(int64_t)pw.c.r * p.block_table_stride + pw.c.blk];
    TRACE_DEP(63, 4, first_a);  // table entry a in
    if constexpr (!kMulticast) {
      // Block a's copies go out before b is looked up (b's lookup waits on
      // the request's length).
      for (int g = kGA0; g <= kGA2; ++g) loader.refill(sA, g, first_a, 0, true);
      TRACE_AT(63, 1);  // table entry a in, its copies issued
    }
    TRACE_DEP(63, 5, pw.c.len);  // the first request's length in
    int first_skipped = 0;  // kSteal: B's lookup skipped that many single-block pairs
    if constexpr (kSteal)
      first_skipped = first.find_counted(p, pm, pw);
    else
      first.find(p, pm, pw);
    if constexpr (kMulticast) {
      // Both CTAs armed before either copies into the other.
      for (int g = kGA0; g <= kGA2; ++g) loader.arm(g);
      if (first.b >= 0)
        for (int g = kGB0; g <= kGB1; ++g) loader.arm(g);
    } else if (first.b >= 0) {
      for (int g = kGB0; g <= kGB1; ++g) loader.refill(sB, g, first.b, 0, true);
    }
    TRACE_AT(63, 2);  // length and table entry b in
    if constexpr (kSteal) {
      st->stolen = 0;
      st->claiming = 0;
      if (p.steal != 3 && q_tma && n_items <= steal::kMaxBlocks) {  // thieves need Q by TMA
        // Live, with the first pairs claimed (the claims a pair top makes
        // from here on reach two pairs further).
        // Everything before the last segment's second block is claimed now:
        // a thief takes only from the last segment (its partial merges into
        // this CTA's), so what it sees unclaimed is what it may take.
        const int la = first.b >= 0 ? first_skipped + 1 : 0;
        const int last = n_items - steal::last_segment_blocks(pm);
        const int c0 = min(max(max(la + 1, 4) + steal::kClaimMargin, last + 1), n_items);
        atomicExch(steal::word(p, blockIdx.y, tile), steal::make_word(n_items, c0));
        st->claiming = 1;
        st->end = n_items;
        st->claimed = c0;
        if (p.steal_delay_ns > 0 && (blockIdx.y & 1)) {  // tests: this part lags
          const long long t0 = ptx::globaltimer();
          while (ptx::globaltimer() - t0 < p.steal_delay_ns) {
          }
        }
      }
    }
    if (kFusedMerge && p.fused_merge) {  // its latency hides under the first copies'
      int fill = 0;
      for (int r = blockIdx.y; r < p.batch; r += p.num_parts) fill |= reqs[r].num_segs == 0;
      *s_fill = fill;
    }
  }
  if constexpr (kMulticast) {
    ptx::cluster_sync();  // barrier inits and arms seen by the peer
    if (tid == 0) {
      for (int g = kGA0; g <= kGA2; ++g) loader.issue(sA, g, first_a);
      if (first.b >= 0)
        for (int g = kGB0; g <= kGB1; ++g) loader.issue(sB, g, first.b);
    }
  } else {
    __syncthreads();
  }
  TRACE_AT(63, 3);  // barriers set up (and, under multicast, the first copies issued)

  constexpr uint32_t kSbo = 1024, kLboK = 16, kLboV = kChunkBytes;
  const uint64_t dQ = wgmma::desc_sw128(ptx::smem_addr(sQ), kLboK, kSbo);
  const uint64_t dA = wgmma::desc_sw128(ptx::smem_addr(sA), kLboK, kSbo);
  const uint64_t dB = wgmma::desc_sw128(ptx::smem_addr(sB), kLboK, kSbo);
  const uint64_t dP0 = wgmma::desc_sw128(ptx::smem_addr(sP0), kLboK, kSbo);
  const uint64_t dP1 = dB + ((8 * kChunkBytes) >> 4);  // P1 lives in B's rope chunk
  const uint64_t dAv = wgmma::desc_sw128(ptx::smem_addr(sA), kLboV, kSbo);
  const uint64_t dBv = wgmma::desc_sw128(ptx::smem_addr(sB), kLboV, kSbo);
  // Each warpgroup's first V chunk: its columns are 64 * vchunk.. + kWgCols
  // (a constant in each branch without halves).
  const auto vchunk = [&](int w) { return kHalves ? 4 * half + 2 * w : 4 * w; };
  const auto dv_off = [&](int w) { return (uint64_t)(vchunk(w) * kChunkBytes) >> 4; };
  const int lr[2] = {warp * 16 + lane / 4, warp * 16 + lane / 4 + 8};

  float o[kO];
#pragma unroll
  for (int j = 0; j < kO; ++j) o[j] = 0.f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};
  int row_end[2] = {0, 0};
  int mask_from = 0;  // blocks ending past this token need the mask
  int out_mode = kOutPartial;  // what this segment's end writes
  int seg = pm.seg_begin;
  uint32_t ia = 0, ib = 0;  // blocks consumed from A and B (mbarrier parity)

  while (pw.left > 0) {
    if (ia > 0) TRACE(15);  // loop top (pair 0: slot 15 holds the kernel entry)
    const Cursor c = pw.c;
    const bool has_b = pw.has_b();
    PairWalk nx = pw;
    nx.next(pm, p.seqlens);
    const bool seg_end = nx.left <= 0 || nx.c.seg_start;
    const int len = c.len;
    NextBlocks next;
    if constexpr (kSteal) {
      if (tid == 0) {
        // The walk's last pair: look for a range to steal, which then
        // follows this walk without a gap (its first blocks are this pair's
        // refills, its Q goes out under this segment's stores).
        int3 v = make_int3(-1, 0, 0);
        if (nx.left <= 0 && q_tma && p.steal == 1) v = steal::find_victim(p, tile);
        steal_pair_top(p, pm, nx, next, st, ia & 1, tile, v);
      }
    } else if (issuer) {
      next.find(p, pm, nx);
    }
    TRACE(13);
// The block a refill fetches: under kSteal both issuers read it where they
// refill (thread 0 looked it up; nothing held across the pair, that kernel
// has no registers to spare). A macro, not a lambda: a lambda changed the
// default kernels' register allocation.
#define OPENMLA_SEESAW_NEXT(f, i) (kSteal ? (issuer ? (int)st->next[ia & 1][i] : -1) : next.f)

    if (c.seg_start) {
      const RequestMeta rm = reqs[c.r];
      // Read now, used at the segment's end.
      out_mode = kSteal && pm.seg_begin >= p.steal_slot0 ? kOutPartial  // a stolen range
                 : rm.num_segs == 1                      ? kOutDirect
                 : kHalves || p.pair_merge == 0 || rm.num_segs != 2 ? kOutPartial
                 : seg == rm.seg_begin                  ? kOutPairFirst
                                                        : kOutPairSecond;
      if (kFusedMerge && p.fused_merge && tid == 0) {
        const int4 rec = make_int4(c.r, rm.seg_begin, rm.num_segs, seg);
        if (ia == 0) s_seg[0] = rec;
        s_seg[1] = rec;
      }
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const int row = row_tile * kTileM + lr[k];
        const int sq = row < p.rows ? row / p.group : 0;
        row_end[k] = p.causal ? min(len, len - p.s_q + sq + 1) : len;
        m_run[k] = -INFINITY;
        l_run[k] = 0.f;
      }
      const int sq_min = (row_tile * kTileM) / p.group;
      mask_from = p.causal ? min(len, len - p.s_q + sq_min + 1) : len;
      if (q_tma) {
        // One Q tile a segment (under kSteal pm.pad counts the walks' before this one).
        ptx::mbar_wait(qbar, (seg - pm.seg_begin + (kSteal ? pm.pad : 0)) & 1);
        TRACE(14);  // Q landed
      } else {
        ptx::cp_async_wait<0>();
        TRACE(14);  // this thread's Q pieces landed
        ptx::fence_proxy_async();
        ptx::named_sync(kBarAll, kThreads);
      }
      TRACE(11);
    }

    float s[32];
    float m_new[2];  // m1: the running max after this pair
    TRACE(0);
    if (wg == 0) {
      // ---- WG0: S0 on block a, in the order A's groups come back ----
      const uint32_t par = ia & 1;
      wgmma::fence();
      ptx::mbar_wait(&full[kGA0], par);
      TRACE(1);
      if (ia == 0) TRACE_CTA(1, ptx::globaltimer());
      s_steps<T, 32, 36>(s, dQ, dA, true);
      ptx::mbar_wait(&full[kGA1], par);
      TRACE(2);
      s_steps<T, 0, 16>(s, dQ, dA, false);
      ptx::mbar_wait(&full[kGA2], par);
      TRACE(3);
      s_steps<T, 16, 32>(s, dQ, dA, false);
      wgmma::commit();
      wgmma::wait<0>();
      wgmma::fence_regs<32>(s);
      TRACE(4);

      float mx[2], u0[2], scale0[2], rs[2];
      mask_rowmax(s, (c.blk + 1) * kTileN > mask_from, c.blk * kTileN + 2 * (lane % 4), row_end, mx);
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const float m0 = fmaxf(m_run[k], mx[k] * p.scale_log2);
        u0[k] = m0 == -INFINITY ? 0.f : m0;
        scale0[k] = exp2f(m_run[k] - u0[k]);
        m_new[k] = m0;
        if (lane % 4 == 0) sM0[lr[k]] = m0;
      }
      ptx::named_arrive(kBarM0, kThreads);
      TRACE(5);
      // ptxas otherwise sinks the arrive below the 32 exponentials, and WG1
      // waits for them: this load orders them after it.
      const float scale_log2 = ptx::ld_volatile_shared(s_scale);

      uint32_t pa[16];
      exp_pack<T>(s, scale_log2, u0, rs, pa);
#pragma unroll
      for (int k = 0; k < 2; ++k) l_run[k] = l_run[k] * scale0[k] + rs[k];
      const int valid = len - c.blk * kTileN;
      if (valid < kTileN) {
        zero_tail_rows(sA, valid, wtid);
        ptx::fence_proxy_async();
        ptx::named_sync(kBarWg0, 128);
      }
      scale_rows<kGroupsO>(o, scale0);
      wgmma::fence();
      pv_rs<T, kWgCols>(o, pa, dAv + dv_off(0));
      wgmma::commit();
      TRACE(6);
      // A's rope chunk has been free since S0 retired; issued here, off the
      // softmax's path.
      loader.refill(sA, kGA0, OPENMLA_SEESAW_NEXT(a, 0), ia & 1, issuer);

      // m1 and P1 from WG1; P0 rescaled to m1 for WG1's half of V_a.
      ptx::named_sync(kBarP1, kThreads);
      TRACE(7);
      float scale1[2];
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const float m1 = sM1[lr[k]];
        const float u1 = m1 == -INFINITY ? 0.f : m1;
        scale1[k] = exp2f(m_new[k] - u1);
        m_new[k] = m1;
      }
      // Mostly m1 == m0 for the whole warp: P0 as packed for our own GEMM.
      if (__all_sync(0xffffffff, scale1[0] == 1.f && scale1[1] == 1.f)) {
        store_p_tile(ptx::smem_addr(sP0), pa, warp, lane);
      } else {
        uint32_t pk[16];
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
          for (int k = 0; k < 2; ++k)
            pk[j * 2 + k] = ptx::pack2<T>(s[j * 4 + 2 * k] * scale1[k], s[j * 4 + 2 * k + 1] * scale1[k]);
        store_p_tile(ptx::smem_addr(sP0), pk, warp, lane);
      }
      ptx::fence_proxy_async();
      ptx::named_arrive(kBarP0, kThreads);
      TRACE(8);

      wgmma::wait<0>();
      wgmma::fence_regs<kO>(o);
      TRACE(9);
      if constexpr (kHalves) ptx::named_arrive(kBarHalfA, kThreads);  // WG1 may release A's shared group
      loader.refill(sA, ga_wg0, OPENMLA_SEESAW_NEXT(a, 0), ia & 1, issuer);
      scale_rows<kGroupsO>(o, scale1);
#pragma unroll
      for (int k = 0; k < 2; ++k) l_run[k] *= scale1[k];
      if (has_b) {
        wgmma::fence();
        pv_ss<T, kWgCols>(o, dP1, dBv + dv_off(0));
        wgmma::commit();
        wgmma::wait<0>();
        wgmma::fence_regs<kO>(o);
        TRACE(10);
        if constexpr (kHalves) {
          ptx::named_sync(kBarHalfB, kThreads);  // WG1's P1 V_b retired too
          if (half == 1) loader.refill(sB, kGB0, OPENMLA_SEESAW_NEXT(b, 1), ib & 1, issuer);
        }
        loader.refill(sB, kGB1, OPENMLA_SEESAW_NEXT(b, 1), ib & 1, issuer);
      }
    } else {
      // ---- WG1: S1 on block b, in the order B's groups come back ----
      if (has_b) {
        const uint32_t par = ib & 1;
        wgmma::fence();
        ptx::mbar_wait(&full[kGB0], par);
        TRACE(1);
        s_steps<T, 16, 32>(s, dQ, dB, true);
        ptx::mbar_wait(&full[kGB1], par);
        TRACE(2);
        s_steps<T, 0, 16>(s, dQ, dB, false);
        s_steps<T, 32, 36>(s, dQ, dB, false);
        wgmma::commit();
        wgmma::wait<0>();
        wgmma::fence_regs<32>(s);
        TRACE(3);
      }
      // The row max does not need m0: done while WG0 gets there.
      float mx[2] = {-INFINITY, -INFINITY};
      if (has_b)
        mask_rowmax(s, (c.blk + 2) * kTileN > mask_from, (c.blk + 1) * kTileN + 2 * (lane % 4), row_end, mx);
      ptx::named_sync(kBarM0, kThreads);
      TRACE(4);
      float u1[2], factor[2];
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const float m1 = fmaxf(sM0[lr[k]], mx[k] * p.scale_log2);
        u1[k] = m1 == -INFINITY ? 0.f : m1;
        factor[k] = exp2f(m_run[k] - u1[k]);
        m_new[k] = m1;
        if (lane % 4 == 0) sM1[lr[k]] = m1;
      }
      uint32_t pb[16];
      const int valid = len - (c.blk + 1) * kTileN;
      if (has_b) {
        float rs[2];
        exp_pack<T>(s, p.scale_log2, u1, rs, pb);
#pragma unroll
        for (int k = 0; k < 2; ++k) l_run[k] = l_run[k] * factor[k] + rs[k];
        store_p_tile(ptx::smem_addr(sB + 8 * kChunkBytes), pb, warp, lane);
        if (valid < kTileN) zero_tail_rows(sB, valid, wtid);
        ptx::fence_proxy_async();
      } else {
#pragma unroll
        for (int k = 0; k < 2; ++k) l_run[k] *= factor[k];
      }
      ptx::named_arrive(kBarP1, kThreads);
      TRACE(5);
      if (has_b && valid < kTileN) ptx::named_sync(kBarWg1, 128);

      scale_rows<kGroupsO>(o, factor);
      wgmma::fence();
      if (has_b) {
        pv_rs<T, kWgCols>(o, pb, dBv + dv_off(1));
        wgmma::commit();
      }
      TRACE(6);
      ptx::named_sync(kBarP0, kThreads);
      TRACE(7);
      pv_ss<T, kWgCols>(o, dP0, dAv + dv_off(1));
      wgmma::commit();
      if (has_b) {
        wgmma::wait<1>();
        TRACE(8);
        if constexpr (kHalves) {
          ptx::named_arrive(kBarHalfB, kThreads);
          if (half == 0) loader.refill(sB, kGB0, OPENMLA_SEESAW_NEXT(b, 1), ib & 1, issuer);
        } else {
          loader.refill(sB, kGB0, OPENMLA_SEESAW_NEXT(b, 1), ib & 1, issuer);
        }
      }
      wgmma::wait<0>();
      wgmma::fence_regs<kO>(o);
      TRACE(9);
      if constexpr (kHalves) ptx::named_sync(kBarHalfA, kThreads);  // WG0's P0 V_a retired too
      loader.refill(sA, ga_wg1, OPENMLA_SEESAW_NEXT(a, 0), ia & 1, issuer);
      if constexpr (kSteal) {
        // A stolen range follows a walk whose last pair had no B: nobody
        // refills B in such a pair, and B has been idle since its last one.
        if (!has_b && issuer && st->ext[ia & 1])
          for (int g = kGB0; g <= kGB1; ++g) loader.refill(sB, g, OPENMLA_SEESAW_NEXT(b, 1), ib & 1, true);
      }
    }
#pragma unroll
    for (int k = 0; k < 2; ++k) m_run[k] = m_new[k];
    ++ia;
    if (has_b) ++ib;

    if (seg_end) {
      TRACE_CTA(5, ptx::globaltimer());  // the last segment's epilogue starts
      float l_tot[2];
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        float l = l_run[k];
        l += __shfl_xor_sync(0xffffffff, l, 1);
        l += __shfl_xor_sync(0xffffffff, l, 2);
        if (lane % 4 == 0) sL[wg * kTileM + lr[k]] = l;
      }
      ptx::named_sync(kBarAll, kThreads);
      // Both warpgroups' S GEMMs of this segment have retired: the next
      // segment's Q goes out now, under this one's output stores.
      if (nx.left > 0) {
        if (!q_tma) {
          load_q_tile<T, kThreads>(p, sQ, nx.c.r, row_tile, kv_head, tid);
          ptx::cp_async_commit();
        } else if (tid == 0) {
          issue_q_tma(&mapq, sQ, qbar, p, nx.c.r, row_tile, kv_head);
        }
      } else if (kSteal && tid == 0 && st->ext[(ia - 1) & 1]) {  // the stolen range's (q_tma only)
        issue_q_tma(&mapq, sQ, qbar, p, st->spm.r_begin, row_tile, kv_head);
      }
#pragma unroll
      for (int k = 0; k < 2; ++k) l_tot[k] = sL[lr[k]] + sL[kTileM + lr[k]];
      float inv[2], lse2[2];  // lse2: log2 of the row's softmax denominator (-inf: no token)
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        inv[k] = m_run[k] == -INFINITY ? 0.f : 1.f / l_tot[k];
        lse2[k] = m_run[k] == -INFINITY ? -INFINITY : m_run[k] + log2f(l_tot[k]);
      }
      const int rows_in_tile = p.rows - row_tile * kTileM;
      if constexpr (kSteal) {
        // The owner's walk ends: close its word, and merge the range stolen
        // from its end (if any) before this segment writes anything.
        const int own_end = __shfl_sync(0xffffffff, nx.left <= 0 ? (int)st->claiming : 0, 0);
        if (own_end) {
          const int stolen = __shfl_sync(0xffffffff, (int)st->stolen, 0);
          ptx::named_sync(kBarAll, kThreads);  // everyone has read st before thread 0 changes it
          if (tid == 0) {
            const uint32_t w = atomicExch(steal::word(p, blockIdx.y, tile), 0u);
            // A steal the walk missed (a fault the tests count): its thief
            // still flags, so wait and clear the flag all the same.
            const bool missed = steal::word_end(w) != st->end;
            if (missed) atomicAdd(p.steal_stats + 1, 1);
            st->claiming = 0;
            if (stolen > 0 || missed) {
              int32_t* done = steal::done_flag(p, blockIdx.y, tile);
              while (merge::ld_acquire_gpu(done) == 0) {
              }
              *done = 0;  // nobody else touches it this call
            }
          }
          if (stolen > 0) {
            ptx::named_sync(kBarAll, kThreads);  // the thief's partial is visible to all
            merge_stolen<kGroupsO>(p, o, inv, lse2, p.steal_slot0 + (int)blockIdx.y, tile, row_tile, kv_head, lr, tid,
                                   lane, rows_in_tile);
          }
        }
      }
      // Pair merge: the segment that finishes second merges. The first
      // segment of a pair request ends its part, the second opens the next
      // one (computed first there), so mostly the first finds the second's
      // partial stored and merges it with its registers, never storing its
      // own. Counter (per request and tile, zero at rest): +1 when the first
      // segment arrives, +1 when either segment's partial is stored. Only the
      // second segment ever waits, and only for a CTA that has arrived
      // (running): no residency is needed.
      int how = out_mode;
      int32_t* const ctr = merge::counter(p, c.r, tile);
      if (out_mode == kOutPairFirst) {
        if (tid == 0) {
          const int old = atomicAdd(ctr, 1);
          if (old == 1) {
            __threadfence();  // acquire: the second's partial before our reads
            *ctr = 0;         // nobody else touches it this call
          }
          *s_pair = old;
        }
        ptx::named_sync(kBarAll, kThreads);
        how = *s_pair == 1 ? kOutMerge : kOutPartial;
      }
      if (how == kOutPartial || how == kOutPairSecond) {
        if constexpr (kHalves)
          store_partial<kGroupsO>(partial_tile(p, seg, tile), o, inv, half * 128 + wtid, rows_in_tile,
                                  wg * kGroupsO);
        else
          store_partial(partial_tile(p, seg, tile), o, inv, tid, rows_in_tile);
#pragma unroll
        for (int k = 0; k < 2; ++k) {
          const int row = row_tile * kTileM + lr[k];
          if (row >= p.rows || wg != 0 || half != 0 || lane % 4 != 0) continue;
          p.lse_accum[(int64_t)seg * p.s_q * p.h_q + lse_row_offset(p, kv_head, row)] =
              lse2[k] * 0.69314718055994530942f;
        }
        if (kSteal && pm.seg_begin >= p.steal_slot0) {
          // A stolen range (one segment): flag its partial for the owner.
          ptx::named_sync(kBarAll, kThreads);  // every thread's stores before thread 0's release
          if (tid == 0) {
            __threadfence();
            atomicExch(steal::done_flag(p, pm.seg_begin - p.steal_slot0, tile), 1);
          }
        }
        if (out_mode >= kOutPairFirst) {
          ptx::named_sync(kBarAll, kThreads);  // every thread's stores before thread 0's release
          if (tid == 0) {
            __threadfence();
            const int old = atomicAdd(ctr, 1);
            int merge_here = 0;
            if (out_mode == kOutPairSecond && old != 0) {
              // The first arrived first: wait until its partial is stored too.
              while (merge::ld_acquire_gpu(ctr) < 3) {
              }
              *ctr = 0;
              merge_here = 1;
            }
            *s_pair = merge_here;
          }
          if (out_mode == kOutPairSecond) {
            ptx::named_sync(kBarAll, kThreads);
            how = *s_pair ? kOutMerge : kOutPartial;
          }
        }
      }
      // Uniform as ptxas sees it (shfl): o is rewritten under it, and a
      // divergent-looking branch there serialises every wgmma (C7520).
      how = __shfl_sync(0xffffffff, how, 0);
      if (!kHalves && how == kOutMerge) {
        const int other = out_mode == kOutPairFirst ? seg + 1 : seg - 1;
        // The walk is over (no copy in flight into A or B, every GEMM
        // retired): the other partial comes into A and B by cp.async, all
        // of it in flight at once under the LSE loads, instead of four
        // register batches one round trip after another. `staged` is
        // uniform (every thread walks the same cursor); a shfl of it cost
        // C7520.
        const bool staged =
            OPENMLA_MERGE_STAGED && !kSteal && !kFusedMerge && nx.left <= 0;
        const int t_own = ((tid % 128) / 32) * 16 < rows_in_tile ? tid : -1;
        {
          // Predicated copies, no branch (C7520 otherwise); warps whose rows
          // are all padding copy nothing (h_q 16: 3/4 of the tile's bytes).
          const float4* src = reinterpret_cast<const float4*>(partial_tile(p, other, tile)) + tid;
          const uint32_t dst = ptx::smem_addr(sA) + 16u * tid;
#pragma unroll
          for (int q = 0; q < kGroupsO; ++q)
            ptx::cp_async_16_if(dst + 16u * 256 * q, src + q * 256, staged && t_own >= 0);
          ptx::cp_async_commit();
        }
        float w_self[2], w_other[2];  // o = o w_self + other's partial w_other
#pragma unroll
        for (int k = 0; k < 2; ++k) {
          const int row = row_tile * kTileM + lr[k];
          const bool valid = row < p.rows;
          const int sq = valid ? row / p.group : 0, h = kv_head * p.group + (valid ? row % p.group : 0);
          const float lo =
              valid ? __ldcg(p.lse_accum + (int64_t)other * p.s_q * p.h_q + lse_row_offset(p, kv_head, row)) *
                          1.4426950408889634f
                    : -INFINITY;
          const float mx = fmaxf(lse2[k], lo);
          const float a = mx == -INFINITY ? 0.f : exp2f(lse2[k] - mx);
          const float b = mx == -INFINITY ? 0.f : exp2f(lo - mx);
          const float sum = a + b;
          w_self[k] = mx == -INFINITY ? 0.f : a / sum * inv[k];
          w_other[k] = mx == -INFINITY ? 0.f : b / sum;
          if (valid && wg == 0 && lane % 4 == 0)  // the merged LSE, now (fewer live registers)
            p.lse[(int64_t)c.r * p.lse_stride_b + (int64_t)h * p.lse_stride_h + sq] =
                mx == -INFINITY ? INFINITY : (mx + log2f(sum)) * 0.69314718055994530942f;
        }
#pragma unroll
        for (int j = 0; j < kGroupsO; ++j) {  // not scale_rows: its skip is a per-thread branch over o
          o[j * 4 + 0] *= w_self[0];
          o[j * 4 + 1] *= w_self[0];
          o[j * 4 + 2] *= w_self[1];
          o[j * 4 + 3] *= w_self[1];
        }
        // Unconditional (nothing to wait for unless staged): under `staged`
        // they cost C7520.
        ptx::cp_async_wait<0>();
        ptx::named_sync(kBarAll, kThreads);  // staged: padding warps read warp 0's pieces
        {
          // Warps whose rows are all padding (never stored) read warp 0's
          // rows instead, weighed 0: no branch around o (C7520 again).
          // Generic loads from either place: one loop (two loops spilled).
          // Unstaged, they read another SM's stores: ordered after them by
          // thread 0's acquire (fence or ld.acquire) and the barrier since.
          const int t = t_own >= 0 ? tid : (tid / 128) * 128 + lane;
          const float4* src = (staged ? reinterpret_cast<const float4*>(sA)
                                      : reinterpret_cast<const float4*>(partial_tile(p, other, tile))) + t;
          constexpr int kBatch = 8;  // loads in flight a thread (batches of 4 spilled: ptxas's choice)
#pragma unroll
          for (int q0 = 0; q0 < kGroupsO; q0 += kBatch) {  // kHalves never merges here
            float4 v[kBatch];
#pragma unroll
            for (int q = 0; q < kBatch; ++q) v[q] = src[(q0 + q) * 256];
#pragma unroll
            for (int q = 0; q < kBatch; ++q) {
              float* oq = o + 4 * (q0 + q);
              oq[0] += v[q].x * w_other[0];
              oq[1] += v[q].y * w_other[0];
              oq[2] += v[q].z * w_other[1];
              oq[3] += v[q].w * w_other[1];
            }
            asm volatile("" ::: "memory");  // kBatch loads at a time: all 32 at once would spill
          }
        }
      }
      if (how == kOutDirect || how == kOutMerge) {
#pragma unroll
        for (int k = 0; k < 2; ++k) {
          const int row = row_tile * kTileM + lr[k];
#if OPENMLA_OUT_STORE16
          const bool valid = row < p.rows;  // the whole quad's (one row): every lane shuffles
          const int sq = valid ? row / p.group : 0, h = kv_head * p.group + (valid ? row % p.group : 0);
          store_out_row16<T, kGroupsO>(p, o, k, how == kOutMerge ? 1.f : inv[k], c.r, sq, h, 64 * vchunk(wg),
                                       lane, valid);
          if (!valid) continue;
#else
          if (row >= p.rows) continue;
          const int sq = row / p.group, h = kv_head * p.group + row % p.group;
          store_out_row<T, kGroupsO>(p, o, k, how == kOutMerge ? 1.f : inv[k], c.r, sq, h,
                                     64 * vchunk(wg) + 2 * (lane % 4));
#endif
          if (how == kOutDirect && wg == 0 && half == 0 && lane % 4 == 0)
            p.lse[(int64_t)c.r * p.lse_stride_b + (int64_t)h * p.lse_stride_h + sq] =
                lse2[k] == -INFINITY ? INFINITY : lse2[k] * 0.69314718055994530942f;
        }
      }
      TRACE_CTA(6, how);
      ++seg;  // o restarts from the next segment's zero scale factor
      TRACE_AT(ia - 1, 12);
    }
    if constexpr (kSteal) {
      // Blocks stolen from the walk's end; or the walk is over and a stolen
      // range follows. Plain (not volatile) reads: with volatile ones ptxas
      // serialised every wgmma (C7520); the named barriers order them.
      const steal::Shared* sn = reinterpret_cast<const steal::Shared*>(smem + kOffSteal);
      nx.left -= sn->k[(ia - 1) & 1];
      if (sn->ext[(ia - 1) & 1]) {
        pm = sn->spm;
        cursor_begin(nx.c, pm, p.seqlens);
        nx.left = pm.num_blocks;
        seg = pm.seg_begin;
      }
    }
    pw = nx;
  }
#undef OPENMLA_SEESAW_NEXT
  TRACE_CTA(2, ptx::globaltimer());
#ifdef OPENMLA_SEESAW_TRACE
  if (threadIdx.x == 0 && blockIdx.y * gridDim.x + blockIdx.x < kTraceCtas) {
    long long* c7 = &g_seesaw_cta[blockIdx.y * gridDim.x + blockIdx.x][7];
    *c7 = clock64() - *c7;
  }
#endif
  // The peer may still arrive on this CTA's empty barriers.
  if constexpr (kMulticast) ptx::cluster_sync();

  if (kFusedMerge && p.fused_merge) {
    // Shares of the merges of the split requests this part begins and ends
    // with (kernels/common/merge.cuh); Q's buffer is free scratch now.
    // The segments were noted in shared memory as they started: no global
    // round trip (or register kept through the loop) to find them again.
    // Both arrivals wait for the part's end: a fence after a segment's
    // partial would stall the CTA until its 128 KB of stores are acknowledged
    // (the combine path lets them drain under the next segment's work).
    float* scratch = reinterpret_cast<float*>(sQ);
    __syncthreads();
    const int4 first = s_seg[0], last = s_seg[1];
    const bool fill = *s_fill != 0;
    if (tid == 0) {
      __threadfence();
      if (first.z > 1) atomicAdd(merge::counter(p, first.x, tile), 1);
      if (last.x != first.x && last.z > 1) atomicAdd(merge::counter(p, last.x, tile), 1);
    }
    merge::merge_request<T>(p, first.x, RequestMeta{first.y, first.z}, first.w, tile, scratch);
    if (last.x != first.x)
      merge::merge_request<T>(p, last.x, RequestMeta{last.y, last.z}, last.w, tile, scratch);
    if (fill) merge::fill_uncovered_rows<T>(p, reqs, true, tile, blockIdx.y, p.num_parts);
  }
}

}  // namespace openmla::kernels::dense_decode_seesaw

#endif  // OPENMLA_KERNELS_SM90_DENSE_DECODE_SEESAW_KERNEL_CUH_
