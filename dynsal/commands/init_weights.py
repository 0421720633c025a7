"""Initialise a two-stream net (stsmax, stsconv, early, late) from SSNet and TSNet caffemodels.

The spatial stream takes the SSNet weights, the temporal stream (`*_b` layers) the TSNet weights,
the head the --head model, and `conv_fuse` starts as the mean of both streams (see
`dynsal.init_weights`).

Example:
  dynsal init-weights --net stsconv --spatial ssnet.caffemodel --temporal tsnet.caffemodel -o init.caffemodel
"""
from __future__ import annotations

import argparse

from dynsal.init_weights import HEADS, write_two_stream_init


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--net", required=True, help="two-stream zoo net: stsmax, stsconv, early or late")
    parser.add_argument("--spatial", required=True, help="SSNet caffemodel (frames)")
    parser.add_argument("--temporal", required=True, help="TSNet caffemodel (flow images)")
    parser.add_argument("--head", default="spatial", choices=HEADS, help="where the layers after the fusion "
                        "come from (default: spatial)")
    parser.add_argument("-o", "--output", required=True, help="caffemodel to write")


def run(args: argparse.Namespace) -> int:
    weights = write_two_stream_init(args.net, args.spatial, args.temporal, args.output, args.head)
    print(f"wrote {args.output}: {len(weights)} layers with weights for {args.net}")
    return 0
