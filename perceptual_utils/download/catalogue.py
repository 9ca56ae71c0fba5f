"""The workbook's data catalogue: what ``fetch-data`` downloads, from where, and how it is checked.

Style paintings (public domain, Wikimedia), the SR benchmarks (Set5, Set14, BSD100), a 239-photo
MS-COCO sample and MS-COCO train2014 (zip, extracted once), each into its place in the data root.
"""
from __future__ import annotations

import os
import urllib.parse
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..config import data_root
from ..images import ImageLoadError, center_crop, load_image, save_image
from .downloader import FetchError, download, remove_empty_dirs

@dataclass(frozen=True)
class Resource:
    """One file to download: where from, where to (relative to the data root), how to check it.

    ``sha256``/``size`` are ``None`` where they cannot be known in advance (e.g. Wikimedia
    thumbnails are rendered on demand, so their bytes may change); such files are checked by
    decoding them as images instead. ``mirrors`` are further URLs tried in order when ``url``
    fails (e.g. a COCO photo that is in val2017 or in train2017).
    """

    url: str
    path: str
    sha256: str | None = None
    size: int | None = None
    mirrors: tuple[str, ...] = ()


def _wiki(host: str, filename: str, width: int = 1024) -> str:
    # Special:FilePath redirects to the file; ``?width=`` to a scaled rendering, so a user does
    # not pull a 200 MB museum scan for a 1024 px style image.
    return f"https://{host}/wiki/Special:FilePath/{urllib.parse.quote(filename)}?width={width}"


_COMMONS = "commons.wikimedia.org"
# Udnie (Picabia, d. 1953) and Woman with a Hat (Matisse, d. 1954) are public domain in the US
# (published before 1929) but are hosted on English Wikipedia rather than Commons.
_ENWIKI = "en.wikipedia.org"

#: The workbook's style paintings (all public domain; see README). Thumbnails: no checksum known.
STYLE_RESOURCES: tuple[Resource, ...] = (
    Resource(_wiki(_COMMONS, "Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg"), "styles/starry_night.jpg"),
    Resource(_wiki(_COMMONS, "Tsunami_by_hokusai_19th_century.jpg"), "styles/wave.jpg"),
    Resource(_wiki(_COMMONS, "Vassily_Kandinsky,_1913_-_Composition_7.jpg"), "styles/composition_vii.jpg"),
    Resource(_wiki(_COMMONS, "Edvard_Munch,_1893,_The_Scream,_oil,_tempera_and_pastel_on_cardboard,"
                             "_91_x_73_cm,_National_Gallery_of_Norway.jpg"), "styles/the_scream.jpg"),
    Resource(_wiki(_ENWIKI, "Francis_Picabia,_1913,_Udnie_(Young_American_Girl,_The_Dance),_oil_on_canvas,"
                            "_290_x_300_cm,_Musée_National_d’Art_Moderne,_Centre_Georges_Pompidou,_Paris..jpg"),
             "styles/udnie.jpg"),
    Resource(_wiki(_COMMONS, "Joseph_Mallord_William_Turner_-_The_Shipwreck_-_Google_Art_Project.jpg"),
             "styles/shipwreck_turner.jpg"),
    Resource(_wiki(_ENWIKI, "Matisse-Woman-with-a-Hat.jpg"), "styles/woman_with_hat_matisse.jpg"),
)

#: ``<name>_crop.jpg`` files: our own square centre crops of the downloaded paintings (the crops
#: distributed with jcjohnson/fast-neural-style are not on Wikimedia), made locally.
STYLE_CROPS = {"starry_night_crop.jpg": "starry_night.jpg", "wave_crop.jpg": "wave.jpg"}

#: MS-COCO train2014 (82,783 images, about 13 GB; COCO images carry Flickr Creative Commons
#: licences). No sha256 is published by COCO; completeness is checked by Content-Length and by
#: opening the zip's central directory (a truncated zip fails there).
COCO_RESOURCE = Resource("http://images.cocodataset.org/zips/train2014.zip", "train/train2014.zip")

