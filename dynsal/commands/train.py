"""Train or fine-tune from a Caffe solver file, like `caffe train`.

With --engine caffe (or auto where pycaffe and the `caffe` tool are installed) real Caffe runs
(`caffe train`); with --engine torch dynsal's engine reproduces Caffe's solver semantics and writes
Caffe's snapshots (`<prefix>_iter_<N>.caffemodel` + `.solverstate`), a JSON-lines log
(`<prefix>_log.jsonl`) and the resolved solver (`<prefix>_solver.resolved.prototxt`).
Ctrl-C / SIGTERM snapshot and stop; SIGHUP snapshots and goes on.

Examples:
  dynsal train prototxt/ssnet_solver.prototxt
  dynsal train solver.prototxt --weights salnet.caffemodel           # fine-tune: copy by layer name
  dynsal train solver.prototxt --resume snapshots/ssnet_iter_5000.solverstate
  python scripts/train.py solver.prototxt --engine torch --device cuda
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from dynsal.caffe import io
from dynsal.engines import pick_engine
from dynsal.errors import DynsalError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("solver", help="solver prototxt")
    parser.add_argument("--weights", help="caffemodel(s) to start from, comma-separated (copied by layer name)")
    parser.add_argument("--resume", help="a .solverstate to continue from (iteration, history, lr schedule)")
    parser.add_argument("--engine", default="auto", choices=("auto", "torch", "caffe"))
    parser.add_argument("--device", default="cpu", help="torch engine: cpu, cuda or cuda:<i> (default cpu)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "tf32", "bf16", "fp16"))
    parser.add_argument("--gpu", help="caffe engine: GPU id(s) as `caffe train --gpu` takes them")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_caffe(args: argparse.Namespace) -> int:
    """Real `caffe train`, with its log passed through."""
    caffe = shutil.which("caffe")
    if caffe is None:
        raise DynsalError("the caffe engine needs Caffe's `caffe` tool on PATH; use --engine torch")
    if args.weights and args.resume:
        raise DynsalError("give --weights or --resume, not both (as caffe train)")
    command = [caffe, "train", f"--solver={args.solver}"]
    command += [f"--weights={args.weights}"] if args.weights else []
    command += [f"--snapshot={args.resume}"] if args.resume else []
    command += [f"--gpu={args.gpu}"] if args.gpu else []
    return subprocess.call(command, stdout=sys.stdout, stderr=sys.stderr)


def run(args: argparse.Namespace) -> int:
    solver_param = io.read_solver(args.solver)
    engine = pick_engine(args.engine)
    if engine == "caffe" and shutil.which("caffe") is None and args.engine == "auto":
        engine = "torch"
    if engine == "caffe":
        return run_caffe(args)
    if args.weights and args.resume:
        raise DynsalError("give --weights or --resume, not both (as caffe train)")
    from dynsal.engines.torch.solver import TorchSolver

    prefix = Path(solver_param.snapshot_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    io.write_text(solver_param, Path(f"{prefix}_solver.resolved.prototxt"))
    solver = TorchSolver(solver_param, Path(args.solver).resolve().parent, device=args.device,
                         precision=args.precision, progress=not args.no_progress)
    if args.weights:
        solver.load_weights(args.weights)
    snapshot = solver.solve(resume=args.resume)
    print(f"finished at iteration {solver.iter}; last snapshot: {snapshot}; log: {solver.log_path}")
    return 0
