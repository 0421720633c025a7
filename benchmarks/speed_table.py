#!/usr/bin/env python3
"""README's speed table, generated from the benchmarks' JSON so it cannot drift from what was run.

Each entry below is one benchmark command; `--run` runs them (or those named) and stores each JSON
output in benchmarks/results/<name>.json with the command, the date and the machine's load; without
`--run` the table between README's markers is rewritten from the stored JSON, and `--check` only
says whether it is current (a test runs it).

    python benchmarks/speed_table.py --run [forward predict ...]   # measure, store, rewrite README
    python benchmarks/speed_table.py                               # rewrite README from stored JSON
    python benchmarks/speed_table.py --check                       # exit 1 when README differs
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Tuple

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
README = REPO / "README.md"
BEGIN = "<!-- speed table: made by benchmarks/speed_table.py from benchmarks/results/*.json; do not edit -->"
END = "<!-- end of speed table -->"
TORCHVISION_PYTHON = "/var/cache/dynsal/torchvision-venv/bin/python"

Row = Tuple[str, str]


@dataclass
class Entry:
    """One benchmark: its stored result's name, the command that makes it, and its table rows."""

    name: str
    command: str
    rows: Callable[[dict], List[Row]]


def _forward_rows(result: dict) -> List[Row]:
    rows, by_key = [], {(r["net"], r["engine"], r["precision"], r.get("batch", 1)): r for r in result["results"]}
    nets = {"ssnet": "SSNet", "stsconv": "STSConvNet"}
    machine = result.get("machine", {})
    cpu = f" on {machine['cpu']} ({machine['isa']})" if "cpu" in machine else ""
    for net, label in nets.items():
        for batch in result.get("batches", [1]):
            caffe = by_key.get((net, "caffe (oracle, OpenBLAS)", "fp32", batch))
            torch = by_key.get((net, "torch", "fp32", batch))
            if not (caffe and torch):
                continue
            figure = (f"{torch['frames_per_s_median']:.3g} vs {caffe['frames_per_s_median']:.3g} frames/s (median "
                      f"{torch['speedup_vs_caffe_median']:.2f}×, best-of {torch['speedup_vs_caffe']:.2f}×), max rel. "
                      f"Δ {torch['max_abs_dev_over_max_caffe']:.1e}")
            direct = by_key.get((net, "torch (direct convolution only)", "fp32", batch))
            if direct:
                figure += f"; direct convolution only {direct['speedup_vs_caffe_median']:.2f}×"
            bf16 = by_key.get((net, "torch", "bf16", batch))
            if bf16:
                figure += (f"; bf16 {bf16['speedup_vs_caffe_median']:.2f}× (Δ from fp32 "
                           f"{bf16['max_abs_dev_over_max_fp32']:.1e})")
            rows.append((f"{label} forward {result['size'].replace('x', '×')}, batch {batch}, torch fp32 vs Caffe{cpu}",
                         figure))
    return rows


def _predict_rows(result: dict) -> List[Row]:
    size = "×".join(str(v) for v in result["size"])
    ratio, stages = result["end_to_end_over_network_only"], result["stages"]
    return [(f"{result['net']} `dynsal predict` end to end vs network only on the same frames ({result['device']}, "
             f"{result['precision']}, {size})",
             f"{result['end_to_end_fps']['median']:.3g} vs {result['network_only_fps']['median']:.3g} frames/s "
             f"(median {100 * ratio['median']:.0f} %, best-of {100 * ratio['best']:.0f} %); the net "
             f"{100 * stages['net']['share']:.0f} % of the stages' time, flow {100 * stages['flow']['share']:.0f} %")]


def _train_rows(result: dict) -> List[Row]:
    torch, caffe = result.get("torch_cpu_fp32_iter_per_s"), result.get("caffe_iter_per_s")
    figure = f"{torch:.3g} vs {caffe:.3g} iterations/s ({torch / caffe:.2f}×)" if caffe else f"{torch:.3g} it/s"
    return [(f"{result.get('net', 'ssnet')} training, torch vs `caffe train` (CPU)", figure)]


def _metrics_rows(result: dict) -> List[Row]:
    rows = []
    for size, figures in result["sizes"].items():
        rows.append((f"metrics, full set without EMD, {size}", f"{figures['full_set_1_process']:.4g} frames/s "
                     "(1 process)"))
    return rows


