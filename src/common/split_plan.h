// The split-KV schedule: shared by the host planner (tests, host lengths) and
// the device planner (one thread of the plan kernel), so both compute the
// exact same bytes.
//
// Work is counted in 64-token cache blocks. T blocks over at most
// A = min(P, ceil(T / min_blocks_per_part)) parts (at least 1), in global
// block order. Each part costs 8 a block plus c8 a segment (c8: eighths of a
// block, segment_cost8_for: a segment's Q load, epilogue and odd pair are
// time the blocks do not count) and takes whole requests while they fit its
// target cost (the total over A), then cuts; a boundary falling within
// kSplitSlackBlocks (and C / 8, C = ceil(T / A)) of a request's end moves to
// that end, since splitting a request costs a partial written and merged.
// With c8 = 0 that is C blocks a part. The parts that got work come first
// (hdr->active_parts of them); the rest are empty. A part's range crosses
// request boundaries; each (part, request) piece is a "segment". A request covered by one segment is
// written straight to `out`; one covered by several leaves partial results
// (normalised O and its LSE) in the workspace for the combine kernel.
#ifndef OPENMLA_COMMON_SPLIT_PLAN_H_
#define OPENMLA_COMMON_SPLIT_PLAN_H_

#include <stddef.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define OPENMLA_HD __host__ __device__
#else
#define OPENMLA_HD
#endif

