"""`dynsal info` on every kind of Caffe file, and its errors."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from dynsal import zoo
from dynsal.caffe import hdf5, io
from dynsal.caffe.caffemodel import attach_blobs
from dynsal.caffe.graph import build_graph
from dynsal.caffe.schema import pb
from dynsal.caffe.shapes import infer_shapes
from dynsal.cli import main


def _weights(net, **overrides):
    _, params = infer_shapes(build_graph(net))
    weights = {k: [np.zeros(s, np.float32) for s in v] for k, v in params.items() if v}
    weights.update(overrides)
    return weights


def test_info_net_and_matching_caffemodel(tmp_path, capsys):
    net = zoo.deploy("ssnet", (1, 3, 48, 64))
    io.write_text(net, tmp_path / "net.prototxt")
    io.write_binary(attach_blobs(net, _weights(net)), tmp_path / "m.caffemodel")
    assert main(["info", str(tmp_path / "net.prototxt"), str(tmp_path / "m.caffemodel")]) == 0
    out = capsys.readouterr().out
    assert "deconv1 (1, 1, 48, 64)" in out and "10 layers with weights match" in out
    assert main(["info", str(tmp_path / "m.caffemodel")]) == 0
    assert "conv1" in capsys.readouterr().out


def test_info_lists_mismatching_layers(tmp_path, capsys):
    net = zoo.deploy("ssnet", (1, 3, 48, 64))
    io.write_text(net, tmp_path / "net.prototxt")
    weights = _weights(net, conv3=[np.zeros((512, 256, 5, 5), np.float32), np.zeros(512, np.float32)])
    del weights["deconv1"]  # the layer stays, without blobs: Caffe calls that incompatible too
    model = attach_blobs(net, weights)
    del model.layer[[layer.name for layer in model.layer].index("conv9")]
    io.write_binary(model, tmp_path / "m.caffemodel")
    assert main(["info", str(tmp_path / "net.prototxt"), str(tmp_path / "m.caffemodel")]) == 1
    out = capsys.readouterr().out
    assert "layer 'conv3': blob 0: caffemodel (512, 256, 5, 5) vs net (512, 256, 3, 3)" in out
    assert "layer 'conv9': not in the caffemodel" in out
    assert "layer 'deconv1': the caffemodel has 0 blobs, the net expects 1" in out


def test_info_on_hdf5_snapshot_files(tmp_path, capsys):
    """`.caffemodel.h5` / `.solverstate.h5` (snapshot_format HDF5) are described like their binary twins,
    and output into a closed pipe (`| head`) ends quietly."""
    net = zoo.deploy("ssnet", (1, 3, 48, 64))
    io.write_text(net, tmp_path / "net.prototxt")
    hdf5.write_weights(tmp_path / "m.caffemodel.h5", [layer.name for layer in net.layer], _weights(net))
    assert main(["info", str(tmp_path / "net.prototxt"), str(tmp_path / "m.caffemodel.h5")]) == 0
    assert "10 layers with weights match" in capsys.readouterr().out
    hdf5.write_solverstate(tmp_path / "s.solverstate.h5", pb.SolverState(iter=7, learned_net="m.caffemodel.h5"))
    assert main(["info", str(tmp_path / "s.solverstate.h5")]) == 0
    assert "iter: 7" in capsys.readouterr().out
    (tmp_path / "bad.caffemodel.h5").write_text("not HDF5")
    assert main(["info", str(tmp_path / "bad.caffemodel.h5")]) == 1
    assert "bad.caffemodel.h5: not a readable HDF5 caffemodel" in capsys.readouterr().err
    reader_gone = subprocess.Popen([sys.executable, "-m", "dynsal", "info", str(tmp_path / "m.caffemodel.h5")],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader_gone.stdout.close()  # like `| head` that has stopped reading: the writes meet a closed pipe
    assert reader_gone.wait() == 0 and reader_gone.stderr.read() == b""


def test_info_input_shape_override(tmp_path, capsys):
    io.write_text(zoo.deploy("tsnet"), tmp_path / "net.prototxt")
    assert main(["info", "--input-shape", "data1=2,3,100,140", str(tmp_path / "net.prototxt")]) == 0
    assert "deconv1 (2, 1, 100, 140)" in capsys.readouterr().out


def test_info_solver_solverstate_and_mean(tmp_path, capsys):
    io.write_text(zoo.solver("ssnet", "n.prototxt", "snap/ssnet"), tmp_path / "solver.prototxt")
    assert main(["info", str(tmp_path / "solver.prototxt")]) == 0
    assert "base_lr: 1.3e-07" in capsys.readouterr().out
    state = pb.SolverState(iter=7, learned_net="x.caffemodel")
    io.write_binary(state, tmp_path / "x.solverstate")
    assert main(["info", str(tmp_path / "x.solverstate")]) == 0
    assert "iter: 7" in capsys.readouterr().out
    io.write_mean_file(np.full((3, 2, 2), 5, np.float32), tmp_path / "mean.binaryproto")
    assert main(["info", str(tmp_path / "mean.binaryproto")]) == 0
    assert "per-channel mean 5.000, 5.000, 5.000" in capsys.readouterr().out


def test_info_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.prototxt"
    bad.write_text('layer {\n  name: "x"\n  bottom "y"\n}\n')
    assert main(["info", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"dynsal info: error: {bad}:3:") and "\n" not in err
    cut = tmp_path / "cut.caffemodel"
    cut.write_bytes(b"\x0a\xff\xff\x03abc")  # a name field announcing 65535 bytes, holding 3
    assert main(["info", str(cut)]) == 1
    assert f"{cut}: not a readable caffemodel" in capsys.readouterr().err


def test_cli_did_you_mean(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["info", "--phaze", "TEST", "x"])
    assert exc.value.code == 2
    assert "did you mean --phase" in capsys.readouterr().err


def test_info_on_a_file_that_is_no_caffe_file_says_what_it_reads(tmp_path, capsys):
    (tmp_path / "x.json").write_text('{"net": "stsconv"}\n')
    assert main(["info", str(tmp_path / "x.json")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "x.json: not a Caffe file; dynsal info reads a net or solver prototxt" in err
    (tmp_path / "bad.prototxt").write_text('layer { name: "a" type: "ReLU" \n bottom: \n')
    assert main(["info", str(tmp_path / "bad.prototxt")]) == 1
    assert "bad.prototxt:" in capsys.readouterr().err  # a prototxt keeps its parser's line and column
