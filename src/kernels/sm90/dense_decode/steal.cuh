// Tail stealing for the seesaw kernel's plain grid (kSteal instantiation).
//
// CTAs with equal work end 6-12% apart on memory-bound shapes, and which ones
// lag changes from run to run (bench/NOTES.md, 2026-12-03): the SMs do not
// share the HBM evenly. So a CTA whose walk reaches its last pair takes
// blocks from the end of a part still running and walks them next, without
// a gap, as an extra segment whose partial the owner merges into its
// registers before its last output.
//
// One 32-bit word per (part, tile): bits 0-14 the positions the owner has
// claimed in its walk, bit 15 "stolen from" (once a part), bits 16-31 the
// walk's end (lowered by the thief). Zero at rest; the owner makes it live at
// its start, claiming everything up to its last segment's second block (a
// thief takes only from the last segment, and the owner keeps one block of
// it, so the stolen partial merges into the owner's segment), and zeroes it
// at its last segment's end. A thief takes [E', end) by CAS, E' >= claimed.
//
// The owner's thread 0, at each pair's top, reads the word (it shows every
// claim so far and any steal), applies a steal to the walk, looks up the
// next pair's blocks on the walk as it will be, and claims (a RED, nothing
// held across the pair) past everything those refills fetch
// (NextBlocks::find may look several pairs ahead for B) plus kClaimMargin.
// Why it is safe: a CAS that a read did not see lands after it, so E' >= the
// claims that read showed; the claims of pair i - 2 cover both of pair
// i + 1's blocks, so a steal learned at pair i's top ends the walk past them
// (applied at pair i's end, it changes no segment end or has_b already
// decided), and nothing fetched before it was learned lies past E'.
#ifndef OPENMLA_KERNELS_SM90_DENSE_DECODE_STEAL_CUH_
#define OPENMLA_KERNELS_SM90_DENSE_DECODE_STEAL_CUH_

#include <cstdint>

#include "common/split_plan.h"
#include "kernels/common/params.h"

