"""The ``fetch-weights`` and ``fetch-data`` commands.

    python -m perceptual_utils fetch-weights [--dest data/weights]
    python -m perceptual_utils fetch-data {styles,sr,coco-mini,coco,all} [--root data]
"""
from __future__ import annotations

import sys

from ..cli_options import add_progress_option
from ..config import ENV_DATA, ENV_WEIGHTS, data_root
from ..errors import CLIError
from ..vgg.weights import WEIGHTS_FILENAME
from .catalogue import DATA_GROUPS, fetch_data
from .downloader import FetchError
from .weights_sources import fetch_weights, verify_weights_file


#: What a user can do when a download fails (issue 37: the bare error gave no way forward). One line,
#: because the CLI prints the first line of an error.
WEIGHTS_ADVICE = (f"what to do: check the connection and run the command again, or set {ENV_WEIGHTS} "
                  f"to a {WEIGHTS_FILENAME} (or torchvision vgg16 .pth) you already have")
DATA_ADVICE = (f"what to do: run the command again (finished files are kept, an interrupted one resumes), "
               f"or set {ENV_DATA} to a folder that already holds the data; without it the notebooks that can "
               "fall back to built-in sample pictures and say so")


def _cmd_fetch_weights(args) -> int:
    try:
        path = fetch_weights(args.dest, progress=args.progress, force=args.force, say=print)
        how = verify_weights_file(path)
    except FetchError as exc:
        raise CLIError(f"{exc} -- {WEIGHTS_ADVICE}") from None
    print(f"VGG-16 weights ready: {path} (verified by {how})")
    return 0


def _cmd_fetch_data(args) -> int:
    failed = []
    for what in dict.fromkeys(args.what):  # in the order given, each once; a failure does not stop the rest
        try:
            paths = fetch_data(what, args.root, progress=args.progress, keep_archive=args.keep_archive)
        except FetchError as exc:
            failed.append((what, str(exc)))
            continue
        print(f"{what}: {len(paths)} item(s) ready under {data_root(args.root)}")
    if len(failed) == 1:
        raise CLIError(f"{failed[0][1]} -- {DATA_ADVICE}")
    for what, message in failed:
        print(f"{what}: failed: {message}", file=sys.stderr)
    if failed:
        raise CLIError(f"could not fetch {', '.join(w for w, _ in failed)} (above) -- {DATA_ADVICE}")
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


