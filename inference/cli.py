"""Command line: the studies of `inference.studies`, one subcommand each.

    hetprobit                       # = hetprobit compare
    hetprobit compare --noise-rate 0.3 --out runs/compare
    hetprobit compare --methods homoscedastic,low_rank --epochs 10
    hetprobit bias --out runs/bias
    hetprobit compare --quick       # a smoke run (small sizes)

`compare`: every method on scikit-learn's digits with label noise injected on the train and
validation splits only, scored on the clean test labels (table, results.json, reliability
diagrams, learned vs injected confusable pairs). `bias`: relaxation bias and gradient
variance of the tempered estimator against the exact probit over tau x S. `--help` on each
subcommand lists its options with their defaults.

Exit status: 0 on success; 2 on a bad option (argparse's convention, checked before any
work); 1 on an error during the run (the traceback is printed). `--out` is a folder,
created if missing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main", "parse_args", "run"]


def _studies():
    from .studies import STUDIES

    return STUDIES


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _common(parser: argparse.ArgumentParser, name: str, *, epochs: bool = True) -> None:
    """Options of every study; `--epochs` only where the study trains networks."""
    parser.add_argument("--seed", type=int, default=0, help="seed of data, noise and fits")
    parser.add_argument(
        "--out", default=f"hetprobit-{name}", help="output folder (created if missing)"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    if epochs:
        parser.add_argument(
            "--epochs", type=_positive_int, default=None, help="epochs per fit (None: the study's)"
        )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The `hetprobit` parser: a subparser per module of `inference.studies.STUDIES`."""
    return _build()[0]


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="hetprobit",
        description=__doc__.split("\n\n")[0],
        epilog=(
            f"With no study, hetprobit runs {_names()[0]}. Every study takes --seed, --out, "
            "--quick and --no-progress; the studies that train networks also take --epochs. "
            "`hetprobit <study> --help` lists a study's options with their defaults."
        ),
        formatter_class=fmt,
    )
    sub = parser.add_subparsers(dest="study", metavar="{" + ",".join(_names()) + "}")
    subs = {}
    for module in _studies():
        p = subs[module.NAME] = sub.add_parser(
            module.NAME, help=module.HELP, description=module.HELP, formatter_class=fmt
        )
        _common(p, module.NAME, epochs=getattr(module, "TRAINS_NETWORKS", True))
        module.add_arguments(p)
    return parser, subs


def _names() -> list[str]:
    return [m.NAME for m in _studies()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and check the options before any work; no subcommand means `compare`.

    Raises:
        SystemExit: status 2 on a bad option (argparse's convention): an unknown study or
            method, a noise rate outside [0, 0.5], a non-positive number, `--out` an existing
            file.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    names = _names()
    parser, subs = _build()
    if argv and not argv[0].startswith("-") and argv[0] not in names:
        parser.error(f"unknown study {argv[0]!r}; choose from {', '.join(names)}")
    if not argv or (argv[0] not in names and argv[0] not in ("-h", "--help")):
        argv = [names[0], *argv]
    args = parser.parse_args(argv)
    sub = subs[args.study]
    if Path(args.out).exists() and not Path(args.out).is_dir():
        sub.error(f"argument --out: {args.out!r} is a file; give a folder")
    _module(args.study).check_arguments(args, sub)
    return args


def _module(name: str):
    return next(m for m in _studies() if m.NAME == name)


def run(args: argparse.Namespace):
    """Run the study `args.study`, print its report and write its files to `args.out`;
    returns the study's results value (e.g. `CompareResults`)."""
    module = _module(args.study)
    results = module.run(args)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    module.write(results, Path(args.out))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """The `hetprobit` command: returns the exit status, 0 on success.

    Raises:
        SystemExit: status 2 on a bad option (`parse_args`).
    """
    run(parse_args(argv))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
