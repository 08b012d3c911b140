"""The command line, run as a user runs it: ``python -m hesskit`` in a subprocess, on a
model file written outside the repository, checked against the dense Hessian.

The subprocesses use this test run's interpreter and import this checkout's hesskit
(``PYTHONPATH``); they run on one thread (``OMP_NUM_THREADS=1``): the models are tiny, and
the CPU is shared with the other test workers.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import hesskit
from hesskit.cli import main
from tests.cases import dense_loss_hessian

MODEL_FILE = textwrap.dedent(
    '''
    """A user's model file: a 4-6-3 tanh MLP (51 parameters) and its data."""
    import os
    import time

    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset


    def model():
        if "MODEL_LOG" in os.environ:  # to count the calls
            with open(os.environ["MODEL_LOG"], "a") as log:
                log.write("model()\\n")
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()


    def wider():
        return nn.Sequential(nn.Linear(4, 7), nn.Tanh(), nn.Linear(7, 3)).double()


    def data():
        gen = torch.Generator().manual_seed(1)
        X = torch.randn(40, 4, generator=gen, dtype=torch.float64)
        return X, torch.randint(0, 3, (40,), generator=gen)


    def dataset():
        return TensorDataset(*data())


    def loader():
        return DataLoader(TensorDataset(*data()), batch_size=16)


    def batches():
        X, Y = data()
        return [(X[:25], Y[:25]), (X[25:], Y[25:])]


    def batch_tuple():
        return tuple(batches())


    def loss(outputs, targets):
        time.sleep(float(os.environ.get("LOSS_SECONDS", "0")))  # a slow product
        return nn.functional.cross_entropy(outputs, targets)


    def not_a_model():
        return 3


    def not_data():
        return "forty samples"


    def narrow_data():
        X, Y = data()
        return X[:, :3], Y
    '''
)

SMALL = ["--top", "3", "--probes", "2", "--steps", "12", "--trace-matvecs", "30"]


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    """A folder outside the repository: the model file and checkpoints of a short run."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "net.py").write_text(MODEL_FILE)
    sys.path.insert(0, str(folder))
    try:
        import net  # the user's file, imported here for the dense references
    finally:
        sys.path.remove(str(folder))
    model = net.model()
    X, Y = net.data()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    formats = [lambda sd: sd, lambda sd: {"state_dict": sd}, lambda sd: {"model": sd}]
    for step in range(4):  # step0 .. step30: natural order, not string order
        torch.save(formats[step % 3](model.state_dict()), folder / f"step{10 * step}.pt")
        for _ in range(10):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(X), Y).backward()
            optimizer.step()
    torch.save(net.wider().state_dict(), folder / "wider.pt")
    (folder / "run").mkdir()
    torch.save(model.state_dict(), folder / "run" / "sweep.pt")
    (folder / "notes.pt").write_text("not a checkpoint")
    return folder, net


def _dense_spectrum(net, checkpoint: Path) -> torch.Tensor:
    """Eigenvalues of the float64 Hessian of the checkpoint's model, by torch.func.hessian."""
    model = net.model()
    saved = torch.load(checkpoint, weights_only=True)
    model.load_state_dict(saved.get("state_dict", saved.get("model", saved)))
    return torch.linalg.eigvalsh(
        dense_loss_hessian(model, nn.functional.cross_entropy, *net.data())
    )


def _environment() -> dict[str, str]:
    package_parent = str(Path(hesskit.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": package_parent, "OMP_NUM_THREADS": "1"}


def _start(args, cwd: Path, **env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hesskit", *args],
        cwd=cwd,
        env={**_environment(), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(args, cwd: Path, **env) -> subprocess.CompletedProcess:
    process = _start(args, cwd, **env)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_spectrum_matches_the_dense_hessian_and_writes_its_files(user, tmp_path):
    folder, net = user
    args = ["spectrum", f"{folder}/net.py:model", "--data", f"{folder}/net.py:data"]
    args += ["--checkpoint", str(folder / "step20.pt"), "--bottom", "2", "--trace"]
    args += ["--density", "--seed", "3", "--out", "result", *SMALL]
    done = _run(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "eval mode" in done.stdout and "top-3 eigenvalues" in done.stdout
    assert "51 parameters, 40 samples in 1 batch" in done.stdout
    record = json.loads((tmp_path / "result" / "results.json").read_text())
    exact = _dense_spectrum(net, folder / "step20.pt")
    scale = float(exact.abs().max())
    top = torch.tensor(record["top"]["eigenvalues"], dtype=torch.float64)
    bottom = torch.tensor(record["bottom"]["eigenvalues"], dtype=torch.float64)
    assert torch.allclose(top, exact.flip(0)[:3], rtol=0, atol=1e-9 * scale)
    assert torch.allclose(bottom, exact[:2], rtol=0, atol=1e-9 * scale)
    assert max(record["top"]["residuals"]) <= 1e-9 * scale and record["top"]["converged"]
    trace = record["trace"]
    assert abs(trace["estimate"] - float(exact.sum())) <= 5 * trace["stderr"] + 1e-9 * scale
    weights = torch.tensor(record["density"]["weights"], dtype=torch.float64)
    assert torch.allclose(weights.sum(dim=1), torch.ones(2, dtype=torch.float64))
    nodes = torch.tensor(record["density"]["nodes"], dtype=torch.float64)
    assert float(nodes.min()) >= float(exact[0]) - 1e-9 * scale
    assert float(nodes.max()) <= float(exact[-1]) + 1e-9 * scale
    parts = [record[p]["num_matvecs"] for p in ("top", "bottom", "trace", "density")]
    assert record["num_matvecs"] == sum(parts) and parts[3] == 2 * 12
    assert record["outliers"]["source"] == "density"
    assert (record["seed"], record["dtype"], record["device"], record["mode"]) == (
        3,
        "float64",
        "cpu",
        "eval",
    )
    assert record["num_parameters"] == 51 and record["versions"]["torch"] == torch.__version__
    for figure in ("density.png", "eigenvalues.png"):
        assert (tmp_path / "result" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_same_numbers_from_every_form_of_data_and_seed(user, tmp_path, capsys):
    folder, _ = user
    model = f"{folder}/net.py:model"
    checkpoint = ["--checkpoint", str(folder / "step10.pt")]
    forms = {
        "pair": [f"{folder}/net.py:data"],
        "again": [f"{folder}/net.py:data"],
        "batched": [f"{folder}/net.py:data", "--batch-size", "16"],
        "list": [f"{folder}/net.py:batches"],
        "tuple": [f"{folder}/net.py:batch_tuple"],
        "dataset": [f"{folder}/net.py:dataset", "--batch-size", "16"],
        "loader": [f"{folder}/net.py:loader"],
    }
    values = {}
    for name, data in forms.items():
        out = tmp_path / name
        main(["spectrum", model, "--data", *data, *checkpoint, "--quiet", "--out", str(out)])
        values[name] = json.loads((out / "results.json").read_text())["top"]["eigenvalues"]
    assert capsys.readouterr().out == ""  # --quiet
    assert values["pair"] == values["again"]  # same seed, same numbers: bitwise
    for name in forms:
        assert values[name] == pytest.approx(values["pair"], rel=1e-10), name


def test_one_file_for_model_data_and_loss_is_imported_once(user, tmp_path):
    folder, _ = user
    counted = tmp_path / "counted.py"
    log = tmp_path / "imports.log"
    counted.write_text(
        f"with open({str(log)!r}, 'a') as log:\n    log.write('imported\\n')\n"
        f"from net import model, data, loss\n"
    )
    args = ["spectrum", f"{counted}:model", "--data", f"{counted}:data", "--top", "2"]
    args += ["--loss", f"{counted}:loss", "--quiet", "--out", str(tmp_path / "out")]
    sys.path.insert(0, str(folder))  # for its `from net import ...`
    try:
        main(args)
    finally:
        sys.path.remove(str(folder))
    assert log.read_text() == "imported\n"


def test_a_file_named_like_an_imported_module_does_not_replace_it(user, tmp_path):
    """copy.py, beside the helper it imports: copy stays the standard library's module."""
    folder, _ = user
    (tmp_path / "helper.py").write_text("from net import model, data\n")
    (tmp_path / "copy.py").write_text("from helper import model, data\n")
    args = ["spectrum", f"{tmp_path}/copy.py:model", "--data", f"{tmp_path}/copy.py:data"]
    args += ["--top", "1", "--quiet", "--out", str(tmp_path / "out")]
    standard = sys.modules["copy"]
    sys.path.insert(0, str(folder))  # for the helper's `from net import ...`
    try:
        main(args)
        assert sys.modules["copy"] is standard
    finally:
        sys.modules["copy"] = standard
        sys.modules.pop("helper", None)
        for entry in (str(folder), str(tmp_path)):
            while entry in sys.path:
                sys.path.remove(entry)
    assert (tmp_path / "out" / "results.json").is_file()


def test_a_sweep_of_bottom_eigenvalues_alone_writes_its_summary_without_a_figure(user, tmp_path):
    folder, _ = user
    out = tmp_path / "out"
    args = ["sweep", f"{folder}/net.py:model", "--data", f"{folder}/net.py:data", "--quiet"]
    args += ["--checkpoints", str(folder / "step*.pt"), "--top", "0", "--bottom", "1"]
    main([*args, "--out", str(out)])
    rows = json.loads((out / "sweep.json").read_text())["checkpoints"]
    assert len(rows) == 4 and all(row["lambda_max"] is None for row in rows)
    assert not (out / "sweep.png").exists()


def test_a_sweep_builds_the_model_once(user, tmp_path, monkeypatch):
    folder, _ = user
    log = tmp_path / "model.log"
    monkeypatch.setenv("MODEL_LOG", str(log))
    args = ["sweep", f"{folder}/net.py:model", "--data", f"{folder}/net.py:data", "--quiet"]
    args += ["--checkpoints", str(folder / "step*.pt"), "--top", "1", "--out", str(tmp_path)]
    main(args)
    assert len(json.loads((tmp_path / "sweep.json").read_text())["checkpoints"]) == 4
    assert log.read_text() == "model()\n"


def test_a_count_at_the_cap_is_a_lower_bound_not_no_gap():
    """--top 2 with one clear outlier: the log-gap count, 1, is at its cap of 1."""
    from hesskit.cli.analysis import _outliers
    from hesskit.cli.commands import _headline
    from hesskit.cli.output import summary_table

    split = _outliers(None, {"eigenvalues": [10.0, 1.0]})
    assert split["at_cap"] and split["num_outliers"] == 1 and split["outliers"] == [10.0]
    record = {"top": None, "bottom": None, "trace": None, "density": None, "outliers": split}
    record.update(checkpoint=None, num_matvecs=12, seconds=0.1)
    table, headline = summary_table(record), _headline(record)
    assert "1 above" in table and "or more" in table and "no gap" not in table
    assert "1 outliers or more (the rule's cap)" in headline


def test_a_sweep_row_and_figure_keep_a_count_at_the_cap(tmp_path, monkeypatch):
    """sweep.json says the count is a lower bound; the figure draws it, open, not drops it."""
    from matplotlib.figure import Figure

    from hesskit.cli.analysis import _outliers
    from hesskit.cli.commands import _sweep_row
    from hesskit.cli.figures import sweep_figure

    split = _outliers(None, {"eigenvalues": [10.0, 1.0]})
    record = {"top": None, "trace": None, "outliers": split, "checkpoint": "step0.pt"}
    record.update(num_matvecs=12, seconds=0.1)
    capped = _sweep_row("step0", record)
    assert (capped["num_outliers"], capped["outliers_at_cap"]) == (1, True)
    exact = {**capped, "checkpoint": "step1", "num_outliers": 0, "outliers_at_cap": False}
    drawn = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, path: drawn.append(fig))
    assert sweep_figure([capped, exact], tmp_path / "sweep.png")
    (ax,) = drawn[0].axes
    counts = [list(line.get_ydata()) for line in ax.get_lines()]
    open_markers = [line for line in ax.get_lines() if line.get_markerfacecolor() == "white"]
    assert counts[0] == [1, 0] and [list(line.get_ydata()) for line in open_markers] == [[1]]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [
        "N or more (the rule's cap)"
    ]


def _finished_files(out: Path) -> dict[str, tuple[int, str]]:
    return {
        path.name: (path.stat().st_mtime_ns, path.read_text()) for path in out.glob("step*.json")
    }


def test_sweep_killed_then_resumed_computes_only_what_is_missing(user, tmp_path):
    folder, net = user
    args = ["sweep", f"{folder}/net.py:model", "--data", f"{folder}/net.py:data", "--quiet"]
    args += ["--checkpoints", str(folder / "step*.pt"), "--trace", "--out", "out", *SMALL]
    args += ["--loss", f"{folder}/net.py:loss"]
    out = tmp_path / "out"
    process = _start(args, tmp_path, LOSS_SECONDS="0.01")  # 0.5 s per checkpoint at least
    deadline = time.monotonic() + 60
    while not _finished_files(out) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.kill()  # for real, mid-sweep
    process.communicate()
    assert (out / ".sweep.lock").exists()  # left behind, to be taken over
    finished = _finished_files(out)
    assert 1 <= len(finished) < 4, finished.keys()
    missing = sorted({f"step{10 * i}.json" for i in range(4)} - set(finished))
    (out / missing[-1]).write_text('{"top": {"eigenvalues": [0.1')  # half a file
    resumed = _run([a for a in args if a != "--quiet"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("finished earlier, kept") == len(finished)
    for name, (mtime, text) in finished.items():  # untouched
        assert (out / name).stat().st_mtime_ns == mtime and (out / name).read_text() == text
    summary = json.loads((out / "sweep.json").read_text())
    assert [row["checkpoint"] for row in summary["checkpoints"]] == [
        "step0",
        "step10",
        "step20",
        "step30",
    ]
    for row in summary["checkpoints"]:
        exact = _dense_spectrum(net, folder / f"{row['checkpoint']}.pt")
        assert row["lambda_max"] == pytest.approx(float(exact[-1]), rel=1e-9)
        assert "num_outliers" in row and row["trace"] is not None
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob(".*"))  # no temporary file left behind

    (out / "step0.json").unlink()  # one to compute, and the others of other settings:
    again = _run([*args, "--top", "2"], tmp_path)
    assert again.returncode == 2
    assert again.stderr.startswith("hesskit sweep: error: --out: ") and "top" in again.stderr
    assert not (out / "step0.json").exists()  # refused before computing, not after


def test_a_second_sweep_into_a_folder_is_refused_and_deletes_nothing(user, tmp_path, capsys):
    from hesskit.cli.commands import _sweep_lock

    folder, _ = user
    out = tmp_path / "out"
    out.mkdir()
    writing = out / ".step0.json.abc.partial"  # the first sweep's file, being written
    writing.write_text("{")
    args = ["sweep", f"{folder}/net.py:model", "--data", f"{folder}/net.py:data", "--quiet"]
    args += ["--checkpoints", str(folder / "step*.pt"), "--top", "1", "--out", str(out)]
    with _sweep_lock(out), pytest.raises(SystemExit) as stop:  # the first sweep
        main(args)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith("hesskit sweep: error: --out: ") and f"pid {os.getpid()}" in err, err
    assert writing.exists() and not list(out.glob("step*.json"))
    assert not (out / ".sweep.lock").exists()  # removed by the first sweep's exit


def test_a_resumed_sweep_refuses_a_record_of_an_overwritten_checkpoint(user, tmp_path, capsys):
    folder, _ = user
    run = tmp_path / "run"
    run.mkdir()
    for step in (0, 10):
        (run / f"step{step}.pt").write_bytes((folder / f"step{step}.pt").read_bytes())
    args = ["sweep", f"{folder}/net.py:model", "--data", f"{folder}/net.py:data", "--quiet"]
    args += ["--checkpoints", str(run / "*.pt"), "--out", str(tmp_path / "out"), *SMALL]
    main(args)
    main(args)  # resumed, nothing changed: both kept
    (run / "step10.pt").write_bytes((folder / "step20.pt").read_bytes())  # training rerun
    with pytest.raises(SystemExit) as stop:
        main(args)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith("hesskit sweep: error: --out: ") and "step10.json" in err, err
    assert "SHA-256 differs" in err, err


def _error_cases(folder: Path) -> dict[str, tuple[list[str], str, str]]:
    """Bad input: the arguments, the argument the error must name, and what it must say."""
    net = f"{folder}/net.py"
    data = ["--data", f"{net}:data"]
    spectrum = ["spectrum", f"{net}:model", *data]
    return {
        "no file": (["spectrum", "nowhere.py:model", *data], "MODEL", "no file 'nowhere.py'"),
        "no function": (["spectrum", f"{net}:modle", *data], "MODEL", "no attribute 'modle'"),
        "no module": (
            ["spectrum", "no_such_package.nets:model", *data],
            "MODEL",
            "import no_such_package.nets raised ModuleNotFoundError",
        ),
        "not a module": (
            ["spectrum", f"{net}:not_a_model", *data],
            "MODEL",
            "returned int, not a torch.nn.Module",
        ),
        "not data": (
            ["spectrum", f"{net}:model", "--data", f"{net}:not_data"],
            "--data",
            "returned str; expected an (X, Y) pair",
        ),
        "mismatch": (
            [*spectrum, "--checkpoint", str(folder / "wider.pt")],
            "--checkpoint",
            "0.weight has shape (7, 4) in the file, (6, 4) in MODEL",
        ),
        "unreadable": (
            [*spectrum, "--checkpoint", str(folder / "notes.pt")],
            "--checkpoint",
            "is not a checkpoint torch.load can read",
        ),
        "inputs of the wrong width": (
            ["spectrum", f"{net}:model", "--data", f"{net}:narrow_data"],
            "MODEL, --data and --loss",
            "raised RuntimeError: mat1 and mat2 shapes cannot be multiplied",
        ),
        "loss": ([*spectrum, "--loss", "hinge"], "--loss", "'hinge' is not cross_entropy"),
        "params": (
            [*spectrum, "--params", "7.weight"],
            "--params",
            "'7.weight' is neither a parameter nor a sub-module",
        ),
        "top": ([*spectrum, "--top", "60"], "--top", "below the number of parameters, 51"),
        "device": ([*spectrum, "--device", "tpu"], "--device", "'tpu' is not cpu, cuda"),
        "glob": (
            ["sweep", f"{net}:model", *data, "--checkpoints", "none*.pt"],
            "--checkpoints",
            "matches no file",
        ),
        "a checkpoint named sweep": (
            ["sweep", f"{net}:model", *data, "--checkpoints", str(folder / "run" / "*.pt")],
            "--checkpoints",
            "named 'sweep' would write DIR/sweep.json, the summary's file",
        ),
    }


# One subprocess per kind of bad input the issue names (each costs a torch import, about
# 2-3 s); the in-process test below runs every case through the same code.
PROCESS_CASES = ("no file", "no module", "not a module", "not data", "mismatch", "unreadable")


def test_bad_input_in_a_subprocess_is_one_line_and_status_2(user, tmp_path):
    folder, _ = user
    cases = {name: _error_cases(folder)[name] for name in PROCESS_CASES}
    processes = {name: _start(args, tmp_path) for name, (args, _, _) in cases.items()}
    for name, process in processes.items():  # all at once
        _, err = process.communicate(timeout=120)
        args, argument, text = cases[name]
        assert process.returncode == 2, (name, err)
        assert err.startswith(f"hesskit {args[0]}: error: {argument}: "), (name, err)
        assert text in err and err.count("\n") == 1 and "Traceback" not in err, (name, err)


def test_every_bad_input_names_the_argument_and_exits_2(user, tmp_path, capsys):
    folder, _ = user
    for name, (args, argument, text) in _error_cases(folder).items():
        with pytest.raises(SystemExit) as stop:
            main([*args, "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert stop.value.code == 2, (name, err)
        assert err.startswith(f"hesskit {args[0]}: error: {argument}: "), (name, err)
        assert text in err and err.count("\n") == 1, (name, err)


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["spectrum", "m.py:f", "--data", "d.py:g", "--top", "abc"], "--top: invalid int value"),
        (["spectrum", "m.py:f"], "the following arguments are required: --data"),
        (["sweep", "m.py:f", "--data", "d.py:g", "--dtype", "half"], "--dtype: invalid choice"),
        (["spectra"], "invalid choice: 'spectra'"),
    ],
)
def test_argparse_errors_are_one_line_too(args, text, capsys):
    with pytest.raises(SystemExit) as stop:
        main(args)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and text in err, err
    assert err.startswith("hesskit") and err.endswith("--help)\n"), err


@pytest.mark.parametrize("command", ["spectrum", "sweep"])
def test_help_of_every_subcommand(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "--data DATA" in text and "--quiet" in text
    assert ("--checkpoint FILE" if command == "spectrum" else "--checkpoints GLOB") in text


def test_the_console_script_is_installed():
    scripts = importlib.metadata.entry_points(group="console_scripts")
    (script,) = [entry for entry in scripts if entry.name == "hesskit"]
    assert script.value == "hesskit.cli:main" and script.load() is main
