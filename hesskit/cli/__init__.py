"""The ``hesskit`` command line.

``hesskit spectrum`` measures one model, ``hesskit sweep`` a training run's checkpoints.

``python -m hesskit`` and the console script ``hesskit`` (``[project.scripts]``) both run
:func:`main`. Bad input (a reference that does not resolve, a checkpoint that does not fit
the model, data of the wrong kind) is one line naming the argument and exit status 2
(:class:`hesskit.cli.inputs.UsageError`).
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from hesskit.cli.commands import run_spectrum, run_sweep
from hesskit.cli.inputs import UsageError

__all__ = ["main"]

_MODEL_HELP = "path/to/file.py:function or package.module:function returning the torch.nn.Module"
_DATA_HELP = (
    "path/to/file.py:function or package.module:function returning an (X, Y) pair, a list "
    "of (inputs, targets) batches, a torch Dataset or a DataLoader"
)


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose own errors are one line and exit status 2.

    argparse's errors (``--top abc``, a missing ``--data``) are then reported like every
    other bad input, instead of the usage block and then the error.
    """

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE (see PROG --help)`` and exit 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_common(parser: argparse.ArgumentParser, *, default_out: str) -> None:
    parser.add_argument("model", metavar="MODEL", help=_MODEL_HELP)
    parser.add_argument("--data", required=True, metavar="DATA", help=_DATA_HELP)
    parser.add_argument(
        "--loss",
        default="cross_entropy",
        help="cross_entropy (default), mse (the squared loss; integer labels read as one-hot) "
        "or MODULE:FN / file.py:FN, a function loss(outputs, targets) returning the batch mean",
    )
    parser.add_argument("--top", type=int, default=10, metavar="K", help="top eigenvalues (10)")
    parser.add_argument("--bottom", type=int, default=0, metavar="K", help="bottom eigenvalues")
    parser.add_argument("--trace", action="store_true", help="estimate the trace (Hutch++)")
    parser.add_argument(
        "--trace-matvecs", type=int, default=150, metavar="N", help="Hutch++ budget (150)"
    )
    parser.add_argument(
        "--density", action="store_true", help="the spectral density (Lanczos quadrature)"
    )
    parser.add_argument("--probes", type=int, default=8, metavar="P", help="density probes (8)")
    parser.add_argument("--steps", type=int, default=90, metavar="S", help="Lanczos steps (90)")
    parser.add_argument(
        "--params",
        nargs="+",
        metavar="NAME",
        help="the parameters or sub-modules to differentiate (default: every trainable one)",
    )
    parser.add_argument(
        "--batch-size", type=int, metavar="B", help="split (X, Y) or a Dataset into batches of B"
    )
    parser.add_argument(
        "--dtype", choices=("float32", "float64"), help="default: the dtype of MODEL's parameters"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (0)")
    parser.add_argument(
        "--out", default=default_out, metavar="DIR", help=f"output folder ({default_out})"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars, no table")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``hesskit`` and its subcommands.

    Returns:
        The ``argparse`` parser, with the ``spectrum`` and ``sweep`` subcommands; its errors
        exit with status 2 and one line.
    """
    parser = _Parser(prog="hesskit", description="Curvature of neural-network loss surfaces.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    spectrum = commands.add_parser(
        "spectrum",
        help="the Hessian spectrum of one model or checkpoint",
        description="Top/bottom eigenvalues, trace, spectral density and outliers of the "
        "Hessian of the mean loss over DATA; writes DIR/results.json and PNG figures.",
    )
    _add_common(spectrum, default_out="hesskit-spectrum")
    spectrum.add_argument("--checkpoint", metavar="FILE", help="a file saved with torch.save")
    spectrum.set_defaults(run=run_spectrum)
    sweep = commands.add_parser(
        "sweep",
        help="the spectrum of every checkpoint of a run (resumable)",
        description="One DIR/<checkpoint name>.json per checkpoint, each written atomically; "
        "run it again after an interruption and only the missing ones are computed. Then "
        "DIR/sweep.json and DIR/sweep.png (lambda_max, trace, outliers per checkpoint).",
    )
    _add_common(sweep, default_out="hesskit-sweep")
    sweep.add_argument(
        "--checkpoints", required=True, metavar="GLOB", help="checkpoint files, e.g. 'ckpt/*.pt'"
    )
    sweep.set_defaults(run=run_sweep)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run ``hesskit COMMAND ...``; exit 2 with one line on bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except UsageError as error:
        parser.exit(2, f"hesskit {args.command}: error: {error}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"hesskit {args.command}: interrupted\n")
