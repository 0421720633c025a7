"""`dynsal eval` end to end on a small generated dataset, and dynsal.evaluate's pieces."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from dynsal import evaluate as E
from dynsal import metrics as M
from dynsal.cli import main
from dynsal.errors import EvaluationError

SHAPE = (36, 48)
VIDEOS = {"v1": 2, "v2": 3, "v3": 5}  # unequal lengths: the two averaging conventions differ


def _gaze(rng, n=12):
    rows = np.clip(rng.normal(SHAPE[0] / 2, SHAPE[0] / 8, n).astype(int), 0, SHAPE[0] - 1)
    cols = np.clip(rng.normal(SHAPE[1] / 2, SHAPE[1] / 8, n).astype(int), 0, SHAPE[1] - 1)
    return rows, cols


def _density(rows, cols):
    yy, xx = np.mgrid[:SHAPE[0], :SHAPE[1]]
    total = sum(np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * 3.0 ** 2)) for r, c in zip(rows, cols))
    return np.round(255 * total / total.max()).astype(np.uint8)


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def make_dataset(root, *, mat_video=None, small_video="v2"):
    """PRED/<video>/<frame>.png (a blurred, shifted copy of the truth) and GT/<video>/{maps,fixation}."""
    rng = np.random.default_rng(0)
    pred_dir, gt_dir = root / "pred", root / "gt"
    for video, n in VIDEOS.items():
        for k in range(1, n + 1):
            name = f"{k:04d}"
            rows, cols = _gaze(rng)
            fix = np.zeros(SHAPE, np.uint8)
            fix[rows, cols] = 255
            density = _density(rows, cols)
            if video == mat_video:
                from scipy.io import savemat

                (gt_dir / video / "fixation" / "maps").mkdir(parents=True, exist_ok=True)
                savemat(str(gt_dir / video / "fixation" / "maps" / f"{name}.mat"), {"I": (fix > 0).astype(float)})
            else:
                _save(gt_dir / video / "fixation" / f"{name}.png", fix)
            _save(gt_dir / video / "maps" / f"{name}.png", density)
            pred = np.roll(density, 2, axis=1)
            if video == small_video:  # predictions at half size: resized to the ground truth
                pred = np.asarray(Image.fromarray(pred).resize((SHAPE[1] // 2, SHAPE[0] // 2)))
            _save(pred_dir / video / f"{name}.png", pred)
    return pred_dir, gt_dir


@pytest.fixture
def dataset(tmp_path):
    return make_dataset(tmp_path)


def _run_eval(capsys, *argv):
    code = main(["eval", *map(str, argv), "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


# ---------------------------------------------------------------------------------------------- end to end


def test_eval_writes_table_csv_json_markdown(dataset, tmp_path, capsys):
    pred, gt = dataset
    files = {k: tmp_path / f"scores.{k}" for k in ("csv", "json", "md")}
    code, out, err = _run_eval(capsys, pred, gt, "--baselines", "centre,chance", "--seed", "3",
                               "--csv", files["csv"], "--json", files["json"], "--markdown", files["md"])
    assert code == 0, err
    assert "3 video(s), 10 frame(s); seed 3" in out
    assert "mean over videos (mean over videos of each video's mean over its frames)" in out
    assert "mean over frames (mean over all frames" in out
    header = next(line for line in out.splitlines() if line.startswith("model"))
    assert header.split() == ["model", "AUC-J", "AUC-B", "sAUC", "NSS", "CC", "SIM", "KLD", "IG"]
    assert sum(line.startswith(("prediction", "centre", "chance")) for line in out.splitlines()) == 6

    doc = json.loads(files["json"].read_text())
    assert doc["settings"]["seed"] == 3 and doc["settings"]["sauc_negatives"] == 10
    assert set(doc["conventions"]) == {"mean_over_videos", "mean_over_frames"}
    summary = doc["summary"]
    centre, chance = summary["centre"]["mean_over_frames"], summary["chance"]["mean_over_frames"]
    for metric in ("auc_judd", "auc_borji", "nss", "cc", "sim", "ig"):
        assert centre[metric] > chance[metric], metric
    assert centre["kld"] < chance["kld"]
    assert summary["prediction"]["mean_over_frames"]["cc"] > 0.8
    assert len(doc["frames"]) == 3 * 10

    with files["csv"].open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * (10 + 3 + 2)
    assert {r["level"] for r in rows} == {"frame", "video", "mean_over_videos", "mean_over_frames"}
    dataset_row = next(r for r in rows if r["model"] == "prediction" and r["level"] == "mean_over_videos")
    assert float(dataset_row["nss"]) == pytest.approx(summary["prediction"]["mean_over_videos"]["nss"], abs=1e-4)

    md = files["md"].read_text()
    assert "| model | AUC-J | AUC-B | sAUC | NSS | CC | SIM | KLD | IG |" in md
    assert "**mean over videos**" in md and "**mean over frames**" in md
    assert "wrote" in out and not list(tmp_path.glob("*.part"))


def test_the_two_conventions_are_what_they_say(dataset, tmp_path, capsys):
    pred, gt = dataset
    code, _, err = _run_eval(capsys, pred, gt, "--metrics", "nss", "cc", "--json", tmp_path / "s.json")
    assert code == 0, err
    doc = json.loads((tmp_path / "s.json").read_text())
    per_frame = [f["cc"] for f in doc["frames"]]
    per_video = [np.mean([f["cc"] for f in doc["frames"] if f["video"] == v]) for v in VIDEOS]
    summary = doc["summary"]["prediction"]
    assert summary["mean_over_frames"]["cc"] == pytest.approx(np.mean(per_frame), abs=1e-12)
    assert summary["mean_over_videos"]["cc"] == pytest.approx(np.mean(per_video), abs=1e-12)
    assert summary["mean_over_frames"]["cc"] != pytest.approx(summary["mean_over_videos"]["cc"], abs=1e-6)
    assert list(summary["mean_over_frames"]) == ["nss", "cc"]


def test_scores_do_not_depend_on_jobs_and_follow_the_seed(dataset):
    pred, gt = dataset
    one = E.evaluate(pred, gt, baselines=["chance"], seed=1, jobs=1)
    two = E.evaluate(pred, gt, baselines=["chance"], seed=1, jobs=2)
    other = E.evaluate(pred, gt, baselines=["chance"], seed=2, jobs=1)
    assert [r.scores for r in one.rows] == [r.scores for r in two.rows]
    assert one.summary() != other.summary()
    assert one.summary()["prediction"]["mean_over_frames"]["cc"] == other.summary()["prediction"][
        "mean_over_frames"]["cc"]


def test_mat_fixations_give_the_same_scores_as_png(tmp_path):
    png_pred, png_gt = make_dataset(tmp_path / "png")
    mat_pred, mat_gt = make_dataset(tmp_path / "mat", mat_video="v3")
    assert list((mat_gt / "v3" / "fixation" / "maps").glob("*.mat"))
    a = E.evaluate(png_pred, png_gt, metrics=["auc_judd", "nss", "sauc"])
    b = E.evaluate(mat_pred, mat_gt, metrics=["auc_judd", "nss", "sauc"])
    assert [r.scores for r in a.rows] == [r.scores for r in b.rows]


def test_frames_without_fixations_are_left_out_of_fixation_metrics(dataset, capsys):
    pred, gt = dataset
    _save(gt / "v1" / "fixation" / "0001.png", np.zeros(SHAPE, np.uint8))
    result = E.evaluate(pred, gt, metrics=["nss", "cc"])
    first = next(r for r in result.rows if r.video == "v1" and r.frame == "0001")
    assert first.scores["nss"] is None and first.scores["cc"] is not None
    assert result.settings["frames_without_fixations"] == 1
    v1 = result.per_video()["prediction"]["v1"]
    second = next(r for r in result.rows if r.video == "v1" and r.frame == "0002")
    assert v1["nss"] == pytest.approx(second.scores["nss"])
    code, out, _ = _run_eval(capsys, pred, gt, "--metrics", "nss")
    assert code == 0 and "1 frame(s) without fixations" in out


def test_sauc_negatives_come_from_other_videos():
    frames = [E.Frame(v, f"{k}", None) for v, n in VIDEOS.items() for k in range(n)]
    has = [True] * len(frames)
    chosen = E.sample_negative_frames(frames, has, 3, "other-videos", seed=0)
    for frame, picks in zip(frames, chosen):
        assert len(picks) == 3 and len(set(picks)) == 3
        assert all(frames[p].video != frame.video for p in picks)
    assert chosen == E.sample_negative_frames(frames, has, 3, "other-videos", seed=0)
    own = E.sample_negative_frames(frames, has, 20, "other-frames", seed=0)
    assert all(i not in picks and len(picks) == len(frames) - 1 for i, picks in enumerate(own))
    has[1] = False  # frames without fixations are never drawn
    assert all(1 not in picks for picks in E.sample_negative_frames(frames, has, 20, "other-frames", seed=0))


def test_points_are_rescaled_into_the_frame():
    small = np.zeros((2, 4), bool)
    small[1, 3] = True
    assert np.argwhere(E.points_to_map([E.fixation_points(small)], (4, 8))).tolist() == [[3, 7]]


def test_centre_bias_and_chance_maps():
    centre = E.centre_bias_map((5, 7))
    assert centre.shape == (5, 7) and centre[2, 3] == 1.0 and centre[0, 0] < centre[1, 1]
    assert np.array_equal(E.chance_map((3, 3), 4), E.chance_map((3, 3), 4))
    assert M.nss(centre, centre == 1.0) > 0


# ---------------------------------------------------------------------------------------------- several models


def add_model(pred_dir, name, shift):
    """A second model's folder beside `pred_dir`: the same maps shifted `shift` more pixels to the right."""
    other = pred_dir.parent / name
    for path in sorted(pred_dir.rglob("*.png")):
        _save(other / path.relative_to(pred_dir), np.roll(np.asarray(Image.open(path)), shift, axis=1))
    return other


