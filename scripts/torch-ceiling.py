#!/usr/bin/env python3
"""The bf16 tensor ceiling the way ANCHORS.md's FlashMLA run measured it
(torch.matmul, 8192^3, random data), three ways, to set beside
openmla-bench's cuBLAS ceiling in the same call (bench/NOTES.md, 2026-12-07):
timed one by one after a warm-up (20 and 100 calls, CUDA events, median) and a
wall-clock loop of 50. Needs PyTorch with CUDA (the GPU machine has it)."""
import statistics
import time

import torch

n = 8192
a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
for reps in (20, 100):
    for _ in range(5):
        c = a @ b
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        c = a @ b
        e.record()
        ts.append((s, e))
    torch.cuda.synchronize()
    ms = statistics.median(s.elapsed_time(e) for s, e in ts)
    print("torch.matmul, %d timed one by one: median %.3f ms = %.1f TFLOP/s" % (reps, ms, 2 * n**3 / (ms * 1e-3) / 1e12))
torch.cuda.synchronize()
t = time.perf_counter()
for _ in range(50):
    c = a @ b
torch.cuda.synchronize()
dt = (time.perf_counter() - t) / 50
print("torch.matmul, 50 in a loop, wall clock: %.3f ms = %.1f TFLOP/s" % (dt * 1e3, 2 * n**3 / dt / 1e12))
print("torch", torch.__version__, torch.cuda.get_device_name())
