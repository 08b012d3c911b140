"""``hesskit spectrum`` and ``hesskit sweep``: read the inputs once, measure, write.

A sweep is resumable: each checkpoint's record is written atomically
(:func:`hesskit.cli.output.write_json`) to ``DIR/<checkpoint name>.json``, so after an
interruption a file at that name is a finished record, and the next run computes only the
checkpoints without one. A file that does not parse as a record (copied in half, edited)
is recomputed, never read as finished; a record computed with other settings, or from a
checkpoint file since overwritten (its SHA-256), stops the run rather than mix two in one
folder. A second sweep into a folder while one runs is refused (``DIR/.sweep.lock``).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import glob
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hesskit.cli import figures
from hesskit.cli.analysis import Settings, analyse, hessian_of
from hesskit.cli.inputs import (
    UsageError,
    build_model,
    load_checkpoint,
    load_data,
    resolve,
    resolve_device,
    resolve_loss,
    resolve_params,
)
from hesskit.cli.output import (
    TEMPORARY_SUFFIX,
    describe,
    summary_table,
    versions,
    write_json,
)

SUMMARY = "sweep"
"""Stem of a sweep's summary files, DIR/sweep.json and DIR/sweep.png."""

LOCK = ".sweep.lock"
"""DIR/.sweep.lock: held by the sweep writing into DIR, it holds that sweep's pid."""


@dataclass
class Job:
    """The inputs every measurement of a command shares, read and checked once.

    The model is MODEL's, built once, on the job's dtype and device, in eval mode.
    """

    model: nn.Module
    data: Any
    loss_fn: Any
    dtype: torch.dtype
    device: torch.device
    settings: Settings
    quiet: bool

    def measure(self, checkpoint: str | None, label: str = "") -> dict[str, Any]:
        """The record of one model: its settings, sizes, versions and every part.

        The checkpoint is loaded into the job's one model: a state dict that matches holds
        every parameter and buffer, so nothing of the previous checkpoint is left, and
        ``load_state_dict`` copies into the model's dtype and device.

        Returns:
            The record of :func:`hesskit.cli.analysis.analyse`, with the model's reference, the
            checkpoint and its SHA-256, the numbers of parameters, samples and batches, the
            settings and the versions.
        """
        if checkpoint is not None:
            load_checkpoint(self.model, checkpoint)
        params = resolve_params(self.model, list(self.settings.params or ()))
        H = hessian_of(self.model, self.loss_fn, self.data, params)
        record = {
            "checkpoint": checkpoint,
            "checkpoint_sha256": None if checkpoint is None else file_digest(checkpoint),
            "model": self.settings.model,
            "data": self.settings.data,
            "loss": self.settings.loss,
            "mode": "eval",
            "num_parameters": H.shape[0],
            "num_samples": H.objective.num_samples,
            "num_batches": len(H.objective.dataset.batch_sizes),
            "seed": self.settings.seed,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "versions": versions(),
            "settings": self.settings.as_json(),
        }
        record.update(analyse(H, self.settings, quiet=self.quiet, label=label))
        return record

    def say(self, text: str) -> None:
        """Print ``text`` unless ``--quiet``."""
        if not self.quiet:
            print(text, flush=True)


def prepare(args: argparse.Namespace) -> Job:
    """Resolve and check every input of ``args``; raise a :class:`UsageError` naming one.

    Returns:
        The :class:`Job`: the model (on the chosen dtype and device, in eval mode), the data,
        the loss and the settings.

    Raises:
        UsageError: naming the argument: a count below its minimum, nothing to compute, a
            device, loss, MODEL or DATA that does not resolve or returns the wrong kind, or a
            model without floating parameters.
    """
    for name in ("top", "bottom"):
        _check_count(f"--{name}", getattr(args, name), low=0)
    for name, low in (("trace_matvecs", 3), ("probes", 1), ("steps", 1)):
        _check_count(f"--{name.replace('_', '-')}", getattr(args, name), low=low)
    if args.batch_size is not None:
        _check_count("--batch-size", args.batch_size, low=1)
    if not (args.top or args.bottom or args.trace or args.density):
        raise UsageError(
            "--top", "nothing to compute: --top 0 without --bottom, --trace, --density"
        )
    device = resolve_device(args.device)
    loss_fn = resolve_loss(args.loss)
    model = build_model(resolve(args.model, "MODEL"), args.model)  # once: it may be slow
    dtype = getattr(torch, args.dtype) if args.dtype else _floating_dtype(model, args.model)
    model = model.to(dtype=dtype, device=device).eval()
    make_data = resolve(args.data, "--data")
    data = load_data(make_data, args.data, batch_size=args.batch_size, dtype=dtype, device=device)
    settings = Settings(
        model=args.model,
        data=args.data,
        loss=args.loss,
        params=tuple(args.params) if args.params else None,
        batch_size=args.batch_size,
        dtype=str(dtype).removeprefix("torch."),
        device=str(device),
        seed=args.seed,
        top=args.top,
        bottom=args.bottom,
        trace=args.trace,
        trace_matvecs=args.trace_matvecs,
        density=args.density,
        probes=args.probes,
        steps=args.steps,
    )
    return Job(model, data, loss_fn, dtype, device, settings, args.quiet)


