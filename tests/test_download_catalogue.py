"""The data catalogue and ``fetch-data`` against a local HTTP server (no internet needed)."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from perceptual_utils.download import catalogue
from perceptual_utils.cli import main as cli_main
from perceptual_utils.download.catalogue import Resource

from test_download_downloader import Server, server  # noqa: F401  (the local HTTP server fixture)


def test_fetch_data_styles_via_cli(server, tmp_path, monkeypatch, capsys):
    server.files["/starry.png"] = png_bytes()
    server.files["/scream.png"] = png_bytes((20, 30))
    monkeypatch.setattr(catalogue, "STYLE_RESOURCES", (Resource(server.url("/starry.png"), "styles/starry_night.jpg"),
                                                   Resource(server.url("/scream.png"), "styles/the_scream.jpg")))
    assert cli_main(["fetch-data", "styles", "--root", str(tmp_path), "--quiet"]) == 0
    assert (tmp_path / "styles" / "the_scream.jpg").read_bytes() == server.files["/scream.png"]
    crop = Image.open(tmp_path / "styles" / "starry_night_crop.jpg")
    assert crop.size == (30, 30)  # square centre crop of the 40x30 painting
    n = len(server.requests)
    assert cli_main(["fetch-data", "styles", "--root", str(tmp_path), "--quiet"]) == 0
    assert len(server.requests) == n  # idempotent
    assert "ready under" in capsys.readouterr().out


def test_fetch_data_rejects_a_non_image_and_reports_network_errors(server, tmp_path, monkeypatch, capsys):
    server.files["/page.html"] = b"<html>not found</html>"
    monkeypatch.setattr(catalogue, "SR_RESOURCES", (Resource(server.url("/page.html"), "sr/Set5/baby.png"),))
    assert cli_main(["fetch-data", "sr", "--root", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and server.url("/page.html") in err and "\n" not in err
    assert not (tmp_path / "sr" / "Set5" / "baby.png").exists()
    monkeypatch.setattr(catalogue, "SR_RESOURCES", (Resource(server.url("/gone.png"), "sr/Set5/baby.png"),))
    assert cli_main(["fetch-data", "sr", "--root", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: could not download {server.url('/gone.png')}: HTTP 404 Not Found -- what to do:")
    assert "PERCEPTUAL_UTILS_DATA" in err and "run the command again" in err and "\n" not in err


def test_a_failed_fetch_leaves_no_empty_folders_and_the_next_group_still_runs(server, tmp_path, monkeypatch, capsys):
    root = tmp_path / "fresh_root"  # does not exist yet: the fetch would create it
    server.files["/starry.png"] = png_bytes()
    monkeypatch.setattr(catalogue, "SR_RESOURCES", (Resource(server.url("/gone.png"), "sr/Set5/baby.png"),))
    monkeypatch.setattr(catalogue, "STYLE_RESOURCES", (Resource(server.url("/starry.png"), "styles/starry_night.jpg"),))
    assert cli_main(["fetch-data", "sr", "--root", str(root), "--quiet"]) == 1
    assert not root.exists()  # neither sr/Set5 nor the root itself is left behind, empty
    assert cli_main(["fetch-data", "sr", "styles", "--root", str(root), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "styles: 2 item(s) ready" in captured.out  # the failed group did not stop the next one
    assert captured.err.startswith(f"error: could not download {server.url('/gone.png')}: HTTP 404 Not Found -- what")
    assert sorted(p.name for p in root.iterdir()) == ["styles"]
    monkeypatch.setattr(catalogue, "STYLE_RESOURCES", (Resource(server.url("/gone2.png"), "styles/wave.jpg"),))
    assert cli_main(["fetch-data", "sr", "styles", "--root", str(root), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("sr: failed: could not download") and err[1].startswith("styles: failed:")
    assert err[2].startswith("error: could not fetch sr, styles (above) -- what to do:") and "PERCEPTUAL_UTILS_DATA" in err[2]


def test_a_rejected_file_leaves_no_empty_folder(server, tmp_path, monkeypatch):
    server.files["/page.html"] = b"<html>not an image</html>"
    monkeypatch.setattr(catalogue, "SR_RESOURCES", (Resource(server.url("/page.html"), "sr/Set5/baby.png"),))
    with pytest.raises(catalogue.FetchError, match="did not give a readable image"):
        catalogue.fetch_data("sr", tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []  # tmp_path existed before, sr/ and sr/Set5/ did not


def test_fetch_coco_extracts_once(server, tmp_path, monkeypatch):
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("train2014/COCO_train2014_000000000009.jpg", png_bytes())
    server.files["/train2014.zip"] = buf.getvalue()
    monkeypatch.setattr(catalogue, "COCO_RESOURCE", Resource(server.url("/train2014.zip"), "train/train2014.zip"))
    catalogue.fetch_data("coco", tmp_path, progress=False)
    assert (tmp_path / "train" / "train2014" / "COCO_train2014_000000000009.jpg").is_file()
    assert not (tmp_path / "train" / "train2014.zip").exists()  # archive removed after extraction
    n = len(server.requests)
    catalogue.fetch_data("coco", tmp_path, progress=False)
    assert len(server.requests) == n


def test_unknown_group_and_real_resource_table():
    with pytest.raises(ValueError, match="styles, sr, coco-mini, coco, all"):
        catalogue.fetch_data("imagenet")
    # every style the shared README lists (full paintings) has a source, every SR image one too
    assert {Path(r.path).name for r in catalogue.STYLE_RESOURCES} | set(catalogue.STYLE_CROPS) == {
        "starry_night.jpg", "starry_night_crop.jpg", "wave.jpg", "wave_crop.jpg", "composition_vii.jpg",
        "the_scream.jpg", "udnie.jpg", "shipwreck_turner.jpg", "woman_with_hat_matisse.jpg"}
    assert all("Special:FilePath/" in r.url for r in catalogue.STYLE_RESOURCES)
    assert len(catalogue.SR_RESOURCES) == 5 + 14 + 100


def test_fetch_coco_mini_tries_val_then_train_and_is_idempotent(server, tmp_path, monkeypatch, capsys):
    server.files["/val2017/000000000001.jpg"] = png_bytes()
    server.files["/train2017/000000000002.jpg"] = png_bytes((20, 30))
    monkeypatch.setattr(catalogue, "_COCO_IMAGES", server.url("").rstrip("/"))
    monkeypatch.setattr(catalogue, "COCO_MINI_IDS", (1, 2))
    server.files["/starry.png"] = png_bytes()
    monkeypatch.setattr(catalogue, "STYLE_RESOURCES", (Resource(server.url("/starry.png"), "styles/starry_night.jpg"),))
    assert cli_main(["fetch-data", "styles", "coco-mini", "--root", str(tmp_path), "--quiet"]) == 0
    assert capsys.readouterr().out.count("ready under") == 2  # several groups in one call
    assert (tmp_path / "styles" / "starry_night_crop.jpg").is_file()
    folder = tmp_path / "train" / "coco_mini"
    assert sorted(p.name for p in folder.iterdir()) == ["000000000001.jpg", "000000000002.jpg"]
    assert (folder / "000000000002.jpg").read_bytes() == server.files["/train2017/000000000002.jpg"]
    n = len(server.requests)
    assert cli_main(["fetch-data", "coco-mini", "--root", str(tmp_path), "--quiet"]) == 0
    assert len(server.requests) == n  # nothing downloaded again
    monkeypatch.setattr(catalogue, "COCO_MINI_IDS", (3,))
    assert cli_main(["fetch-data", "coco-mini", "--root", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "val2017/000000000003.jpg" in err and "train2017/000000000003.jpg" in err and "\n" not in err


def test_coco_mini_ids_are_the_offline_stand_in(shared_data):
    stand_in = sorted(int(p.stem) for p in (shared_data / "train" / "coco_mini").glob("*.jpg"))
    assert list(catalogue.COCO_MINI_IDS) == stand_in


def png_bytes(size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 100, 50)).save(buf, format="PNG")
    return buf.getvalue()
