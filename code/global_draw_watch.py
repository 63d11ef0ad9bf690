"""Run at the start of every kernel that executes a chapter for the build (bookbuild
sets PYTHONSTARTUP): a cell that draws from NumPy's or PyTorch's global random
generator, or seeds it, prints so on stderr, and the strict build fails there. Why,
and what it cannot see: tests/test_chapters.py. (Everything is inside one function:
this file runs in the chapter's namespace, which it must leave as a reader's is.)"""


def _watch_the_global_generators() -> None:
    import sys

    import numpy
    import torch
    from IPython import get_ipython

    def global_states() -> tuple[bytes, bytes]:
        return (numpy.random.get_state()[1].tobytes(),  # noqa: NPY002 (the watched one)
                torch.random.get_rng_state().numpy().tobytes())

    last = [global_states()]

    def report_a_global_draw(result) -> None:
        if global_states() != last[0]:
            print("This cell drew from (or seeded) NumPy's or PyTorch's global random "
                  "generator: draw from a seeded generator instead.", file=sys.stderr)
            last[0] = global_states()  # the next cell is judged on its own

    get_ipython().events.register("post_run_cell", report_a_global_draw)


_watch_the_global_generators()
del _watch_the_global_generators
