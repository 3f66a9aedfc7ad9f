"""Test inputs, a float64 PyTorch reference and DESIGN.md section 6's comparison."""
import math
import random

import torch

D_QK = 576
D_V = 512
PAGE = 64
GARBAGE_BLOCK = 2147480000  # what FlashMLA's tests put in unused table entries


class Case:
    """A paged decoding problem: NaN in every unused cache slot, garbage table tails.

    ``refill`` rewrites every tensor in place (new lengths, new table, new
    cache contents, new q), as a CUDA-graph replay test needs.
    """

    def __init__(self, b, s_q, h_q, h_kv, seqlens, dtype, causal=False, num_layers=1,
                 max_blocks_per_seq=None, spare_blocks=3, device="cuda"):
        self.b, self.s_q, self.h_q, self.h_kv = b, s_q, h_q, h_kv
        self.dtype, self.causal, self.device = dtype, causal, device
        need = max(1, max(math.ceil(s / PAGE) for s in seqlens))
        self.max_blocks = max_blocks_per_seq or need + 1
        assert self.max_blocks >= need
        self.num_blocks = b * self.max_blocks + spare_blocks
        self.block_table = torch.empty(b, self.max_blocks, dtype=torch.int32, device=device)
        self.cache_seqlens = torch.empty(b, dtype=torch.int32, device=device)
        self.k_caches = [torch.empty(self.num_blocks, PAGE, h_kv, D_QK, dtype=dtype, device=device)
                         for _ in range(num_layers)]
        self.qs = [torch.empty(b, s_q, h_q, D_QK, dtype=dtype, device=device)
                   for _ in range(num_layers)]
        self.refill(seqlens)

    @property
    def q(self):
        return self.qs[0]

    @property
    def k_cache(self):
        return self.k_caches[0]

    @property
    def num_q_tokens_per_head_k(self):
        return self.s_q * self.h_q // self.h_kv

    def refill(self, seqlens):
        assert len(seqlens) == self.b
        self.seqlens = list(seqlens)
        perm = torch.randperm(self.num_blocks, device=self.device)[: self.b * self.max_blocks]
        table = perm.view(self.b, self.max_blocks).to(torch.int32)
        used = torch.zeros(self.num_blocks, PAGE, dtype=torch.bool, device=self.device)
        for r, s in enumerate(self.seqlens):
            nb = math.ceil(s / PAGE)
            table[r, nb:] = GARBAGE_BLOCK
            if nb:
                tok = torch.arange(nb * PAGE, device=self.device) < s
                used[table[r, :nb].long()] = tok.view(nb, PAGE)
        self.block_table.copy_(table)
        self.cache_seqlens.copy_(torch.tensor(self.seqlens, dtype=torch.int32))
        for k in self.k_caches:
            k.copy_((torch.randn(k.shape, device=self.device) * 0.1).clamp(-1, 1))  # FlashMLA's recipe
            k[~used] = float("nan")
        for q in self.qs:
            q.copy_((torch.randn(q.shape, device=self.device) * 0.1).clamp(-1, 1))

    def reference(self, layer=0, softmax_scale=None):
        return reference_decode(self.qs[layer], self.k_caches[layer], self.block_table,
                                self.seqlens, self.causal, softmax_scale)


def reference_decode(q, k_cache, block_table, seqlens, causal, softmax_scale=None):
    """DESIGN.md section 2 in float64: (out [b,s_q,h_q,512], lse [b,h_q,s_q])."""
    b, s_q, h_q, d = q.shape
    h_kv = k_cache.shape[2]
    group = h_q // h_kv
    scale = softmax_scale if softmax_scale is not None else d ** -0.5
    out = torch.zeros(b, s_q, h_q, D_V, dtype=torch.float64, device=q.device)
    lse = torch.full((b, h_q, s_q), math.inf, dtype=torch.float64, device=q.device)
    for r in range(b):
        L = int(seqlens[r])
        if L == 0:
            continue
        nb = math.ceil(L / PAGE)
        k = k_cache[block_table[r, :nb].long()].reshape(nb * PAGE, h_kv, d)[:L].double()
        qr = q[r].double().view(s_q, h_kv, group, d)
        scores = torch.einsum("sgrd,lgd->grsl", qr, k) * scale  # [h_kv, group, s_q, L]
        if causal:
            i = torch.arange(s_q, device=q.device)[:, None]
            j = torch.arange(L, device=q.device)[None, :]
            scores = scores.masked_fill(~(j <= L - s_q + i), -math.inf)
        m = torch.logsumexp(scores, dim=-1)  # [h_kv, group, s_q]
        valid = torch.isfinite(m)
        p = torch.exp(scores - torch.where(valid, m, 0)[..., None])
        p = torch.where(valid[..., None], p, 0)
        o = torch.einsum("grsl,lgd->sgrd", p, k[..., :D_V])  # [s_q, h_kv, group, 512]
        out[r] = o.reshape(s_q, h_q, D_V)
        lse[r] = torch.where(valid, m, math.inf).reshape(h_q, s_q)
    return out, lse


