"""The ``sdloop`` command line: the parser and the error handling every command shares.

Each command group lives in its own module (``run``, ``simulate``, ``ensemble``, ``bench``,
``analysis`` for check and loops, ``diagram`` for sketch and diagram; ``calibrate`` in the
calibration package). Every failure of every command goes through ``failures.report``: one
line on stderr (``FILE:LINE: VARIABLE: message`` where known) and a documented exit status (2
unusable input, 1 a run that failed on valid input, 130 Ctrl-C, 143 SIGTERM, 141 output closed
early); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext
from typing import Sequence



def build_parser() -> argparse.ArgumentParser:
    from sdloop.version import __version__
    from calibration.cli import add_calibrate_parser
    from sdloop.cli.analysis import add_check_parser, add_loops_parser
    from sdloop.cli.bench import add_bench_parser
    from sdloop.cli.compare import add_compare_parser
    from sdloop.cli.diagram import add_diagram_parser, add_sketch_parser
    from sdloop.cli.discover import add_discover_parser
    from sdloop.cli.ensemble import add_ensemble_parser
    from sdloop.cli.optimize import add_optimize_parser
    from sdloop.cli.plot import add_plot_parser
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
    add_plot_parser(sub)
    add_compare_parser(sub)
    add_discover_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from sdloop.cli.failures import report, signals_as_interrupts, silence_stdout, tidy_warnings
    from sdloop.errors import raise_if_terminated

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line
    with signals_as_interrupts(), tidy_warnings() if not debug else nullcontext():
        try:
            args = build_parser().parse_args([a for a in argv if a != "--debug"])
            status = args.handler(args)
            raise_if_terminated()  # SIGTERM whose exception was swallowed on the way still ends in 143
            sys.stdout.flush()  # a closed pipe shows here, inside the funnel
            return status
        except SystemExit as exc:  # argparse: usage errors (2), --help and --version (0)
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        except BaseException as exc:
            if debug and not isinstance(exc, BrokenPipeError):
                raise
            return report(exc)
        finally:
            if sys.stdout is not None and getattr(sys.stdout, "closed", False) is False:
                try:
                    sys.stdout.flush()
                except BrokenPipeError:
                    silence_stdout()
                except (OSError, ValueError):
                    pass


if __name__ == "__main__":
    sys.exit(main())
