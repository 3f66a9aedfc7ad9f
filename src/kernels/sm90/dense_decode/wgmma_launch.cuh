// Host side of the wgmma kernel: the cache's TMA descriptor and the launch.
#ifndef OPENMLA_KERNELS_SM90_DENSE_DECODE_WGMMA_LAUNCH_CUH_
#define OPENMLA_KERNELS_SM90_DENSE_DECODE_WGMMA_LAUNCH_CUH_

#include <cuda.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <atomic>
#include <type_traits>

#include "kernels/sm90/dense_decode/seesaw_kernel.cuh"
#include "kernels/sm90/dense_decode/wgmma_kernel.cuh"

namespace openmla::kernels::dense_decode_wgmma {

// The driver entry point, looked up once (no libcuda link needed).
inline PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q) !=
            cudaSuccess ||
        q != cudaDriverEntryPointSuccess)
      p = nullptr;
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }();
  return fn;
}

template <typename T>
constexpr CUtensorMapDataType tmap_dtype() {
  return std::is_same<T, __half>::value ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
}

// k_cache [num_blocks, 64, h_kv, 576] as a 4-D tensor (dim, token, head, block),
// boxes of 64 dims x 64 tokens, 128-byte swizzle (what wgmma reads).
template <typename T>
cudaError_t make_cache_tmap(const DenseDecodeParams& p, int64_t num_blocks, CUtensorMap* map) {
  auto fn = encode_fn();
  if (fn == nullptr) return cudaErrorNotSupported;
  const CUtensorMapDataType dt = tmap_dtype<T>();
  cuuint64_t dims[4] = {(cuuint64_t)kHeadDimQK, (cuuint64_t)kPageBlock, (cuuint64_t)p.h_kv,
                        (cuuint64_t)num_blocks};
  cuuint64_t strides[3] = {(cuuint64_t)p.k_stride_token * sizeof(T), (cuuint64_t)p.k_stride_head * sizeof(T),
                           (cuuint64_t)p.k_stride_block * sizeof(T)};
  cuuint32_t box[4] = {64, (cuuint32_t)kTileN, 1, 1};
  cuuint32_t elem_strides[4] = {1, 1, 1, 1};
  CUresult r = fn(map, dt, 4, const_cast<void*>(p.k_cache), dims, strides, box, elem_strides,
                  CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                  CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

// Both TMA kernels: grid (row tiles x kv heads, parts), one CTA per SM.
// The same cache as a 5-D tensor (dim in chunk, token, chunk, head, block):
// one box of `chunks` x 64 x 64 lands as `chunks` consecutive swizzled 8 KB
// chunks, so a group of chunks costs one TMA instruction, not one per chunk.
template <typename T>
cudaError_t make_chunked_cache_tmap(const DenseDecodeParams& p, int64_t num_blocks, int chunks, CUtensorMap* map) {
  auto fn = encode_fn();
  if (fn == nullptr) return cudaErrorNotSupported;
  const CUtensorMapDataType dt = tmap_dtype<T>();
  cuuint64_t dims[5] = {64, (cuuint64_t)kPageBlock, (cuuint64_t)(kHeadDimQK / 64), (cuuint64_t)p.h_kv,
                        (cuuint64_t)num_blocks};
  cuuint64_t strides[4] = {(cuuint64_t)p.k_stride_token * sizeof(T), 64 * sizeof(T),
                           (cuuint64_t)p.k_stride_head * sizeof(T), (cuuint64_t)p.k_stride_block * sizeof(T)};
  cuuint32_t box[5] = {64, (cuuint32_t)kPageBlock, (cuuint32_t)chunks, 1, 1};
  cuuint32_t elem_strides[5] = {1, 1, 1, 1, 1};
  CUresult r = fn(map, dt, 5, const_cast<void*>(p.k_cache), dims, strides, box, elem_strides,
                  CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                  CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

// q [b, s_q, h_q, 576] as a 5-D tensor (dim, head in group, s, kv head, b)
// whose box is one 64-column chunk of a whole row tile: 64 heads of one s, or
// all `group` heads of 64 / group consecutive s (those past s_q read as
// zeros). Only where a row tile is such a box; false: load Q by cp.async.
template <typename T>
bool make_q_tmap(const DenseDecodeParams& p, CUtensorMap* map) {
  const int g = p.group;
  if (g % kTileM != 0 && kTileM % g != 0) return false;
  auto fn = encode_fn();
  if (fn == nullptr) return false;
  const CUtensorMapDataType dt = tmap_dtype<T>();
  cuuint64_t dims[5] = {(cuuint64_t)kHeadDimQK, (cuuint64_t)g, (cuuint64_t)p.s_q, (cuuint64_t)p.h_kv,
                        (cuuint64_t)p.batch};
  cuuint64_t strides[4] = {(cuuint64_t)p.q_stride_h * sizeof(T), (cuuint64_t)p.q_stride_s * sizeof(T),
                           (cuuint64_t)g * p.q_stride_h * sizeof(T), (cuuint64_t)p.q_stride_b * sizeof(T)};
  // A dim of extent 1 is never stepped: any stride the encoder accepts will
  // do (the caller's may be 0).
  for (int i = 0; i < 4; ++i)
    if (dims[i + 1] == 1) strides[i] = i == 0 ? kHeadDimQK * sizeof(T) : strides[i - 1] * dims[i];
  cuuint32_t box[5] = {64, (cuuint32_t)(g < kTileM ? g : kTileM), (cuuint32_t)(g < kTileM ? kTileM / g : 1), 1, 1};
  cuuint32_t elem_strides[5] = {1, 1, 1, 1, 1};
  const CUresult r = fn(map, dt, 5, const_cast<void*>(p.q), dims, strides, box, elem_strides,
                        CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                        CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS;
}

// Whether the seesaw grid can merge in-kernel: every CTA resident at once
// (one CTA an SM) and the request's segments within the merge scratch.
inline bool fused_merge_fits(const DenseDecodeParams& p, dim3 grid) {
  int dev = 0, sms = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return (int64_t)grid.x * grid.y <= sms && p.num_parts <= dense_decode_seesaw::kMaxMergeSegments;
}

// The seesaw grid as clusters of 2 along x (the row tiles of a kv head, or a
// tile's two column halves): the launch configuration for cudaLaunchKernelEx
// and the occupancy query; `pdl`: a programmatic dependent of the kernel
// before it. Not copyable: cfg points at attr.
struct PairedClusterConfig {
  cudaLaunchAttribute attr[2];
  cudaLaunchConfig_t cfg{};
  PairedClusterConfig(dim3 grid, int smem, cudaStream_t stream, bool pdl = false) {
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = 2;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    cfg.gridDim = grid;
    cfg.blockDim = dim3(dense_decode_seesaw::kThreads);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    if (pdl) {
      attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
      attr[1].val.programmaticStreamSerializationAllowed = 1;
      cfg.numAttrs = 2;
    }
  }
  PairedClusterConfig(const PairedClusterConfig&) = delete;
  PairedClusterConfig& operator=(const PairedClusterConfig&) = delete;
};

// The plain seesaw grid's launch configuration with one attribute set
// (cooperative, or programmatic stream serialization), or none where `on` is
// false. Not copyable: cfg points at attr.
struct SeesawLaunchConfig {
  cudaLaunchAttribute attr[1];
  cudaLaunchConfig_t cfg{};
  SeesawLaunchConfig(dim3 grid, int smem, cudaStream_t stream, cudaLaunchAttributeID id, bool on) {
    attr[0].id = id;
    if (id == cudaLaunchAttributeCooperative)
      attr[0].val.cooperative = 1;
    else
      attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.gridDim = grid;
    cfg.blockDim = dim3(dense_decode_seesaw::kThreads);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cfg.attrs = attr;
    cfg.numAttrs = on ? 1 : 0;
  }
  SeesawLaunchConfig(const SeesawLaunchConfig&) = delete;
  SeesawLaunchConfig& operator=(const SeesawLaunchConfig&) = delete;
};

// Whether the seesaw grid can run as clusters of 2 (the row tiles of a kv
// head paired, or a tile's column halves), every cluster that may get work
// (`working_ctas` of them) resident at once: a cluster needs two SMs of one
// GPC, so fewer clusters than SM pairs may fit, and a second wave would cost
// more than multicast saves. Asked once a device (any host thread may launch:
// the answers are atomics, 1 + the count, 0 while not known; a failed query
// is not kept, so the next launch asks again).
constexpr int kMaxCachedDevices = 64;

template <typename T>
bool multicast_fits(const DenseDecodeParams& p, int64_t working_ctas, int smem, bool halves) {
  if (!halves && p.num_row_tiles % 2 != 0) return false;
  static std::atomic<int> known[kMaxCachedDevices];
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  std::atomic<int>* slot = dev >= 0 && dev < kMaxCachedDevices ? &known[dev] : nullptr;
  int max_clusters = slot ? slot->load(std::memory_order_relaxed) - 1 : -1;
  if (max_clusters < 0) {
    const PairedClusterConfig c(dim3(2, 1), smem, nullptr);
    int n = 0;
    if (cudaOccupancyMaxActiveClusters(&n, dense_decode_seesaw::dense_decode_seesaw_kernel<T, true, false>, &c.cfg) !=
        cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    max_clusters = n;
    if (slot) slot->store(n + 1, std::memory_order_relaxed);
  }
  return working_ctas <= 2 * (int64_t)max_clusters;
}

template <typename T>
using SeesawFn = decltype(&dense_decode_seesaw::dense_decode_seesaw_kernel<T, false, false>);
template <typename T>
SeesawFn<T> seesaw_fn(bool multicast, bool halves, bool steal = false) {
  using namespace dense_decode_seesaw;
  if (steal && !multicast && !halves) return dense_decode_seesaw_kernel<T, false, false, false, true>;
  if (multicast) return halves ? dense_decode_seesaw_kernel<T, true, true> : dense_decode_seesaw_kernel<T, true, false>;
  return halves ? dense_decode_seesaw_kernel<T, false, true> : dense_decode_seesaw_kernel<T, false, false>;
}

template <typename T>
cudaError_t launch(DenseDecodeParams& p, int64_t num_blocks, cudaStream_t stream) {
  const bool seesaw = p.variant == kDenseSeesaw;
  if (!seesaw && (p.multicast == 2 || p.split_columns == 2)) return cudaErrorNotSupported;
  if (!seesaw) p.fused_merge = p.pair_merge = p.multicast = p.split_columns = p.steal = 0;
  const int smem = seesaw ? dense_decode_seesaw::kSmemBytes : kSmemBytes;
  const int tiles = p.num_row_tiles * p.h_kv;
  dim3 grid(tiles, p.num_parts);
  // Parts that can get work: the plan fills them in order, each with at least
  // min_blocks of the at most batch x max_blocks_per_seq blocks (split_plan.h).
  const int64_t min_blocks = min_blocks_per_part_for(p.s_q, p.h_q, p.h_kv);
  const int64_t active_max =
      std::max<int64_t>(1, std::min<int64_t>(p.num_parts, ((int64_t)p.batch * p.max_blocks_per_seq + min_blocks - 1) /
                                                               min_blocks));
  const int64_t halves_ctas = 2 * tiles * active_max;  // the CTAs with work under column halves
  cudaError_t err = cudaSuccess;
  if (seesaw)  // the occupancy query's kernel (multicast_fits)
    err = cudaFuncSetAttribute(dense_decode_seesaw::dense_decode_seesaw_kernel<T, true, false>,
                               cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (err != cudaSuccess) return err;
  // Column halves where the working CTAs leave at least half the SMs idle
  // (the second half's CTAs come for free there), a kv head has two row
  // tiles or more (64-row partials to halve) and the halves can share their
  // copies by multicast (the only way they were measured). On an H200, quick
  // bench, 3 rounds (bench/NOTES.md, 2026-12-03): b1 h_q 128 s_k 4096
  // 15.2-15.4 -> 14.8-14.9 us, s_k 2048 14.2-14.3 -> 13.2-13.3; b1 h_q 16
  // (one tile of 16 rows) 11.7-11.8 -> 12.6, hence the row-tile condition.
  bool halves = p.split_columns == 2;
  if (p.split_columns == 1)
    halves = p.num_row_tiles >= 2 && halves_ctas <= p.num_sms && p.multicast &&
             multicast_fits<T>(p, halves_ctas, smem, true);
  if (!halves) p.split_columns = 0;
  if (halves) {
    grid.x = 2 * tiles;
    p.fused_merge = p.pair_merge = 0;  // both merge from a whole tile's registers
  }
  if (seesaw)
    for (int v = 0; v < 3 && err == cudaSuccess; ++v)
      err = cudaFuncSetAttribute(seesaw_fn<T>(v == 1, halves, v == 2), cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  else
    err = cudaFuncSetAttribute(dense_decode_wgmma_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (err != cudaSuccess) return err;
  const int64_t working = halves ? halves_ctas : (int64_t)grid.x * grid.y;
  if (p.multicast && !multicast_fits<T>(p, working, smem, halves)) {
    if (p.multicast == 2) return cudaErrorNotSupported;
    p.multicast = 0;
  }
  // The in-kernel merge is written for the plain grid.
  if (p.multicast) p.fused_merge = 0;
  // Each cache block is read by every row tile (every cluster under
  // multicast) of its kv head, twice over with column halves: keep it in L2
  // for the siblings unless nobody else reads it.
  const int readers = p.num_row_tiles * (halves ? 2 : 1), evict_first = readers == (p.multicast ? 2 : 1);
  if (seesaw) {
    CUtensorMap map4, map1, mapq{};
    err = make_chunked_cache_tmap<T>(p, num_blocks, 4, &map4);
    if (err == cudaSuccess) err = make_chunked_cache_tmap<T>(p, num_blocks, 1, &map1);
    if (err != cudaSuccess) return err;
#ifdef OPENMLA_Q_CPASYNC  // A/B experiments only
    const int q_tma = 0;
#else
    const int q_tma = make_q_tmap<T>(p, &mapq) ? 1 : 0;
#endif
    if (p.fused_merge && !fused_merge_fits(p, grid)) p.fused_merge = 0;
    if (p.fused_merge) p.pair_merge = 0;  // it merges every split request
    if (p.fused_merge) {
      // CTAs wait for CTAs of other parts (kernels/common/merge.cuh): the
      // whole grid must be resident, which a cooperative launch guarantees
      // (or refuses with cudaErrorCooperativeLaunchTooLarge).
      const SeesawLaunchConfig c(grid, smem, stream, cudaLaunchAttributeCooperative, true);
      p.steal = 0;  // the in-kernel merge's instantiation does not steal
      const auto fused = dense_decode_seesaw::dense_decode_seesaw_kernel<T, false, false, true>;
      err = cudaFuncSetAttribute(fused, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
      if (err != cudaSuccess) return err;
      err = cudaLaunchKernelEx(&c.cfg, fused, map4, map1, mapq, p, evict_first, q_tma);
      if (err != cudaErrorCooperativeLaunchTooLarge) return err;
      // Fewer SMs usable than the device has (MPS, green contexts): the
      // same result from two kernels.
      (void)cudaGetLastError();
      p.fused_merge = 0;
    }
    // Tail stealing runs on the plain grid only (its own instantiation).
    if (p.multicast || halves) p.steal = 0;
    if (p.multicast) {
      const PairedClusterConfig c(grid, smem, stream, p.pdl == 2);
      err = cudaLaunchKernelEx(&c.cfg, seesaw_fn<T>(true, halves), map4, map1, mapq, p, evict_first, q_tma);
      if (err != cudaSuccess) return err;
      return cudaGetLastError();
    }
    const SeesawLaunchConfig c(grid, smem, stream, cudaLaunchAttributeProgrammaticStreamSerialization, p.pdl == 2);
    err = cudaLaunchKernelEx(&c.cfg, seesaw_fn<T>(false, halves, p.steal != 0), map4, map1, mapq, p, evict_first, q_tma);
    if (err != cudaSuccess) return err;
  } else {
    CUtensorMap map;
    err = make_cache_tmap<T>(p, num_blocks, &map);
    if (err != cudaSuccess) return err;
    dense_decode_wgmma_kernel<T><<<grid, kThreads, smem, stream>>>(map, p, evict_first);
  }
  return cudaGetLastError();
}

}  // namespace openmla::kernels::dense_decode_wgmma

#endif  // OPENMLA_KERNELS_SM90_DENSE_DECODE_WGMMA_LAUNCH_CUH_
