"""Describe a Caffe file: net prototxt, caffemodel, solver prototxt, solverstate or mean file.

For a net: layers, blob shapes, parameter shapes and counts, inputs and outputs (TEST phase by
default). Given a net and a caffemodel, also whether they fit (exit status 1 when they do not,
listing the mismatching layers).

Examples:
  dynsal info prototxt/stsconv_deploy.prototxt
  dynsal info prototxt/stsconv_deploy.prototxt stsconvnet.caffemodel
  dynsal info --phase TRAIN prototxt/ssnet_train_val_lmdb.prototxt
  dynsal info --input-shape data1=1,3,480,640 prototxt/ssnet_deploy.prototxt
"""
from __future__ import annotations

import argparse
import math

import numpy as np

from dynsal.caffe import io
from dynsal.caffe.blobs import blob_shape
from dynsal.caffe.caffemodel import match_weights
from dynsal.caffe.graph import build_graph
from dynsal.caffe.shapes import infer_shapes
from dynsal.errors import DynsalError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="prototxt, caffemodel, solver prototxt, solverstate or mean binaryproto")
    parser.add_argument("weights", nargs="?", help="a caffemodel to check against the net in FILE")
    parser.add_argument("--phase", default="TEST", choices=("TRAIN", "TEST"), help="net phase (default TEST)")
    parser.add_argument("--input-shape", action="append", default=[], metavar="BLOB=N,C,H,W",
                        help="override an input blob's shape (repeatable)")


def parse_input_shapes(items) -> dict:
    shapes = {}
    for item in items:
        blob, sep, dims = item.partition("=")
        try:
            shapes[blob] = tuple(int(d) for d in dims.split(","))
        except ValueError:
            sep = ""
        if not sep or not blob:
            raise DynsalError(f"--input-shape {item!r}: write it as BLOB=N,C,H,W")
    return shapes


def _count(shapes) -> int:
    return sum(math.prod(s) for s in shapes)


def describe_net(path: str, phase: str, input_shapes: dict):
    net = io.read_net(path)
    graph = build_graph(net, phase=phase)
    blobs, params = infer_shapes(graph, input_shapes)
    print(f"net {graph.name or '(unnamed)'}  ({path}, phase {phase})")
    print(f"{'layer':24s} {'type':16s} {'tops (shape)':48s} params")
    for glayer in graph.layers:
        layer = glayer.param
        tops = ", ".join(f"{t} {tuple(blobs[t])}" for t in layer.top)
        shapes = params[layer.name]
        desc = " ".join(str(tuple(s)) for s in shapes) + (f" = {_count(shapes):,}" if shapes else "")
        print(f"{layer.name:24s} {layer.type:16s} {tops:48s} {desc}")
    print(f"inputs: {', '.join(f'{b} {blobs[b]}' for b in graph.inputs) or '(data layers)'}")
    print(f"outputs: {', '.join(f'{b} {blobs[b]}' for b in graph.outputs)}")
    print(f"learnable values: {_count(s for shapes in params.values() for s in shapes):,}")
    return params


def describe_caffemodel(path: str) -> None:
    model = io.read_net(path)
    print(f"caffemodel {model.name or '(unnamed)'}  ({path})")
    total = 0
    for layer in model.layer:
        shapes = [blob_shape(b) for b in layer.blobs]
        total += _count(shapes)
        if shapes:
            print(f"{layer.name:24s} {layer.type:16s} " + " ".join(str(s) for s in shapes) + f" = {_count(shapes):,}")
    print(f"layers: {len(model.layer)}, with weights: {sum(1 for la in model.layer if len(la.blobs))}, "
          f"values: {total:,}")


def describe_solver(path: str) -> None:
    solver = io.read_solver(path)
    print(f"solver ({path})")
    for field, value in solver.ListFields():
        shown = value if field.message_type is None else "(inline net)"
        if field.type == field.TYPE_FLOAT:
            shown = str(np.float32(value))  # shortest text that reads back as the same float32
        elif field.enum_type is not None:
            shown = field.enum_type.values_by_number[value].name
        print(f"  {field.name}: {shown}")


def describe_solverstate(path: str) -> None:
    state = io.read_solverstate(path)
    print(f"solverstate ({path})")
    print(f"  iter: {state.iter}\n  learned_net: {state.learned_net}\n  current_step: {state.current_step}")
    print(f"  history blobs: {len(state.history)}: " + " ".join(str(blob_shape(b)) for b in state.history))


def describe_mean(path: str) -> None:
    mean = io.read_mean_file(path)
    per_channel = ", ".join(f"{v:.3f}" for v in np.asarray(mean, np.float64).mean(axis=(1, 2)))
    print(f"mean file ({path}): shape {mean.shape} (C, H, W), per-channel mean {per_channel}")


def run(args: argparse.Namespace) -> int:
    kind = io.file_kind(args.file)
    if args.weights and kind != "net":
        raise DynsalError(f"{args.file}: a caffemodel can only be checked against a net prototxt")
    if kind != "net":
        {"caffemodel": describe_caffemodel, "solver": describe_solver, "solverstate": describe_solverstate,
         "mean": describe_mean}[kind](args.file)
        return 0
    params = describe_net(args.file, args.phase, parse_input_shapes(args.input_shape))
    if not args.weights:
        return 0
    report = match_weights(params, io.read_net(args.weights))
    if report.unused:
        print(f"caffemodel layers the net does not use: {', '.join(report.unused)}")
    if report.ok:
        print(f"{args.weights} fits {args.file}: {len(report.matched)} layers with weights match")
        return 0
    print(f"{args.weights} does not fit {args.file}:")
    for line in report.lines():
        print(f"  {line}")
    return 1

