"""Training logs as records, from Caffe's glog output or dynsal's own JSON-lines log.

One record per (iteration, phase): `{"iteration": int, "phase": "train"|"test", "loss": float|None,
"lr": float|None, "outputs": {blob: value}}`. dynsal's trainer writes these as JSON lines; Caffe's
log lines (`caffe train` on stderr) are parsed into the same shape, so runs of both engines can be
compared on one plot. Caffe lines understood (solver.cpp / sgd_solver.cpp):

    Iteration 20 (3.1 iter/s, 6.4s/20 iters), loss = 0.693     (older Caffe: "Iteration 20, loss = 0.693")
    Iteration 20, lr = 0.01
    Train net output #0: loss = 0.693 (* 1 = 0.693 loss)
    Iteration 40, Testing net (#0)
    Test net output #0: loss = 0.71 (* 1 = 0.71 loss)
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Dict, Iterable, List

from dynsal.errors import FormatError
from dynsal.files import write_atomic

_TRAIN_LOSS = re.compile(r"\] Iteration (\d+)(?: \([^)]*\))?, loss = (\S+)")
_LR = re.compile(r"\] Iteration (\d+), lr = (\S+)")
_TRAIN_OUT = re.compile(r"\] +Train net output #\d+: (\S+) = (\S+)")
_TESTING = re.compile(r"\] Iteration (\d+), Testing net \(#(\d+)\)")
_TEST_OUT = re.compile(r"\] +Test net output #\d+: (\S+) = (\S+)")


def _record(records: Dict, iteration: int, phase: str) -> dict:
    key = (iteration, phase)
    if key not in records:
        records[key] = {"iteration": iteration, "phase": phase, "loss": None, "lr": None, "outputs": {}}
    return records[key]


def parse_caffe_log(lines: Iterable[str]) -> List[dict]:
    """Records from the lines of a Caffe training log, in (iteration, train before test) order."""
    records: Dict = {}
    current = None
    for line in lines:
        match = _TRAIN_LOSS.search(line)
        if match:
            current = _record(records, int(match.group(1)), "train")
            current["loss"] = float(match.group(2))
            continue
        match = _LR.search(line)
        if match:
            _record(records, int(match.group(1)), "train")["lr"] = float(match.group(2))
            continue
        match = _TESTING.search(line)
        if match:
            current = _record(records, int(match.group(1)), "test")
            continue
        match = _TRAIN_OUT.search(line) or _TEST_OUT.search(line)
        if match and current is not None:
            current["outputs"][match.group(1)] = float(match.group(2))
    return [records[k] for k in sorted(records, key=lambda k: (k[0], k[1] != "train"))]


def read_log(path) -> List[dict]:
    """Records of a dynsal JSON-lines log or a Caffe log (told apart by the first non-empty line).

    A torn last line of a JSON-lines log (a run killed while writing it, no newline at the end) is left out.

    Raises:
        FormatError: naming the file and line of a record that is not a training record.
    """
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        raise FormatError(f"{path}: cannot read the log ({exc.strerror})") from None
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if first.lstrip().startswith("{"):
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                records.append(_json_record(line, path, number))
            except FormatError:
                if number == len(lines) and not text.endswith("\n"):
                    break  # the torn last line of a killed run
                raise
        return records
    records = parse_caffe_log(lines)
    if not records:
        raise FormatError(f"{path}: no Caffe training lines found (is it the stderr of `caffe train`?)")
    return records


def _json_record(line: str, path, number: int) -> dict:
    """One record of a dynsal log line."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}:{number}: not a JSON-lines training log ({exc.msg})") from None
    if not (isinstance(record, dict) and isinstance(record.get("iteration"), int)
            and record.get("phase") in ("train", "test") and isinstance(record.get("outputs", {}), dict)
            and all(isinstance(record.get(k), (int, float, type(None))) for k in ("loss", "lr"))):
        raise FormatError(f"{path}:{number}: not a training record (iteration, phase train or test, numbers for "
                          "loss and lr, outputs)")
    record.setdefault("outputs", {})
    return record


def truncate_log(path: Path, iteration: int) -> None:
    """Keep the records of a JSON-lines training log before `iteration` (a resumed run writes the rest
    again); a torn last line is dropped. Rewritten atomically; nothing happens without a log."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return
    kept = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("iteration"), int) and record["iteration"] < iteration:
            kept.append(line + b"\n")
    write_atomic(path, b"".join(kept))