def test_several_models_are_scored_on_the_same_frames_with_the_same_draws(dataset, tmp_path, capsys):
    pred, gt = dataset
    shifted = add_model(pred, "shifted", 5)
    code, out, err = _run_eval(capsys, "--model", f"good={pred}", "--model", f"shifted={shifted}", gt,
                               "--baselines", "centre", "--json", tmp_path / "s.json", "--csv", tmp_path / "s.csv")
    assert code == 0, err
    models = [line.split()[0] for line in out.splitlines() if line.startswith(("good", "shifted", "centre"))]
    assert models == ["good", "shifted", "centre"] * 2  # one table per convention: models, then baselines
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["settings"]["models"] == {"good": str(pred), "shifted": str(shifted)}
    assert list(doc["summary"]) == ["good", "shifted", "centre"] and set(doc["videos"]["shifted"]) == set(VIDEOS)
    summary = doc["summary"]
    assert summary["good"]["mean_over_videos"]["nss"] > summary["shifted"]["mean_over_videos"]["nss"]
    for name, folder in (("good", pred), ("shifted", shifted)):  # alone, each model scores exactly the same
        alone = E.evaluate(folder, gt, baselines=["centre"])
        ours = [dict(f) for f in doc["frames"] if f["model"] == name]
        assert [{"model": name, "video": r.video, "frame": r.frame, **r.scores} for r in alone.rows
                if r.model == "prediction"] == ours
    with (tmp_path / "s.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["model"], r["video"]) for r in rows if r["level"] == "video"} == {
        (m, v) for m in ("good", "shifted", "centre") for v in VIDEOS}


