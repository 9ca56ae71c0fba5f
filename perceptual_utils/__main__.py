"""``python -m perceptual_utils``: the command line."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