namespace openmla::kernels::steal {

constexpr int kClaimMargin = 4;        // blocks claimed past the look-ahead
constexpr int kMinSteal = 4;           // fewer are not worth a Q load and a merge
constexpr int kMaxBlocks = 0x7fff;     // larger parts are not stolen from (15-bit claims)

// Bit 15: the part was stolen from (once a part); bits 0-14 the claims.
constexpr uint32_t kStolenBit = 0x8000u;
__device__ __forceinline__ int word_end(uint32_t w) { return (int)(w >> 16); }
__device__ __forceinline__ int word_claimed(uint32_t w) { return (int)(w & 0x7fffu); }
__device__ __forceinline__ uint32_t make_word(int end, int claimed) { return ((uint32_t)end << 16) | (uint32_t)claimed; }

// Thread 0's claim state and what it passes to the others, in shared memory
// (the kernel has no registers to spare).
struct Shared {
  PartMeta spm;   // the stolen range that follows the walk (ext)
  int claiming;   // this walk is the CTA's own part, live in its word
  int end;        // the walk's end (num_blocks less what was stolen)
  int claimed;    // claims made so far
  int stolen;     // blocks taken from this part's end
  int k[2];       // by pair parity: blocks taken off everyone's walk at the pair's end
  int ext[2];     // by pair parity: the walk ends with the pair and spm follows
  int next[2][2]; // by pair parity: the pair's next blocks (a, b) for WG1's issuer
};
static_assert(sizeof(Shared) % 16 == 0, "steal::Shared is 16-byte sized");

__device__ __forceinline__ uint32_t ld_relaxed_gpu(const uint32_t* ptr) {
  uint32_t v;
  asm volatile("ld.relaxed.gpu.global.b32 %0, [%1];\n" : "=r"(v) : "l"(ptr) : "memory");
  return v;
}

__device__ __forceinline__ uint32_t* word(const DenseDecodeParams& p, int part, int tile) {
  return p.steal_words + (int64_t)part * p.h_kv * p.num_row_tiles + tile;
}
__device__ __forceinline__ int32_t* done_flag(const DenseDecodeParams& p, int part, int tile) {
  return p.steal_done + (int64_t)part * p.h_kv * p.num_row_tiles + tile;
}

// Blocks of the part's last segment.
__device__ __forceinline__ int last_segment_blocks(const PartMeta& pm) {
  return pm.r_begin == pm.r_end ? pm.blk_end - pm.blk_begin : pm.blk_end;
}

// Thread 0 of a CTA whose walk ends with this pair: the part of this tile
// with the most unclaimed blocks among kSamples spread over the parts (all
// of them where there are fewer), taken by CAS. One thread and no warp
// collectives: this runs inside the pair loop, and shuffles there made
// ptxas serialise every wgmma (C7520). The samples' loads go out together,
// so the search costs ~3 L2 round trips. {part, first stolen position,
// blocks}; part -1: none.
constexpr int kSamples = 16;
__device__ __forceinline__ int3 find_victim(const DenseDecodeParams& p, int tile) {
  // Orders this CTA's own claims before its CAS on another part's word: with
  // relaxed atomics only, a ring of thieves each stealing from the next
  // before seeing its final claim would be allowed, and every owner would
  // wait forever (a review's finding; once a walk, cheap).
  __threadfence();
  const int n = p.num_parts;
  const int step = n > kSamples ? n / kSamples : 1;
  const int start = (int)(blockIdx.y * 7u + 1u) % n;
  uint32_t w[kSamples];
#pragma unroll
  for (int i = 0; i < kSamples; ++i) {
    const int q = (start + i * step) % n;
    w[i] = i < n ? ld_relaxed_gpu(word(p, q, tile)) : 0u;
  }
  int best_q = -1, best_avail = kMinSteal;
  uint32_t best_w = 0;
#pragma unroll
  for (int i = 0; i < kSamples; ++i) {
    const int avail = word_end(w[i]) - word_claimed(w[i]);
    if (!(w[i] & kStolenBit) && avail > best_avail) {
      best_avail = avail;
      best_q = (start + i * step) % n;
      best_w = w[i];
    }
  }
  if (best_q < 0) return make_int3(-1, 0, 0);
  // The owner claims its part up to its last segment's second block at its
  // start, so what is unclaimed is stealable. Take half of it (the owner
  // runs ~kClaimMargin + 2 blocks short of its claims).
  const int end = word_end(best_w), claimed = word_claimed(best_w);
  const int t = min(end - claimed, (end - claimed + kClaimMargin + 2) / 2);
  if (atomicCAS(word(p, best_q, tile), best_w, make_word(end - t, claimed) | kStolenBit) != best_w)
    return make_int3(-1, 0, 0);  // the owner claimed meanwhile: this search is over
  atomicAdd(p.steal_stats, 1);
  return make_int3(best_q, end - t, t);
}

// The part-meta of blocks [e0, e0 + n) of part `vm`'s last segment, as a
// one-segment part written to segment slot `slot`.
__device__ __forceinline__ PartMeta stolen_range(const PartMeta& vm, int e0, int n, int slot) {
  const int first_pos = vm.num_blocks - last_segment_blocks(vm);  // the segment's first position
  const int first_blk = vm.r_begin == vm.r_end ? vm.blk_begin : 0;
  PartMeta s;
  s.r_begin = s.r_end = vm.r_end;
  s.blk_begin = first_blk + (e0 - first_pos);
  s.blk_end = s.blk_begin + n;
  s.seg_begin = slot;
  s.num_segs = 1;
  s.num_blocks = n;
  s.pad = 0;
  return s;
}

}  // namespace openmla::kernels::steal

#endif  // OPENMLA_KERNELS_SM90_DENSE_DECODE_STEAL_CUH_