def test_a_model_lacking_frames_is_named_and_partial_scores_the_common_frames(dataset, capsys):
    pred, gt = dataset
    shifted = add_model(pred, "shifted", 5)
    (shifted / "v2" / "0002.png").unlink()
    code, out, err = _run_eval(capsys, "--model", f"good={pred}", "--model", f"shifted={shifted}", gt,
                               "--metrics", "nss")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "model shifted" in err and "lacks 1 frame(s) that other models have: v2/0002" in err
    assert "--partial" in err
    code, out, err = _run_eval(capsys, "--model", f"good={pred}", "--model", f"shifted={shifted}", gt,
                               "--metrics", "nss", "--partial")
    assert code == 0, err
    assert "3 video(s), 9 frame(s)" in out


@pytest.mark.parametrize("argv, words", [
    (["--model", "good"], "--model good: write it as NAME=PRED_DIR"),
    (["--model", "a={pred}", "--model", "a={pred}"], "--model a is given twice"),
    (["--model", "centre={pred}"], "model name 'centre' is a baseline's"),
    (["--model", "a b={pred}"], "model name 'a b': use letters"),
    (["--model", "a={pred}", "{pred}"], "with --model, give GT_DIR alone"),
])
def test_bad_model_options_exit_1(dataset, capsys, argv, words):
    pred, gt = dataset
    code, out, err = _run_eval(capsys, *[a.format(pred=pred) for a in argv], gt)
    assert code == 1 and words in err and err.count("\n") == 1


