"""once_per_session (tests/conftest.py): made once, reused, failures passed on."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from conftest import once_per_session


def test_made_once_then_reused(tmp_path_factory):
    name = f"probe-{uuid.uuid4().hex}"
    calls = []

    def make(folder):
        calls.append(folder)
        (folder / "made").write_text("yes")

    first = once_per_session(tmp_path_factory, name, make)
    second = once_per_session(tmp_path_factory, name, make)
    assert first == second and len(calls) == 1
    assert (first / "made").read_text() == "yes"


def test_a_failure_is_reported_again_to_the_next_caller(tmp_path_factory):
    # Another worker asking later must fail too, with the first failure's message, and
    # must not make the thing a second time.
    name = f"probe-{uuid.uuid4().hex}"
    calls = []

    def make(folder):
        calls.append(folder)
        pytest.fail("the build broke: cell 3")

    for _ in range(2):
        with pytest.raises(pytest.fail.Exception, match="the build broke: cell 3"):
            once_per_session(tmp_path_factory, name, make)
    assert len(calls) == 1


GROUPED_TESTS = '''
import os
import pytest

def _record(tmp_name):
    with open(os.environ["WORKERS_FILE"], "a") as f:
        f.write(f"{tmp_name} {os.environ.get('PYTEST_XDIST_WORKER', '-')}\\n")

@pytest.mark.xdist_group("tabs")
@pytest.mark.parametrize("i", range(6))
def test_grouped(i):
    _record("grouped")

@pytest.mark.parametrize("i", range(6))
def test_free(i):
    _record("free")
'''


def test_loadgroup_keeps_a_group_on_one_worker(tmp_path):
    # The browser tests share open pages per viewport (site_tabs) only if pytest-xdist
    # sends a group to one worker. pytest 9.2 with pytest-xdist 3.8 silently stopped
    # doing so (pytest-xdist issue 1386): each page was opened on both workers.
    pytest.importorskip("xdist")
    # Not this session's worker variables: the small suite has its own workers.
    outer = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    (tmp_path / "test_groups.py").write_text(GROUPED_TESTS)
    workers = tmp_path / "workers.txt"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
         "--dist", "loadgroup", "-c", os.devnull, "--rootdir", str(tmp_path),
         str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path,
        env={**outer, "WORKERS_FILE": str(workers)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split() for line in workers.read_text().splitlines()]
    grouped = {worker for kind, worker in rows if kind == "grouped"}
    assert len(rows) == 12 and len(grouped) == 1 and grouped <= {"gw0", "gw1"}
