"""The torch.library ops of the C++ extension, and their fake implementations.

The ops themselves are defined and implemented in C++ (csrc/openmla_torch.cpp,
namespace ``openmla``); importing ``openmla._C`` registers them. The fake
(meta) implementations here give torch.compile / FakeTensor the output shapes
without running anything.
"""
import torch

from . import _C  # noqa: F401  (registers torch.ops.openmla.*)

HEAD_DIM_QK = 576
HEAD_DIM_V = 512
PAGE_BLOCK_SIZE = 64
MAX_S_Q = 16

_register_fake = getattr(torch.library, "register_fake", None) or torch.library.impl_abstract


@_register_fake("openmla::plan")
def _plan_fake(cache_seqlens, s_q, h_q, h_kv, max_blocks_per_seq):
    b = int(cache_seqlens.shape[0])
    device = cache_seqlens.device
    index = device.index if device.index is not None else torch.cuda.current_device()
    plan_bytes, _ = _C.workspace_sizes(b, s_q, h_q, h_kv, max_blocks_per_seq, index)
    meta = cache_seqlens.new_empty((plan_bytes // 32, 8), dtype=torch.int32)
    num_splits = cache_seqlens.new_empty((b + 1,), dtype=torch.int32)
    return meta, num_splits


@_register_fake("openmla::dense_decode")
def _dense_decode_fake(q, k_cache, block_table, cache_seqlens, tile_scheduler_metadata,
                       softmax_scale, causal):
    b, s_q, h_q = q.shape[0], q.shape[1], q.shape[2]
    out = q.new_empty((b, s_q, h_q, HEAD_DIM_V))
    lse = q.new_empty((b, h_q, s_q), dtype=torch.float32)
    return out, lse


def plan(cache_seqlens, s_q, h_q, h_kv, max_blocks_per_seq):
    """Split-KV schedule for one decoding step, computed on the GPU (no sync).

    Returns ``(tile_scheduler_metadata, num_splits)``: an int32 ``[n, 8]``
    tensor holding the plan (its storage is the whole workspace, including the
    split-KV partial buffers) and FlashMLA's int32 ``[b + 1]`` prefix sums of
    splits per request (informational).
    """
    return torch.ops.openmla.plan(cache_seqlens, s_q, h_q, h_kv, max_blocks_per_seq)


def dense_decode(q, k_cache, block_table, cache_seqlens, tile_scheduler_metadata,
                 softmax_scale, causal):
    """Paged MLA decoding on the current stream: returns ``(out, lse)``."""
    return torch.ops.openmla.dense_decode(q, k_cache, block_table, cache_seqlens,
                                          tile_scheduler_metadata, float(softmax_scale),
                                          bool(causal))
