"""flash_mla_with_kvcache against the float64 reference on DESIGN.md section 6's cases."""
import pytest

torch = pytest.importorskip("torch")

from mla_ref import Case, check_close, poison_for, varlen  # noqa: E402

# h_q in {1, 3, 9, 63, 64, 126, 128} x h_kv in {1, 2, 3, 8}, h_q % h_kv == 0.
HEADS = [(1, 1), (3, 1), (3, 3), (9, 1), (9, 3), (63, 1), (63, 3), (64, 1), (64, 2), (64, 8),
         (126, 1), (126, 2), (126, 3), (128, 1), (128, 2), (128, 8)]
DTYPES = [torch.bfloat16, torch.float16]


@pytest.fixture(scope="module")
def fm():
    import flash_mla
    return flash_mla


def run_old_style(fm, case, layer=0, num_heads_q=True, **kw):
    tsm, num_splits = fm.get_mla_metadata(case.cache_seqlens, case.num_q_tokens_per_head_k,
                                          case.h_kv, case.h_q if num_heads_q else None)
    poison_for(case)
    return fm.flash_mla_with_kvcache(case.qs[layer], case.k_caches[layer], case.block_table,
                                     case.cache_seqlens, 512, tsm, num_splits,
                                     causal=case.causal, **kw)


# s_k in {20, 140, 4096} and a zero-length request in every case.
@pytest.mark.parametrize("dtype", DTYPES, ids=["bf16", "fp16"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("s_q", [1, 2, 4])
@pytest.mark.parametrize("h_q,h_kv", HEADS, ids=[f"hq{a}-hkv{b}" for a, b in HEADS])
def test_design_cases(fm, h_q, h_kv, s_q, causal, dtype):
    case = Case(4, s_q, h_q, h_kv, varlen(4), dtype, causal)
    out, lse = run_old_style(fm, case)
    assert out.dtype == dtype and out.is_cuda
    check_close(out, lse, *case.reference(), what=f"h_q={h_q} h_kv={h_kv} s_q={s_q}")


@pytest.mark.parametrize("b,s_q,h_q,seqlens", [
    (1, 1, 128, [32768]),            # one long request spread over every SM
    (1, 2, 16, [32768]),
    (128, 1, 16, None),              # DeepSeek-V3 decoding with TP 8, s_k around 4096
    (64, 2, 128, None),              # MTP, 128 heads
    (8, 1, 128, [0] * 8),            # nothing cached at all
    (16, 4, 64, [1, 63, 64, 65, 127, 128, 129, 0, 4095, 4096, 4097, 2, 3, 300, 640, 5000]),
], ids=["b1-32k-h128", "b1-32k-sq2-h16", "b128-h16-varlen", "b64-sq2-h128", "all-empty",
        "page-edges"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_large_and_edge_cases(fm, b, s_q, h_q, seqlens, causal):
    if seqlens is None:
        g = torch.Generator().manual_seed(b)
        seqlens = (torch.randint(3072, 5120, (b,), generator=g)).tolist()
    case = Case(b, s_q, h_q, 1, seqlens, torch.bfloat16, causal)
    out, lse = run_old_style(fm, case)
    check_close(out, lse, *case.reference())


@pytest.mark.parametrize("scale", [None, 0.05, 1.0])
def test_softmax_scale(fm, scale):
    case = Case(3, 2, 16, 1, [100, 700, 20], torch.bfloat16, causal=True)
    out, lse = run_old_style(fm, case, softmax_scale=scale)
    check_close(out, lse, *case.reference(softmax_scale=scale))


@pytest.mark.parametrize("h_q,h_kv,s_q", [(128, 1, 2), (64, 8, 4), (16, 2, 1), (126, 3, 2)])
def test_metadata_without_num_heads_q(fm, h_q, h_kv, s_q):
    # Most engines pass only (cache_seqlens, s_q * h_q // h_kv, h_kv).
    case = Case(4, s_q, h_q, h_kv, varlen(4), torch.bfloat16, causal=True)
    out, lse = run_old_style(fm, case, num_heads_q=False)
    check_close(out, lse, *case.reference())


def test_strided_inputs(fm):
    # Only the last dim must be contiguous: q a slice of a wider buffer, the
    # cache a slice of a bigger pool, the table a column slice.
    case = Case(3, 2, 32, 1, [70, 0, 1000], torch.bfloat16, causal=False)
    wide = torch.full((3, 2, 32, 576 + 64), float("nan"), dtype=torch.bfloat16, device="cuda")
    wide[..., :576] = case.q
    q = wide[..., :576]
    pool = torch.full((case.num_blocks, 64, 2, 576), float("nan"), dtype=torch.bfloat16,
                      device="cuda")
    pool[:, :, 1] = case.k_cache[:, :, 0]
    k_cache = pool[:, :, 1:2]
    table = torch.full((3, case.max_blocks + 5), 7, dtype=torch.int32, device="cuda")
    table[:, 5:] = case.block_table
    block_table = table[:, 5:]
    assert not q.is_contiguous() and not k_cache.is_contiguous() and not block_table.is_contiguous()
    tsm, ns = fm.get_mla_metadata(case.cache_seqlens, 2 * 32, 1, 32)
    out, lse = fm.flash_mla_with_kvcache(q, k_cache, block_table, case.cache_seqlens, 512, tsm, ns)
    check_close(out, lse, *case.reference())


def test_metadata_reused_across_layers(fm):
    # get_mla_metadata once per step, flash_mla_with_kvcache per layer.
    case = Case(6, 1, 128, 1, varlen(6), torch.bfloat16, causal=True, num_layers=4)
    tsm, ns = fm.get_mla_metadata(case.cache_seqlens, 128, 1)
    for layer in range(4):
        poison_for(case)
        out, lse = fm.flash_mla_with_kvcache(case.qs[layer], case.k_caches[layer],
                                             case.block_table, case.cache_seqlens, 512, tsm, ns,
                                             causal=True)
        check_close(out, lse, *case.reference(layer), what=f"layer {layer}")


def test_openmla_module_is_flash_mla(fm):
    import openmla
    assert openmla.flash_mla_with_kvcache is fm.flash_mla_with_kvcache
    assert openmla.get_mla_metadata is fm.get_mla_metadata
    assert openmla.FlashMLASchedMeta is fm.FlashMLASchedMeta
    from flash_mla.flash_mla_interface import flash_mla_with_kvcache
    assert flash_mla_with_kvcache is fm.flash_mla_with_kvcache


def test_runs_on_current_stream_without_sync(fm):
    case = Case(4, 1, 64, 1, varlen(4), torch.bfloat16, causal=True)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        # A long kernel ahead on this stream: the calls must queue behind it
        # and return before it ends (no host synchronisation).
        torch.cuda._sleep(200_000_000)
        tsm, ns = fm.get_mla_metadata(case.cache_seqlens, 64, 1)
        out, lse = fm.flash_mla_with_kvcache(case.q, case.k_cache, case.block_table,
                                             case.cache_seqlens, 512, tsm, ns, causal=True)
        still_busy = not side.query()
    side.synchronize()
    assert still_busy, "a call synchronised with the GPU (or the sleep kernel was too short)"
    check_close(out, lse, *case.reference())