#: ``coco-mini``: 239 MS-COCO 2017 photos (ids below; the same set as the workbook's offline
#: ``train/coco_mini``), about 40 MB: enough for the notebooks' short training runs without the 13 GB
#: archive. Each id is in val2017 or train2017; both are tried. COCO publishes no per-file
#: checksums, so each file is checked by decoding it.
_COCO_IMAGES = "http://images.cocodataset.org"
COCO_MINI_IDS: tuple[int, ...] = tuple(int(i) for i in """
139 790 802 11813 12280 18575 19221 20247 22192 22892 30213 30752 34417 37666 54718 57597 59598
62554 63217 66841 69468 70133 72258 73326 78499 78915 84284 84533 89232 92660 99053 100667
101780 101787 105912 106235 107438 109313 113354 113488 114174 116270 116479 117425 117645
121647 125870 126107 128051 128598 129648 133030 135561 136334 142585 145311 151938 153797
155341 157206 159269 160012 160556 161044 161846 163497 163951 165518 167572 172123 172648
174231 174375 174632 177861 177977 181303 183709 183872 187334 189775 192699 194322 194875
196393 199055 205401 211042 211325 211891 212679 213148 214704 214753 215657 215778 216794
217285 227000 229358 229997 231125 231460 232357 234748 234757 235064 237517 241668 244592
249025 249346 252332 252639 253695 255165 256353 261712 262227 262440 262682 269196 269314
273232 275791 281789 284218 286458 288685 290843 296222 301061 310200 311002 312237 312489
322517 324258 328683 330993 332078 334719 338905 341719 343803 344100 347254 349860 350679
353072 354072 357081 357501 358083 358427 359219 361919 367095 368212 369771 370162 370208
373381 377575 378605 379349 389684 391648 394940 397133 397681 403353 405279 406129 407574
408805 409194 418049 419474 420862 423617 425226 427034 431848 432430 433998 434204 435081
435206 439180 442450 453302 458045 460229 463557 463690 466137 466547 475678 476704 482585
484641 488571 488673 489520 493652 501368 505573 508602 511599 516008 516916 519208 519611
525891 527220 530836 531134 535506 536038 538113 539216 539445 540280 544238 546826 549055
551757 551780 552775 553664 557172 565607 565776 568290 570448 576031 577932 580294
""".split())


def coco_mini_urls(image_id: int) -> tuple[str, str]:
    """Where COCO 2017 serves photo ``image_id``: val2017 first (most of the set), then train2017."""
    return tuple(f"{_COCO_IMAGES}/{split}/{image_id:012d}.jpg" for split in ("val2017", "train2017"))


def coco_mini_resources() -> list[Resource]:
    """The ``coco-mini`` files into ``train/coco_mini/`` (built on call: tests point the host elsewhere)."""
    resources = []
    for image_id in COCO_MINI_IDS:
        url, *mirrors = coco_mini_urls(image_id)
        resources.append(Resource(url, f"train/coco_mini/{image_id:012d}.jpg", mirrors=tuple(mirrors)))
    return resources


# Set5 / Set14 / BSD100 ground-truth HR images from jiny2001/dcscn-super-resolution (data/set5,
# data/set14, data/bsd100), pinned to a commit; they are the HR images of jbhuang0604/SelfExSR,
# numbered img_001... in alphabetical order of the classic names. Checksums of these PNGs are not
# known offline (our shared copies are re-encoded), so they are checked by decoding.
_DCSCN = "https://raw.githubusercontent.com/jiny2001/dcscn-super-resolution/27d8f11cd8b5d58de0b91128b4b6c72375c69e16/data"
SR_NAMES = {
    "Set5": ("baby", "bird", "butterfly", "head", "woman"),
    "Set14": ("baboon", "barbara", "bridge", "coastguard", "comic", "face", "flowers", "foreman", "lenna",
              "man", "monarch", "pepper", "ppt3", "zebra"),
    "BSD100": tuple(f"img_{i:03d}" for i in range(1, 101)),
}
SR_RESOURCES: tuple[Resource, ...] = tuple(
    Resource(f"{_DCSCN}/{dataset.lower()}/img_{i:03d}.png", f"sr/{dataset}/{name}.png")
    for dataset, names in SR_NAMES.items() for i, name in enumerate(names, start=1)
)

DATA_GROUPS = ("styles", "sr", "coco-mini", "coco", "all")


def _check_image(path: Path, url: str) -> None:
    try:
        load_image(path)
    except ImageLoadError as exc:
        path.unlink()
        raise FetchError(f"{url} did not give a readable image ({exc}); removed it") from None


