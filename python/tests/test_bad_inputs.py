"""Bad input raises a Python exception that names the argument, before anything runs."""
import re

import pytest

torch = pytest.importorskip("torch")

from mla_ref import Case  # noqa: E402

ERRORS = (ValueError, RuntimeError, TypeError)  # NotImplementedError is a RuntimeError


@pytest.fixture(scope="module")
def fm():
    import flash_mla
    return flash_mla


@pytest.fixture
def case():
    return Case(2, 1, 16, 1, [100, 30], torch.bfloat16, max_blocks_per_seq=4)


def call(fm, case, *, q=None, k_cache=None, block_table=None, cache_seqlens=None, head_dim_v=512,
         meta=None, **kw):
    q = case.q if q is None else q
    k_cache = case.k_cache if k_cache is None else k_cache
    block_table = case.block_table if block_table is None else block_table
    cache_seqlens = case.cache_seqlens if cache_seqlens is None else cache_seqlens
    if meta is None:
        meta = fm.get_mla_metadata(case.cache_seqlens, case.num_q_tokens_per_head_k, case.h_kv)
    return fm.flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, head_dim_v, *meta,
                                     **kw)


def expect(name, fn, exc=ERRORS):
    with pytest.raises(exc) as info:
        fn()
        torch.cuda.synchronize()
    msg = str(info.value)
    assert re.search(rf"\b{re.escape(name)}\b", msg), f"error does not name {name!r}: {msg}"
    return info.value


def test_cpu_tensors(fm, case):
    expect("q", lambda: call(fm, case, q=case.q.cpu()))
    expect("k_cache", lambda: call(fm, case, k_cache=case.k_cache.cpu()))
    expect("block_table", lambda: call(fm, case, block_table=case.block_table.cpu()))
    expect("cache_seqlens", lambda: call(fm, case, cache_seqlens=case.cache_seqlens.cpu()))
    expect("cache_seqlens", lambda: fm.get_mla_metadata(case.cache_seqlens.cpu(), 16, 1))


def test_wrong_dtypes(fm, case):
    expect("q", lambda: call(fm, case, q=case.q.float()))
    expect("k_cache", lambda: call(fm, case, k_cache=case.k_cache.half()))
    expect("block_table", lambda: call(fm, case, block_table=case.block_table.long()))
    expect("cache_seqlens", lambda: call(fm, case, cache_seqlens=case.cache_seqlens.long()))
    expect("cache_seqlens", lambda: fm.get_mla_metadata(case.cache_seqlens.long(), 16, 1))


def test_wrong_shapes(fm, case):
    expect("q", lambda: call(fm, case, q=case.q[..., :512].contiguous()))
    expect("q", lambda: call(fm, case, q=case.q[0]))
    expect("k_cache", lambda: call(fm, case, k_cache=case.k_cache[..., :512].contiguous()))
    expect("k_cache", lambda: call(fm, case, k_cache=case.k_cache[:, :32].contiguous()))
    expect("block_table", lambda: call(fm, case, block_table=case.block_table[:1]))
    expect("block_table", lambda: call(fm, case, block_table=case.block_table[0]))
    expect("cache_seqlens", lambda: call(fm, case, cache_seqlens=case.cache_seqlens[:1]))
    # h_q % h_kv != 0: 16 query heads over 3 kv heads.
    k3 = torch.zeros(case.num_blocks, 64, 3, 576, dtype=torch.bfloat16, device="cuda")
    expect("h_kv", lambda: call(fm, case, k_cache=k3, meta=(fm.FlashMLASchedMeta(), None)))
    expect("head_dim_v", lambda: call(fm, case, head_dim_v=256))


def test_non_contiguous_last_dim(fm, case):
    wide = torch.zeros(2, 1, 16, 576 * 2, dtype=torch.bfloat16, device="cuda")
    expect("q", lambda: call(fm, case, q=wide[..., ::2]))
    kw = torch.zeros(case.num_blocks, 64, 1, 576 * 2, dtype=torch.bfloat16, device="cuda")
    expect("k_cache", lambda: call(fm, case, k_cache=kw[..., ::2]))
    bt = torch.zeros(2, 8, dtype=torch.int32, device="cuda")
    expect("block_table", lambda: call(fm, case, block_table=bt[:, ::2]))


def test_not_tensors(fm, case):
    expect("q", lambda: call(fm, case, q=[1, 2, 3]))
    expect("tile_scheduler_metadata", lambda: call(fm, case, meta=("nope", None)))


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="mismatched devices need two GPUs")
def test_mismatched_devices(fm, case):
    expect("k_cache", lambda: call(fm, case, k_cache=case.k_cache.to("cuda:1")))
    expect("block_table", lambda: call(fm, case, block_table=case.block_table.to("cuda:1")))


def test_metadata_arguments(fm, case):
    expect("num_q_tokens_per_head_k", lambda: fm.get_mla_metadata(case.cache_seqlens, 0, 1))
    expect("num_heads_k", lambda: fm.get_mla_metadata(case.cache_seqlens, 16, 0))
    expect("num_heads_q", lambda: fm.get_mla_metadata(case.cache_seqlens, 16, 2, num_heads_q=3))
    expect("num_q_tokens_per_head_k",
           lambda: fm.get_mla_metadata(case.cache_seqlens, 10, 1, num_heads_q=16))
    expect("s_q", lambda: fm.get_mla_metadata(case.cache_seqlens, 17 * 16, 1, num_heads_q=16))


def test_unsupported_features_raise_not_implemented(fm, case):
    with pytest.raises(NotImplementedError, match="FP8"):
        call(fm, case, is_fp8_kvcache=True)
    with pytest.raises(NotImplementedError, match="FP8"):
        fm.get_mla_metadata(case.cache_seqlens, 16, 1, is_fp8_kvcache=True)
    with pytest.raises(NotImplementedError, match="sparse"):
        fm.get_mla_metadata(case.cache_seqlens, 16, 1, topk=2048)
    idx = torch.zeros(2, 1, 64, dtype=torch.int32, device="cuda")
    with pytest.raises(NotImplementedError, match="sparse"):
        call(fm, case, indices=idx)
    with pytest.raises(NotImplementedError, match="sparse"):
        fm.flash_mla_sparse_fwd(case.q[0], case.k_cache[0], idx[0], 0.1)
    with pytest.raises(NotImplementedError, match="page block size|64"):
        k32 = torch.zeros(8, 32, 1, 576, dtype=torch.bfloat16, device="cuda")
        call(fm, case, k_cache=k32, meta=(fm.FlashMLASchedMeta(), None))


def test_errors_leave_no_launch(fm, case):
    # A rejected call launches nothing: the stream has no new work after it.
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        side.synchronize()
        meta = fm.get_mla_metadata(case.cache_seqlens, 16, 1)
        side.synchronize()
        with pytest.raises(ERRORS):
            call(fm, case, q=case.q.float(), meta=meta)
        assert side.query()
