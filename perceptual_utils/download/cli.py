"""The ``fetch-weights`` and ``fetch-data`` commands.

    python -m perceptual_utils fetch-weights [--dest data/weights]
    python -m perceptual_utils fetch-data {styles,sr,coco-mini,coco,all} [--root data]
"""
from __future__ import annotations

from ..cli_options import add_progress_option
from ..config import data_root
from ..errors import CLIError
from .catalogue import DATA_GROUPS, fetch_data
from .downloader import FetchError
from .weights_sources import fetch_weights, verify_weights_file


def _cmd_fetch_weights(args) -> int:
    try:
        path = fetch_weights(args.dest, progress=args.progress, force=args.force)
        how = verify_weights_file(path)
    except FetchError as exc:
        raise CLIError(str(exc)) from None
    print(f"VGG-16 weights ready: {path} (verified by {how})")
    return 0


def _cmd_fetch_data(args) -> int:
    for what in dict.fromkeys(args.what):  # in the order given, each once
        try:
            paths = fetch_data(what, args.root, progress=args.progress, keep_archive=args.keep_archive)
        except FetchError as exc:
            raise CLIError(str(exc)) from None
        print(f"{what}: {len(paths)} item(s) ready under {data_root(args.root)}")
    return 0


def register_cli(sub) -> None:
    """Add ``fetch-weights`` and ``fetch-data`` to the CLI's sub-parsers."""
    p = sub.add_parser("fetch-weights", help="download the VGG-16 weights into data/weights/",
                       description=fetch_weights.__doc__.split("\n\n")[0])
    p.add_argument("--dest", default=None, help="folder for vgg16_features.safetensors (default: data/weights)")
    p.add_argument("--force", action="store_true", help="download again even if a valid file is present")
    add_progress_option(p)
    p.set_defaults(func=_cmd_fetch_weights)

    p = sub.add_parser("fetch-data", help="download style paintings, SR benchmarks, a COCO sample or MS-COCO train2014",
                       description=fetch_data.__doc__.split("\n\n")[0])
    p.add_argument("what", nargs="+", choices=DATA_GROUPS, help="which data to fetch (one or more groups)")
    p.add_argument("--root", default=None, help="data root (default: $PERCEPTUAL_UTILS_DATA, else data/)")
    p.add_argument("--keep-archive", action="store_true", help="keep train2014.zip after extracting it")
    add_progress_option(p)
    p.set_defaults(func=_cmd_fetch_data)


