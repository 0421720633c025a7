"""Issue 13 for `dynsal eval`: a decompression-bomb PNG is refused before it is decoded, and reports are never
written on or inside the folders being evaluated. One line, exit status 1, nothing touched."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from dynsal.cli import main
from tests.reliability.predict_setup import snapshot


def bomb_png(path, width: int, height: int) -> None:
    """A grey PNG of width × height black pixels: a few hundred KB that decode to width × height bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    rows = b"\0" * (width + 1) * 500  # 500 rows: filter byte + pixels each
    data = b"".join(packer.compress(rows) for _ in range(height // 500)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def dataset(root):
    """pred/clip/0001.png and gt/clip/maps/0001.png, small and valid."""
    rng = np.random.default_rng(0)
    for folder in (root / "pred" / "clip", root / "gt" / "clip" / "maps"):
        folder.mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (24, 32), dtype=np.uint8)).save(folder / "0001.png")
    return root / "pred", root / "gt"


def evaluate(capsys, *args):
    status = main(["eval", *args, "--metrics", "cc", "--no-progress"])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("side", ["prediction", "ground truth"])
def test_a_decompression_bomb_is_refused_before_decoding(tmp_path, capsys, side):
    pred, gt = dataset(tmp_path)
    bomb = pred / "clip" / "0002.png" if side == "prediction" else gt / "clip" / "maps" / "0002.png"
    (gt / "clip" / "maps" / "0002.png" if side == "prediction" else pred / "clip" / "0002.png").write_bytes(
        (pred / "clip" / "0001.png").read_bytes())
    bomb_png(bomb, 12000, 12000)  # 144 megapixels in 140 KB
    assert bomb.stat().st_size < 200_000
    before = snapshot(tmp_path)
    status, out, err = evaluate(capsys, str(pred), str(gt))
    assert status == 1 and err == (f"dynsal eval: error: {bomb}: too large to be a saliency map (Image size "
                                   "(144000000 pixels) exceeds limit of 89478485 pixels); resize it, or raise "
                                   "PIL.Image.MAX_IMAGE_PIXELS in Python if it is genuine\n")
    assert snapshot(tmp_path) == before


def test_past_twice_the_limit_too(tmp_path, capsys, monkeypatch):
    """PIL raises an error (not a warning) past twice its limit: the same one line."""
    pred, gt = dataset(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 24 × 32 = 768 pixels > 2 × 100
    status, out, err = evaluate(capsys, str(pred), str(gt))
    assert status == 1 and len(err.splitlines()) == 1 and err.startswith(f"dynsal eval: error: {tmp_path}")
    assert "0001.png: too large to be a saliency map (Image size (768 pixels) exceeds limit of 200 pixels)" in err


@pytest.mark.parametrize("option, place", [("--csv", "gt/scores.csv"), ("--json", "pred/clip/scores.json"),
                                           ("--markdown", "gt")])
def test_reports_are_never_written_into_the_evaluated_folders(tmp_path, capsys, option, place):
    pred, gt = dataset(tmp_path)
    before = snapshot(tmp_path)
    status, out, err = evaluate(capsys, str(pred), str(gt), option, str(tmp_path / place))
    folder = gt if place.startswith("gt") else pred
    assert status == 1 and err == (f"dynsal eval: error: {option} {tmp_path / place} would be written on or inside "
                                   f"{folder}, which is evaluated; write the report elsewhere\n")
    assert snapshot(tmp_path) == before


def test_two_reports_in_one_file_are_refused(tmp_path, capsys):
    pred, gt = dataset(tmp_path)
    status, out, err = evaluate(capsys, str(pred), str(gt), "--csv", str(tmp_path / "s"), "--json",
                                str(tmp_path / "s"))
    assert status == 1 and err == (f"dynsal eval: error: --csv and --json both name {tmp_path / 's'}; give each "
                                   "report its own file\n")
    assert not (tmp_path / "s").exists()
    assert evaluate(capsys, str(pred), str(gt), "--csv", str(tmp_path / "s.csv"))[0] == 0


def test_the_staging_folder_of_an_unfinished_prediction_is_not_a_video(tmp_path, capsys):
    pred, gt = dataset(tmp_path)
    (pred / ".other.partial").mkdir()
    (pred / ".other.partial" / "0001.png").write_bytes((pred / "clip" / "0001.png").read_bytes())
    status, out, err = evaluate(capsys, str(pred), str(gt))
    assert status == 0 and "1 video" in out, err
