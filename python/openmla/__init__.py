"""openmla: MLA decoding kernels for Hopper, with FlashMLA's Python API.

    import openmla   # or: import flash_mla (the same functions)
    tile_scheduler_metadata, num_splits = openmla.get_mla_metadata(
        cache_seqlens, s_q * h_q // h_kv, h_kv)
    out, lse = openmla.flash_mla_with_kvcache(
        q, k_cache, block_table, cache_seqlens, 512,
        tile_scheduler_metadata, num_splits, causal=True)

The ops are torch.library custom ops (torch.ops.openmla.plan and
torch.ops.openmla.dense_decode) with fake implementations, so they work under
torch.compile and CUDA-graph capture.
"""
import torch  # noqa: F401  (loads libtorch before the extension)

from . import _ops
from .interface import (  # noqa: F401
    METADATA_STYLE,
    FlashMLASchedMeta,
    SchedMetaMismatchError,
    check_plan,
    flash_attn_varlen_func,
    flash_attn_varlen_kvpacked_func,
    flash_attn_varlen_qkvpacked_func,
    flash_mla_sparse_fwd,
    flash_mla_with_kvcache,
    get_mla_metadata,
)

__version__ = _ops._C.version()

__all__ = [
    "FlashMLASchedMeta",
    "SchedMetaMismatchError",
    "check_plan",
    "flash_attn_varlen_func",
    "flash_attn_varlen_kvpacked_func",
    "flash_attn_varlen_qkvpacked_func",
    "flash_mla_sparse_fwd",
    "flash_mla_with_kvcache",
    "get_mla_metadata",
]
