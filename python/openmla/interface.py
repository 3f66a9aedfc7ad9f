"""FlashMLA's Python API over openmla's kernels.

Both generations of FlashMLA's metadata API work, without code changes:

* Older (FlashMLA up to mid 2025): ``get_mla_metadata(cache_seqlens, ...)``
  returns ``(tile_scheduler_metadata, num_splits)``, int32 CUDA tensors
  computed now, on the GPU, from ``cache_seqlens``; both are passed to every
  ``flash_mla_with_kvcache`` call. Engines may copy them into persistent
  buffers for CUDA graphs.
* Newer: the metadata is a :class:`FlashMLASchedMeta`, filled by the first
  ``flash_mla_with_kvcache`` call that receives it (so a CUDA graph that
  captures that call recomputes the schedule on every replay), and checked
  for consistency on later calls; ``num_splits`` is ``None``.

Which one a call follows is told by ``num_splits``: a tensor means the older
style, ``None`` the newer one. ``get_mla_metadata()`` without arguments
returns ``(FlashMLASchedMeta(), None)``; with arguments it returns the older
style's tensors, and a caller that then passes ``num_splits=None`` (code
written for the newer FlashMLA) gets the newer semantics on that tensor: the
schedule is recomputed by the first ``flash_mla_with_kvcache`` call and
reused after. Set ``OPENMLA_FLASHMLA_METADATA=sched_meta`` to make
``get_mla_metadata`` always return ``(FlashMLASchedMeta(), None)`` as the
newest FlashMLA does (it then launches nothing).

The workspace behind the metadata holds the schedule and the split-KV partial
results, so calls that share one metadata must run in stream order (as the
layers of one decoding step do). A metadata tensor that is not one of ours
(e.g. a copy in an engine's persistent buffer) still works: each call then
takes a workspace from PyTorch's caching allocator and copies the schedule in.
"""
import dataclasses
import os
from typing import Optional, Tuple, Union

import torch

from . import _ops

__all__ = [
    "FlashMLASchedMeta",
    "get_mla_metadata",
    "flash_mla_with_kvcache",
    "flash_mla_sparse_fwd",
    "flash_attn_varlen_func",
    "flash_attn_varlen_qkvpacked_func",
    "flash_attn_varlen_kvpacked_func",
    "check_plan",
    "SchedMetaMismatchError",
]

#: "auto" (default) or "sched_meta"; see the module docstring.
METADATA_STYLE = os.environ.get("OPENMLA_FLASHMLA_METADATA", "auto")
if METADATA_STYLE not in ("auto", "sched_meta"):
    raise ValueError(
        f"OPENMLA_FLASHMLA_METADATA must be 'auto' or 'sched_meta', got {METADATA_STYLE!r}")

# The older get_mla_metadata never sees the block table, so its schedule is
# computed without a bound on the lengths (the newer style bounds them by
# block_table.shape[1]). As with FlashMLA, lengths must fit the table.
_UNBOUNDED_BLOCKS = (2**31 - 1) // _ops.PAGE_BLOCK_SIZE
_MAX_HEADS_GUESS = 128
_TENSOR_STATE = "_openmla_sched_meta"


class SchedMetaMismatchError(ValueError, AssertionError):
    """A call's arguments differ from those its FlashMLASchedMeta was built for.

    FlashMLA raises AssertionError here; this is both that and a ValueError.
    """


@dataclasses.dataclass
class FlashMLASchedMeta:
    """Tile scheduler metadata, filled at the first flash_mla_with_kvcache call.

    Field names follow FlashMLA's class of the same name.
    """

    @dataclasses.dataclass
    class Config:
        b: int
        s_q: int
        h_q: int
        page_block_size: int
        h_k: int

        causal: bool
        is_fp8_kvcache: bool
        topk: Optional[int]

        extra_page_block_size: Optional[int] = None
        extra_topk: Optional[int] = None

    have_initialized: bool = False

    config: Optional[Config] = None

    # int32 [n, 8] (the plan; its storage is the whole workspace), then
    # FlashMLA's int32 [b + 1] split prefix sums (informational).
    tile_scheduler_metadata: Optional[torch.Tensor] = None
    num_splits: Optional[torch.Tensor] = None

    # openmla: the block-table width the schedule was checked against.
    max_blocks_per_seq: Optional[int] = None


def _unsupported_fp8():
    return NotImplementedError(
        "openmla: FP8 KV caches (is_fp8_kvcache=True) are not supported yet; openmla decodes "
        "bfloat16/float16 caches only")


def _unsupported_sparse(what):
    return NotImplementedError(
        f"openmla: sparse attention ({what}) is not supported yet; openmla does dense paged "
        "decoding only")


