"""Oracle parity: the torch engine against real BVLC Caffe, every blob, data and diffs.

For every zoo deploy net with random weights (one caffemodel per net, loaded by both), forward at
240×320, a small size and two odd sizes (the same caffe.Net reshaped between runs); backward of each
zoo net with an EuclideanLoss on a label input; train_val nets reading their LMDB / HDF5 sources
(TRAIN and TEST), several batches, forward and backward; forward and backward of a net using every
supported layer with non-default parameters (TEST phase), and of a BatchNorm net in TRAIN phase
(batch statistics and the statistics update). The bar: for every blob, parameter and diff,
max|Δ| ≤ 1e-4·max|Caffe's value|, in fp32. All Caffe work runs in one chroot call.

Every forward is compared; backward on the first run of a case in which no discrete decision (a ReLU
gate, a MAX pooling or Eltwise MAX choice) went the other way in the two engines by rounding — a
near-tie that differs from CPU to CPU routes gradients elsewhere (parity.decision_flips).
"""
from __future__ import annotations

import numpy as np
import pytest

from dynsal import zoo
from dynsal.caffe import io
from dynsal.engines import load_net
from tests.engines.nets import (
    batch_norm_train_net,
    every_layer_inputs,
    every_layer_net,
    image_data_net,
    write_images,
    zoo_loss_net,
)
from tests.engines.parity import (
    CaffeCase,
    check_backward_on_a_clean_run,
    compare,
    deviations,
    load_caffe,
    random_weights,
    run_caffe,
    torch_results,
    write_net,
)
from tests.oracle.datasets import write_zoo_hdf5, write_zoo_lmdbs

pytestmark = pytest.mark.caffe_parity

SMALL = (48, 64)
ODD = ((37, 53), (50, 67))
FULL = (240, 320)
# Input sets per backward case: backward is compared on the first whose forward no near-tie decided
# differently in the two engines (parity.check_backward_on_a_clean_run); ties are rare but machine-dependent.
BACKWARD_RUNS = 4  # per zoo loss net (see test_zoo_backward_matches_caffe)
LAYER_NET_RUNS = 3  # per layer net (see test_layer_nets_match_caffe)
DATA_HW = (48, 72)  # frames/flows/maps in the train_val nets' LMDB and HDF5 sources
TRAIN_VAL_CASES = [("ssnet", "lmdb", "TRAIN"), ("stsconv", "lmdb", "TRAIN"), ("stsconv", "hdf5", "TEST"),
                   ("tsnet", "hdf5", "TRAIN")]
TRAIN_VAL_RUNS = 4  # forward/backward passes: batches 1 to 4 of 2 (the fourth wraps around the 7 records)
DATA_RECORDS = 7
FORWARD_CASES = [(name, hw) for name in zoo.NETS for hw in (SMALL, *ODD, FULL)]
# every CPU convolution algorithm the torch engine may choose (convalgo), forced on every layer it can run
CONV_ALGORITHM_CASES = [(name, algorithm) for name in zoo.NETS for algorithm in ("direct", "channels_last", "fft",
                                                                                   "fft32", "winograd")]
CONV_ALGORITHM_BOUND = 1e-5  # max|Δ| ≤ 1e-5·max|Caffe| per blob


def _zoo_inputs(name: str, hw, seed: int):
    rng = np.random.default_rng(seed)
    return {blob: rng.standard_normal((1, 3) + hw).astype(np.float32) for blob in zoo.input_names(zoo.get(name))}


def _key(name, hw):
    return f"{name}_{hw[0]}x{hw[1]}"