def file_digest(path: str) -> str:
    """The SHA-256 of a file: what tells a resumed sweep that a checkpoint was overwritten.

    Returns:
        The hexadecimal SHA-256 digest of the file's bytes.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_count(name: str, value: int, *, low: int) -> None:
    if value < low:
        raise UsageError(name, f"must be >= {low}, got {value}")


def _floating_dtype(model: nn.Module, reference: str) -> torch.dtype:
    for parameter in model.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    raise UsageError("MODEL", f"{reference}() returned a module without floating parameters")


def _out_folder(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError("--out", f"cannot create {path!r}: {error.strerror}") from error
    return out


def run_spectrum(args: argparse.Namespace) -> None:
    """``hesskit spectrum``: one model (or checkpoint); the table, results.json, figures."""
    job = prepare(args)
    out = _out_folder(args.out)
    record = job.measure(args.checkpoint)
    write_json(out / "results.json", record)
    written = ["results.json"]
    if record["density"] is not None:
        figures.density_figure(record, out / "density.png")
        written.append("density.png")
    if record["top"] is not None or record["bottom"] is not None:
        figures.eigenvalues_figure(record, out / "eigenvalues.png")
        written.append("eigenvalues.png")
    job.say(describe(record))
    job.say("")
    job.say(summary_table(record))
    job.say(f"\nwrote {', '.join(written)} to {out}")


def run_sweep(args: argparse.Namespace) -> None:
    """``hesskit sweep``: every checkpoint without a finished record, then the summary.

    Raises:
        UsageError: if ``--checkpoints`` matches no file, two checkpoints share a name, or one
            is named like the summary; if an input is bad (see :func:`prepare`); if ``--out``
            cannot be created, another sweep holds it, or it holds records of other settings or
            of other checkpoint contents.
    """
    checkpoints = sorted(glob.glob(args.checkpoints), key=_natural_key)
    if not checkpoints:
        raise UsageError("--checkpoints", f"{args.checkpoints!r} matches no file")
    names = [Path(path).stem for path in checkpoints]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        msg = f"two checkpoints share the name {repeated[0]!r}; each needs its own DIR/<name>.json"
        raise UsageError("--checkpoints", msg)
    if SUMMARY in names:  # its record would be overwritten by the summary, then recomputed
        msg = f"a checkpoint named {SUMMARY!r} would write DIR/{SUMMARY}.json, the summary's file"
        raise UsageError("--checkpoints", msg)
    job = prepare(args)
    out = _out_folder(args.out)
    with _sweep_lock(out):
        _sweep(job, out, names, checkpoints)


@contextlib.contextmanager
def _sweep_lock(out: Path) -> Iterator[None]:
    """Hold DIR/.sweep.lock, or refuse naming ``--out``.

    A second sweep into the folder would delete the first one's temporary files and write
    the same records.

    An ``flock``: the kernel lets it go when the process ends, killed or not, so the file a
    SIGKILL leaves behind is taken over, never stale. The file is removed at exit.

    Raises:
        UsageError: naming ``--out`` if the lock file cannot be opened, or another process
            holds the lock.
    """
    path = out / LOCK
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise UsageError("--out", f"cannot open {str(path)!r}: {error.strerror}") from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            msg = (
                f"another sweep (pid {holder}) is writing into {str(out)!r}; "
                "wait for it to end, or use another --out folder"
            )
            raise UsageError("--out", msg) from None
        if _same_file(path, fd):
            break
        os.close(fd)  # locked a file its holder had just removed: take the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        if _same_file(path, fd):  # (not one made after someone removed ours)
            path.unlink()  # while it is held: no sweep can hold it at this path meanwhile
        os.close(fd)


def _same_file(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd``.

    Returns:
        True if ``path`` exists and has the inode of ``fd``; False if it was removed or
        replaced.
    """
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _sweep(job: Job, out: Path, names: list[str], checkpoints: list[str]) -> None:
    """The sweep itself, in ``out`` that this process holds the lock of."""
    for stale in out.glob(f".*{TEMPORARY_SUFFIX}"):  # what a killed run was writing
        stale.unlink()
    # every record is checked before any is computed: a folder of other settings is refused
    # before a record of these settings is written into it
    finished = [
        _finished(out / f"{name}.json", job.settings, path)
        for name, path in zip(names, checkpoints, strict=True)
    ]
    records = []
    for index, (name, path, record) in enumerate(
        zip(names, checkpoints, finished, strict=True), start=1
    ):
        target = out / f"{name}.json"
        if record is not None:
            job.say(f"[{index}/{len(names)}] {name}: finished earlier, kept")
        else:
            record = job.measure(path, label=f"[{index}/{len(names)}] {name}: ")
            write_json(target, record)
            job.say(f"[{index}/{len(names)}] {name}: {_headline(record)}")
        records.append((name, record))
    rows = [_sweep_row(name, record) for name, record in records]
    write_json(out / f"{SUMMARY}.json", {"settings": job.settings.as_json(), "checkpoints": rows})
    if figures.sweep_figure(rows, out / f"{SUMMARY}.png"):
        job.say(f"wrote {len(rows)} records, {SUMMARY}.json and {SUMMARY}.png to {out}")
    else:
        none = "no lambda_max, trace or outlier count to plot"
        job.say(f"wrote {len(rows)} records and {SUMMARY}.json to {out} ({none})")


