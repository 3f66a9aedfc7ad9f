"""FlashMLA's module name, served by openmla: ``import flash_mla`` and go on.

Same objects as ``openmla``'s; see openmla.interface for what is supported
(bf16/fp16 dense paged decoding; FP8 and sparse raise NotImplementedError).
"""
from openmla.interface import (  # noqa: F401
    FlashMLASchedMeta,
    flash_attn_varlen_func,
    flash_attn_varlen_kvpacked_func,
    flash_attn_varlen_qkvpacked_func,
    flash_mla_sparse_fwd,
    flash_mla_with_kvcache,
    get_mla_metadata,
)

from openmla import __version__  # noqa: F401

__all__ = [
    "FlashMLASchedMeta",
    "flash_attn_varlen_func",
    "flash_attn_varlen_kvpacked_func",
    "flash_attn_varlen_qkvpacked_func",
    "flash_mla_sparse_fwd",
    "flash_mla_with_kvcache",
    "get_mla_metadata",
]