@pytest.fixture(scope="module")
def caffe_runs(oracle, module_workdir):
    """Run all the module's Caffe work once; returns the workdir folder, weights and result paths."""
    wd = module_workdir
    folder, cases, results, weights = wd.host, [], {}, {}
    for index, name in enumerate(zoo.NETS):
        deploy = zoo.deploy(name, (1, 3) + SMALL)
        weights[name] = random_weights(deploy, seed=index)
        prototxt, caffemodel = write_net(folder, name, deploy, weights[name])
        case = CaffeCase(name, prototxt, caffemodel)
        for hw in (SMALL, *ODD, FULL):
            results[("forward", _key(name, hw))] = case.add_run(_key(name, hw), _zoo_inputs(name, hw, index))
        loss_case = CaffeCase(f"{name}_loss", folder / f"{name}_loss.prototxt", caffemodel)
        io.write_text(zoo_loss_net(name, (1, 3) + SMALL), loss_case.prototxt)
        for run in range(BACKWARD_RUNS):
            seed = 100 * (run + 1) + index
            label = np.random.default_rng(seed).standard_normal((1, 1) + SMALL)
            feed = dict(_zoo_inputs(name, SMALL, seed), label=label)
            results[("backward", name, run)] = loss_case.add_run(f"{name}_loss{run}", feed, backward=True)
        cases += [case, loss_case]
    data = folder / "data"
    data.mkdir()
    write_zoo_lmdbs(data, *DATA_HW, count=DATA_RECORDS)
    write_zoo_hdf5(data, wd.inside("data"), *DATA_HW, count=DATA_RECORDS)
    (folder / "host_lists").mkdir()
    for split in ("train", "val"):
        (folder / "host_lists" / f"{split}_h5.txt").write_text(f"{data}/{split}.h5\n")
    for name, backend, phase in TRAIN_VAL_CASES:
        key = f"{name}_{backend}_{phase}"
        case = CaffeCase(key, folder / f"{key}.prototxt", folder / f"{name}.caffemodel", phase=phase)
        io.write_text(zoo.train_val(name, backend, data_root=wd.inside("data")), case.prototxt)
        for run in range(TRAIN_VAL_RUNS):
            results[("train_val", key, run)] = case.add_run(f"{key}{run}", {}, backward=True)
        cases.append(case)
    (folder / "images").mkdir()
    write_images(folder / "images")
    host_net = image_data_net(str(folder / "images"))
    weights["image_data"] = random_weights(host_net, seed=9, input_shapes={"image": (2, 3, 20, 30), "label": (2,),
                                                                            "grey": (2, 1, 12, 18), "grey_label": (2,)})
    _, caffemodel = write_net(folder, "image_data", host_net, weights["image_data"])
    case = CaffeCase("image_data", folder / "image_data_caffe.prototxt", caffemodel)
    io.write_text(image_data_net(wd.inside("images")), case.prototxt)
    for run in range(TRAIN_VAL_RUNS):
        results[("image_data", run)] = case.add_run(f"image_data{run}", {}, backward=True)
    cases.append(case)
    for key, net, phase in (("every_layer", every_layer_net(), "TEST"), ("bn_train", batch_norm_train_net(), "TRAIN")):
        weights[key] = random_weights(net, seed=7, phase=phase)
        prototxt, caffemodel = write_net(folder, key, net, weights[key])
        case = CaffeCase(key, prototxt, caffemodel, phase=phase)
        for run in range(LAYER_NET_RUNS):
            feed = every_layer_inputs(3 + run) if key == "every_layer" else {
                "data": np.random.default_rng(4 + 2 * run).standard_normal((4, 3, 5, 6)),
                "target": np.random.default_rng(5 + 2 * run).standard_normal((4, 5, 5, 6))}
            results[("backward", key, run)] = case.add_run(f"{key}{run}", feed, backward=True, params=True)
        cases.append(case)
    run_caffe(oracle, wd, cases)
    return folder, results


@pytest.fixture(scope="module")
def torch_deploy_nets(caffe_runs):
    """The torch-engine deploy net of a zoo net, loaded from the same prototxt and caffemodel as Caffe.

    Only the last one is kept (the forward cases come net by net): a net holds its 240×320 blobs.
    """
    folder, _ = caffe_runs
    cache = {}

    def get(name):
        if name not in cache:
            cache.clear()
            cache[name] = load_net(folder / f"{name}.prototxt", folder / f"{name}.caffemodel", engine="torch")
        return cache[name]

    return get


def _feed(path):
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


@pytest.mark.parametrize("name,hw", FORWARD_CASES, ids=[_key(n, hw) for n, hw in FORWARD_CASES])
def test_zoo_forward_matches_caffe(oracle, caffe_runs, torch_deploy_nets, name, hw):
    """Every blob of a zoo deploy net (random weights) equals Caffe's, at small, odd and full sizes."""
    folder, results = caffe_runs
    net = torch_deploy_nets(name)
    net.forward(**_feed(folder / f"{_key(name, hw)}_inputs.npz"))
    assert compare(net, results[("forward", _key(name, hw))], backward=False) == []


