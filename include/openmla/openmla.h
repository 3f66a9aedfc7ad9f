// openmla: Multi-head Latent Attention decoding kernels for Hopper (sm_90a).
//
// Plain C ABI: raw device pointers, shapes and strides, a cudaStream_t, and a
// status with a message. Nothing here throws, allocates, or synchronises the
// device (except openmla_read_plan_error, which says so).
//
// A decoding step:
//   1. openmla_plan_workspace_size(&shape, &bytes)   once, from shapes alone
//   2. openmla_plan(&shape, cache_seqlens, ws, bytes, stream)   once per step,
//      on the GPU from device-resident lengths (graph-capturable)
//   3. openmla_dense_decode(&args, ws, bytes, stream)   once per layer
#ifndef OPENMLA_OPENMLA_H_
#define OPENMLA_OPENMLA_H_

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OPENMLA_HEAD_DIM_QK 576  // 512 latent (NoPE) + 64 RoPE
#define OPENMLA_HEAD_DIM_V 512
#define OPENMLA_PAGE_BLOCK_SIZE 64

typedef enum openmla_dtype {
  OPENMLA_DTYPE_BF16 = 0,
  OPENMLA_DTYPE_FP16 = 1,
  OPENMLA_DTYPE_FP32 = 2,
  OPENMLA_DTYPE_INT32 = 3,
} openmla_dtype;

typedef enum openmla_status_code {
  OPENMLA_OK = 0,
  OPENMLA_ERROR_INVALID_ARGUMENT = 1,  // bad shape, dtype, stride, pointer...
  OPENMLA_ERROR_WORKSPACE_TOO_SMALL = 2,
  OPENMLA_ERROR_UNSUPPORTED = 3,       // valid request this build cannot run
  OPENMLA_ERROR_CUDA = 4,              // a CUDA runtime call failed
  OPENMLA_ERROR_BAD_SEQLENS = 5,       // reported by openmla_read_plan_error
} openmla_status_code;

typedef struct openmla_status {
  openmla_status_code code;
  char message[256];  // NUL-terminated; names the offending argument
} openmla_status;

// A strided view of device memory. Shapes and strides are in elements.
typedef struct openmla_tensor {
  void* data;
  openmla_dtype dtype;
  int ndim;
  int64_t shape[4];
  int64_t stride[4];
} openmla_tensor;

// What the plan depends on. Everything but the lengths themselves.
typedef struct openmla_decode_shape {
  int batch;               // b >= 1
  int s_q;                 // query tokens per request, 1..OPENMLA_MAX_S_Q
  int h_q;                 // query heads
  int h_kv;                // kv heads, h_q % h_kv == 0
  int max_blocks_per_seq;  // width of block_table; bounds cache_seqlens
  int num_sms;             // 0: read from the current device
} openmla_decode_shape;

#define OPENMLA_MAX_S_Q 16

typedef struct openmla_dense_decode_args {
  openmla_tensor q;              // [b, s_q, h_q, 576] bf16|fp16
  openmla_tensor k_cache;        // [num_blocks, 64, h_kv, 576] same dtype as q
  openmla_tensor block_table;    // [b, max_blocks_per_seq] int32
  openmla_tensor cache_seqlens;  // [b] int32 (must be the ones planned with)
  openmla_tensor out;            // [b, s_q, h_q, 512] same dtype as q
  openmla_tensor lse;            // [b, h_q, s_q] fp32
  float softmax_scale;           // <= 0 selects 1/sqrt(576)
  int causal;                    // 0 or 1
  int num_sms;                   // as given to the plan (0: current device)
} openmla_dense_decode_args;

// Bytes of workspace the plan and the decode need for these shapes.
openmla_status openmla_plan_workspace_size(const openmla_decode_shape* shape,
                                           size_t* bytes);

// Computes the split-KV schedule into `workspace` on `stream`, from the
// device-resident lengths. Lengths outside [0, 64*max_blocks_per_seq] cannot
// be seen by the host without a sync: the plan records them in the workspace,
// the decode then writes NaN everywhere, and openmla_read_plan_error says why.
openmla_status openmla_plan(const openmla_decode_shape* shape,
                            const int32_t* cache_seqlens_device,
                            void* workspace, size_t workspace_bytes,
                            cudaStream_t stream);

// The same schedule computed on the host from host lengths (checked here,
// before anything runs), written into host memory `plan_host` of
// openmla_plan_workspace_size's `plan_bytes` leading bytes. Used by tests and
// by callers that keep lengths on the host; copy it into the workspace with
// openmla_upload_plan.
openmla_status openmla_plan_host(const openmla_decode_shape* shape,
                                 const int32_t* cache_seqlens_host,
                                 void* plan_host, size_t plan_bytes);
size_t openmla_plan_bytes(const openmla_decode_shape* shape);
openmla_status openmla_upload_plan(const void* plan_host, size_t plan_bytes,
                                   void* workspace, size_t workspace_bytes,
                                   cudaStream_t stream);

// Dense (paged) MLA decoding. `workspace` must hold a plan for the same
// shapes and lengths.
openmla_status openmla_dense_decode(const openmla_dense_decode_args* args,
                                    void* workspace, size_t workspace_bytes,
                                    cudaStream_t stream);

// Synchronises `stream` and reports a bad length the last device plan saw.
openmla_status openmla_read_plan_error(const void* workspace,
                                       cudaStream_t stream);

const char* openmla_version(void);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // OPENMLA_OPENMLA_H_