def _as_int(value, name, minimum=1):
    if isinstance(value, bool) or value is None:
        raise ValueError(f"openmla: {name} must be an int >= {minimum}, got {value!r}")
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"openmla: {name} must be an int >= {minimum}, got {value!r}") from None
    if v != value or v < minimum:
        raise ValueError(f"openmla: {name} must be an int >= {minimum}, got {value!r}")
    return v


def _expect_tensor(x, name, ndim, layout):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"openmla: {name} must be a torch.Tensor {layout}, got {type(x).__name__}")
    if x.dim() != ndim:
        raise ValueError(f"openmla: {name} must be {ndim}-D {layout}, got shape {tuple(x.shape)}")


def _split_q_tokens(num_q_tokens_per_head_k, num_heads_k, num_heads_q):
    """(s_q, h_q) from FlashMLA's num_q_tokens_per_head_k = s_q * h_q // h_kv.

    The schedule depends on s_q * h_q only; without num_heads_q any split with
    that product is as good, and the decode checks the plan's size against
    the shapes it is given.
    """
    if num_heads_q is not None:
        h_q = _as_int(num_heads_q, "num_heads_q")
        if h_q % num_heads_k:
            raise ValueError(
                f"openmla: num_heads_q ({h_q}) must be a multiple of num_heads_k ({num_heads_k})")
        per_kv = h_q // num_heads_k
        if num_q_tokens_per_head_k % per_kv:
            raise ValueError(
                f"openmla: num_q_tokens_per_head_k ({num_q_tokens_per_head_k}) must be "
                f"s_q * num_heads_q // num_heads_k, a multiple of {per_kv}")
        return num_q_tokens_per_head_k // per_kv, h_q
    for s_q in range(1, _ops.MAX_S_Q + 1):
        if (num_q_tokens_per_head_k % s_q == 0
                and (num_q_tokens_per_head_k // s_q) * num_heads_k <= _MAX_HEADS_GUESS):
            return s_q, (num_q_tokens_per_head_k // s_q) * num_heads_k
    return 1, num_q_tokens_per_head_k * num_heads_k


def get_mla_metadata(
    cache_seqlens: Optional[torch.Tensor] = None,
    num_q_tokens_per_head_k: Optional[int] = None,
    num_heads_k: Optional[int] = None,
    num_heads_q: Optional[int] = None,
    is_fp8_kvcache: bool = False,
    topk: Optional[int] = None,
) -> Tuple[Union[torch.Tensor, FlashMLASchedMeta], Optional[torch.Tensor]]:
    """Scheduler metadata for one decoding step, reused by every layer.

    Arguments:
        cache_seqlens: (batch_size), torch.int32, on the GPU.
        num_q_tokens_per_head_k: s_q * num_heads_q // num_heads_k.
        num_heads_k: the number of k heads.
        num_heads_q: the number of q heads (optional).
        is_fp8_kvcache, topk: FP8 / sparse decoding, not supported yet
            (NotImplementedError).

    Returns:
        ``(tile_scheduler_metadata, num_splits)``: int32 CUDA tensors computed
        on the GPU from ``cache_seqlens`` without synchronising; or
        ``(FlashMLASchedMeta(), None)`` when called without ``cache_seqlens``,
        ``num_q_tokens_per_head_k`` or ``num_heads_k`` (or with
        ``OPENMLA_FLASHMLA_METADATA=sched_meta``).
    """
    if is_fp8_kvcache:
        raise _unsupported_fp8()
    if topk is not None:
        raise _unsupported_sparse(f"topk={topk}")
    if (cache_seqlens is None or num_q_tokens_per_head_k is None or num_heads_k is None
            or METADATA_STYLE == "sched_meta"):
        # The newest FlashMLA takes any arguments here and plans at the first call.
        return FlashMLASchedMeta(), None
    _expect_tensor(cache_seqlens, "cache_seqlens", 1, "[batch_size] int32")
    ntok = _as_int(num_q_tokens_per_head_k, "num_q_tokens_per_head_k")
    h_kv = _as_int(num_heads_k, "num_heads_k")
    s_q, h_q = _split_q_tokens(ntok, h_kv, num_heads_q)
    meta, num_splits = _ops.plan(cache_seqlens, s_q, h_q, h_kv, _UNBOUNDED_BLOCKS)
    # Host-side record of what the plan is for: a later call with other shapes
    # is refused here (the kernels also refuse it on the device, with NaN).
    if not torch.compiler.is_compiling():  # dynamo cannot trace setattr on a tensor
        setattr(meta, _PLANNED_SHAPES, (int(cache_seqlens.shape[0]), ntok, h_kv))
    return meta, num_splits


_PLANNED_SHAPES = "_openmla_planned_shapes"


def _mismatch(field, what):
    return SchedMetaMismatchError(
        f"sched_meta.config.{field} must be equal to {what}. Your input arguments are "
        "inconsistent with sched_meta. Please make sure the input arguments are consistent "
        "across different invocations of flash_mla_with_kvcache on the same sched_meta.")


def _scheduled(meta: FlashMLASchedMeta, q, k_cache, block_table, cache_seqlens, causal):
    """The plan tensor of a newer-style metadata; plans at its first use."""
    b, s_q, h_q = q.shape[0], q.shape[1], q.shape[2]
    page_block_size, h_k = k_cache.shape[1], k_cache.shape[2]
    max_blocks = block_table.shape[1]
    if not meta.have_initialized:
        if meta.tile_scheduler_metadata is None:
            tsm, num_splits = _ops.plan(cache_seqlens, s_q, h_q, h_k, max_blocks)
            meta.tile_scheduler_metadata = tsm
            meta.num_splits = num_splits
        meta.config = FlashMLASchedMeta.Config(b, s_q, h_q, page_block_size, h_k, causal, False,
                                               None, None, None)
        meta.max_blocks_per_seq = max_blocks
        meta.have_initialized = True
    else:
        cfg = meta.config
        if cfg is None:
            raise SchedMetaMismatchError("openmla: sched_meta.have_initialized is set but its "
                                         "config is None")
        if cfg.b != b:
            raise _mismatch("b", "batch_size")
        if cfg.s_q != s_q:
            raise _mismatch("s_q", "seq_len_q")
        if cfg.h_q != h_q:
            raise _mismatch("h_q", "num_heads_q")
        if cfg.page_block_size != page_block_size:
            raise _mismatch("page_block_size", "page_block_size")
        if cfg.h_k != h_k:
            raise _mismatch("h_k", "num_heads_k")
        if cfg.causal != causal:
            raise _mismatch("causal", "causal")
        if cfg.is_fp8_kvcache:
            raise _mismatch("is_fp8_kvcache", "is_fp8_kvcache")
        if cfg.topk is not None:
            raise _mismatch("topk", "the last dim of indices_in_kvcache")
        if meta.max_blocks_per_seq is not None and meta.max_blocks_per_seq != max_blocks:
            raise SchedMetaMismatchError(
                f"openmla: block_table has {max_blocks} blocks per sequence but sched_meta was "
                f"scheduled with {meta.max_blocks_per_seq}; use one sched_meta per block table "
                "width")
    if meta.tile_scheduler_metadata is None:
        raise SchedMetaMismatchError("openmla: sched_meta has no tile_scheduler_metadata")
    return meta.tile_scheduler_metadata


def flash_mla_with_kvcache(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    block_table: Optional[torch.Tensor],
    cache_seqlens: Optional[torch.Tensor],
    head_dim_v: int,
    tile_scheduler_metadata: Union[torch.Tensor, FlashMLASchedMeta],
    num_splits: Optional[torch.Tensor] = None,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    is_fp8_kvcache: bool = False,
    indices: Optional[torch.Tensor] = None,
    attn_sink: Optional[torch.Tensor] = None,
    extra_k_cache: Optional[torch.Tensor] = None,
    extra_indices_in_kvcache: Optional[torch.Tensor] = None,
    topk_length: Optional[torch.Tensor] = None,
    extra_topk_length: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Paged MLA decoding (FlashMLA's dense decode), on the current CUDA stream.

    Arguments:
        q: (batch_size, seq_len_q, num_heads_q, 576), bfloat16 or float16.
        k_cache: (num_blocks, 64, num_heads_k, 576), q's dtype.
        block_table: (batch_size, max_num_blocks_per_seq), torch.int32.
        cache_seqlens: (batch_size), torch.int32.
        head_dim_v: must be 512.
        tile_scheduler_metadata, num_splits: what get_mla_metadata returned
            (num_splits None for the newer style).
        softmax_scale: default 1 / sqrt(576).
        causal: query token i attends keys j <= seqlen - seq_len_q + i.
        is_fp8_kvcache, indices, attn_sink, extra_*, topk_length: FP8 and
            sparse decoding, not supported yet (NotImplementedError).

    Returns:
        out: (batch_size, seq_len_q, num_heads_q, 512), q's dtype.
        softmax_lse: (batch_size, num_heads_q, seq_len_q), torch.float32
            (natural log; +inf for a row with no key, whose out is 0).
    """
    if is_fp8_kvcache:
        raise _unsupported_fp8()
    for name, value in (("indices", indices), ("attn_sink", attn_sink),
                        ("extra_k_cache", extra_k_cache),
                        ("extra_indices_in_kvcache", extra_indices_in_kvcache),
                        ("topk_length", topk_length), ("extra_topk_length", extra_topk_length)):
        if value is not None:
            raise _unsupported_sparse(f"{name} given")
    if head_dim_v != _ops.HEAD_DIM_V:
        raise ValueError(f"openmla: head_dim_v must be {_ops.HEAD_DIM_V}, got {head_dim_v!r}")
    if block_table is None or cache_seqlens is None:
        raise ValueError("openmla: block_table and cache_seqlens are required for dense decoding")
    _expect_tensor(q, "q", 4, "[batch_size, seq_len_q, num_heads_q, 576]")
    _expect_tensor(k_cache, "k_cache", 4, "[num_blocks, 64, num_heads_k, 576]")
    _expect_tensor(block_table, "block_table", 2, "[batch_size, max_num_blocks_per_seq] int32")
    _expect_tensor(cache_seqlens, "cache_seqlens", 1, "[batch_size] int32")
    causal = bool(causal)
    if softmax_scale is None:
        softmax_scale = q.shape[-1] ** (-0.5)

    if isinstance(tile_scheduler_metadata, FlashMLASchedMeta):
        if num_splits is not None:
            raise ValueError("openmla: num_splits must be None when tile_scheduler_metadata is a "
                             "FlashMLASchedMeta")
        tsm = _scheduled(tile_scheduler_metadata, q, k_cache, block_table, cache_seqlens, causal)
    elif isinstance(tile_scheduler_metadata, torch.Tensor):
        if num_splits is None:
            # Code written for the newer FlashMLA, holding what our
            # get_mla_metadata returned: the newer semantics on this tensor.
            meta = getattr(tile_scheduler_metadata, _TENSOR_STATE, None)
            if meta is None:
                meta = FlashMLASchedMeta()
                setattr(tile_scheduler_metadata, _TENSOR_STATE, meta)
            tsm = _scheduled(meta, q, k_cache, block_table, cache_seqlens, causal)
        else:
            if not isinstance(num_splits, torch.Tensor):
                raise TypeError("openmla: num_splits must be the tensor get_mla_metadata returned, "
                                f"or None; got {type(num_splits).__name__}")
            planned = (None if torch.compiler.is_compiling()
                       else getattr(tile_scheduler_metadata, _PLANNED_SHAPES, None))
            if planned is not None and k_cache.dim() == 4 and k_cache.shape[2] > 0:
                h_kv = int(k_cache.shape[2])
                now = (int(q.shape[0]), int(q.shape[1]) * int(q.shape[2]) // h_kv, h_kv)
                if now != planned:
                    raise ValueError(
                        "openmla: tile_scheduler_metadata was computed for (batch, "
                        f"num_q_tokens_per_head_k, num_heads_k) = {planned}, this call has {now}; "
                        "call get_mla_metadata again for these shapes")
            tsm = tile_scheduler_metadata
    else:
        raise TypeError(
            "openmla: tile_scheduler_metadata must be what get_mla_metadata returned (an int32 "
            f"tensor or a FlashMLASchedMeta), got {type(tile_scheduler_metadata).__name__}")

    return _ops.dense_decode(q, k_cache, block_table, cache_seqlens, tsm, softmax_scale, causal)


def check_plan(tile_scheduler_metadata: Union[torch.Tensor, FlashMLASchedMeta]) -> None:
    """Raises ValueError if the schedule saw a length outside [0, 64 * table width].

    The GPU cannot report that without a host sync, so a bad length makes the
    decode write NaN and is reported here. Synchronises the current stream:
    for debugging, never inside CUDA-graph capture.
    """
    tsm = tile_scheduler_metadata
    if isinstance(tsm, FlashMLASchedMeta):
        tsm = tsm.tile_scheduler_metadata
        if tsm is None:
            return
    if not isinstance(tsm, torch.Tensor):
        raise TypeError("openmla: check_plan takes what get_mla_metadata returned")
    _ops._C.read_plan_error(tsm)


def flash_mla_sparse_fwd(q, kv, indices, sm_scale, d_v=512, attn_sink=None, topk_length=None,
                         *args, **kwargs):
    """FlashMLA's sparse prefill: not supported by openmla yet."""
    raise _unsupported_sparse("flash_mla_sparse_fwd")


def _no_prefill(*args, **kwargs):
    raise NotImplementedError(
        "openmla: dense MHA prefill (flash_attn_varlen_*) is not provided; openmla does MLA "
        "decoding")


flash_attn_varlen_func = _no_prefill
flash_attn_varlen_qkvpacked_func = _no_prefill
flash_attn_varlen_kvpacked_func = _no_prefill
