"""`--resume latest` (dynsal.training.snapshots.latest_snapshot): the newest complete snapshot of a prefix."""
from __future__ import annotations

from dynsal.caffe import io
from dynsal.caffe.schema import pb
from dynsal.training.snapshots import latest_snapshot


def snapshot(folder, prefix, iteration, model=True):
    state = folder / f"{prefix}_iter_{iteration}.solverstate"
    if model:
        (folder / f"{prefix}_iter_{iteration}.caffemodel").write_bytes(b"")
    io.write_solverstate(pb.SolverState(iter=iteration, learned_net=f"{prefix}_iter_{iteration}.caffemodel"), state)
    return state


def test_the_newest_complete_snapshot_of_the_prefix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "snap").mkdir()
    assert latest_snapshot("snap/net") is None
    snapshot(tmp_path / "snap", "net", 4)
    expected = snapshot(tmp_path / "snap", "net", 12)
    snapshot(tmp_path / "snap", "net", 20, model=False)  # its caffemodel never written
    (tmp_path / "snap" / "net_iter_30.solverstate").write_bytes(b"\x08")  # cut short
    snapshot(tmp_path / "snap", "net_b", 40)  # another prefix
    snapshot(tmp_path / "snap", "other", 50)
    assert latest_snapshot("snap/net") == expected.relative_to(tmp_path)