# ---------------------------------------------------------------------------------------------- bad input


def test_unmatched_files_exit_1_with_one_clear_line(dataset, capsys):
    pred, gt = dataset
    (gt / "v3" / "fixation" / "0004.png").unlink()
    (pred / "v2" / "0002.png").unlink()
    code, out, err = _run_eval(capsys, pred, gt)
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    assert err.startswith("dynsal eval: error: 2 unmatched file(s): ")
    assert "v3/fixation/0004" in err and "v2/0002.png" in err and "--partial" in err


def test_partial_scores_only_frames_with_predictions(dataset, capsys):
    pred, gt = dataset
    (pred / "v2" / "0002.png").unlink()
    code, out, err = _run_eval(capsys, pred, gt, "--partial", "--metrics", "cc")
    assert code == 0, err
    assert "3 video(s), 9 frame(s)" in out


def test_many_unmatched_files_are_counted(dataset, capsys):
    pred, gt = dataset
    for path in (pred / "v3").iterdir():
        path.rename(pred / "v3" / f"x{path.name}")
    code, _, err = _run_eval(capsys, pred, gt)
    assert code == 1 and "10 unmatched file(s)" in err and "(+5 more)" in err


def test_prediction_video_without_ground_truth(dataset, capsys):
    pred, gt = dataset
    _save(pred / "v9" / "0001.png", np.zeros(SHAPE, np.uint8))
    code, _, err = _run_eval(capsys, pred, gt)
    assert code == 1 and "v9/ has no ground-truth folder" in err


def test_non_binary_fixation_png_names_the_file(dataset, capsys):
    pred, gt = dataset
    bad = np.zeros(SHAPE, np.uint8)
    bad[3, 4], bad[5, 6] = 255, 128
    _save(gt / "v2" / "fixation" / "0003.png", bad)
    code, _, err = _run_eval(capsys, pred, gt, "--metrics", "nss")
    assert code == 1 and "v2/fixation/0003.png: fixation map is not binary" in err


@pytest.mark.parametrize("argv, words", [
    (["--metrics", "nsss"], "unknown metric 'nsss' (did you mean nss?)"),
    (["--baselines", "center"], "unknown baseline 'center' (did you mean centre?)"),
    (["--sauc-negatives", "0"], "sAUC needs --sauc-negatives"),
])
def test_bad_options_exit_1(dataset, capsys, argv, words):
    pred, gt = dataset
    code, _, err = _run_eval(capsys, pred, gt, *argv)
    assert code == 1 and words in err