def check_close(out, lse, ref_out, ref_lse, what=""):
    """FlashMLA's tolerances (DESIGN.md section 6). NaN never passes."""
    assert out.shape == ref_out.shape, f"{what} out shape {tuple(out.shape)} != {tuple(ref_out.shape)}"
    assert lse.shape == ref_lse.shape, f"{what} lse shape {tuple(lse.shape)} != {tuple(ref_lse.shape)}"
    assert lse.dtype == torch.float32, f"{what} lse dtype {lse.dtype}"
    o = out.double()
    n_nan = int(torch.isnan(o).sum())
    assert n_nan == 0, f"{what} out has {n_nan} NaN (unwritten or poisoned) of {o.numel()}"
    err = (o - ref_out).abs()
    tol = 8e-4 + 2.01 / 128 * ref_out.abs()
    bad = err > tol
    if bad.any():
        idx = tuple(int(i) for i in bad.nonzero()[0])
        raise AssertionError(f"{what} out[{idx}] = {float(o[idx])} vs reference {float(ref_out[idx])}; "
                             f"{int(bad.sum())} elements beyond tolerance, max abs err "
                             f"{float(err.max())}")
    denom = float((o * o + ref_out * ref_out).sum())
    if denom > 0:
        cos_diff = 1 - 2 * float((o * ref_out).sum()) / denom
        assert cos_diff <= 5e-6, f"{what} out cosine distance {cos_diff} > 5e-6"

    l = lse.double()
    assert not torch.isnan(l).any(), f"{what} lse has NaN"
    ref_inf = torch.isinf(ref_lse)
    got_inf = torch.isinf(l)
    if not torch.equal(ref_inf, got_inf) or not bool((l[ref_inf] > 0).all()):
        idx = tuple(int(i) for i in (ref_inf != got_inf).nonzero()[0]) if not torch.equal(
            ref_inf, got_inf) else None
        raise AssertionError(f"{what} lse +inf pattern differs from the reference (first at {idx})")
    fin = ~ref_inf
    lerr = (l[fin] - ref_lse[fin]).abs()
    ltol = 1e-6 + 8.01 / 65536 * ref_lse[fin].abs()
    if (lerr > ltol).any():
        raise AssertionError(f"{what} lse beyond tolerance: max abs err {float(lerr.max())}")


def poison_allocator(*shapes_dtypes, device="cuda"):
    """Leaves NaN in blocks the caching allocator will hand out next.

    Outputs are allocated inside the op with torch.empty, so they cannot be
    poisoned directly; freeing NaN-filled tensors of the same sizes just
    before the call makes the allocator reuse that memory, so an element the
    kernels never write shows up as NaN.
    """
    for shape, dtype in shapes_dtypes:
        t = torch.full(shape, float("nan"), dtype=dtype, device=device)
        del t


def poison_for(case):
    poison_allocator(((case.b, case.s_q, case.h_q, D_V), case.dtype),
                     ((case.b, case.h_q, case.s_q), torch.float32))


def varlen(b, choices=(20, 140, 4096, 0), rng=None):
    """b lengths cycling through `choices` (shuffled), so every case has each."""
    rng = rng or random.Random(0)
    lens = [choices[i % len(choices)] for i in range(b)]
    rng.shuffle(lens)
    return lens