def _download_resource(res: Resource, dest: Path, progress: bool) -> str:
    """Download ``res`` from its URL, else from each mirror in turn; returns the URL that worked."""
    errors = []
    for url in (res.url, *res.mirrors):
        try:
            download(url, dest, sha256=res.sha256, size=res.size, progress=progress)
            return url
        except FetchError as exc:
            errors.append(str(exc))
    raise FetchError("; ".join(errors))


def _fetch_images(resources: Iterable[Resource], root: Path, progress: bool) -> list[Path]:
    resources = list(resources)
    out = []
    for res in tqdm(resources, desc="files", unit="file", disable=not progress or len(resources) < 2):
        dest = root / res.path
        fresh = not dest.is_file()
        url = _download_resource(res, dest, progress)
        if fresh:
            _check_image(dest, url)
        out.append(dest)
    return out


def _make_crops(styles_dir: Path) -> list[Path]:
    made = []
    for crop_name, source in STYLE_CROPS.items():
        dest, src = styles_dir / crop_name, styles_dir / source
        if src.is_file() and not dest.is_file():
            image = load_image(src)
            side = min(image.shape[-2:])
            save_image(center_crop(image, side), dest)
            made.append(dest)
    return made


def _fetch_coco(root: Path, progress: bool, keep_archive: bool) -> list[Path]:
    folder = root / "train" / "train2014"
    done = folder / ".complete"
    if done.is_file():  # idempotent: extraction finished on an earlier run
        return [folder]
    archive = download(COCO_RESOURCE.url, root / COCO_RESOURCE.path, progress=progress)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for member in tqdm(members, desc="extracting train2014", unit="file", disable=not progress):
                zf.extract(member, root / "train")
    except zipfile.BadZipFile as exc:
        archive.unlink()
        raise FetchError(f"{archive}: corrupt zip from {COCO_RESOURCE.url} ({exc}); removed it, run again") from None
    done.write_text("extracted from " + COCO_RESOURCE.url + "\n")
    if not keep_archive:
        archive.unlink()
    return [folder]


def fetch_data(what: str = "all", root: str | os.PathLike | None = None, progress: bool = True,
               keep_archive: bool = False) -> list[Path]:
    """Download data into the data root (``root``, else ``$PERCEPTUAL_UTILS_DATA``, else ``data/``).

    ``what``: ``styles`` (the public-domain paintings, about 10 MB), ``sr`` (Set5, Set14, BSD100,
    about 50 MB), ``coco-mini`` (239 COCO photos, about 40 MB, into ``train/coco_mini/``), ``coco``
    (MS-COCO train2014, about 13 GB, extracted to ``train/train2014/``) or ``all``. Files already
    present are kept; rerunning resumes an interrupted download. A failed fetch removes the
    folders it created that are still empty.
    """
    if what not in DATA_GROUPS:
        raise ValueError(f"unknown data group {what!r}; choose from {', '.join(DATA_GROUPS)}")
    base = data_root(root)
    fresh = [d for d in _folders(base, what) if not d.exists()]
    try:
        return _fetch_group(what, base, progress, keep_archive)
    except BaseException:
        remove_empty_dirs(fresh)  # a failed fetch leaves no empty folders behind
        raise


def _folders(base: Path, what: str) -> set[Path]:
    """The data root and every folder under it that fetching ``what`` may create."""
    relative = [r.path for r in STYLE_RESOURCES] if what in ("styles", "all") else []
    relative += [r.path for r in SR_RESOURCES] if what in ("sr", "all") else []
    relative += [r.path for r in coco_mini_resources()] if what in ("coco-mini", "all") else []
    relative += [COCO_RESOURCE.path, "train/train2014/.complete"] if what in ("coco", "all") else []
    folders = {base}
    for rel in relative:
        folders.update(p for p in (base / rel).parents if base in p.parents)
    return folders


def _fetch_group(what: str, base: Path, progress: bool, keep_archive: bool) -> list[Path]:
    out: list[Path] = []
    if what in ("styles", "all"):
        out += _fetch_images(STYLE_RESOURCES, base, progress)
        out += _make_crops(base / "styles")
    if what in ("sr", "all"):
        out += _fetch_images(SR_RESOURCES, base, progress)
    if what in ("coco-mini", "all"):
        out += _fetch_images(coco_mini_resources(), base, progress)
    if what in ("coco", "all"):
        out += _fetch_coco(base, progress, keep_archive)
    return out
