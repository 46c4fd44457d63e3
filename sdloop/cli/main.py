"""The ``sdloop`` command line: the parser and the error handling every command shares.

Each command group lives in its own module (``run``, ``simulate``, ``ensemble``, ``bench``,
``analysis`` for check and loops, ``diagram`` for sketch and diagram; ``calibrate`` in the
calibration package). Errors a user can
cause end with one line ``FILE:LINE: VARIABLE: message`` on stderr and a non-zero exit status
(2 for unusable input, 1 for a run that failed on valid input); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from sdloop.errors import SdloopError


def build_parser() -> argparse.ArgumentParser:
    from sdloop.version import __version__
    from calibration.cli import add_calibrate_parser
    from sdloop.cli.analysis import add_check_parser, add_loops_parser
    from sdloop.cli.bench import add_bench_parser
    from sdloop.cli.diagram import add_diagram_parser, add_sketch_parser
    from sdloop.cli.ensemble import add_ensemble_parser
    from sdloop.cli.optimize import add_optimize_parser
    from sdloop.cli.run import add_run_parser
    from sdloop.cli.simulate import add_simulate_parser

    parser = argparse.ArgumentParser(prog="sdloop", description="system-dynamics feedback-loop modelling for "
                                                                "industrial, trade and innovation policy")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"sdloop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_run_parser(sub)
    add_simulate_parser(sub)
    add_calibrate_parser(sub)
    add_check_parser(sub)
    add_bench_parser(sub)
    add_ensemble_parser(sub)
    add_optimize_parser(sub)
    add_loops_parser(sub)
    add_sketch_parser(sub)
    add_diagram_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    try:
        return args.handler(args)
    except SdloopError as exc:
        if debug:
            raise
        print(f"sdloop: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("sdloop: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
