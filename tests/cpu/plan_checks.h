// Invariants of a split-KV plan (src/common/split_plan.h), shared by the
// planner tests (compute_split_plan directly) and the host-plan API tests
// (openmla_plan_host). Recomputes everything from the lengths alone.
#ifndef OPENMLA_TESTS_CPU_PLAN_CHECKS_H_
#define OPENMLA_TESTS_CPU_PLAN_CHECKS_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <vector>

#include "common/split_plan.h"

namespace openmla_test {

inline int ref_blocks(int64_t len) { return len <= 0 ? 0 : (int)((len + 63) / 64); }

struct PlanView {
  const openmla::PlanHeader* hdr;
  const openmla::PartMeta* parts;
  const openmla::RequestMeta* reqs;
  const openmla::CombineEntry* combine;  // [batch]
};

inline PlanView view_plan(const void* plan, int num_parts) {
  PlanView v;
  v.hdr = reinterpret_cast<const openmla::PlanHeader*>(plan);
  v.parts = reinterpret_cast<const openmla::PartMeta*>(reinterpret_cast<const char*>(plan) +
                                                      sizeof(openmla::PlanHeader));
  v.reqs = reinterpret_cast<const openmla::RequestMeta*>(v.parts + num_parts);
  v.combine = reinterpret_cast<const openmla::CombineEntry*>(
      reinterpret_cast<const char*>(plan) + openmla::plan_combine_offset(v.hdr->batch, num_parts));
  return v;
}

// Bytes compute_split_plan writes: header, parts, requests, combine list.
inline size_t plan_extent(int batch, int num_parts) { return openmla::plan_counter_offset(batch, num_parts); }

// The combine list: every request with num_segs != 1, in order, copied from
// its RequestMeta; the entries after them zero.
inline void check_combine_list(int batch, const PlanView& v) {
  int n = 0;
  for (int r = 0; r < batch; ++r) {
    if (v.reqs[r].num_segs == 1) continue;
    ASSERT_LT(n, v.hdr->num_combine) << "request " << r << " missing from the combine list";
    const openmla::CombineEntry& e = v.combine[n++];
    ASSERT_EQ(e.r, r);
    ASSERT_EQ(e.seg_begin, v.reqs[r].seg_begin);
    ASSERT_EQ(e.num_segs, v.reqs[r].num_segs);
    ASSERT_EQ(e.pad, 0);
  }
  ASSERT_EQ(v.hdr->num_combine, n);
  for (int i = n; i < batch; ++i)
    ASSERT_TRUE(v.combine[i].r == 0 && v.combine[i].seg_begin == 0 && v.combine[i].num_segs == 0 &&
                v.combine[i].pad == 0)
        << "combine entry " << i << " past the list is not zero";
}

// Checks a successful plan. Uses ASSERT internally: call through
// ASSERT_NO_FATAL_FAILURE.
inline void check_valid_plan(const std::vector<int32_t>& lens, int num_parts, const void* plan) {
  const int batch = (int)lens.size();
  const PlanView v = view_plan(plan, num_parts);
  ASSERT_EQ(v.hdr->error_code, openmla::kPlanOk);
  ASSERT_EQ(v.hdr->error_request, -1);
  ASSERT_EQ(v.hdr->num_parts, num_parts);
  ASSERT_EQ(v.hdr->batch, batch);

  std::vector<int> nb(batch);
  std::vector<int64_t> start(batch + 1, 0);  // global index of each request's first block
  for (int r = 0; r < batch; ++r) {
    nb[r] = ref_blocks(lens[r]);
    start[r + 1] = start[r] + nb[r];
  }
  const int64_t total = start[batch];
  ASSERT_EQ(v.hdr->total_blocks, total);
  int nonempty = 0;
  for (int r = 0; r < batch; ++r) nonempty += nb[r] > 0;
  const int64_t c8 = v.hdr->segment_cost8;  // what the balance charged a segment
  ASSERT_GE(c8, 0);

  std::vector<std::vector<int>> cover(batch);  // cover[r][blk] = times covered
  for (int r = 0; r < batch; ++r) cover[r].assign(nb[r], 0);
  std::vector<std::vector<int>> segs_of_req(batch);  // segment ids per request
  std::vector<std::set<int>> parts_of_req(batch);
  int expect_seg = 0;
  int64_t next_g0 = 0;

  for (int p = 0; p < num_parts; ++p) {
    SCOPED_TRACE(::testing::Message() << "part " << p << " of " << num_parts);
    const openmla::PartMeta& pm = v.parts[p];
    ASSERT_EQ(pm.seg_begin, expect_seg) << "segments not numbered contiguously across parts";
    // The documented split: at most A = min(P, max(1, ceil(T / min part)))
    // parts get work, the first active_parts of them, in global block order,
    // each C = ceil(T / A) blocks plus at most the slack (the last: the rest).
    const int64_t min_part = v.hdr->min_blocks_per_part;
    ASSERT_GE(min_part, 1);
    const int64_t max_active = std::max<int64_t>(
        1, std::min<int64_t>(num_parts, (total + min_part - 1) / min_part));
    const int64_t active = v.hdr->active_parts;
    ASSERT_GE(active, 1);
    ASSERT_LE(active, max_active);
    const int64_t g0 = next_g0;
    const int64_t g1 = g0 + pm.num_blocks;
    const int64_t share = (total + max_active - 1) / max_active;
    if (p >= active) {
      ASSERT_EQ(pm.num_blocks, 0) << "part beyond the active ones has work";
    }
    if (p < active && total > 0) {
      ASSERT_GT(pm.num_blocks, 0) << "an active part without work";
      if (c8 == 0) {
        ASSERT_LE(pm.num_blocks, share + openmla::kSplitSlackBlocks) << "part over its share";
        if (p + 1 < active) {
          ASSERT_GE(pm.num_blocks, share) << "part under its share";
        }
      } else if (p + 1 < max_active) {
        // Its cost (8 a block, c8 a segment) against its target: the fixed
        // one, or what is left over the parts left where that is more.
        int ne_rem = 0, segs = 0;
        for (int r = 0; r < batch; ++r) {
          if (nb[r] == 0) continue;
          if (start[r + 1] > g0) ++ne_rem;
          if (start[r + 1] > g0 && start[r] < g1) ++segs;
        }
        const int64_t left = max_active - p;
        const int64_t fixed = (8 * total + c8 * (nonempty + max_active - 1) + max_active - 1) / max_active;
        const int64_t rest = 8 * (total - g0) + c8 * (ne_rem + left - 1);
        const int64_t target = std::max(fixed, (rest + left - 1) / left);
        const int64_t cost = 8 * pm.num_blocks + c8 * segs;
        const int64_t slack = std::min<int64_t>(share / 8, openmla::kSplitSlackBlocks);
        ASSERT_LE(cost, std::max(target + 4, c8 + 8) + 8 * slack) << "part over its target " << target;
        if (g1 < total) {
          ASSERT_GE(cost, target - c8 - 8 * slack - 4) << "part under its target " << target;
        }
      }
    }
    next_g0 = g1;
    int covered = 0;
    if (pm.r_begin < 0) {
      ASSERT_EQ(pm.num_segs, 0);
      ASSERT_EQ(pm.num_blocks, 0);
    } else {
      ASSERT_LT(pm.r_begin, batch);
      ASSERT_LE(pm.r_begin, pm.r_end);
      ASSERT_LT(pm.r_end, batch);
      ASSERT_GT(nb[pm.r_begin], 0) << "part starts in an empty request";
      ASSERT_GT(nb[pm.r_end], 0) << "part ends in an empty request";
      ASSERT_GE(pm.blk_begin, 0);
      ASSERT_LT(pm.blk_begin, nb[pm.r_begin]);
      ASSERT_GT(pm.blk_end, 0);
      ASSERT_LE(pm.blk_end, nb[pm.r_end]);
      ASSERT_EQ(start[pm.r_begin] + pm.blk_begin, g0);
      ASSERT_EQ(start[pm.r_end] + pm.blk_end, g1);
      int seg = pm.seg_begin;
      for (int r = pm.r_begin; r <= pm.r_end; ++r) {
        const int b0 = r == pm.r_begin ? pm.blk_begin : 0;
        const int b1 = r == pm.r_end ? pm.blk_end : nb[r];
        if (nb[r] == 0) continue;  // empty requests inside a part: no segment
        ASSERT_LT(b0, b1) << "empty segment for request " << r;
        for (int b = b0; b < b1; ++b) ++cover[r][b];
        covered += b1 - b0;
        segs_of_req[r].push_back(seg++);
        parts_of_req[r].insert(p);
      }
      ASSERT_EQ(pm.num_segs, seg - pm.seg_begin) << "num_segs != nonempty requests in the part";
    }
    ASSERT_EQ(covered, pm.num_blocks) << "num_blocks != blocks actually covered";
    // Every part but the last (which takes the rest) holds at least the
    // share, which is at least the minimum part size when there is enough work.
    if (c8 == 0 && p + 1 < active && total >= max_active * min_part) {
      ASSERT_GE(covered, min_part) << "part smaller than the minimum";
    }
    expect_seg += pm.num_segs;
  }
  ASSERT_EQ(v.hdr->total_segments, expect_seg);
  ASSERT_EQ(next_g0, total) << "parts do not cover every block";

  for (int r = 0; r < batch; ++r) {
    SCOPED_TRACE(::testing::Message() << "request " << r << " len " << lens[r]);
    for (int b = 0; b < nb[r]; ++b) ASSERT_EQ(cover[r][b], 1) << "block " << b << " covered wrongly";
    const openmla::RequestMeta& rm = v.reqs[r];
    ASSERT_EQ(rm.num_segs, (int)parts_of_req[r].size()) << "num_segs != parts touching the request";
    ASSERT_EQ(rm.num_segs, (int)segs_of_req[r].size());
    if (nb[r] == 0) {
      ASSERT_EQ(rm.num_segs, 0);
      continue;
    }
    ASSERT_GE(rm.num_segs, 1);
    for (int k = 0; k < rm.num_segs; ++k)
      ASSERT_EQ(segs_of_req[r][k], rm.seg_begin + k) << "request segments not contiguous";
  }
  ASSERT_NO_FATAL_FAILURE(check_combine_list(batch, v));
}

// A plan that recorded a bad length: nothing scheduled.
inline void check_error_plan(const std::vector<int32_t>& lens, int num_parts, const void* plan,
                             int want_code, int want_request) {
  const PlanView v = view_plan(plan, num_parts);
  ASSERT_EQ(v.hdr->error_code, want_code);
  ASSERT_EQ(v.hdr->error_request, want_request);
  ASSERT_EQ(v.hdr->error_value, lens[want_request]);
  ASSERT_EQ(v.hdr->num_parts, num_parts);
  ASSERT_EQ(v.hdr->batch, (int)lens.size());
  ASSERT_EQ(v.hdr->total_blocks, 0);
  ASSERT_EQ(v.hdr->total_segments, 0);
  for (int p = 0; p < num_parts; ++p) {
    ASSERT_EQ(v.parts[p].r_begin, -1);
    ASSERT_EQ(v.parts[p].num_segs, 0);
    ASSERT_EQ(v.parts[p].num_blocks, 0);
  }
  for (size_t r = 0; r < lens.size(); ++r) ASSERT_EQ(v.reqs[r].num_segs, 0);
  ASSERT_NO_FATAL_FAILURE(check_combine_list((int)lens.size(), v));
}

}  // namespace openmla_test

#endif  // OPENMLA_TESTS_CPU_PLAN_CHECKS_H_