namespace openmla {

constexpr int kPageBlock = 64;
constexpr int kHeadDimQK = 576;
constexpr int kHeadDimV = 512;
constexpr int kRowsPerTile = 64;  // query rows (s_q x heads of one kv head) per CTA
// A part costs a Q load and, when it splits a request, a 64x512 fp32 partial
// written and read back; below this many blocks a split costs more than it
// saves, so small batches use fewer parts.
#ifndef OPENMLA_MIN_BLOCKS_PER_PART
#define OPENMLA_MIN_BLOCKS_PER_PART 2  // -D for tuning runs only
#endif
#ifndef OPENMLA_MIN_BLOCKS_PER_PART_ONE_TILE
#define OPENMLA_MIN_BLOCKS_PER_PART_ONE_TILE 1
#endif
constexpr int kMinBlocksPerPart = OPENMLA_MIN_BLOCKS_PER_PART;
// A part may run this many blocks over its share to avoid splitting a
// request: b128 s_k 4096 over 132 parts then runs one request a part.
#ifndef OPENMLA_SPLIT_SLACK_BLOCKS
#define OPENMLA_SPLIT_SLACK_BLOCKS 4  // -D for tuning runs only
#endif
constexpr int kSplitSlackBlocks = OPENMLA_SPLIT_SLACK_BLOCKS;

// Error codes recorded by the planner (PlanHeader::error_code).
constexpr int kPlanOk = 0;
constexpr int kPlanNegativeLength = 1;
constexpr int kPlanLengthBeyondTable = 2;

struct PlanHeader {
  int32_t error_code;
  int32_t error_request;
  int32_t error_value;
  int32_t num_parts;
  int32_t total_segments;
  int32_t batch;
  int32_t total_blocks;
  int32_t active_parts;  // parts given work; the rest are empty
  int32_t min_blocks_per_part;
  // The shapes planned for (set by the API), checked by the kernels: the
  // schedule depends on s_q and h_q only through s_q * h_q / h_kv.
  int32_t rows_per_kv_head, h_kv;
  int32_t num_combine;  // entries of the combine list
  int32_t segment_cost8;  // what the balance charged a segment, in eighths of a block
  int32_t pad[3];
};
static_assert(sizeof(PlanHeader) == 64, "PlanHeader is 64 bytes");

struct PartMeta {
  int32_t r_begin;    // first request (-1: empty part)
  int32_t blk_begin;  // first block within r_begin
  int32_t r_end;      // last request (inclusive)
  int32_t blk_end;    // one past the last block within r_end
  int32_t seg_begin;  // global index of this part's first segment
  int32_t num_segs;
  int32_t num_blocks;
  int32_t pad;
};
static_assert(sizeof(PartMeta) == 32, "PartMeta is 32 bytes");

struct RequestMeta {
  int32_t seg_begin;  // first segment of the request (segments are contiguous)
  int32_t num_segs;   // 0: no cached token; 1: written directly
};

// The requests the combine kernel writes (num_segs != 1), in order, so that
// it launches CTAs for them only and reads everything it needs from one
// entry (b128: 57 split requests of 128).
struct CombineEntry {
  int32_t r, seg_begin, num_segs, pad;
};
static_assert(sizeof(CombineEntry) == 16, "CombineEntry is 16 bytes");

OPENMLA_HD inline size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

OPENMLA_HD inline int num_row_tiles(int s_q, int h_q, int h_kv) {
  int rows = s_q * (h_q / h_kv);
  return (rows + kRowsPerTile - 1) / kRowsPerTile;
}

OPENMLA_HD inline int num_plan_parts(int num_sms, int s_q, int h_q, int h_kv) {
  int per_part = num_row_tiles(s_q, h_q, h_kv) * h_kv;
  int p = num_sms / per_part;
  return p < 1 ? 1 : p;
}

// Workspace layout: [plan | o_accum f32 | lse_accum f32], 256-byte aligned;
// o_accum holds [max_segments][h_kv * row tiles][64 x 512], lse_accum
// [max_segments][s_q * h_q]. The plan region is [header | parts | requests |
// combine list (16-byte aligned, batch entries) | merge counters | steal
// state]: one int32 counter per (request, tile), then per (part, tile) a
// steal word and a "stolen range stored" flag; all zero whenever no decode
// runs (the planners write zeros; a decode returns what it changed to zero).
// Segments [batch + num_parts, max_segments) hold the stolen ranges'
// partials, one slot a part (kernels/sm90/dense_decode/steal.cuh). The last
// 256 bytes are statistics the decode only increments (int32 steals, protocol
// faults) and the library never reads: tests zero and read them. Trace
// builds count decode launches in word kStatsTraceLaunchWord.
constexpr int kStatsTraceLaunchWord = 63;
struct WorkspaceLayout {
  size_t part_offset, request_offset, combine_offset, counter_offset, steal_offset, plan_bytes;
  size_t o_accum_offset, lse_accum_offset, stats_offset, total_bytes;
  int num_parts, max_segments;
};

OPENMLA_HD inline size_t plan_combine_offset(int batch, int num_parts) {
  return align_up(sizeof(PlanHeader) + sizeof(PartMeta) * (size_t)num_parts + sizeof(RequestMeta) * (size_t)batch,
                  16);
}

OPENMLA_HD inline size_t plan_counter_offset(int batch, int num_parts) {
  return plan_combine_offset(batch, num_parts) + sizeof(CombineEntry) * (size_t)batch;
}

OPENMLA_HD inline size_t plan_steal_offset(int batch, int num_parts, int s_q, int h_q, int h_kv) {
  const size_t tiles = (size_t)num_row_tiles(s_q, h_q, h_kv) * h_kv;
  return plan_counter_offset(batch, num_parts) + 4 * tiles * (size_t)batch;
}

OPENMLA_HD inline size_t plan_region_bytes(int batch, int num_parts, int s_q, int h_q, int h_kv) {
  const size_t tiles = (size_t)num_row_tiles(s_q, h_q, h_kv) * h_kv;
  return align_up(plan_steal_offset(batch, num_parts, s_q, h_q, h_kv) + 8 * tiles * (size_t)num_parts, 256);
}

// Fewest blocks worth a part of their own: with one row tile per kv head a
// split costs little (a 16- or 64-row partial), so one block already pays;
// taller shapes write and merge more partial rows per split and take
// kMinBlocksPerPart. Measured on an H200 (bench/NOTES.md): b8 s_k1024 h16
// 12.7 us with 1, 15.9-16.0 with 2; b1 s_k4096 h128 17.5-17.6 us with 4,
// 15.2 with 2, 16.6-16.8 with 1 (with Q by TMA and the list combine; an
// earlier kernel measured 2 and 4 within noise).
OPENMLA_HD inline int min_blocks_per_part_for(int s_q, int h_q, int h_kv) {
  return num_row_tiles(s_q, h_q, h_kv) == 1 ? OPENMLA_MIN_BLOCKS_PER_PART_ONE_TILE : kMinBlocksPerPart;
}

// What the balance charges a segment, in eighths of a block (0: blocks
// only, the share C). Measured on an H200 (bench/NOTES.md, 2026-12-03,
// eighth session), three calls: with two row tiles or more a kv head
// (compute-bound: the tensor pipe idles through a segment's epilogue and its
// odd pair) 2-3 blocks gave b128 h128 s_k4096 -2 to -3%, the other h128
// cases noise to -1%; with one tile (memory-bound: the copies run on under
// the epilogue) nothing was clearly faster (h16 +0.8% at 1/8, h64 -1% at
// half a block, +1% at a block), so those keep the share.
// OPENMLA_PLAN_SEGMENT_COST overrides it for tuning runs (the host API
// reads it).
OPENMLA_HD inline int segment_cost8_for(int s_q, int h_q, int h_kv) {
  return num_row_tiles(s_q, h_q, h_kv) >= 2 ? 24 : 0;
}

OPENMLA_HD inline WorkspaceLayout workspace_layout(int batch, int s_q, int h_q, int h_kv,
                                                   int num_sms) {
  WorkspaceLayout w;
  w.num_parts = num_plan_parts(num_sms, s_q, h_q, h_kv);
  // pieces <= nonempty requests + parts - 1, then one stolen range a part
  w.max_segments = batch + 2 * w.num_parts;
  w.part_offset = sizeof(PlanHeader);
  w.request_offset = w.part_offset + sizeof(PartMeta) * (size_t)w.num_parts;
  w.combine_offset = plan_combine_offset(batch, w.num_parts);
  w.counter_offset = plan_counter_offset(batch, w.num_parts);
  w.steal_offset = plan_steal_offset(batch, w.num_parts, s_q, h_q, h_kv);
  w.plan_bytes = plan_region_bytes(batch, w.num_parts, s_q, h_q, h_kv);
  size_t rows = (size_t)s_q * h_q;
  // Partials are stored per 64-row tile (src/kernels/common/partials.cuh).
  size_t tile_rows = (size_t)num_row_tiles(s_q, h_q, h_kv) * h_kv * kRowsPerTile;
  w.o_accum_offset = w.plan_bytes;
  w.lse_accum_offset =
      w.o_accum_offset + align_up((size_t)w.max_segments * tile_rows * kHeadDimV * 4, 256);
  w.stats_offset = w.lse_accum_offset + align_up((size_t)w.max_segments * rows * 4, 256);
  w.total_bytes = w.stats_offset + 256;
  return w;
}

OPENMLA_HD inline int blocks_of(int32_t seqlen) {
  return seqlen <= 0 ? 0 : (int)(((int64_t)seqlen + kPageBlock - 1) / kPageBlock);
}

// Fills the plan (header, parts, requests, combine list) at `plan`. Serial on purpose: it is
// O(batch + parts) and runs once per decoding step.
OPENMLA_HD inline void compute_split_plan(const int32_t* seqlens, int batch,
                                          int max_blocks_per_seq, int num_parts,
                                          void* plan,
                                          int min_blocks_per_part = kMinBlocksPerPart,
                                          int segment_cost8 = 0) {
  PlanHeader* hdr = reinterpret_cast<PlanHeader*>(plan);
  PartMeta* parts = reinterpret_cast<PartMeta*>(reinterpret_cast<char*>(plan) + sizeof(PlanHeader));
  RequestMeta* reqs = reinterpret_cast<RequestMeta*>(parts + num_parts);

  hdr->error_code = kPlanOk;
  hdr->error_request = -1;
  hdr->error_value = 0;
  hdr->num_parts = num_parts;
  hdr->batch = batch;
  hdr->rows_per_kv_head = hdr->h_kv = 0;
  hdr->num_combine = 0;
  for (int i = 0; i < 3; ++i) hdr->pad[i] = 0;
  if (min_blocks_per_part < 1) min_blocks_per_part = 1;
  hdr->min_blocks_per_part = min_blocks_per_part;

  int64_t total = 0;
  for (int r = 0; r < batch; ++r) {
    int32_t len = seqlens[r];
    if (hdr->error_code == kPlanOk && (len < 0 || (int64_t)len > (int64_t)max_blocks_per_seq * kPageBlock)) {
      hdr->error_code = len < 0 ? kPlanNegativeLength : kPlanLengthBeyondTable;
      hdr->error_request = r;
      hdr->error_value = len;
    }
    reqs[r].seg_begin = 0;
    reqs[r].num_segs = 0;
    total += blocks_of(len);
  }
  if (hdr->error_code != kPlanOk) total = 0;  // schedule nothing; decode reports NaN
  hdr->total_blocks = (int32_t)total;
  int64_t active = (total + min_blocks_per_part - 1) / min_blocks_per_part;
  if (active > num_parts) active = num_parts;
  if (active < 1) active = 1;

  int seg = 0;
  int nonempty = 0;
  for (int q = 0; q < batch; ++q) nonempty += blocks_of(seqlens[q]) > 0;
  int r = 0;
  int64_t start_r = 0;  // global index of request r's first block
  int ne_before = 0;    // nonempty requests before r
  int64_t g0 = 0;       // first global block of part p
  int used = 0;
  const int64_t share = (total + active - 1) / active;
  const int64_t slack = share / 8 < kSplitSlackBlocks ? share / 8 : kSplitSlackBlocks;
  if (segment_cost8 < 0) segment_cost8 = 0;
  hdr->segment_cost8 = segment_cost8;
  const int64_t c8 = segment_cost8;
  // Costs in eighths of a block: 8 a block, c8 a segment. The target of
  // every part: the total cost over the active parts, counting the most
  // segments the cuts can make (one a nonempty request, one a cut).
  const int64_t fixed_target = (8 * total + c8 * (nonempty + active - 1) + active - 1) / active;
  for (int p = 0; p < num_parts; ++p) {
    PartMeta& pm = parts[p];
    int64_t g1 = g0;
    if (g0 < total) {
      while (start_r + blocks_of(seqlens[r]) <= g0) {
        ne_before += blocks_of(seqlens[r]) > 0;
        start_r += blocks_of(seqlens[r]);
        ++r;
      }
      const int64_t left = active - p;  // parts left, this one included
      if (left <= 1) {
        g1 = total;
      } else {
        // Whole pieces while they fit the target, then the cut; a cut within
        // `slack` blocks of a request's end moves to that end and, with a
        // segment cost, one that would start a request with `slack` blocks
        // or fewer moves back to its start. Parts that came in under their
        // target raise the later ones' (never below the fixed one), and the
        // move back is skipped where it would raise them past the slack, so
        // shortfalls do not pile up on the last part; with c8 = 0 every
        // part but the last takes at least the share C = ceil(T / A).
        const int64_t rest = 8 * (total - g0) + c8 * ((nonempty - ne_before) + left - 1);
        const int64_t adaptive = (rest + left - 1) / left;
        const int64_t target = adaptive > fixed_target ? adaptive : fixed_target;
        int rq = r;
        int64_t sq = start_r, g = g0, cost = 0;
        int ne_taken = 0;  // nonempty requests this part took whole
        for (;;) {
          const int64_t end = sq + blocks_of(seqlens[rq]);
          if (end <= g) {  // an empty request
            sq = end;
            ++rq;
            continue;
          }
          const int64_t piece = end - g;
          if (cost + c8 + 8 * piece <= target) {
            cost += c8 + 8 * piece;
            g = end;
            ++ne_taken;
            if (g >= total) break;
            sq = end;
            ++rq;
            continue;
          }
          const int64_t room = target - cost - c8;
          // Blocks for the room left: rounded up by blocks alone (the share
          // C), to the nearest with a segment cost, whose target is rarely a
          // whole number of blocks (rounded up, parts of about one block
          // would each take two).
          int64_t k = room > 0 ? (room + (c8 == 0 ? 7 : 3)) / 8 : 0;
          if (g == g0 && k < 1) k = 1;
          // The sliver rule, unless what it leaves would lift the later
          // parts' target past this one's by more than the slack (the
          // shortfalls would pile up on the last part).
          if (c8 > 0 && g > g0 && k <= slack) {
            const int64_t after = 8 * (total - g) + c8 * ((nonempty - ne_before - ne_taken) + left - 2);
            if ((after + left - 2) / (left - 1) <= target + 8 * slack) k = 0;
          }
          if (k > 0 && piece - k <= slack) k = piece;
          g += k;
          break;
        }
        g1 = g;
      }
    }
    pm.pad = 0;
    pm.seg_begin = seg;
    pm.num_blocks = (int32_t)(g1 - g0);
    if (g0 == g1) {
      pm.r_begin = -1; pm.blk_begin = 0; pm.r_end = -1; pm.blk_end = 0; pm.num_segs = 0;
      continue;
    }
    ++used;
    pm.r_begin = r;
    pm.blk_begin = (int32_t)(g0 - start_r);
    int rr = r;
    int64_t s = start_r;
    for (;;) {
      int nb = blocks_of(seqlens[rr]);
      if (nb > 0) {
        if (reqs[rr].num_segs == 0) reqs[rr].seg_begin = seg;
        reqs[rr].num_segs += 1;
        ++seg;
      }
      if (s + nb >= g1) break;
      s += nb;
      ++rr;
    }
    pm.r_end = rr;
    pm.blk_end = (int32_t)(g1 - s);
    pm.num_segs = seg - pm.seg_begin;
    g0 = g1;
  }
  hdr->active_parts = used > 0 ? used : 1;
  hdr->total_segments = seg;

  char* req_end = reinterpret_cast<char*>(reqs + batch);
  CombineEntry* list =
      reinterpret_cast<CombineEntry*>(reinterpret_cast<char*>(plan) + plan_combine_offset(batch, num_parts));
  for (char* b = req_end; b < reinterpret_cast<char*>(list); ++b) *b = 0;  // alignment padding
  int n = 0;
  for (int q = 0; q < batch; ++q)
    if (reqs[q].num_segs != 1) list[n++] = CombineEntry{q, reqs[q].seg_begin, reqs[q].num_segs, 0};
  hdr->num_combine = n;
  for (int i = n; i < batch; ++i) list[i] = CombineEntry{0, 0, 0, 0};
}

// Records the shapes a plan was made for; the kernels refuse (NaN output,
// never an out-of-range read) a plan made for other shapes.
OPENMLA_HD inline void stamp_plan_shape(void* plan, int s_q, int h_q, int h_kv) {
  PlanHeader* hdr = reinterpret_cast<PlanHeader*>(plan);
  hdr->rows_per_kv_head = s_q * (h_q / h_kv);
  hdr->h_kv = h_kv;
}

OPENMLA_HD inline bool plan_matches(const PlanHeader* hdr, int batch, int s_q, int h_q, int h_kv,
                                    int num_parts) {
  return hdr->batch == batch && hdr->rows_per_kv_head == s_q * (h_q / h_kv) &&
         hdr->h_kv == h_kv && hdr->num_parts == num_parts;
}

}  // namespace openmla

#endif  // OPENMLA_COMMON_SPLIT_PLAN_H_
