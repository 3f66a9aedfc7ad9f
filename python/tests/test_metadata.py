"""Both of FlashMLA's metadata styles, and what each promises."""
import pytest

torch = pytest.importorskip("torch")

from mla_ref import Case, check_close, poison_for, varlen  # noqa: E402


@pytest.fixture(scope="module")
def fm():
    import flash_mla
    return flash_mla


def decode(fm, case, tsm, num_splits, layer=0):
    poison_for(case)
    return fm.flash_mla_with_kvcache(case.qs[layer], case.k_caches[layer], case.block_table,
                                     case.cache_seqlens, 512, tsm, num_splits,
                                     causal=case.causal)


# ---- older style: (tile_scheduler_metadata, num_splits) tensors ------------------------------

def test_old_style_returns_int32_cuda_tensors(fm):
    seqlens = [0, 20, 4096, 140, 64, 65]
    case = Case(6, 1, 16, 1, seqlens, torch.bfloat16)
    tsm, ns = fm.get_mla_metadata(case.cache_seqlens, 16, 1)
    assert isinstance(tsm, torch.Tensor) and isinstance(ns, torch.Tensor)
    assert tsm.dtype == torch.int32 and ns.dtype == torch.int32
    assert tsm.is_cuda and ns.is_cuda
    assert tsm.dim() == 2 and tsm.shape[1] == 8
    assert ns.shape == (6 + 1,)
    # FlashMLA's num_splits: prefix sums of the splits of each request.
    splits = (ns[1:] - ns[:-1]).tolist()
    assert ns[0].item() == 0
    for s, n in zip(seqlens, splits):
        assert (n == 0) == (s == 0), f"request of length {s} has {n} splits ({ns.tolist()})"
    # Same shapes and lengths, same schedule.
    tsm2, ns2 = fm.get_mla_metadata(case.cache_seqlens, 16, 1)
    assert torch.equal(tsm, tsm2) and torch.equal(ns, ns2)
    out, lse = decode(fm, case, tsm, ns)
    check_close(out, lse, *case.reference())


def test_old_style_keyword_arguments(fm):
    case = Case(3, 2, 64, 1, [5, 900, 0], torch.float16, causal=True)
    tsm, ns = fm.get_mla_metadata(cache_seqlens=case.cache_seqlens, num_q_tokens_per_head_k=128,
                                  num_heads_k=1, num_heads_q=64, is_fp8_kvcache=False, topk=None)
    out, lse = fm.flash_mla_with_kvcache(
        q=case.q, k_cache=case.k_cache, block_table=case.block_table,
        cache_seqlens=case.cache_seqlens, head_dim_v=512, tile_scheduler_metadata=tsm,
        num_splits=ns, softmax_scale=None, causal=True, is_fp8_kvcache=False, indices=None)
    check_close(out, lse, *case.reference())


def test_old_style_metadata_in_a_foreign_buffer(fm):
    # Engines copy the metadata into persistent buffers (for CUDA graphs): a
    # tensor that is not one of ours still works (the call copies the plan).
    case = Case(5, 1, 128, 1, varlen(5), torch.bfloat16, causal=True)
    tsm, ns = fm.get_mla_metadata(case.cache_seqlens, 128, 1)
    persistent = torch.zeros(tsm.shape[0] + 16, 8, dtype=torch.int32, device="cuda")
    view = persistent[: tsm.shape[0]]
    view.copy_(tsm)
    ns_buf = torch.zeros(64, dtype=torch.int32, device="cuda")
    ns_buf[: ns.shape[0]].copy_(ns)
    out, lse = decode(fm, case, view, ns_buf[: ns.shape[0]])
    check_close(out, lse, *case.reference())
    out2, lse2 = decode(fm, case, tsm.clone(), ns.clone())
    check_close(out2, lse2, *case.reference())


def test_old_style_stale_shapes_are_refused(fm):
    small = Case(4, 1, 16, 1, varlen(4), torch.bfloat16)
    big = Case(8, 1, 16, 1, varlen(8), torch.bfloat16)
    tsm, ns = fm.get_mla_metadata(small.cache_seqlens, 16, 1)
    with pytest.raises(ValueError, match="tile_scheduler_metadata"):
        fm.flash_mla_with_kvcache(big.q, big.k_cache, big.block_table, big.cache_seqlens, 512,
                                  tsm, ns)


# ---- newer style: FlashMLASchedMeta filled at the first call ---------------------------------

def test_new_style_sched_meta(fm):
    case = Case(5, 2, 64, 1, varlen(5), torch.bfloat16, causal=True, num_layers=3)
    sched_meta, none = fm.get_mla_metadata()
    assert none is None
    assert isinstance(sched_meta, fm.FlashMLASchedMeta) and not sched_meta.have_initialized
    for layer in range(3):
        out, lse = decode(fm, case, sched_meta, None, layer)
        check_close(out, lse, *case.reference(layer), what=f"layer {layer}")
        assert sched_meta.have_initialized
        cfg = sched_meta.config
        assert (cfg.b, cfg.s_q, cfg.h_q, cfg.page_block_size, cfg.h_k, cfg.causal) == \
            (5, 2, 64, 64, 1, True)
        assert cfg.is_fp8_kvcache is False and cfg.topk is None
        assert sched_meta.tile_scheduler_metadata.dtype == torch.int32
        assert sched_meta.num_splits.shape == (6,)


