// Compile-time shape of the split-KV dense decode kernel (mma.sync path).
#ifndef OPENMLA_KERNELS_SM90_DENSE_DECODE_CONFIG_H_
#define OPENMLA_KERNELS_SM90_DENSE_DECODE_CONFIG_H_

#include "common/split_plan.h"

namespace openmla::kernels::dense_decode {

constexpr int kThreads = 256;          // 8 warps: 4 row groups x 2 column halves
constexpr int kTileM = kRowsPerTile;   // 64 query rows per CTA
constexpr int kTileN = kPageBlock;     // one 64-token cache block per step
constexpr int kD = kHeadDimQK;         // 576
constexpr int kDv = kHeadDimV;         // 512
constexpr int kStages = 2;             // cache blocks in shared memory

constexpr int kChunk = 8;                           // elements per 16-byte chunk
constexpr int kRowChunks = kD / kChunk;             // 72
constexpr int kTileElems = kTileM * kD;             // Q tile and each K stage
constexpr int kPElems = kTileM * kTileN;
constexpr int kSmemBytes = (kTileElems * (1 + kStages) + kPElems) * 2 + 2 * 2 * kTileM * 4;
static_assert(kSmemBytes <= 232448, "dense decode shared memory over the sm_90 limit");

}  // namespace openmla::kernels::dense_decode

#endif  // OPENMLA_KERNELS_SM90_DENSE_DECODE_CONFIG_H_
