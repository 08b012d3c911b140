"""What the command line writes: JSON files (atomically), versions, the summary table."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hesskit

TEMPORARY_SUFFIX = ".partial"
"""Suffix of the temporary files :func:`write_json` renames into place."""


def write_json(path: Path, record: Any) -> None:
    """Write ``record`` to ``path`` atomically: a temporary file, flushed, then renamed.

    A reader (or a resumed sweep) sees either no file or the whole file, never a
    half-written one, even if the process is killed mid-write.
    """
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX
    )
    try:
        with os.fdopen(handle, "w") as file:
            json.dump(record, file, indent=1)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0600 would hide it from others
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def versions() -> dict[str, str]:
    """The versions a record's numbers depend on.

    Returns:
        The versions of hesskit, torch, numpy and Python, by name.
    """
    return {
        "hesskit": hesskit.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def summary_table(record: dict[str, Any]) -> str:
    """The record as a short table: one row per part, with products and seconds.

    Returns:
        The table as text, with a header row: each part's values (eigenvalues shortened to
        four), its products and its seconds.
    """
    rows = []
    for part in ("top", "bottom"):
        result = record[part]
        if result is not None:
            values = result["eigenvalues"]
            shown = values if len(values) <= 4 else [*values[:3], None, values[-1]]
            text = ", ".join("..." if v is None else f"{v:.4g}" for v in shown)
            state = "converged" if result["converged"] else "NOT converged"
            text += f" (max residual {max(result['residuals']):.1e}, {state})"
            rows.append((f"{part}-{len(values)} eigenvalues", text, result))
    if record["trace"] is not None:
        trace = record["trace"]
        rows.append(("trace (Hutch++)", f"{trace['estimate']:.4g} +- {trace['stderr']:.2g}", trace))
    if record["density"] is not None:
        density = record["density"]
        text = f"{density['num_probes']} probes x {density['num_steps']} Lanczos steps"
        rows.append(("density (SLQ)", text, density))
    if record["outliers"] is not None:
        split = record["outliers"]
        text = f"{split['num_outliers']} above {split['edge']:.4g}"
        if split["at_cap"]:
            text += " (the rule's cap: or more, the bulk's edge may lie beyond what it examines)"
        elif split["num_outliers"]:
            text += " (" + ", ".join(f"{v:.4g}" for v in split["outliers"][:5]) + ")"
        rows.append((f"outliers ({split['source']})", text, None))
    rows.append(("total", "", {"num_matvecs": record["num_matvecs"], "seconds": record["seconds"]}))
    width = max(len(row[0]) for row in rows)
    result_width = max(len(row[1]) for row in rows)
    lines = [f"{'part':<{width}}  {'result':<{result_width}}  products  seconds"]
    for name, text, cost in rows:
        tail = "" if cost is None else f"{cost['num_matvecs']:>8}  {cost['seconds']:>7.2f}"
        lines.append(f"{name:<{width}}  {text:<{result_width}}  {tail}".rstrip())
    return "\n".join(lines)


def describe(record: dict[str, Any]) -> str:
    """The lines above the table: what was measured, in which mode, dtype and device.

    Returns:
        The header lines, joined by newlines.
    """
    checkpoint = record["checkpoint"] or "(the weights MODEL returns)"
    batches = record["num_batches"]
    return "\n".join(
        [
            f"model {record['model']}, checkpoint {checkpoint}",
            "the model is in eval mode (dropout off, BatchNorm on its running statistics)",
            f"{record['num_parameters']:,} parameters, {record['num_samples']:,} samples in "
            f"{batches} batch{'es' if batches != 1 else ''}, loss {record['loss']}, "
            f"{record['dtype']} on {record['device']}, seed {record['seed']}",
        ]
    )
