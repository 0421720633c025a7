#!/usr/bin/env python3
"""The figures of benchmarks/gpu_check.sh's JSON files against issue 17's goals, as a Markdown table.

    python benchmarks/gpu_summary.py gpu_out

Goals: STSConvNet 240×320 bf16 at its best batch ≥ 1400 frames/s on an H200 (≥ 1000 on an H100) with
CC(bf16, fp32) ≥ 0.999; fp32 without TF32 ≥ 120; TF32 ≥ 500; `dynsal predict` end to end ≥ 70 % of
network only; training iterations/s on the GPU (fp32, bf16 autocast) against the CPU. A file that is
missing or not JSON (a step that failed or was cut by the time budget) is named as such.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional


def load(folder: Path, name: str) -> Optional[dict]:
    try:
        return json.loads((folder / name).read_text())
    except (OSError, ValueError):
        return None


def best(rows: List[dict], precision: str) -> Optional[dict]:
    rows = [r for r in rows if r.get("precision") == precision and r.get("engine") == "torch"]
    return max(rows, key=lambda r: r["frames_per_s"]) if rows else None


def forward_lines(rows: List[dict], gpu: str) -> List[str]:
    h200 = "H200" in gpu
    goals = {"bf16": 1400 if h200 else 1000, "tf32": 500, "fp32": 120}
    lines = []
    for precision, goal in goals.items():
        row = best(rows, precision)
        if row is None:
            lines.append(f"| STSConvNet {precision} ≥ {goal} frames/s | not measured | - |")
            continue
        figure = (f"{row['frames_per_s']:.1f} frames/s (median {row['frames_per_s_median']:.1f}), batch "
                  f"{row['batch']}, {row['mode']}")
        if precision != "fp32":
            figure += f"; CC {row['cc_fp32']:.5f}, max abs Δ {row['max_abs_dev_fp32']:.3g}"
        met = row["frames_per_s"] >= goal and (precision != "bf16" or row["cc_fp32"] >= 0.999)
        lines.append(f"| STSConvNet {precision} ≥ {goal} frames/s{' (H200)' if precision == 'bf16' and h200 else ''}"
                     f" | {figure} | {'yes' if met else 'no'} |")
    return lines


def predict_line(result: Optional[dict]) -> str:
    if result is None:
        return "| predict end to end ≥ 70 % of network only | not measured | - |"
    ratio = result["end_to_end_over_network_only"]
    shares = ", ".join(f"{stage} {value['share']:.0%}" for stage, value in result["stages"].items())
    return (f"| predict end to end ≥ 70 % of network only | {result['end_to_end_fps']['best']:.1f} vs "
            f"{result['network_only_fps']['best']:.1f} frames/s = {ratio['best']:.0%} (median {ratio['median']:.0%}); "
            f"stages: {shares} | {'yes' if ratio['median'] >= 0.7 else 'no'} |")


def train_line(result: Optional[dict]) -> str:
    if result is None:
        return "| training iterations/s, GPU vs CPU | not measured | - |"
    rates = ", ".join(f"{key[6:-11]} {value:.3g}" for key, value in result.items()
                      if key.startswith("torch_") and key.endswith("_iter_per_s"))
    return f"| training iterations/s ({result['net']} {result['size'][0]}×{result['size'][1]}) | {rates} | - |"


def main(argv=None) -> int:
    folder = Path((argv or sys.argv[1:] or ["gpu_out"])[0])
    eager, compiled = load(folder, "forward_eager.json"), load(folder, "forward_compiled.json")
    rows = (eager or {}).get("results", []) + (compiled or {}).get("results", [])
    gpu = ((eager or compiled or {}).get("machine") or {}).get("gpu") or "no GPU"
    print(f"## issue 17 goals on {gpu} (benchmarks/gpu_check.sh)\n")
    print("| goal | measured | met |\n|---|---|---|")
    for line in forward_lines(rows, gpu) + [predict_line(load(folder, "predict.json")),
                                            train_line(load(folder, "train.json"))]:
        print(line)
    missing = [name for name in ("forward_eager.json", "forward_compiled.json", "predict.json", "train.json",
                                 "profile.json", "flow.json") if load(folder, name) is None]
    if missing:
        print(f"\nno result in: {', '.join(missing)} (see log.txt)")
    profile = load(folder, "profile.json")
    if profile:
        print("\nper layer type (" + profile["time"] + "): "
              + ", ".join(f"{row['type']} {row['share']:.0%}" for row in profile["types"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
