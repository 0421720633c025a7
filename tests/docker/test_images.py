"""Both Docker images, the CPU one (docker/Dockerfile.cpu: Debian bullseye's Caffe) and the GPU one
(docker/Dockerfile: dynsal's CUDA 13 + cuDNN Caffe, in CPU mode here), built and run as `docker run --rm` runs
them (scripts/build_image.sh, scripts/run_image.sh): the card's three commands with the image's real Caffe,
checked against the host's dynsal, and what an image must not hold. Each test runs in each image (fixture
`image`)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path
from typing import Callable, Iterator, Tuple

import cv2
import lmdb
import numpy as np

from dynsal import zoo
from dynsal.caffe import io
from dynsal.caffe.blobs import blob_to_array
from dynsal.cli import main
from dynsal.engines import load_net
from tests.docker.conftest import REPO, docker_daemon
from tests.oracle.datasets import write_zoo_lmdbs
from tests.predict.helpers import make_inputs, zoo_weights
from tests.test_recipe_diem import miniature_diem

SCRIPTS = ("_checkout.py", "train.py", "make_lmdb.py")


def copy_scripts(folder: Path) -> None:
    """The checkout's scripts/ wrappers (what `python scripts/train.py` runs): _checkout puts /data ahead of
    the installed dynsal, and /data holds no dynsal, so the image's own dynsal runs."""
    (folder / "scripts").mkdir()
    for name in SCRIPTS:
        shutil.copy(REPO / "scripts" / name, folder / "scripts" / name)


def video_codec(path: Path) -> str:
    """The FourCC of a video's stream as OpenCV reads it ("avc1" for H.264 in MP4)."""
    capture = cv2.VideoCapture(str(path))
    try:
        assert capture.isOpened(), path
        code = int(capture.get(cv2.CAP_PROP_FOURCC))
    finally:
        capture.release()
    return "".join(chr((code >> shift) & 0xFF) for shift in (0, 8, 16, 24)).lower()


def test_run_image_gives_docker_run_semantics(image, image_folder):
    """ENTRYPOINT dynsal (CMD --help without arguments), USER 1000, WORKDIR /data = the current folder, the
    models folder at /models; the bind mount is there on every one of six runs (an earlier trial saw buildah
    race the image's VOLUME /data in 3 of 6; run_image.sh drops the VOLUMEs, so it cannot)."""
    assert "usage: dynsal" in image.run([], image_folder).stdout
    for attempt in range(6):
        (image_folder / "marker.txt").write_text(f"{attempt}\n")
        shown = image.run(["-c", "id -u; pwd; cat marker.txt; echo $DYNSAL_MODELS $DYNSAL_CONV_CACHE; touch made.txt"],
                              image_folder, entrypoint="sh").stdout.split()
        assert shown == ["1000", "/data", str(attempt), "/models", "/models/conv-algorithms.json"]
        assert (image_folder / "made.txt").is_file()
    (image_folder / "models" / "a.caffemodel").write_bytes(b"")
    assert image.run(["-c", "ls /models"], image_folder, entrypoint="sh").stdout.split() == ["a.caffemodel"]


#: Caffe's own glog lines: the GPU image's CUDA Caffe logs "Cannot create Cublas handle" (and glog's note that it
#: logs before InitGoogleLogging) when pycaffe is imported on a machine without a GPU, as here
GLOG = re.compile(r"^([IWEF]\d{8} |WARNING: Logging before InitGoogleLogging)")


def test_an_output_folder_the_image_user_cannot_write_is_one_line(image, image_folder):
    """dynsal's own output is one line naming the folder, no traceback (Caffe's glog lines aside)."""
    locked = image_folder / "locked"
    locked.mkdir(mode=0o755)  # root's: uid 1000 may read, not write
    shutil.copy(REPO / "prototxt" / "ssnet_deploy.prototxt", image_folder)
    make_inputs(image_folder, frames=2)
    zoo_weights("ssnet", image_folder)
    result = image.run(["predict", "--net", "ssnet", "--weights", "ssnet.caffemodel", "shots", "-o",
                        "locked/out"], image_folder, check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not GLOG.match(line)]
    assert len(lines) == 1 and "locked" in lines[0], result.stderr