@pytest.mark.parametrize("name,algorithm", CONV_ALGORITHM_CASES, ids=[f"{n}-{a}" for n, a in CONV_ALGORITHM_CASES])
def test_zoo_forward_with_each_conv_algorithm_is_within_1e5_of_caffe(oracle, caffe_runs, torch_deploy_nets, name,
                                                                     algorithm):
    """Every blob of a zoo deploy net at 240×320 within 1e-5 relative of Caffe's, whichever algorithm
    its convolutions run on (direct, channels_last, FFT at the default and at 32×32 tiles, Winograd)."""
    folder, results = caffe_runs
    net = torch_deploy_nets(name)
    net.set_conv_algorithm(algorithm)
    try:
        net.forward(**_feed(folder / f"{_key(name, FULL)}_inputs.npz"))
        used = {a for shapes in net.conv_algorithms.values() for a in shapes.values()}
    finally:
        net.set_conv_algorithm(None)
    assert algorithm in used or (algorithm == "fft" and any(a.startswith("fft") for a in used)), used
    caffe = load_caffe(results[("forward", _key(name, FULL))])
    assert deviations(torch_results(net, backward=False)["data"], caffe, "data", CONV_ALGORITHM_BOUND) == []


@pytest.mark.parametrize("name", list(zoo.NETS))
def test_zoo_backward_matches_caffe(oracle, caffe_runs, name):
    """Blob diffs and parameter diffs of a zoo net + EuclideanLoss equal Caffe's (force_backward)."""
    folder, results = caffe_runs
    net = load_net(folder / f"{name}_loss.prototxt", folder / f"{name}.caffemodel", engine="torch")
    check_backward_on_a_clean_run(net, [results[("backward", name, run)] for run in range(BACKWARD_RUNS)],
                             [_feed(folder / f"{name}_loss{run}_inputs.npz") for run in range(BACKWARD_RUNS)])


@pytest.mark.parametrize("name,backend,phase", TRAIN_VAL_CASES, ids=["-".join(c) for c in TRAIN_VAL_CASES])
def test_train_val_matches_caffe(oracle, caffe_runs, name, backend, phase):
    """A zoo train_val net reading its LMDBs (Data layers with mean/scale) or HDF5 files, with its
    EuclideanLoss: every blob of batches 1 to 4, and the diffs, equal Caffe's."""
    folder, results = caffe_runs
    data_root = folder / ("data" if backend == "lmdb" else "host_lists")
    net = load_net(zoo.train_val(name, backend, data_root=str(data_root)), folder / f"{name}.caffemodel",
                   engine="torch", phase=phase.lower())
    key = f"{name}_{backend}_{phase}"
    check_backward_on_a_clean_run(net, [results[("train_val", key, run)] for run in range(TRAIN_VAL_RUNS)],
                             [{}] * TRAIN_VAL_RUNS)


def test_image_data_matches_caffe(oracle, caffe_runs):
    """ImageData (colour with mean/scale; grey resized by OpenCV) and SoftmaxWithLoss on its labels:
    four batches (wrapping around the 3-image list), blobs and diffs equal Caffe's."""
    folder, results = caffe_runs
    net = load_net(folder / "image_data.prototxt", folder / "image_data.caffemodel", engine="torch")
    check_backward_on_a_clean_run(net, [results[("image_data", run)] for run in range(TRAIN_VAL_RUNS)],
                             [{}] * TRAIN_VAL_RUNS)


@pytest.mark.parametrize("key,phase", [("every_layer", "test"), ("bn_train", "train")])
def test_layer_nets_match_caffe(oracle, caffe_runs, key, phase):
    """Every layer with non-default parameters (TEST), and BatchNorm's batch statistics and their
    update (TRAIN): blobs, diffs, parameter diffs and the parameters after forward equal Caffe's."""
    folder, results = caffe_runs
    net = load_net(folder / f"{key}.prototxt", folder / f"{key}.caffemodel", engine="torch", phase=phase)
    check_backward_on_a_clean_run(net, [results[("backward", key, run)] for run in range(LAYER_NET_RUNS)],
                                  [_feed(folder / f"{key}{run}_inputs.npz") for run in range(LAYER_NET_RUNS)])
