"""Run at the start of every kernel that executes a chapter in the suite's builds
(conftest.build_book sets PYTHONSTARTUP): a cell that draws from Python's, NumPy's or
PyTorch's global random generator, or seeds it, fails with an error that names the
generator, whatever the cell's tags, and the build stops there. Why, and what this
cannot see: tests/test_chapters.py. (Everything is inside one function that deletes
itself: this file runs in the chapter's namespace, which it must leave as a reader's
is.)"""


def _watch_the_global_generators() -> None:
    import random

    import numpy
    import torch
    from IPython import get_ipython

    class GlobalRandomDraw(RuntimeError):
        pass

    def global_states() -> dict:
        numpy_state = numpy.random.get_state()  # noqa: NPY002 (the watched one)
        return {"Python's random": random.getstate(),
                "NumPy's": (numpy_state[1].tobytes(), *numpy_state[2:]),
                "PyTorch's": torch.random.get_rng_state().numpy().tobytes()}

    before = {}

    def record(info) -> None:
        before.update(global_states())

    def fail_a_global_draw(result) -> None:
        moved = [name for name, state in global_states().items()
                 if state != before[name]]
        if moved and result.error_in_exec is None:
            error = GlobalRandomDraw(
                f"this cell drew from (or seeded) {' and '.join(moved)} global random "
                "generator: draw from a seeded generator (torch.Generator, "
                "numpy.random.default_rng), or seed inside "
                "torch.random.fork_rng(devices=[]) where torch takes no generator")
            # Shown as the cell's error, and the kernel replies that the cell failed.
            get_ipython().showtraceback((GlobalRandomDraw, error, None),
                                        exception_only=True)
            result.error_in_exec = error

    get_ipython().events.register("pre_run_cell", record)
    get_ipython().events.register("post_run_cell", fail_a_global_draw)


_watch_the_global_generators()
del _watch_the_global_generators