def test_single_video_needs_another_pool_for_sauc(tmp_path, capsys):
    pred, gt = make_dataset(tmp_path)
    for video in ("v1", "v2"):
        for base in (pred, gt):
            for path in sorted((base / video).rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
            (base / video).rmdir()
    code, _, err = _run_eval(capsys, pred, gt, "--metrics", "sauc")
    assert code == 1 and "--sauc-pool other-frames" in err
    code, out, err = _run_eval(capsys, pred, gt, "--metrics", "sauc", "--sauc-pool", "other-frames")
    assert code == 0, err


def test_colour_prediction_is_refused(dataset):
    pred, gt = dataset
    rgb = np.zeros(SHAPE + (3,), np.uint8)
    rgb[..., 0] = 200
    _save(pred / "v1" / "0001.png", rgb)
    with pytest.raises(EvaluationError, match="colour image"):
        E.evaluate(pred, gt, metrics=["cc"])


# ---------------------------------------------------------------------------------------------- old stack


def test_bullseye_stack_gives_the_same_scores(oracle, workdir):
    """Python 3.9, numpy 1.19, Pillow 8, scipy 1.6 (the oracle chroot) score exactly as this stack.

    Tolerance 1e-12: the random draws (PCG64) and the arithmetic are the same; only summation
    order may differ in the last bit.
    """
    pred, gt = make_dataset(workdir.host, mat_video="v3")
    oracle.run(["python3", "-m", "dynsal", "eval", "pred", "gt", "--baselines", "centre,chance",
                "--json", "out.json", "--no-progress"], workdir)
    theirs = json.loads((workdir.host / "out.json").read_text())["frames"]
    ours = E.evaluate(pred, gt, baselines=["centre", "chance"]).rows
    assert [(f["model"], f["video"], f["frame"]) for f in theirs] == [(r.model, r.video, r.frame) for r in ours]
    for frame, row in zip(theirs, ours):
        for metric, value in row.scores.items():
            assert frame[metric] == pytest.approx(value, abs=1e-12), (row.model, row.video, row.frame, metric)


def test_grey_maps_in_other_png_modes_are_read(tmp_path):
    grey_alpha = np.zeros((4, 5, 2), np.uint8)
    grey_alpha[..., 0], grey_alpha[..., 1] = 7, 255
    Image.fromarray(grey_alpha, "LA").save(tmp_path / "la.png")
    assert np.array_equal(E.read_map(tmp_path / "la.png"), np.full((4, 5), 7))
    Image.fromarray(np.full((4, 5, 3), 9, np.uint8)).save(tmp_path / "rgb.png")
    assert np.array_equal(E.read_map(tmp_path / "rgb.png"), np.full((4, 5), 9))
    deep = (np.arange(20).reshape(4, 5) * 1000).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "u16.png")
    assert E.read_map(tmp_path / "u16.png").dtype == np.uint16
    Image.fromarray(np.eye(4, dtype=bool)).save(tmp_path / "fix.png")
    assert np.array_equal(E.read_fixations(tmp_path / "fix.png"), np.eye(4, dtype=bool))


def test_maps_without_fixations_suggest_the_metrics_that_can_run(dataset, capsys):
    pred_dir, gt_dir = dataset
    for folder in gt_dir.glob("*/fixation"):
        for path in sorted(folder.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
    code, out, err = _run_eval(capsys, pred_dir, gt_dir)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "no <video>/fixation/ files" in err and "--metrics cc,sim,kld" in err
    code, out, err = _run_eval(capsys, pred_dir, gt_dir, "--metrics", "cc,sim,kld")
    assert code == 0 and "CC" in out
