"""`python -m engine.predict serve FOLDER`: the playground's worker process."""

from __future__ import annotations

import argparse
import gc
import sys

from engine.predict.serve import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.predict")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="answer JSON-line requests about one stage output")
    p.add_argument("folder")
    args = parser.parse_args(argv)
    return serve(args.folder)


if __name__ == "__main__":
    code = main()
    gc.freeze()  # no exit-time walk of torch's objects (engine/__main__.py)
    sys.exit(code)
