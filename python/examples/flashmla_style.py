"""A decoding step written for DeepSeek's FlashMLA, run on openmla unchanged.

Nothing below names openmla: `import flash_mla` is served by openmla's
package. The script builds a paged bf16 KV cache per layer, calls
get_mla_metadata once, flash_mla_with_kvcache per layer, and checks every
layer against a float64 PyTorch reference with FlashMLA's test tolerances.

    python python/examples/flashmla_style.py        # exit code 0: all layers match
"""
import math
import sys

import torch

import flash_mla
from flash_mla import flash_mla_with_kvcache, get_mla_metadata


def reference(q, blocked_k, block_table, cache_seqlens, dv, causal):
    """Attention over the paged cache in float64: (out, lse)."""
    b, s_q, h_q, d = q.shape
    block_size, h_kv = blocked_k.shape[1], blocked_k.shape[2]
    out = torch.zeros(b, s_q, h_q, dv, dtype=torch.float64, device=q.device)
    lse = torch.full((b, h_q, s_q), math.inf, dtype=torch.float64, device=q.device)
    for i in range(b):
        n = int(cache_seqlens[i])
        if n == 0:
            continue
        blocks = block_table[i, : math.ceil(n / block_size)].long()
        kv = blocked_k[blocks].reshape(-1, h_kv, d)[:n].double()  # [n, h_kv, d]
        qi = q[i].double().view(s_q, h_kv, h_q // h_kv, d)
        scores = torch.einsum("sgrd,ngd->grsn", qi, kv) / math.sqrt(d)  # [h_kv, h_q/h_kv, s_q, n]
        if causal:
            mask = torch.arange(n, device=q.device)[None, :] <= (
                n - s_q + torch.arange(s_q, device=q.device)[:, None])
            scores = scores.masked_fill(~mask, -math.inf)
        l = torch.logsumexp(scores, dim=-1)
        p = torch.nan_to_num(torch.exp(scores - l[..., None]))
        out[i] = torch.einsum("grsn,ngd->sgrd", p, kv[..., :dv]).reshape(s_q, h_q, dv)
        lse[i] = l.masked_fill(torch.isneginf(l), math.inf).reshape(h_q, s_q)
    return out, lse


def close(out, lse, ref_out, ref_lse):
    o = out.double()
    if torch.isnan(o).any() or torch.isnan(lse).any():
        return False, "NaN in the result"
    if not ((o - ref_out).abs() <= 8e-4 + 2.01 / 128 * ref_out.abs()).all():
        return False, f"out max abs err {float((o - ref_out).abs().max()):.3g}"
    denom = float((o * o + ref_out * ref_out).sum())
    cos_diff = 1 - 2 * float((o * ref_out).sum()) / denom if denom > 0 else 0.0
    if cos_diff > 5e-6:
        return False, f"out cosine distance {cos_diff:.3g}"
    fin = torch.isfinite(ref_lse)
    if not torch.equal(fin, torch.isfinite(lse)):
        return False, "lse +inf pattern differs"
    lerr = (lse.double()[fin] - ref_lse[fin]).abs()
    if not (lerr <= 1e-6 + 8.01 / 65536 * ref_lse[fin].abs()).all():
        return False, f"lse max abs err {float(lerr.max()):.3g}"
    return True, f"out max abs err {float((o - ref_out).abs().max()):.2e}, cos diff {cos_diff:.1e}"


def main():
    if not torch.cuda.is_available():
        print("no GPU: this example needs CUDA")
        return 0
    torch.manual_seed(0)
    device = "cuda"
    b, s_q, h_q, h_kv = 32, 2, 128, 1  # DeepSeek-V3 with MTP: 2 query tokens per request
    d, dv, block_size, num_layers = 576, 512, 64, 4
    causal = True

    cache_seqlens = torch.randint(1, 4096, (b,), dtype=torch.int32, device=device)
    cache_seqlens[0] = 0  # a request with nothing cached yet
    max_seqlen_pad = math.ceil(int(cache_seqlens.max()) / 256) * 256
    block_table = torch.arange(b * max_seqlen_pad // block_size, dtype=torch.int32,
                               device=device).view(b, max_seqlen_pad // block_size)
    kv_caches = [torch.randn(block_table.numel(), block_size, h_kv, d, dtype=torch.bfloat16,
                             device=device) for _ in range(num_layers)]

    tile_scheduler_metadata, num_splits = get_mla_metadata(cache_seqlens, s_q * h_q // h_kv, h_kv)

    ok = True
    for i in range(num_layers):
        q_i = torch.randn(b, s_q, h_q, d, dtype=torch.bfloat16, device=device)
        o_i, lse_i = flash_mla_with_kvcache(
            q_i, kv_caches[i], block_table, cache_seqlens, dv,
            tile_scheduler_metadata, num_splits, causal=causal,
        )
        good, detail = close(o_i, lse_i, *reference(q_i, kv_caches[i], block_table,
                                                     cache_seqlens, dv, causal))
        print(f"layer {i}: {'ok' if good else 'MISMATCH'} ({detail})")
        ok &= good
    print(f"{flash_mla.__name__} from {flash_mla.__file__}: {'all layers match' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
