"""The main job in one command: ``python -m claims run --offsets 0 1 2``.

Runs the claims suite once per seed offset (``pytest claims -n 2 --dist loadscope
--claims-seed-offset N --claims-report DIR/N``), then prints the merged table
(:mod:`claims.summary`), where a decision that differs between offsets is ``undecided``.
``--readme README.md`` and ``--results claims/RESULTS.md`` write the generated table and
the full results page. The exit status is pytest's worst: 0 when every offset passed.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys

from claims import summary
from claims.seeds import PREREGISTERED_OFFSETS


def _pytest(offset: int, folder: pathlib.Path, workers: int, extra: list[str]) -> int:
    command = [sys.executable, "-m", "pytest", "claims", "-p", "no:cacheprovider", "-q"]
    if workers > 1:
        command += ["-n", str(workers), "--dist", "loadscope"]
    command += ["--claims-seed-offset", str(offset), "--claims-report", str(folder), *extra]
    print(f"$ {' '.join(command[1:])}", flush=True)
    return subprocess.call(command)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m claims run [--offsets 0 1 2] [--report-dir report]``.

    Returns:
        The worst pytest exit status over the offsets (0 when every offset passed).
    """
    parser = argparse.ArgumentParser(prog="python -m claims", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the suite at each offset, then the table")
    run.add_argument(
        "--offsets",
        type=int,
        nargs="+",
        default=list(PREREGISTERED_OFFSETS),
        metavar="N",
        help="seed offsets to run (default: the pre-registered 0 1 2)",
    )
    run.add_argument("--report-dir", default="report", metavar="DIR")
    run.add_argument("--workers", type=int, default=2, help="pytest-xdist workers (2)")
    run.add_argument("--profile", choices=("quick", "full"), default="quick")
    run.add_argument("--readme", metavar="PATH", help="write the table into this README")
    run.add_argument("--results", metavar="PATH", help="write the results page here")
    args = parser.parse_args(argv)
    folder = pathlib.Path(args.report_dir)
    codes = [
        _pytest(n, folder / str(n), args.workers, ["--claims-profile", args.profile])
        for n in args.offsets
    ]
    tables = [str(folder / str(n) / "report.json") for n in args.offsets]
    options = [*(["--readme", args.readme] if args.readme else [])]
    options += ["--results", args.results] if args.results else []
    summary.main([*tables, "--merge", str(folder / "merged.json"), *options])
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