def _finished(target: Path, settings: Settings, checkpoint: str) -> dict[str, Any] | None:
    """The record at ``target`` if it is a finished one.

    A record of other settings, or computed from other contents of ``checkpoint`` (a rerun
    of training), is refused rather than kept or overwritten.

    Returns:
        The finished record, or None where there is none to keep (no file, not whole JSON,
        not a record): the checkpoint is to be computed.

    Raises:
        UsageError: naming ``--out`` if the record was computed with other settings, or from a
            checkpoint file whose SHA-256 differs.
    """
    try:
        record = json.loads(target.read_text())
    except (OSError, ValueError):
        return None  # missing, or not a whole JSON file: compute it (again)
    if not isinstance(record, dict) or "num_matvecs" not in record or "settings" not in record:
        return None
    if record["settings"] != settings.as_json():
        changed = sorted(
            key for key, value in settings.as_json().items() if record["settings"].get(key) != value
        )
        msg = (
            f"{target} was computed with other settings ({', '.join(changed)}); "
            "use another --out folder, or remove it"
        )
        raise UsageError("--out", msg)
    if record.get("checkpoint_sha256") != file_digest(checkpoint):
        msg = (
            f"{target} was computed from another {checkpoint!r} (its SHA-256 differs: the "
            "file was overwritten since); use another --out folder, or remove it"
        )
        raise UsageError("--out", msg)
    return record


def _natural_key(path: str) -> list[Any]:
    """Sort key that puts step9 before step10.

    Returns:
        The path split into text and integer parts, so that numbers compare as numbers.
    """
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


def _sweep_row(name: str, record: dict[str, Any]) -> dict[str, Any]:
    """One checkpoint's line of sweep.json.

    ``num_outliers`` is None only without a split, and a lower bound where
    ``outliers_at_cap`` (the rule's cap: that many or more).

    Returns:
        The row: checkpoint name and file, lambda_max, trace and its standard error, the
        number of outliers and whether it is at the cap, products and seconds.
    """
    top, trace, split = record["top"], record["trace"], record["outliers"]
    return {
        "checkpoint": name,
        "file": record["checkpoint"],
        "lambda_max": None if top is None else top["eigenvalues"][0],
        "trace": None if trace is None else trace["estimate"],
        "trace_stderr": None if trace is None else trace["stderr"],
        "num_outliers": None if split is None else split["num_outliers"],
        "outliers_at_cap": None if split is None else split["at_cap"],
        "num_matvecs": record["num_matvecs"],
        "seconds": record["seconds"],
    }


def _headline(record: dict[str, Any]) -> str:
    row = _sweep_row("", record)
    parts = []
    if row["lambda_max"] is not None:
        parts.append(f"lambda_max {row['lambda_max']:.4g}")
    if row["trace"] is not None:
        parts.append(f"trace {row['trace']:.4g}")
    if record["outliers"] is not None:
        split = record["outliers"]
        capped = " or more (the rule's cap)" if split["at_cap"] else ""
        parts.append(f"{split['num_outliers']} outliers{capped}")
    cost = f"({record['num_matvecs']} products, {record['seconds']:.2f} s)"
    return ", ".join(parts) + " " + cost
