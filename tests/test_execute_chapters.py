"""Warm kernels (code/execute_chapters.py): a fork of the zygote acts as a fresh kernel.

The determinism test (tests/test_chapters.py) compares the glued numbers of two
chapters between a warm execution and an ordinary one (and of the other six between
two warm executions, from two zygotes). Here, on small notebooks: what a kernel
sees of its process (working folder, import path, environment, Matplotlib backend) is
the same warm and cold, a figure is shown, no state passes between two warm kernels,
a failing notebook is not cached, and no kernel outlives the execution.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, execute_in_parallel
from jupyter_cache import get_cache

sys.path.insert(0, str(ROOT / "code"))
from execute_chapters import (  # noqa: E402
    ForkedKernelProcess,
    is_ipykernel,
    wants_warm_kernels,
)

pytestmark = pytest.mark.book  # executes notebooks (a few seconds)

SEES = """\
import json, os, sys
import matplotlib
import numpy
print(json.dumps({
    "cwd": os.getcwd(), "path": sys.path, "omp": os.environ.get("OMP_NUM_THREADS"),
    "backend": matplotlib.get_backend(), "name": __name__,
    "marker": hasattr(numpy, "set_by_another_kernel"), "pid": os.getpid(),
    "draw": numpy.random.default_rng(3).normal(),
    "unseeded": numpy.random.random(),
    "cmdline": open("/proc/self/cmdline").read().split("\\0"),
    "argv0": sys.argv[0], "argc": len(sys.argv),
    "env": {k: v for k, v in os.environ.items()
            if k not in ("JPY_PARENT_PID", "REPARAM_WARM_KERNELS")},
    "has_parent_pid": "JPY_PARENT_PID" in os.environ,
    "original_dir": __import__("multiprocessing.process").process.ORIGINAL_DIR,
}))
"""
FIGURE = "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()"
MARK = "import numpy\nnumpy.set_by_another_kernel = True"


def _notebook(*sources: str) -> nbformat.NotebookNode:
    real = nbformat.read(ROOT / "chapters" / "01_change_of_variables.ipynb", 4)
    notebook = nbformat.v4.new_notebook(metadata=real.metadata)
    notebook.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return notebook


def _execute(tmp_path: Path, warm: bool) -> tuple[dict, str]:
    book = tmp_path / ("warm" if warm else "cold")
    (book / "chapters").mkdir(parents=True)
    notebooks = {
        "a_marks": _notebook(MARK, SEES, FIGURE),
        "b_sees": _notebook(SEES, FIGURE),
        "c_fails": _notebook("raise ValueError('deliberately broken')"),
    }
    for name, notebook in notebooks.items():
        nbformat.write(notebook, book / "chapters" / f"{name}.ipynb")
    run = execute_in_parallel(book, tmp_path / f"cache-{book.name}", warm=warm)
    assert run.returncode == 0, run.stderr[-3000:]
    cache = get_cache(str(tmp_path / f"cache-{book.name}"))
    executed = {}
    for name in ("a_marks", "b_sees"):
        path = book / "chapters" / f"{name}.ipynb"
        try:
            _, notebook = cache.merge_match_into_notebook(nbformat.read(path, 4))
        except KeyError:
            pytest.fail(f"{name} was not executed ({book.name}):\n{run.stderr[-4000:]}")
        outputs = [o for cell in notebook.cells for o in cell.outputs]
        sees = next(json.loads(o["text"]) for o in outputs if o.get("name") == "stdout")
        sees["figures"] = sum("image/png" in o.get("data", {}) for o in outputs)
        executed[name] = sees
    with pytest.raises(KeyError):
        failed = book / "chapters" / "c_fails.ipynb"
        cache.merge_match_into_notebook(nbformat.read(failed, 4))
    return executed, run.stderr


# Module scope, and one pytest-xdist group for its tests: made once, on one worker.
@pytest.fixture(scope="module")
def warm_and_cold(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("kernels")
    return _execute(tmp_path, warm=True), _execute(tmp_path, warm=False)


@pytest.mark.xdist_group("warm-and-cold")
def test_a_warm_kernel_sees_what_an_ordinary_kernel_sees(warm_and_cold):
    (warm, _), (cold, _) = warm_and_cold
    for name in warm:
        first, second = dict(warm[name]), dict(cold[name])
        assert first.pop("pid") != second.pop("pid")
        # The warm kernel really is a fork of the zygote, the other one is not.
        assert "--zygote" in first.pop("cmdline")
        assert "ipykernel_launcher" in second.pop("cmdline")
        first.pop("unseeded"), second.pop("unseeded")  # see the next test
        for sees in (first, second):
            # multiprocessing's record of the start folder (spawned children use it).
            assert Path(sees.pop("original_dir")) == Path(sees["cwd"])
        # Each ran in its own book folder: compare the folders' roles, not their names.
        for sees, book in ((first, "warm"), (second, "cold")):
            assert Path(sees["cwd"]).parts[-2:] == (book, "chapters")
            sees.pop("cwd")
            sees["path"] = [p.replace(f"/{book}/", "/BOOK/") for p in sees["path"]]
            # make's variables name each run's own folders (CACHE, NOTEBOOKS, ...).
            sees["env"] = {
                k: v.replace(f"/{book}/", "/BOOK/").replace(f"cache-{book}", "cache")
                for k, v in sees["env"].items()
            }
        assert first == second, name
        assert first["figures"] == 1 and first["omp"] == "1", first
        assert first["has_parent_pid"]


def test_a_relative_pythonpath_means_ordinary_kernels(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'code'}{os.pathsep}"}  # empty entry
    book = tmp_path / "book"
    (book / "chapters").mkdir(parents=True)
    nbformat.write(_notebook(SEES), book / "chapters" / "a.ipynb")
    run = subprocess.run(
        [sys.executable, str(ROOT / "code" / "execute_chapters.py"),
         str(tmp_path / "cache"), "60", str(book / "chapters" / "a.ipynb")],
        env={**env, "REPARAM_WARM_KERNELS": "1"}, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    cache = get_cache(str(tmp_path / "cache"))
    _, notebook = cache.merge_match_into_notebook(
        nbformat.read(book / "chapters" / "a.ipynb", 4))
    sees = json.loads(notebook.cells[0].outputs[0]["text"])
    assert "ipykernel_launcher" in sees["cmdline"]
    assert str(book / "chapters") in sees["path"]  # the empty entry, for this kernel


@pytest.mark.xdist_group("warm-and-cold")
def test_each_warm_kernel_is_its_own_process_with_fresh_entropy(warm_and_cold):
    # Forks share the zygote's memory: NumPy's global generator is reseeded in each,
    # so an unseeded draw differs between two warm kernels, as between two cold ones.
    (warm, _), _ = warm_and_cold
    assert warm["a_marks"]["pid"] != warm["b_sees"]["pid"]
    assert warm["a_marks"]["unseeded"] != warm["b_sees"]["unseeded"]
    assert warm["b_sees"]["marker"] is False and warm["a_marks"]["marker"] is True


@pytest.mark.xdist_group("warm-and-cold")
def test_a_failing_notebook_is_reported_and_not_cached(warm_and_cold):
    for _, stderr in warm_and_cold:
        assert "deliberately broken" in stderr
        assert "failed, not cached:" in stderr and "c_fails.ipynb" in stderr


@pytest.mark.xdist_group("warm-and-cold")
def test_no_warm_kernel_outlives_the_execution(warm_and_cold):
    (warm, _), _ = warm_and_cold
    for sees in warm.values():
        assert ForkedKernelProcess(sees["pid"]).poll() == 0, sees["pid"]


def test_forked_process_stand_in_polls_waits_and_signals_like_popen():
    # A process that is not our child's child, as a kernel is the zygote's child.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    process = ForkedKernelProcess(sleeper.pid)
    assert process.poll() is None
    assert process.stdout is None and process.stderr is None
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(timeout=0.2)
    process.send_signal(signal.SIGTERM)
    assert sleeper.wait(timeout=10) == -signal.SIGTERM
    assert process.poll() == 0 and process.wait(timeout=1) == 0


def test_only_ipykernel_kernels_are_forked():
    assert is_ipykernel(["python", "-m", "ipykernel_launcher", "-f", "c.json"])
    assert not is_ipykernel(["R", "--slave", "-e", "IRkernel::main()"])


ORPHAN_SCRIPT = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
from execute_chapters import KernelZygote, fork_kernel
zygote = KernelZygote()
cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", sys.argv[2]]
kernel = fork_kernel(zygote.socket_path, cmd, dict(os.environ), os.getcwd())
print(zygote.process.pid, kernel, flush=True)
time.sleep(600)
"""


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, exited but not reaped, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_zygote_and_its_kernels_exit_when_the_executor_is_killed(tmp_path):
    # An executor killed outright (no clean-up code runs) must leave no process behind.
    executor = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_SCRIPT, str(ROOT / "code"),
         str(tmp_path / "kernel.json")],
        stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    zygote, kernel = map(int, executor.stdout.readline().split())
    assert _running(zygote) and _running(kernel)
    executor.send_signal(signal.SIGKILL)
    executor.wait()
    deadline = time.monotonic() + 20
    while (_running(zygote) or _running(kernel)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(zygote), "the zygote outlived its executor"
    assert not _running(kernel), "a warm kernel outlived its zygote"


def test_warm_kernels_only_from_two_notebooks_per_core():
    # A clean build of the 8 chapters on 2 cores is warm; a code edit of one is not.
    assert wants_warm_kernels(8, 2) and wants_warm_kernels(4, 2)
    assert not wants_warm_kernels(3, 2) and not wants_warm_kernels(1, 2)
    assert not wants_warm_kernels(8, 8)
