"""once_per_session (tests/conftest.py): made once, reused, failures passed on."""

from __future__ import annotations

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