def test_predict_stsmax_with_stsconvnet_weights_matches_the_host_torch_engine(image, image_folder, tmp_path):
    """The card's command with the image's real Caffe: the random STSConvNet caffemodel (the published file's
    stand-in) run as STSMaxNet; the frame folder's maps equal the host's torch engine's within one grey level
    given the same frames and flow images, and the video gives a map per frame. Same flow images: Farnebäck's
    (identical from the CPU image's OpenCV 4.5.1, the GPU image's 5.1 and the host's); DIS's differ between 4.5.1
    and 5.1 (up to 18 grey levels in a flow image, test_make_lmdb_script_in_the_image_builds_the_hosts_dataset's
    data)."""
    _, frames = make_inputs(image_folder, frames=3)
    weights = zoo_weights("stsconv", image_folder)
    result = image.run(["predict", "--net", "stsmax", "--weights", weights.name, "--engine", "caffe", "clip.mp4",
                        "shots", "-o", "out", "--npz", "--flow-method", "farneback"], image_folder)
    assert "conv_fuse" in result.stderr and "Traceback" not in result.stderr
    assert "mp4v" not in result.stderr  # the overlays are H.264 (PyAV), no fallback warning
    assert video_codec(image_folder / "out" / "clip_overlay.mp4") in ("avc1", "h264")
    host_out = tmp_path / "host"
    assert main(["predict", "--net", "stsmax", "--weights", str(weights), "--engine", "torch", str(frames), "-o",
                 str(host_out), "--npz", "--no-overlay", "-q", "--flow-method", "farneback"]) == 0
    for name in ("clip", "shots"):
        settings = json.loads((image_folder / "out" / name / "settings.json").read_text())
        assert (settings["engine"], settings["net"], settings["weights_net"]) == ("caffe", "stsmax", "stsconv")
        assert len(list((image_folder / "out" / name).glob("*.png"))) == 3
    image_maps = np.load(image_folder / "out" / "shots" / "maps.npz")["maps"]
    host_maps = np.load(host_out / "shots" / "maps.npz")["maps"]
    assert image_maps.shape == host_maps.shape == (3, 60, 76)
    assert np.abs(image_maps - host_maps).max() < 2e-3
    for png in sorted((host_out / "shots").glob("*.png")):
        image_png = cv2.imread(str(image_folder / "out" / "shots" / png.name), cv2.IMREAD_UNCHANGED)
        host_png = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        assert np.abs(image_png.astype(int) - host_png.astype(int)).max() <= 1, png.name


def test_train_script_fine_tunes_stsmax_from_stsconvnet_with_caffe_train(image, image_folder):
    """`python scripts/train.py SOLVER --weights STSCONV.caffemodel` in the image runs its `caffe train` for 10
    iterations; the host reads Caffe's snapshot (STSMaxNet's layers, changed by training) and solverstate."""
    copy_scripts(image_folder)
    (image_folder / "prototxt").mkdir()
    for name in ("stsmax_solver.prototxt", "stsmax_train_val_lmdb.prototxt"):
        shutil.copy(REPO / "prototxt" / name, image_folder / "prototxt" / name)
    (image_folder / "data").mkdir()
    write_zoo_lmdbs(image_folder / "data", 32, 48, count=4)
    (image_folder / "snapshots").mkdir()
    for path in [image_folder / "snapshots", *(image_folder / "data").rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)  # uid 1000's Caffe opens an LMDB's lock.mdb for writing
    start = zoo_weights("stsconv", image_folder)
    result = image.run(["scripts/train.py", "prototxt/stsmax_solver.prototxt", "--weights", start.name,
                        "--engine", "caffe", "--max-iter", "10"], image_folder, entrypoint="python3")
    assert "Snapshotting to binary proto file snapshots/stsmax_iter_10.caffemodel" in result.stderr  # glog at INFO
    assert "Optimization Done." in result.stderr
    snapshot = io.read_net(image_folder / "snapshots" / "stsmax_iter_10.caffemodel")
    trained = {layer.name: [blob_to_array(b) for b in layer.blobs] for layer in snapshot.layer if len(layer.blobs)}
    initial = {layer.name: [blob_to_array(b) for b in layer.blobs] for layer in io.read_net(start).layer
               if len(layer.blobs)}
    assert set(trained) == set(initial) - {"conv_fuse"}
    assert any(not np.array_equal(trained[name][0], initial[name][0]) for name in trained)
    state = io.read_solverstate(image_folder / "snapshots" / "stsmax_iter_10.solverstate")
    assert state.iter == 10 and state.learned_net.endswith("stsmax_iter_10.caffemodel")
    net = load_net(zoo.deploy("stsmax"), image_folder / "snapshots" / "stsmax_iter_10.caffemodel", engine="torch")
    assert net.weights_report.ok and not net.weights_report.unused


def lmdb_records(path: Path):
    with lmdb.open(str(path), readonly=True, lock=False) as env, env.begin() as txn:
        return list(txn.cursor())


