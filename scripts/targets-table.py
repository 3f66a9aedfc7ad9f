#!/usr/bin/env python3
"""Issue 3's target table from an openmla-bench JSON (bench/results/*.json).

    scripts/targets-table.py bench/results/<run>.json [more.json ...]

One markdown row a target: the run's figure, the target, FlashMLA's figure on
the H100 (../shared/ANCHORS.md) and whether it is met; then fp16 against bf16
and the reference check. With several files, one figure column each. The SM
clock column (median MHz while the case was timed) appears when the JSON has
it (openmla-bench from eaf6f27 on).
"""
import json
import sys

# case, what is measured, target (a percentage floor or a time ceiling), FlashMLA on the H100
TARGETS = [
    ("b128_sq1_sk4096_hq128", "tensor", 76.0, 72.6),
    ("b128_sq1_sk16384_hq128", "tensor", 85.0, 81.4),
    ("b128_sq2_sk8192_hq128", "tensor", 89.0, 88.9),
    ("b128_sq2_sk4096_hq128_causal", "tensor", 86.0, 85.3),
    ("b128_sq1_sk4096_hq16", "hbm", 93.0, 90.9),
    ("b128_sq1_sk16384_hq16", "hbm", 96.0, 96.1),
    ("b128_sq1_sk4096_hq64", "hbm", 86.0, 81.8),
    ("b1_sq1_sk4096_hq128", "us", 14.0, 28.8),
    ("b1_sq1_sk32768_hq128", "us", 20.0, 39.5),
    ("b8_sq1_sk1024_hq16", "us", 8.0, 15.6),
]


def figure(case, what):
    if what == "tensor":
        return case["pct_tensor"], "%.1f%% tensor" % case["pct_tensor"]
    if what == "hbm":
        return case["pct_hbm"], "%.1f%% HBM" % case["pct_hbm"]
    return case["us"], "%.1f µs" % case["us"]


def met(value, what, target):
    return value <= target if what == "us" else value >= target


def main(paths):
    runs = []
    for p in paths:
        with open(p) as f:
            d = json.load(f)
        runs.append((p, d, {c["name"]: c for c in d["cases"]}))
    head = " | ".join("%s %s" % (d.get("device", "?"), d.get("commit", "?")) for _, d, _ in runs)
    print("| case | %s | target | FlashMLA (H100) | met |" % head)
    print("|---|%s---|---|---|" % ("---|" * len(runs)))
    for name, what, target, flash in TARGETS:
        cells, oks = [], []
        for _, _, cases in runs:
            c = cases.get(name)
            if c is None or c.get("us") is None:
                cells.append("-")
                continue
            v, text = figure(c, what)
            clocks = c.get("clocks")
            if clocks:
                text += " (%d MHz)" % clocks["sm_mhz_median"]
            cells.append(text + ("" if c.get("pass") is not False else " FAIL"))
            oks.append(met(v, what, target))
        unit = "≤ %g µs" % target if what == "us" else "≥ %g%%" % target
        flash_text = "%g µs" % flash if what == "us" else "%g%%" % flash
        verdict = "/".join("yes" if ok else "no" for ok in oks) or "-"
        print("| %s | %s | %s | %s | %s |" % (name, " | ".join(cells), unit, flash_text, verdict))
    for p, d, cases in runs:
        pairs = [(n[: -len("_fp16")], n) for n in cases if n.endswith("_fp16")]
        for bf, fp in pairs:
            if bf in cases and cases[bf].get("us") and cases[fp].get("us"):
                print("fp16 %s: %.1f µs vs bf16 %.1f (%+.1f%%; target within 5%%) [%s]"
                      % (bf, cases[fp]["us"], cases[bf]["us"], 100 * (cases[fp]["us"] / cases[bf]["us"] - 1), p))
        checked = [c for c in cases.values() if c.get("pass") is not None]
        passed = sum(1 for c in checked if c["pass"])
        print("reference check: %d of %d cases passed (%d not checked) [%s]"
              % (passed, len(checked), len(cases) - len(checked), p))
        cl = d.get("ceilings", {})
        print("ceilings: %.0f GB/s, bf16 %.1f TFLOP/s [%s]" % (cl.get("hbm_gbps", 0), cl.get("bf16_tflops", 0), p))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
