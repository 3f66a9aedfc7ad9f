"""CUDA-graph capture and replay, torch.compile, and the custom ops' registration."""
import pytest

torch = pytest.importorskip("torch")

from mla_ref import Case, check_close  # noqa: E402

B, S_Q, H_Q, H_KV = 4, 2, 64, 1
NUM_LAYERS = 2
LENGTHS = [[20, 140, 4096, 0], [4000, 1, 64, 300], [0, 0, 65, 129], [2048, 2048, 2048, 2048]]


@pytest.fixture(scope="module")
def fm():
    import flash_mla
    return flash_mla


def make_case(dtype=torch.bfloat16, causal=True):
    # The table is wide enough for every length set the replays use.
    return Case(B, S_Q, H_Q, H_KV, LENGTHS[0], dtype, causal, num_layers=NUM_LAYERS,
                max_blocks_per_seq=64 + 2)


def layers(fm, case, tsm, num_splits):
    outs = []
    for layer in range(NUM_LAYERS):
        outs.append(fm.flash_mla_with_kvcache(case.qs[layer], case.k_caches[layer],
                                              case.block_table, case.cache_seqlens, 512, tsm,
                                              num_splits, causal=case.causal))
    return outs


def capture(step):
    """Warm up on a side stream, then capture `step` into a CUDA graph."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        step()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outs = step()
    return graph, outs


def replay_and_check(case, graph, outs, before_replay=None):
    for lengths in LENGTHS[1:]:
        case.refill(lengths)  # new lengths, table, cache contents and q, in place
        for o, l in outs:
            o.fill_(float("nan"))
            l.fill_(float("nan"))
        if before_replay is not None:
            before_replay()
        graph.replay()
        torch.cuda.synchronize()
        for layer, (o, l) in enumerate(outs):
            check_close(o, l, *case.reference(layer), what=f"replay {lengths} layer {layer}")


def test_graph_whole_step_old_style(fm):
    # get_mla_metadata inside the graph: every replay re-plans from the
    # device-resident lengths.
    case = make_case()

    def step():
        tsm, ns = fm.get_mla_metadata(case.cache_seqlens, S_Q * H_Q // H_KV, H_KV, H_Q)
        return layers(fm, case, tsm, ns)

    graph, outs = capture(step)
    replay_and_check(case, graph, outs)


def test_graph_persistent_metadata_old_style(fm):
    # The older engines' way: metadata computed outside the graph each step
    # and copied into persistent buffers the graph reads.
    case = make_case(torch.float16, causal=False)
    tsm0, ns0 = fm.get_mla_metadata(case.cache_seqlens, S_Q * H_Q // H_KV, H_KV, H_Q)
    tsm_buf, ns_buf = tsm0.clone(), ns0.clone()
    graph, outs = capture(lambda: layers(fm, case, tsm_buf, ns_buf))

    def refresh():
        tsm, ns = fm.get_mla_metadata(case.cache_seqlens, S_Q * H_Q // H_KV, H_KV, H_Q)
        tsm_buf.copy_(tsm)
        ns_buf.copy_(ns)

    replay_and_check(case, graph, outs, before_replay=refresh)


def test_graph_new_style_sched_meta(fm):
    # A fresh FlashMLASchedMeta inside the captured step: its first call plans
    # (captured), so replays re-plan.
    case = make_case()

    def step():
        sched_meta, _ = fm.get_mla_metadata()
        return layers(fm, case, sched_meta, None)

    graph, outs = capture(step)
    replay_and_check(case, graph, outs)


def test_graph_new_style_metadata_made_outside(fm):
    # The newer engines' way: each step builds its metadata outside the graph
    # with get_mla_metadata(...), and the layers, first call included, are
    # captured with num_splits=None; replays re-plan in that first call.
    case = make_case()

    def metadata():
        return fm.get_mla_metadata(case.cache_seqlens, S_Q * H_Q // H_KV, H_KV)[0]

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        layers(fm, case, metadata(), None)  # warm-up step, its own metadata
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    sched_meta = metadata()  # built outside the graph
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outs = layers(fm, case, sched_meta, None)
    del sched_meta
    replay_and_check(case, graph, outs)


@pytest.mark.parametrize("style", ["old", "new"])
def test_torch_compile(fm, style):
    case = make_case()

    def step(qs, caches, block_table, cache_seqlens):
        if style == "old":
            tsm, ns = fm.get_mla_metadata(cache_seqlens, S_Q * H_Q // H_KV, H_KV, H_Q)
        else:
            tsm, ns = fm.FlashMLASchedMeta(), None
        outs = []
        for q, k in zip(qs, caches):
            o, lse = fm.flash_mla_with_kvcache(q, k, block_table, cache_seqlens, 512, tsm, ns,
                                               causal=True)
            outs.append((o * 1, lse))  # some compiled work around the op
        return outs

    compiled = torch.compile(step, fullgraph=(style == "old"))
    for lengths in LENGTHS[:3]:
        case.refill(lengths)
        outs = compiled(case.qs, case.k_caches, case.block_table, case.cache_seqlens)
        for layer, (o, l) in enumerate(outs):
            check_close(o, l, *case.reference(layer), what=f"compiled {lengths} layer {layer}")


def test_torch_compile_decode_only_fullgraph(fm):
    case = make_case(causal=False)
    tsm, ns = fm.get_mla_metadata(case.cache_seqlens, S_Q * H_Q // H_KV, H_KV, H_Q)

    @torch.compile(fullgraph=True)
    def layer(q, k_cache, block_table, cache_seqlens, tsm, ns):
        o, lse = fm.flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, 512, tsm, ns)
        return o, lse, o.float().abs().amax()

    for lengths in LENGTHS[:2]:
        case.refill(lengths)
        tsm, ns = fm.get_mla_metadata(case.cache_seqlens, S_Q * H_Q // H_KV, H_KV, H_Q)
        o, lse, amax = layer(case.q, case.k_cache, case.block_table, case.cache_seqlens, tsm, ns)
        check_close(o, lse, *case.reference(), what=f"compiled {lengths}")
        assert float(amax) == float(o.float().abs().amax())


def test_opcheck():
    import openmla  # noqa: F401
    case = Case(3, 2, 16, 1, [100, 0, 700], torch.bfloat16, causal=True)
    tsm, ns = torch.ops.openmla.plan(case.cache_seqlens, 2, 16, 1, case.max_blocks)
    torch.library.opcheck(torch.ops.openmla.plan.default,
                          (case.cache_seqlens, 2, 16, 1, case.max_blocks),
                          test_utils=("test_schema", "test_faketensor"))
    torch.library.opcheck(torch.ops.openmla.dense_decode.default,
                          (case.q, case.k_cache, case.block_table, case.cache_seqlens, tsm,
                           0.05, True),
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))
