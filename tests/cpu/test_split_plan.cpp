// The split-KV planner (src/common/split_plan.h) on many random and extreme
// batches: every (request, block) covered exactly once, part loads within one
// block, segments numbered contiguously per part and per request, RequestMeta
// consistent, segment count within the workspace layout, bad lengths recorded.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "common/split_plan.h"
#include "plan_checks.h"

namespace {

using namespace openmla_test;

constexpr uint8_t kCanary = 0xAB;

// Runs the planner into a canary-filled buffer and checks nothing past the
// plan's extent was written.
std::vector<uint64_t> plan(const std::vector<int32_t>& lens, int mb, int num_parts,
                           int min_part = openmla::kMinBlocksPerPart, int cost8 = 0) {
  const size_t extent = plan_extent((int)lens.size(), num_parts);
  std::vector<uint64_t> buf((extent + 512) / 8);
  std::memset(buf.data(), kCanary, buf.size() * 8);
  openmla::compute_split_plan(lens.data(), (int)lens.size(), mb, num_parts, buf.data(), min_part, cost8);
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(buf.data());
  for (size_t i = extent; i < buf.size() * 8; ++i) {
    if (bytes[i] != kCanary) {
      ADD_FAILURE() << "planner wrote past its extent at byte " << i << " (extent " << extent << ")";
      break;
    }
  }
  return buf;
}

void plan_and_check(const std::vector<int32_t>& lens, int mb, int num_parts,
                    int min_part = openmla::kMinBlocksPerPart, int cost8 = 0) {
  SCOPED_TRACE(::testing::Message() << "batch " << lens.size() << " max_blocks " << mb
                                    << " parts " << num_parts << " min blocks a part " << min_part
                                    << " segment cost " << cost8);
  const auto buf = plan(lens, mb, num_parts, min_part, cost8);
  ASSERT_NO_FATAL_FAILURE(check_valid_plan(lens, num_parts, buf.data()));
  // Segments: at most one per nonempty request plus one per part boundary.
  int nonempty = 0;
  for (int32_t l : lens) nonempty += l > 0;
  const auto v = view_plan(buf.data(), num_parts);
  ASSERT_LE(v.hdr->total_segments, nonempty + num_parts - 1 + (nonempty == 0));
  ASSERT_LE(v.hdr->total_segments, (int)lens.size() + num_parts);
  // Deterministic: same bytes again.
  const auto again = plan(lens, mb, num_parts, min_part, cost8);
  ASSERT_EQ(0, std::memcmp(buf.data(), again.data(), plan_extent((int)lens.size(), num_parts)));
}

std::vector<int32_t> random_lens(std::mt19937& rng, int batch, int mb, int kind) {
  std::vector<int32_t> lens(batch);
  const int cap = 64 * mb;
  for (auto& l : lens) {
    switch (kind) {
      case 0: l = (int32_t)(rng() % (cap + 1)); break;                        // uniform
      case 1: l = rng() % 2 ? 0 : (int32_t)(rng() % (cap + 1)); break;        // half empty
      case 2: l = 64 * (int32_t)(rng() % (mb + 1)); break;                    // on block edges
      case 3: l = rng() % 8 ? (int32_t)(rng() % 3) : cap; break;              // tiny + a few full
      default: l = cap - (int32_t)(rng() % 2); break;                         // near the cap
    }
  }
  return lens;
}

TEST(SplitPlan, RandomBatches) {
  std::mt19937 rng(2024);
  const int part_counts[] = {1, 2, 3, 5, 7, 16, 66, 132, 133, 264, 1000};
  for (int it = 0; it < 400; ++it) {
    const int batch = 1 + (int)(rng() % (it % 4 == 0 ? 300 : 40));
    const int mb = 1 + (int)(rng() % 64);
    const int kind = (int)(rng() % 5);
    const int P = part_counts[rng() % (sizeof(part_counts) / sizeof(int))];
    const auto lens = random_lens(rng, batch, mb, kind);
    SCOPED_TRACE(::testing::Message() << "iteration " << it << " kind " << kind);
    ASSERT_NO_FATAL_FAILURE(plan_and_check(lens, mb, P));
  }
}

// The same with a segment cost: parts are balanced by 8 a block + c8 a segment.
TEST(SplitPlan, RandomBatchesWithSegmentCost) {
  std::mt19937 rng(77);
  const int part_counts[] = {1, 2, 3, 5, 7, 16, 66, 132, 133, 264, 1000};
  const int costs[] = {1, 4, 8, 16, 24, 64, 256};
  for (int it = 0; it < 400; ++it) {
    const int batch = 1 + (int)(rng() % (it % 4 == 0 ? 300 : 40));
    const int mb = 1 + (int)(rng() % 64);
    const int kind = (int)(rng() % 5);
    const int P = part_counts[rng() % (sizeof(part_counts) / sizeof(int))];
    const int c8 = costs[rng() % (sizeof(costs) / sizeof(int))];
    const int min_part = 1 + (int)(rng() % 3);
    const auto lens = random_lens(rng, batch, mb, kind);
    SCOPED_TRACE(::testing::Message() << "iteration " << it << " kind " << kind);
    ASSERT_NO_FATAL_FAILURE(plan_and_check(lens, mb, P, min_part, c8));
  }
}

// Eight 1-block requests then one of 56 blocks over 2 parts: by blocks alone
// part 0 takes 32 blocks in 9 segments; charging 2 blocks a segment (c8 = 16)
// it takes 24 (cost 8 x 24 + 16 x 9 = 336 = part 1's 8 x 40 + 16).
TEST(SplitPlan, SegmentCostTakesBlocksFromPartsWithManySegments) {
  std::vector<int32_t> lens(8, 64);
  lens.push_back(56 * 64);
  ASSERT_NO_FATAL_FAILURE(plan_and_check(lens, 56, 2, 2, 0));
  ASSERT_NO_FATAL_FAILURE(plan_and_check(lens, 56, 2, 2, 16));
  const auto by_blocks = plan(lens, 56, 2, 2, 0);
  const auto by_cost = plan(lens, 56, 2, 2, 16);
  EXPECT_EQ(view_plan(by_blocks.data(), 2).parts[0].num_blocks, 32);
  EXPECT_EQ(view_plan(by_cost.data(), 2).parts[0].num_blocks, 24);
  EXPECT_EQ(view_plan(by_cost.data(), 2).parts[1].num_blocks, 40);
  EXPECT_EQ(view_plan(by_cost.data(), 2).hdr->segment_cost8, 16);
  // A cut that would start a request with a sliver (<= the slack) moves to its start.
  const std::vector<int32_t> two{64 * 29, 64 * 35};  // room for 2 blocks of the second: none taken
  const auto cut = plan(two, 35, 2, 2, 16);
  ASSERT_NO_FATAL_FAILURE(plan_and_check(two, 35, 2, 2, 16));
  EXPECT_EQ(view_plan(cut.data(), 2).parts[0].num_blocks, 29);
}

// A review's input: the sliver rule stopped part 64 short and left the last
// part a whole 44-block request (47 blocks of cost against the blocks-only
// plan's 41). The rule now yields where later parts would pass the slack.
TEST(SplitPlan, SliverRuleDoesNotOverloadTheLastPart) {
  const int blocks[] = {83, 43, 89, 82, 81, 97, 40, 85, 66, 8, 113, 70, 85, 126, 107, 120,
                        36, 4, 85, 103, 126, 111, 81, 30, 29, 96, 74, 61, 17, 32, 72, 44};
  std::vector<int32_t> lens;
  for (int b : blocks) lens.push_back(64 * b);
  ASSERT_NO_FATAL_FAILURE(plan_and_check(lens, 126, 66, 2, 24));
  const auto buf = plan(lens, 126, 66, 2, 24);
  const auto v = view_plan(buf.data(), 66);
  int64_t worst = 0;
  for (int p = 0; p < 66; ++p) worst = std::max<int64_t>(worst, 8 * v.parts[p].num_blocks + 24 * v.parts[p].num_segs);
  EXPECT_LE(worst, 8 * 43);
}

TEST(SplitPlan, AllZeroLengths) {
  for (int batch : {1, 5, 300})
    for (int P : {1, 4, 132}) {
      const std::vector<int32_t> lens(batch, 0);
      ASSERT_NO_FATAL_FAILURE(plan_and_check(lens, 3, P));
      const auto buf = plan(lens, 3, P);
      const auto v = view_plan(buf.data(), P);
      EXPECT_EQ(v.hdr->total_blocks, 0);
      EXPECT_EQ(v.hdr->total_segments, 0);
      for (int p = 0; p < P; ++p) EXPECT_EQ(v.parts[p].r_begin, -1);
    }
}

// b = 1, s_k = 32768 (512 blocks): the request spreads over every active
// part; with fewer than 4 blocks a part, the active count drops to 128.
TEST(SplitPlan, OneHugeRequestSpreadsOverAllParts) {
  const std::vector<int32_t> lens{32768};
  for (int P : {66, 78, 132, 512, 600}) {
    ASSERT_NO_FATAL_FAILURE(plan_and_check(lens, 512, P));
    const auto buf = plan(lens, 512, P);
    const auto v = view_plan(buf.data(), P);
    const int max_a = std::min(P, 512 / openmla::kMinBlocksPerPart);
    const int hi = (512 + max_a - 1) / max_a;  // C; a single request has no edge to snap to
    const int A = (512 + hi - 1) / hi;
    EXPECT_EQ(v.hdr->active_parts, A);
    for (int p = 0; p < P; ++p) {
      if (p < A) {
        if (p + 1 < A) {
          EXPECT_EQ(v.parts[p].num_blocks, hi);
        }
        EXPECT_LE(v.parts[p].num_blocks, hi);
        EXPECT_EQ(v.parts[p].r_begin, 0) << "part " << p << " idle";
      } else {
        EXPECT_EQ(v.parts[p].num_blocks, 0);
      }
    }
    EXPECT_EQ(v.reqs[0].num_segs, A);
    EXPECT_EQ(v.reqs[0].seg_begin, 0);
  }
}

TEST(SplitPlan, BatchLargerThanParts) {
  std::mt19937 rng(5);
  for (int P : {1, 2, 7}) {
    const auto lens = random_lens(rng, 300, 8, 0);
    ASSERT_NO_FATAL_FAILURE(plan_and_check(lens, 8, P));
  }
  // One part: every nonempty request is exactly one segment, in order.
  const std::vector<int32_t> lens{5, 0, 64, 65, 0, 1};
  const auto buf = plan(lens, 2, 1);
  const auto v = view_plan(buf.data(), 1);
  EXPECT_EQ(v.hdr->total_segments, 4);
  EXPECT_EQ(v.parts[0].r_begin, 0);
  EXPECT_EQ(v.parts[0].r_end, 5);
  EXPECT_EQ(v.parts[0].blk_end, 1);
  const int want_seg[] = {0, -1, 1, 2, -1, 3};
  for (int r = 0; r < 6; ++r) {
    EXPECT_EQ(v.reqs[r].num_segs, want_seg[r] < 0 ? 0 : 1) << r;
    if (want_seg[r] >= 0) {
      EXPECT_EQ(v.reqs[r].seg_begin, want_seg[r]) << r;
    }
  }
}

TEST(SplitPlan, PartsLargerThanTotalBlocks) {
  for (const auto& lens : {std::vector<int32_t>{1, 0, 65}, std::vector<int32_t>{1},
                           std::vector<int32_t>{0, 0, 64, 0}}) {
    for (int P : {4, 132, 1000}) {
      ASSERT_NO_FATAL_FAILURE(plan_and_check(lens, 2, P, 1));
      const auto buf = plan(lens, 2, P, 1);
      const auto v = view_plan(buf.data(), P);
      int busy = 0;
      for (int p = 0; p < P; ++p) busy += v.parts[p].num_blocks > 0;
      EXPECT_EQ(busy, v.hdr->total_blocks) << "every block gets its own part";
    }
  }
}

// Part boundaries falling exactly on request boundaries, with empty requests
// around them.
TEST(SplitPlan, BoundariesAtRequestEdges) {
  const std::vector<int32_t> lens{64, 0, 0, 128, 0, 64, 0};
  for (int P : {1, 2, 3, 4, 5})
    for (int min_part : {1, 2, 4}) ASSERT_NO_FATAL_FAILURE(plan_and_check(lens, 2, P, min_part));
  const auto buf = plan(lens, 2, 4, 1);  // 4 blocks over 4 parts
  const auto v = view_plan(buf.data(), 4);
  EXPECT_EQ(v.parts[0].r_begin, 0);
  EXPECT_EQ(v.parts[0].r_end, 0);
  EXPECT_EQ(v.parts[1].r_begin, 3);
  EXPECT_EQ(v.parts[1].blk_begin, 0);
  EXPECT_EQ(v.parts[2].r_begin, 3);
  EXPECT_EQ(v.parts[2].blk_begin, 1);
  EXPECT_EQ(v.parts[3].r_begin, 5);
  EXPECT_EQ(v.reqs[3].num_segs, 2);
}

// 128 requests of 64 blocks over 132 parts: the even share (63 blocks) would
// split every request; within the slack each part takes one whole request.
TEST(SplitPlan, NearShareRequestsAreNotSplit) {
  const std::vector<int32_t> lens(128, 4096);
  ASSERT_NO_FATAL_FAILURE(plan_and_check(lens, 64, 132));
  const auto buf = plan(lens, 64, 132);
  const auto v = view_plan(buf.data(), 132);
  EXPECT_EQ(v.hdr->active_parts, 128);
  for (int r = 0; r < 128; ++r) EXPECT_EQ(v.reqs[r].num_segs, 1) << "request " << r << " split";
  // Far from the share (one request of 512 blocks over 132 parts) it still splits evenly.
  const std::vector<int32_t> one{32768};
  const auto buf1 = plan(one, 512, 132);
  EXPECT_EQ(view_plan(buf1.data(), 132).reqs[0].num_segs, 128);
}

TEST(SplitPlan, LengthAtTheTableCapIsValid) {
  const std::vector<int32_t> lens{192, 191, 0, 129};
  for (int P : {1, 3, 132}) ASSERT_NO_FATAL_FAILURE(plan_and_check(lens, 3, P));
}

TEST(SplitPlan, NegativeLengthRecorded) {
  const std::vector<int32_t> lens{10, -1, 20, -7};
  for (int P : {1, 8}) {
    const auto buf = plan(lens, 2, P);
    ASSERT_NO_FATAL_FAILURE(check_error_plan(lens, P, buf.data(), openmla::kPlanNegativeLength, 1));
  }
  const std::vector<int32_t> minval{0, INT32_MIN};
  const auto buf = plan(minval, 2, 4);
  ASSERT_NO_FATAL_FAILURE(check_error_plan(minval, 4, buf.data(), openmla::kPlanNegativeLength, 1));
}

TEST(SplitPlan, LengthBeyondTableRecorded) {
  const std::vector<int32_t> lens{64, 129, 5};  // 2 blocks per row: cap 128
  for (int P : {1, 8}) {
    const auto buf = plan(lens, 2, P);
    ASSERT_NO_FATAL_FAILURE(
        check_error_plan(lens, P, buf.data(), openmla::kPlanLengthBeyondTable, 1));
  }
  // The first bad request wins, whichever kind it is.
  const std::vector<int32_t> both{0, 200, -3};
  auto buf = plan(both, 2, 4);
  ASSERT_NO_FATAL_FAILURE(check_error_plan(both, 4, buf.data(), openmla::kPlanLengthBeyondTable, 1));
  const std::vector<int32_t> both2{0, -3, 200};
  buf = plan(both2, 2, 4);
  ASSERT_NO_FATAL_FAILURE(check_error_plan(both2, 4, buf.data(), openmla::kPlanNegativeLength, 1));
}

TEST(SplitPlan, HugeLengthRecorded) {
  const std::vector<int32_t> lens{100, INT32_MAX};
  const auto buf = plan(lens, 4, 3);
  ASSERT_NO_FATAL_FAILURE(check_error_plan(lens, 3, buf.data(), openmla::kPlanLengthBeyondTable, 1));
  // A table so wide that 64 * max_blocks_per_seq overflows int32: the cap
  // check must not wrap.
  const std::vector<int32_t> ok{INT32_MAX - 63};
  const int mb = 1 << 25;  // 64 * mb == 2^31
  const auto buf2 = plan(ok, mb, 2);
  const auto v = view_plan(buf2.data(), 2);
  EXPECT_EQ(v.hdr->error_code, openmla::kPlanOk);
  EXPECT_EQ(v.hdr->total_blocks, 33554431);  // ceil((2^31 - 64) / 64)
}

// ----------------------------------------------------- workspace layout -----

struct Shape {
  int batch, s_q, h_q, h_kv, num_sms;
};

TEST(WorkspaceLayout, PartsFillTheMachine) {
  for (int num_sms : {1, 8, 78, 114, 132})
    for (int s_q : {1, 2, 4, 16})
      for (int h_q : {1, 3, 16, 64, 128})
        for (int h_kv : {1, 2, 3, 8}) {
          if (h_q % h_kv) continue;
          const int parts = openmla::num_plan_parts(num_sms, s_q, h_q, h_kv);
          const int rows = s_q * (h_q / h_kv);
          const int ctas_per_part = (rows + 63) / 64 * h_kv;
          SCOPED_TRACE(::testing::Message() << "sms " << num_sms << " s_q " << s_q << " h_q "
                                            << h_q << " h_kv " << h_kv);
          ASSERT_GE(parts, 1);
          if (ctas_per_part <= num_sms) {
            ASSERT_LE(parts * ctas_per_part, num_sms) << "oversubscribed";
            ASSERT_GT((parts + 1) * ctas_per_part, num_sms) << "SMs left idle";
          } else {
            ASSERT_EQ(parts, 1);
          }
        }
}

TEST(WorkspaceLayout, RegionsAlignedAndLargeEnough) {
  for (const Shape& s : {Shape{1, 1, 1, 1, 132}, Shape{128, 1, 128, 1, 132},
                         Shape{128, 2, 16, 1, 132}, Shape{7, 4, 9, 3, 78},
                         Shape{300, 16, 128, 8, 1}, Shape{1, 1, 16, 1, 1}}) {
    SCOPED_TRACE(::testing::Message() << "b " << s.batch << " s_q " << s.s_q << " h_q " << s.h_q
                                      << " h_kv " << s.h_kv << " sms " << s.num_sms);
    const auto w = openmla::workspace_layout(s.batch, s.s_q, s.h_q, s.h_kv, s.num_sms);
    EXPECT_EQ(w.num_parts, openmla::num_plan_parts(s.num_sms, s.s_q, s.h_q, s.h_kv));
    EXPECT_GE(w.max_segments, s.batch + w.num_parts - 1);
    EXPECT_EQ(w.part_offset, sizeof(openmla::PlanHeader));
    EXPECT_EQ(w.request_offset, w.part_offset + sizeof(openmla::PartMeta) * w.num_parts);
    EXPECT_GE(w.plan_bytes, plan_extent(s.batch, w.num_parts));
    // One int32 merge counter per (request, tile) after the request table.
    const size_t tiles = (size_t)openmla::num_row_tiles(s.s_q, s.h_q, s.h_kv) * s.h_kv;
    EXPECT_EQ(w.combine_offset, (w.request_offset + sizeof(openmla::RequestMeta) * s.batch + 15) / 16 * 16);
    EXPECT_EQ(w.counter_offset, w.combine_offset + sizeof(openmla::CombineEntry) * s.batch);
    EXPECT_EQ(w.counter_offset % 4, 0u);
    EXPECT_GE(w.plan_bytes, w.counter_offset + 4 * tiles * s.batch);
    EXPECT_EQ(w.plan_bytes, openmla::plan_region_bytes(s.batch, w.num_parts, s.s_q, s.h_q, s.h_kv));
    // Tail stealing: a word and a flag per (part, tile) after the counters,
    // one stolen range's segment slot a part, statistics at the very end.
    EXPECT_EQ(w.steal_offset, w.counter_offset + 4 * tiles * s.batch);
    EXPECT_GE(w.plan_bytes, w.steal_offset + 8 * tiles * w.num_parts);
    EXPECT_GE(w.max_segments, s.batch + 2 * w.num_parts);
    EXPECT_GE(w.stats_offset, w.lse_accum_offset + (size_t)w.max_segments * s.s_q * s.h_q * 4);
    EXPECT_EQ(w.total_bytes, w.stats_offset + 256);
    for (size_t off : {w.plan_bytes, w.o_accum_offset, w.lse_accum_offset, w.stats_offset, w.total_bytes})
      EXPECT_EQ(off % 256, 0u) << off;
    const size_t rows = (size_t)s.s_q * s.h_q;
    EXPECT_GE(w.o_accum_offset, w.plan_bytes);
    EXPECT_GE(w.lse_accum_offset - w.o_accum_offset, (size_t)w.max_segments * rows * 512 * 4);
    EXPECT_GE(w.total_bytes - w.lse_accum_offset, (size_t)w.max_segments * rows * 4);
  }
}

// The plan built with the layout's part count never needs more segments than
// the layout reserves, on random batches.
TEST(WorkspaceLayout, SegmentsFitTheAccumulators) {
  std::mt19937 rng(99);
  for (const Shape& s0 : {Shape{0, 1, 16, 1, 132}, Shape{0, 2, 128, 1, 132},
                          Shape{0, 4, 9, 3, 78}, Shape{0, 1, 64, 8, 132}, Shape{0, 1, 1, 1, 1}}) {
    for (int it = 0; it < 30; ++it) {
      Shape s = s0;
      s.batch = 1 + (int)(rng() % 200);
      const int mb = 1 + (int)(rng() % 40);
      const auto lens = random_lens(rng, s.batch, mb, it % 5);
      const auto w = openmla::workspace_layout(s.batch, s.s_q, s.h_q, s.h_kv, s.num_sms);
      SCOPED_TRACE(::testing::Message() << "b " << s.batch << " h_q " << s.h_q << " parts "
                                        << w.num_parts);
      ASSERT_NO_FATAL_FAILURE(plan_and_check(lens, mb, w.num_parts));
      const auto buf = plan(lens, mb, w.num_parts);
      ASSERT_LE(view_plan(buf.data(), w.num_parts).hdr->total_segments, w.max_segments);
    }
  }
}

}  // namespace