def test_new_style_direct_construction_and_keywords(fm):
    case = Case(3, 1, 128, 1, [4096, 3, 0], torch.float16)
    sched_meta = fm.FlashMLASchedMeta()
    out, lse = fm.flash_mla_with_kvcache(
        q=case.q, k_cache=case.k_cache, block_table=case.block_table,
        cache_seqlens=case.cache_seqlens, head_dim_v=512, tile_scheduler_metadata=sched_meta,
        softmax_scale=576 ** -0.5, causal=False, is_fp8_kvcache=False)
    check_close(out, lse, *case.reference())


def test_new_style_code_with_old_get_mla_metadata(fm):
    # Code written for the newer FlashMLA calls get_mla_metadata with
    # arguments and passes num_splits=None: it gets the newer semantics.
    case = Case(4, 1, 16, 1, varlen(4), torch.bfloat16, causal=True, num_layers=2)
    sched_meta, _ = fm.get_mla_metadata(case.cache_seqlens, 16, 1)
    # Lengths change after get_mla_metadata but before the first call: the
    # newer semantics plan at the first call, with these lengths.
    case.refill([300, 0, 4000, 77])
    for layer in range(2):
        out, lse = fm.flash_mla_with_kvcache(case.qs[layer], case.k_caches[layer],
                                             case.block_table, case.cache_seqlens, 512,
                                             tile_scheduler_metadata=sched_meta, causal=True)
        check_close(out, lse, *case.reference(layer), what=f"layer {layer}")


def test_sched_meta_style_switch(fm, monkeypatch):
    import openmla.interface as itf
    monkeypatch.setattr(itf, "METADATA_STYLE", "sched_meta")
    case = Case(2, 1, 16, 1, [50, 5000], torch.bfloat16)
    sched_meta, none = fm.get_mla_metadata(case.cache_seqlens, 16, 1)
    assert isinstance(sched_meta, fm.FlashMLASchedMeta) and none is None
    out, lse = decode(fm, case, sched_meta, None)
    check_close(out, lse, *case.reference())


@pytest.mark.parametrize("change", ["batch", "s_q", "h_q", "h_kv", "causal", "table_width"])
def test_new_style_consistency_is_checked(fm, change):
    base = dict(b=4, s_q=1, h_q=16, h_kv=1, causal=False, width=None)
    case = Case(4, 1, 16, 1, [10, 20, 30, 40], torch.bfloat16, max_blocks_per_seq=4)
    sched_meta, _ = fm.get_mla_metadata()
    decode(fm, case, sched_meta, None)
    other = dict(base)
    other.update({"batch": {"b": 5}, "s_q": {"s_q": 2}, "h_q": {"h_q": 32}, "h_kv": {"h_kv": 2},
                  "causal": {"causal": True}, "table_width": {"width": 6}}[change])
    c2 = Case(other["b"], other["s_q"], other["h_q"], other["h_kv"], [10] * other["b"],
              torch.bfloat16, other["causal"], max_blocks_per_seq=other["width"] or 4)
    with pytest.raises(AssertionError) as info:
        decode(fm, c2, sched_meta, None)
    assert isinstance(info.value, ValueError)
    assert "sched_meta" in str(info.value)


def test_new_style_rejects_num_splits_tensor(fm):
    case = Case(2, 1, 16, 1, [10, 20], torch.bfloat16)
    with pytest.raises(ValueError, match="num_splits"):
        decode(fm, case, fm.FlashMLASchedMeta(), torch.zeros(3, dtype=torch.int32, device="cuda"))


# ---- lengths the plan cannot accept ------------------------------------------------------

@pytest.mark.parametrize("bad", [-1, 64 * 3 + 1])
def test_bad_length_is_reported_by_check_plan(fm, bad):
    import openmla
    case = Case(3, 1, 16, 1, [10, 20, 30], torch.bfloat16, max_blocks_per_seq=3)
    case.cache_seqlens[1] = bad  # the GPU sees it; the host does not, without a sync
    sched_meta = fm.FlashMLASchedMeta()
    out, lse = decode(fm, case, sched_meta, None)
    torch.cuda.synchronize()
    assert torch.isnan(out.float()).all(), "a bad plan must turn the whole output into NaN"
    with pytest.raises(ValueError, match="cache_seqlens"):
        openmla.check_plan(sched_meta)
    good = fm.FlashMLASchedMeta()
    case.cache_seqlens[1] = 20
    decode(fm, case, good, None)
    openmla.check_plan(good)  # no error