def test_make_lmdb_script_in_the_image_builds_the_hosts_dataset(image, image_folder, tmp_path):
    """`python scripts/make_lmdb.py` on a miniature DIEM folder: the image's LMDBs hold the host's records (flow by
    Farnebäck: DIS's flow images differ between the CPU image's OpenCV 4.5.1 and the host's 5.1, by up to 18 grey
    levels on this data, while frames and maps are identical either way)."""
    copy_scripts(image_folder)
    miniature_diem(image_folder / "DIEM")
    args = ["--videos", "DIEM/video", "--gaze", "DIEM/event_data", "--split-preset", "diem", "--resize",
            "fixed:32x48", "--splits", "train", "--method", "farneback"]
    image.run(["scripts/make_lmdb.py", *args, "-o", "dataset"], image_folder, entrypoint="python3")
    host = tmp_path / "host"
    host_args = [str(image_folder / a) if a.startswith("DIEM") else a for a in args]
    assert main(["make-lmdb", *host_args, "-o", str(host), "-q"]) == 0
    built = sorted(p.name for p in (image_folder / "dataset").glob("*_lmdb"))
    assert built == sorted(p.name for p in host.glob("*_lmdb")) and len(built) == 3
    for name in built:
        records = lmdb_records(image_folder / "dataset" / name)
        assert records and records == lmdb_records(host / name), name


INSTALLED = re.compile("/(dist|site)-packages/dynsal/")


def _saved_layer_files(name: str, folder: Path) -> Iterator[Tuple[str, bool, int, Callable[[], bytes]]]:
    """Every entry but folders of every layer of a Docker daemon's image (`docker save`): (path, regular file,
    size, read)."""
    subprocess.run(["docker", "save", "-o", str(folder / "image.tar"), name], check=True)
    with tarfile.open(folder / "image.tar") as archive:
        archive.extractall(folder)
    for layer in json.loads((folder / "manifest.json").read_text())[0]["Layers"]:
        with tarfile.open(folder / layer) as archive:
            for member in archive:
                if not member.isdir():
                    yield ("/" + member.name.lstrip("./"), member.isfile(), member.size,
                           lambda m=member, a=archive: a.extractfile(m).read())


def _stored_layer_files(name: str) -> Iterator[Tuple[str, bool, int, Callable[[], bytes]]]:
    """The same for an image in buildah's overlay storage, read in place: each layer's diff folder, from the
    image's top layer down its parents (containers-storage's images.json and layers.json). A `buildah push
    dir:` would write the GPU image's 9 GB once more first."""
    def run(*args: str) -> str:
        return subprocess.run(["buildah", "--storage-driver", "overlay", *args], check=True, capture_output=True,
                              text=True).stdout.strip()
    graph = Path(json.loads(run("info"))["store"]["GraphRoot"])
    image_id = run("inspect", "--type", "image", "--format", "{{.FromImageID}}", name)
    images = json.loads((graph / "overlay-images" / "images.json").read_text())
    layers = {layer["id"]: layer for layer in json.loads((graph / "overlay-layers" / "layers.json").read_text())}
    layer = layers[next(image["layer"] for image in images if image["id"] == image_id)]
    while layer:
        diff = graph / "overlay" / layer["id"] / "diff"
        for folder, _, files in os.walk(diff):
            for file in files:
                path = Path(folder, file)
                info = path.lstat()
                yield ("/" + str(path.relative_to(diff)), stat.S_ISREG(info.st_mode), info.st_size, path.read_bytes)
        layer = layers.get(layer.get("parent"))


def test_no_ca_bundle_pip_config_wheel_or_source_in_any_layer(image, tmp_path):
    """Nothing of the build's inputs stays in a layer: no pip.conf, no copy of the host's CA bundle, no mount
    point left by a RUN --mount, no wheel and no source tree (dynsal only as installed, under Debian's
    dist-packages or the venv's site-packages). Folders are not looked at: an empty mount point stays as a
    folder (/tmp/wheel), with nothing in it."""
    host_ca = Path("/etc/ssl/certs/ca-certificates.crt")
    ca_digest = hashlib.sha256(host_ca.read_bytes()).hexdigest() if host_ca.is_file() else None
    entries = _saved_layer_files(image.name, tmp_path) if docker_daemon() else _stored_layer_files(image.name)
    found, count = [], 0
    for path, regular, size, read in entries:
        count += 1
        if (path.endswith(("pip.conf", "pip.ini")) or "/dynsal-" in path and path.endswith(".whl")
                or path.startswith(("/src/", "/tmp/wheel/", "/run/secrets/"))
                or (path.endswith("/dynsal/__init__.py") and not INSTALLED.search(path))):
            found.append(path)
        elif ca_digest and regular and size == host_ca.stat().st_size:
            if hashlib.sha256(read()).hexdigest() == ca_digest:
                found.append(f"{path} (the host's CA bundle)")
    assert count > 1000 and not found