def _flow_rows(result: dict) -> List[Row]:
    rows = []
    for size, methods in result["results"].items():
        parts = [f"{m} {v['flow_fps_one_thread']:.3g}" for m, v in methods.items() if "flow_fps_one_thread" in v]
        raft = methods.get("raft")
        if raft:
            parts.append(f"RAFT ({raft.get('weights', '')}, {raft.get('device', '')}) {raft['flow_fps']:.3g}")
        rows.append((f"optical flow {size}, frames/s (one OpenCV thread)", ", ".join(parts)))
    return rows


def _dataset_rows(result: dict) -> List[Row]:
    rows = []
    for backend, figures in result["results"].items():
        rows.append((f"dataset build ({backend.upper()}; {result['input']}), 1 / 2 workers",
                     f"{figures['workers_1']['frames_per_s']:.3g} / {figures['workers_2']['frames_per_s']:.3g} "
                     "frames/s"))
    return rows


def _denormal_rows(result: dict) -> List[Row]:
    rows = []
    for row in result["results"]:
        if "ratio_zoo_over_he" in row and row["input"] == "clip":
            rows.append((f"{row['net']} forward {result['size'].replace('x', '×')} on a decoded clip: zoo-initialised "
                         "vs He-scaled weights; FTZ/DAZ off vs on (zoo weights)",
                         f"{row['ratio_zoo_over_he']:.2f}× the time; {row['ratio_off_over_flush_zoo']:.2f}×"))
    return rows


ENTRIES = [
    Entry("forward", "python benchmarks/forward.py --repeats 3 --rounds 2 --direct",
          _forward_rows),
    Entry("predict", "python benchmarks/predict.py --frames 8", _predict_rows),
    Entry("train", "python benchmarks/train.py --iterations 5", _train_rows),
    Entry("metrics", "python benchmarks/metrics.py", _metrics_rows),
    Entry("flow", "python benchmarks/flow.py --seconds 2", _flow_rows),
    Entry("flow_raft", f"{TORCHVISION_PYTHON} benchmarks/flow.py --methods dis,raft --raft-device cpu --seconds 3",
          _flow_rows),
    Entry("dataset", "python benchmarks/dataset.py --frames 150", _dataset_rows),
    Entry("denormals", "python benchmarks/denormals.py", _denormal_rows),
]


def run(entry: Entry) -> dict:
    """Run one benchmark command from the repository root; returns its JSON with how it was made."""
    argv = shlex.split(entry.command)
    if argv[0] == "python":
        argv[0] = sys.executable
    load = os.getloadavg()[0]
    output = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
    return {"command": entry.command, "date": datetime.date.today().isoformat(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "load_average_before": round(load, 2), "result": json.loads(output)}


def table(stored: Dict[str, dict]) -> str:
    """The Markdown table (between the markers) for the stored results, in ENTRIES' order."""
    lines = [BEGIN, "", "| what | figure | command |", "|---|---|---|"]
    for entry in ENTRIES:
        if entry.name not in stored:
            continue
        record = stored[entry.name]
        for what, figure in entry.rows(record["result"]):
            lines.append(f"| {what} | {figure} | `{record['command']}` ({record['date']}, load "
                         f"{record['load_average_before']}) |")
    return "\n".join(lines + ["", END])


def stored_results() -> Dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(RESULTS.glob("*.json"))}


def readme_with_table(text: str, new_table: str) -> str:
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{README}: the speed table's markers are missing")
    before, rest = text.split(BEGIN, 1)
    return before + new_table + rest.split(END, 1)[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs="*", metavar="NAME", help="run these benchmarks (all when none named)")
    parser.add_argument("--check", action="store_true", help="exit 1 when README's table is not the generated one")
    args = parser.parse_args(argv)
    if args.run is not None:
        names = args.run or [e.name for e in ENTRIES]
        unknown = set(names) - {e.name for e in ENTRIES}
        if unknown:
            raise SystemExit(f"unknown benchmark(s) {', '.join(sorted(unknown))}; known: "
                             f"{', '.join(e.name for e in ENTRIES)}")
        RESULTS.mkdir(exist_ok=True)
        for entry in ENTRIES:
            if entry.name in names:
                print(f"running {entry.command}", file=sys.stderr)
                (RESULTS / f"{entry.name}.json").write_text(json.dumps(run(entry), indent=1) + "\n")
    text = README.read_text()
    updated = readme_with_table(text, table(stored_results()))
    if args.check:
        if updated != text:
            print("README's speed table differs from benchmarks/results; run python benchmarks/speed_table.py",
                  file=sys.stderr)
            return 1
        return 0
    README.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
