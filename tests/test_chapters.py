"""Every chapter glues the same numbers twice, and Chapters 3-4 state what they claim.

The build asserts each claim inside the chapters; these tests read the glued values from
outside, so a chapter that stopped asserting (or stopped gluing) would still be caught.
Determinism: the session's strict build executed every chapter once (empty cache), in
warm kernels (forks of one process that imported the libraries; see
code/execute_chapters.py); here every chapter is executed a second time, in parallel
with jupyter-cache: two short chapters in ordinary kernels, as a reader's Jupyter runs
them, the others in warm kernels again (a new zygote). The two executions must glue
identical values (every random draw is seeded), except wall-clock timings a chapter
glues (names with "seconds", "elapsed", or ending "_time"): so the warm kernels change
no number of those two chapters either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, execute_in_parallel, once_per_session
from jupyter_cache import get_cache

GLUE_PREFIX = "application/papermill.record/"
CHAPTERS = sorted(p.stem for p in (ROOT / "chapters").glob("*.ipynb"))


def read_glue(notebook: nbformat.NotebookNode) -> dict:
    """Every glued value's text form, parsed to a Python value where it is a literal."""
    glued = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            for mime, value in output.get("data", {}).items():
                if mime.startswith(GLUE_PREFIX) and mime.endswith("text/plain"):
                    key = output["metadata"]["scrapbook"]["name"]
                    try:
                        glued[key] = ast.literal_eval(value)
                    except (ValueError, SyntaxError):
                        glued[key] = value
    return glued


def glued_from_cache(cache_path: Path) -> dict[str, dict]:
    """Each chapter's glued values, from the executed notebook in ``cache_path``.

    (The build's jupyter_execute/ copies are no use: myst-nb removes the outputs of
    ``glue(..., display=False)`` from them.)
    """
    cache = get_cache(str(cache_path))
    glued = {}
    for name in CHAPTERS:
        notebook = nbformat.read(ROOT / "chapters" / f"{name}.ipynb", 4)
        try:
            _, executed = cache.merge_match_into_notebook(notebook)
        except KeyError:
            pytest.fail(f"{name} has no execution in {cache_path}")
        glued[name] = read_glue(executed)
    return glued


@pytest.fixture(scope="session")
def glued_by_the_build(built_book) -> dict[str, dict]:
    return glued_from_cache(built_book.parent / ".jupyter_cache")


# Executed a second time in ordinary kernels, the rest in warm ones: two short chapters
# keep the warm-against-cold comparison on real chapters at a small cost (an ordinary
# kernel spends 2-3.5 s importing the libraries a warm one starts with).
IN_ORDINARY_KERNELS = ("01_change_of_variables", "02_seeing_the_map")


def _execute_again(folder: Path) -> None:
    chapters = sorted((ROOT / "chapters").glob("*.ipynb"))
    for warm in (True, False):
        part = [p for p in chapters if (p.stem in IN_ORDINARY_KERNELS) != warm]
        run = execute_in_parallel(ROOT, folder / "cache", warm=warm, notebooks=part)
        assert run.returncode == 0, run.stderr[-4000:]
        assert "Excepted" not in run.stderr, run.stderr[-4000:]
        kind = "warm" if warm else "ordinary"
        assert f"{len(part)} notebook(s) in {kind} kernels" in run.stderr, run.stderr


@pytest.fixture(scope="session")
def glued_by_a_second_execution(tmp_path_factory) -> dict[str, dict]:
    # Once per session, whichever pytest-xdist worker asks first (the tests below share
    # a group, so one worker runs them all while the others go on). It does not wait
    # for the book build: the two overlap, and the cores stay busy while Sphinx builds
    # on one of them (a suite's first minute used 82-91 % of both cores before, 99-100 %
    # after; one run each).
    folder = once_per_session(tmp_path_factory, "second-execution", _execute_again)
    return glued_from_cache(folder / "cache")


def is_a_timing(key: str) -> bool:
    """Glued wall-clock timings (names with "seconds", "elapsed" or ending "_time")."""
    return "seconds" in key or "elapsed" in key or key.endswith("_time")


def numbers(glued: dict) -> dict:
    return {k: v for k, v in glued.items()
            if isinstance(v, (int, float, complex)) and not isinstance(v, bool)}


@pytest.mark.book
@pytest.mark.xdist_group("second-execution")
@pytest.mark.parametrize("name", CHAPTERS)
def test_two_executions_glue_identical_values(glued_by_a_second_execution,
                                              glued_by_the_build, name):
    first = glued_by_the_build[name]
    second = glued_by_a_second_execution[name]
    assert first.keys() == second.keys()
    for key, value in first.items():
        if not is_a_timing(key):
            assert second[key] == value, key


@pytest.mark.book
def test_the_chapters_glue_many_numbers(glued_by_the_build):
    # Guards the test above against comparing nothing.
    counts = {name: len(numbers(glued)) for name, glued in glued_by_the_build.items()}
    assert sum(counts.values()) >= 40, counts
    for name in ("03_pathwise_gradient", "04_the_real_trick", "07_vae"):
        assert counts[name] >= 5, counts


@pytest.mark.book
def test_chapter3_claims(glued_by_the_build):
    values = glued_by_the_build["03_pathwise_gradient"]
    # autograd == hand-derived == torch.distributions
    assert values["ch3_largest_gap"] < 1e-14
    assert values["ch3_error_in_se"] < 4
    assert abs(values["ch3_slope"] + 0.5) < 0.05
    assert values["ch3_exact_variance"] > 0


@pytest.mark.book
def test_chapter4_claims(glued_by_the_build):
    values = glued_by_the_build["04_the_real_trick"]
    assert values["ch4_onesample_z"] < 4
    standard_error = values["ch4_onesample_sd"] / values["ch4_steps"] ** 0.5
    assert abs(values["ch4_onesample_mean"] - values["ch4_exact"]) < 4 * standard_error
    ratio, batch = values["ch4_variance_ratio"], values["ch4_batch"]
    assert 0.8 * batch < ratio < 1.25 * batch
    assert values["ch4_sweep_max_z"] < 5
    assert values["ch4_cos_threshold"] > 1.0 and values["ch4_cos_count"] >= 1
    assert values["ch4_step_nonzero"] == 0
    gap = abs(values["ch4_step_score"] - values["ch4_step_density"])
    assert gap < 4 * values["ch4_step_score_se"]
    assert values["ch4_far_reduction"] > 1 / 0.7
    cases = values["ch4_baseline_lowered"] + values["ch4_baseline_raised"]
    assert cases == values["ch4_baseline_cases"]
