"""The SR benchmark (bicubic baseline reproduces the paper), training, and the SR commands' errors."""
from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from perceptual_utils import cli
from perceptual_utils.model_io import save_model
from perceptual_utils.sr.evaluation import evaluate_methods, evaluate_sr
from perceptual_utils.sr.metrics import LPIPSMetric
from perceptual_utils.sr.net import SuperResolutionNet
from perceptual_utils.sr.training import SRTrainSettings, train_sr

SR_COMMANDS = ("perceptual_utils.sr.training", "perceptual_utils.sr.upscale", "perceptual_utils.sr.evaluation")


@pytest.fixture
def run_cli(monkeypatch):
    """``cli.main`` with only the SR commands registered, so these tests do not depend on
    importing unrelated command modules; returns ``(exit code, stdout, stderr)``."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", SR_COMMANDS)
    monkeypatch.delenv("PERCEPTUAL_UTILS_DEBUG", raising=False)

    def run(*argv: str):
        return cli.main([str(a) for a in argv])

    return run


def test_bicubic_reproduces_the_paper_set5_x4(shared_data):
    """Johnson et al. (2016), Table 2: bicubic on Set5 x4 = 28.43 dB / 0.8114."""
    result = evaluate_sr("bicubic", 4, sets=["Set5"], root=shared_data, lpips=False, progress=False)
    (row,) = result.summary
    assert row["images"] == 5
    assert abs(row["psnr"] - 28.43) < 0.05
    assert abs(row["ssim"] - 0.8114) < 0.002


@pytest.fixture
def tiny_root(tmp_path):
    """A data root with one tiny benchmark set and a one-image training folder."""
    g = torch.Generator().manual_seed(0)
    for i, (h, w) in enumerate([(52, 44), (40, 40)]):
        img = torch.nn.functional.interpolate(torch.rand(1, 3, h // 4, w // 4, generator=g), size=(h, w),
                                              mode="bilinear")[0]
        path = tmp_path / "sr" / "Tiny" / f"im{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype("uint8")).save(path)
    train = tmp_path / "train" / "one"
    train.mkdir(parents=True)
    Image.open(tmp_path / "sr" / "Tiny" / "im1.png").save(train / "patch.png")
    return tmp_path


def test_evaluate_network_writes_table_csv_json_crops(tiny_root, tmp_path):
    net = SuperResolutionNet(scale=4, channels=8, num_residual=1).eval()
    result = evaluate_sr(net, 4, sets=["Tiny"], root=tiny_root, lpips=True, crops=tmp_path / "crops",
                         crop_size=24, progress=False)
    assert [r["image"] for r in result.per_image] == ["im0", "im1"]
    assert all(r["lpips"] is not None and r["lpips"] >= 0 for r in result.per_image)
    assert "Tiny (mean of 2)" in result.table(per_image=True)
    rows = result.write_csv(tmp_path / "r.csv").read_text().splitlines()
    assert rows[0].startswith("set,image,method,scale,psnr,ssim,lpips") and len(rows) == 3
    data = json.loads(result.write_json(tmp_path / "r.json").read_text())
    assert data["summary"][0]["images"] == 2
    assert len(list((tmp_path / "crops").glob("Tiny_*_x4_*.png"))) == 2
    with pytest.raises(ValueError, match="x4"):
        evaluate_sr(net, 8, sets=["Tiny"], root=tiny_root, lpips=False, progress=False)


def test_evaluate_methods_gives_the_rows_of_separate_evaluations(tiny_root):
    # Image by image with shared LPIPS features of the ground truth: same numbers as one call per method.
    torch.manual_seed(0)
    net = SuperResolutionNet(scale=4, channels=8, num_residual=1).eval()
    metric = LPIPSMetric()
    together = evaluate_methods([(None, "bicubic"), ("tiny", net)], 4, sets=["Tiny"], root=tiny_root,
                                lpips=metric, progress=False)
    alone = [evaluate_sr("bicubic", 4, sets=["Tiny"], root=tiny_root, lpips=metric, progress=False),
             evaluate_sr(net, 4, sets=["Tiny"], root=tiny_root, lpips=metric, progress=False, name="tiny")]
    assert [r.method for r in together] == ["bicubic", "tiny"]
    for mine, reference in zip(together, alone):
        assert len(mine.per_image) == len(reference.per_image) == 2
        for a, b in zip(mine.per_image, reference.per_image):
            assert {k: a[k] for k in ("set", "image", "method", "scale")} == \
                   {k: b[k] for k in ("set", "image", "method", "scale")}
            assert a["psnr"] == pytest.approx(b["psnr"], abs=1e-9)
            assert a["lpips"] == pytest.approx(b["lpips"], abs=1e-6)
    # the bicubic and network rows differ, so a mix-up of methods would show
    assert together[0].per_image[0]["psnr"] != pytest.approx(together[1].per_image[0]["psnr"], abs=1e-3)


@pytest.mark.parametrize("loss", ["pixel", "feature"])
def test_a_few_training_steps_reduce_the_loss(tiny_root, tmp_path, loss):
    # One 40x40 training image and 40 px patches: every step sees the same batch.
    result = train_sr(tiny_root / "train" / "one", tmp_path / loss, net={"scale": 4, "channels": 16, "num_residual": 1},
                      loss=loss, train=SRTrainSettings(recipe="paper", steps=12, batch_size=2, patch=40, num_workers=0,
                                                       progress=False, checkpoint_every=100, preview_every=100))
    losses = [row["total"] for row in result.history]
    assert len(losses) == 12 and result.model_path is not None
    assert sum(losses[-3:]) / 3 < 0.7 * losses[0]


def test_init_from_starts_from_the_given_weights_and_records_them(tiny_root, tmp_path):
    from perceptual_utils.model_io import read_model_metadata
    from perceptual_utils.training.settings import FINE_TUNE_WARMUP_STEPS

    net = {"scale": 4, "channels": 16, "num_residual": 1, "variant": "modern"}  # no batch-norm statistics to move
    torch.manual_seed(5)  # other weights than train_sr's own seeded initialisation
    source = SuperResolutionNet(**net)
    path = save_model(source, tmp_path / "start.safetensors")
    # a vanishing learning rate: Adam moves each weight by about 1e-12, so they must be the source's
    result = train_sr(tiny_root / "train" / "one", tmp_path / "run", net=net, loss="pixel",
                      train=SRTrainSettings(recipe="paper", steps=1, batch_size=2, patch=40, num_workers=0, lr=1e-12,
                                            progress=False, init_from=path))
    trained = result.model.state_dict()
    assert all(torch.allclose(trained[k], v, rtol=0, atol=1e-9) for k, v in source.state_dict().items())
    info = read_model_metadata(result.model_path)["training"]
    assert info["init_from"] == "start.safetensors" and len(info["init_from_digest"]) > 8
    assert info["warmup_steps"] == FINE_TUNE_WARMUP_STEPS  # a fine-tune warms up by default


def test_init_from_refuses_another_architecture_or_kind(tiny_root, tmp_path, run_cli, capsys):
    from perceptual_utils.style.net import StyleTransferNet

    other = save_model(SuperResolutionNet(scale=4, channels=8, num_residual=1), tmp_path / "narrow.safetensors")
    style = save_model(StyleTransferNet(channels=4, num_residual=1), tmp_path / "style.safetensors")
    base = ["train-sr", "--data", tiny_root / "train" / "one", "--scale", "4", "--channels", "16",
            "--num-residual", "1", "--patch", "40", "--steps", "1", "--recipe", "paper", "--no-progress"]
    for source, message in [(other, "channels: 8 there, 16 here"), (style, "style_transfer"),
                            ("no_such_model", "no_such_model")]:
        assert run_cli(*base, "--out", tmp_path / "run", "--init-from", source) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_grid_jitter_applies_to_the_feature_loss_only(tiny_root, tmp_path):
    from perceptual_utils.model_io import read_model_metadata
    from perceptual_utils.sr.training import SRLoss

    net = SuperResolutionNet(scale=4, channels=8, num_residual=1, variant="modern")
    lr, hr = torch.rand(2, 3, 10, 10), torch.rand(2, 3, 40, 40)
    assert torch.equal(SRLoss("pixel", grid_jitter=8)(net, (lr, hr))["total"], SRLoss("pixel")(net, (lr, hr))["total"])
    settings = dict(recipe="paper", steps=1, batch_size=2, patch=40, num_workers=0, progress=False, grid_jitter=4)
    runs = {loss: train_sr(tiny_root / "train" / "one", tmp_path / loss, net={"scale": 4, "channels": 8,
                                                                               "num_residual": 1},
                           loss=loss, train=SRTrainSettings(**settings)) for loss in ("feature", "pixel")}
    assert read_model_metadata(runs["feature"].model_path)["training"]["grid_jitter"] == 4
    assert "grid_jitter" not in read_model_metadata(runs["pixel"].model_path)["training"]



def test_pixel_weight_adds_the_per_pixel_loss_to_the_feature_loss(tiny_root):
    from perceptual_utils.losses import pixel_loss
    from perceptual_utils.sr.training import SRLoss

    torch.manual_seed(0)
    net = SuperResolutionNet(scale=4, channels=8, num_residual=1, variant="modern")
    lr, hr = torch.rand(2, 3, 10, 10), torch.rand(2, 3, 40, 40)
    plain = SRLoss("feature")(net, (lr, hr))
    mixed = SRLoss("feature", pixel_weight=300.0)(net, (lr, hr))
    assert set(plain) == {"feature", "total"} and torch.equal(plain["total"], plain["feature"])
    assert torch.allclose(mixed["feature"], plain["feature"])
    assert torch.allclose(mixed["pixel"], pixel_loss(net(lr), hr))
    assert torch.allclose(mixed["total"], mixed["feature"] + 300.0 * mixed["pixel"])
    assert mixed["pixel"] > 0


@pytest.mark.parametrize("weight, loss, message", [(-1.0, "feature", ">= 0"), (float("nan"), "feature", ">= 0"),
                                                   ("lots", "feature", "a number"), (1.0, "pixel", "feature loss")])
def test_bad_pixel_weight_is_refused(weight, loss, message):
    from perceptual_utils.sr.training import check_pixel_weight

    with pytest.raises(ValueError, match=message):
        check_pixel_weight(weight, loss)


def test_pixel_weight_is_recorded_and_refused_with_the_pixel_loss(tiny_root, tmp_path, run_cli, capsys):
    from perceptual_utils.model_io import read_model_metadata

    base = ["train-sr", "--data", tiny_root / "train" / "one", "--scale", "4", "--channels", "8",
            "--num-residual", "1", "--patch", "40", "--steps", "1", "--batch-size", "2", "--recipe", "paper",
            "--no-progress", "--pixel-weight", "100"]
    assert run_cli(*base, "--loss", "pixel", "--out", tmp_path / "pixel") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "feature loss" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "pixel" / "model.safetensors").exists()
    assert run_cli(*base, "--loss", "feature", "--out", tmp_path / "mixed") == 0
    assert read_model_metadata(tmp_path / "mixed" / "model.safetensors")["training"]["pixel_weight"] == 100.0

def test_feature_layer_is_trained_recorded_and_kept_on_resume(tiny_root, tmp_path, run_cli, capsys):
    from perceptual_utils.model_io import read_model_metadata

    base = ["train-sr", "--data", tiny_root / "train" / "one", "--scale", "4", "--channels", "8",
            "--num-residual", "1", "--patch", "40", "--batch-size", "2", "--recipe", "paper", "--no-progress",
            "--out", tmp_path / "deep"]
    assert run_cli(*base, "--steps", "1", "--feature-layer", "relu3_3") == 0
    assert read_model_metadata(tmp_path / "deep" / "model.safetensors")["training"]["layer"] == "relu3_3"
    capsys.readouterr()
    # resuming the run with another layer would mix two objectives in one history: refused, in one line
    assert run_cli(*base, "--steps", "2", "--feature-layer", "relu2_2") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "layer" in err and len(err.splitlines()) == 1, err


def test_unknown_feature_layer_is_refused(tiny_root, tmp_path, run_cli, capsys):
    from perceptual_utils.sr.training import train_sr

    with pytest.raises(ValueError, match="relu9_9"):
        train_sr(tiny_root / "train" / "one", tmp_path / "bad", feature_layer="relu9_9", steps=1)
    with pytest.raises(SystemExit) as exit_:  # argparse's own one-line error for a bad choice
        run_cli("train-sr", "--data", tiny_root / "train" / "one", "--feature-layer", "relu9_9",
                "--out", tmp_path / "bad")
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and "relu9_9" in err and len(err.splitlines()) == 1, err


def test_upscale_cli(tiny_root, tmp_path, run_cli, capsys):
    model = save_model(SuperResolutionNet(scale=4, channels=8, num_residual=1), tmp_path / "x4.safetensors")
    bad = tmp_path / "in" / "broken.png"
    bad.parent.mkdir()
    bad.write_bytes(b"not a png")
    good = tiny_root / "sr" / "Tiny" / "im1.png"
    code = run_cli("upscale", "--model", model, "--input", good, bad, "--output", tmp_path / "out", "--quiet")
    err = capsys.readouterr().err
    assert code == 1 and "broken.png" in err and len(err.strip().splitlines()) == 1
    with Image.open(tmp_path / "out" / "im1.png") as im:  # the good file was still processed
        assert im.size == (160, 160)


def test_cli_error_paths(tiny_root, tmp_path, run_cli, capsys):
    from perceptual_utils.style.net import StyleTransferNet

    style = save_model(StyleTransferNet(channels=4, num_residual=1), tmp_path / "style.safetensors")
    image = tiny_root / "sr" / "Tiny" / "im0.png"
    cases = [
        (["upscale", "--model", tmp_path / "missing.safetensors", "--input", image, "--output", tmp_path / "o.png"],
         "no such model file"),
        (["upscale", "--model", style, "--input", image, "--output", tmp_path / "o.png"], "style_transfer"),
        (["evaluate-sr", "--model", style, "--sets", "Tiny", "--root", tiny_root], "style_transfer"),
        (["evaluate-sr", "--method", "bicubic", "--sets", "Nope", "--root", tiny_root], "Nope"),
        (["train-sr", "--data", tmp_path / "nowhere", "--out", tmp_path / "run"], "nowhere"),
    ]
    for argv, message in cases:
        assert run_cli(*argv) == 1, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and message in err and len(err.splitlines()) == 1, err


def test_evaluate_cli_bicubic_prints_table_and_paper(tiny_root, tmp_path, run_cli, capsys):
    code = run_cli("evaluate-sr", "--method", "bicubic", "--scale", "4", "--sets", "Tiny", "--root", tiny_root,
                   "--per-image", "--no-lpips", "--quiet", "--json", tmp_path / "b.json")
    out = capsys.readouterr().out
    assert code == 0 and "im0" in out and "Tiny (mean of 2)" in out
    assert json.loads((tmp_path / "b.json").read_text())["method"] == "bicubic"


def test_comparison_table_puts_the_paper_beside_ours():
    from perceptual_utils.sr.evaluation import SREvaluation, comparison_table

    rows = [{"set": "Set5", "image": "a", "psnr": 27.5, "ssim": 0.8, "lpips": 0.2},
            {"set": "Set5", "image": "b", "psnr": 28.5, "ssim": 0.7, "lpips": None}]
    table = comparison_table([SREvaluation("feature", 4, rows), SREvaluation("bicubic", 8, rows)])
    lines = table.splitlines()
    assert "28.00" in lines[2] and "0.7500" in lines[2] and "0.2000" in lines[2] and "27.09/0.7680" in lines[2]
    # the paper's Set5 x4 rows that none of ours matches follow the group, numbers in the paper column only
    paper_only = [line for line in lines if "(paper)" in line]
    assert [line.split("(paper)")[0].split()[-1] for line in paper_only] == ["bicubic", "SRCNN", "per-pixel"]
    assert "30.48/0.8628" in paper_only[1] and paper_only[1].split()[4] == "-"
    x8 = next(line for line in lines if "x8" in line)
    assert x8.rstrip().endswith("-")  # no reported x8 number is printed
    assert lines.index(x8) > lines.index(paper_only[-1])  # the x4 group's paper rows come before x8's


def test_train_sr_cli_resumes_by_default_and_exports_half(tiny_root, tmp_path, run_cli, capsys):
    from perceptual_utils.model_io import load_model

    out, half = tmp_path / "run", tmp_path / "x4_half.safetensors"
    argv = ["train-sr", "--scale", "4", "--loss", "pixel", "--data", tiny_root / "train" / "one", "--out", out,
            "--steps", "4", "--batch-size", "1", "--patch", "40", "--channels", "8", "--num-residual", "1",
            "--workers", "0", "--checkpoint-every", "1", "--quiet", "--recipe", "paper"]
    assert run_cli(*argv, "--stop-after", "2") == 0
    assert "stopped at step 2 of 4" in capsys.readouterr().out and not (out / "model.safetensors").exists()
    assert run_cli(*argv, "--export", half) == 0  # the same command again continues from step 2
    assert (out / "history.csv").read_text().count("\n") == 1 + 4
    model = load_model(half, kind="super_resolution")
    assert model.training_info["steps_done"] == 4
    assert all(v.dtype == torch.float16 for v in _stored_tensors(half) if v.is_floating_point())
    # Different settings in the same folder are refused, not silently mixed.
    assert run_cli(*[a if a != "pixel" else "feature" for a in argv]) == 1
    assert "different settings" in capsys.readouterr().err


def _stored_tensors(path):
    from safetensors.torch import load_file

    return load_file(str(path)).values()
