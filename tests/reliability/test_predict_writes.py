"""Issue 13, defect 2 (checked writes): a write that fails — PNG, video, maps.npz, settings.json — ends that
input with one line naming the file; nothing of it is kept, nothing looks complete, other inputs still run.

The full disks are real: a tmpfs a few pages large mounted as the output folder (root only; each file
dynsal writes takes at least one page: the lock file, every small PNG)."""
from __future__ import annotations

import errno
import os
import subprocess

import pytest

from dynsal.predict import outputs
from tests.reliability.predict_setup import maps_of, net_args, predict, snapshot, tiny_model, video

pytest.importorskip("torch", reason="prediction runs the torch engine")

PAGE = 4096


@pytest.fixture()
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture()
def small_disk(tmp_path):
    """Mounts a tmpfs of N pages at tmp_path/out: `small_disk(N, read_only=False)` returns the folder."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    if os.sysconf("SC_PAGE_SIZE") != PAGE:
        pytest.skip(f"the sizes below count {PAGE}-byte pages")
    mounted = []

    def mount(pages: int, read_only: bool = False):
        folder = tmp_path / "out"
        folder.mkdir()
        options = f"size={pages * PAGE}" + (",ro" if read_only else "")
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                                text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("options, pages, failing", [
    (["--no-overlay"], 3, ".clip.partial/000002.png: cannot write it (No space left on device); this input's "
                          "outputs were not kept: free some space or fix the permissions, then rerun"),
    (["--no-png"], 2, ".clip.partial/clip_overlay.mp4: cannot write it (No space left on device); this input's "
                      "outputs were not kept"),
    (["--no-png", "--no-overlay", "--npz"], 2, ".clip.partial/maps.npz: cannot write it (No space left on device)"),
    (["--no-png", "--no-overlay"], 1, ".clip.partial/settings.json: cannot write it (No space left on device)"),
], ids=["png", "video", "npz", "settings"])
def test_a_full_disk_ends_the_input_in_one_line(model, tmp_path, capsys, small_disk, options, pages, failing):
    clip = video(tmp_path / "clip.avi", count=30)
    out = small_disk(pages)
    before = snapshot(tmp_path, skip=[out])
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(out), *options)
    assert status == 1 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"dynsal predict: {clip}: {out / failing}"), err
    assert not any(out.iterdir())  # no maps, no settings.json, no staging folder, no lock file
    assert snapshot(tmp_path, skip=[out]) == before
    assert "0 predicted, 0 already complete, 1 failed" in text


def test_a_read_only_output_folder_is_one_line(model, tmp_path, capsys, small_disk):
    clip = video(tmp_path / "clip.avi")
    out = small_disk(4, read_only=True)
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(out))
    assert status == 1 and err == (f"dynsal predict: {clip}: {out / '.clip.lock'}: cannot create the lock file "
                                   f"(Read-only file system); check that {out} is a folder you can write to\n")


def test_a_failing_write_ends_only_its_input(model, tmp_path, capsys, monkeypatch):
    """Where no tmpfs can be mounted too: an I/O error on a PNG of the first input, the second one completes."""
    first, second = video(tmp_path / "first.avi"), video(tmp_path / "second.avi")
    out = tmp_path / "out"
    real = outputs.write_png

    def failing(image, path):
        if path.parent.name == ".first.partial" and path.name == "000002.png":
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))
        real(image, path)

    monkeypatch.setattr(outputs, "write_png", failing)
    status, text, err = predict(capsys, *net_args(model), str(first), str(second), "-o", str(out))
    assert status == 1 and err == (f"dynsal predict: {first}: {out / '.first.partial' / '000002.png'}: cannot write "
                                   "it (Input/output error); this input's outputs were not kept: free some space or "
                                   "fix the permissions, then rerun\n")
    assert sorted(p.name for p in out.iterdir()) == ["second", "second_overlay.mp4"]
    assert len(maps_of(out / "second")) == 4
