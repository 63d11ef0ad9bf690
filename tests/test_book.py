"""reparam.book: a check cell's receipt and the glue shorthand."""

from __future__ import annotations

import pytest

from reparam import book


def test_the_receipt_is_html_and_plain_text(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display",
                        lambda data, raw: shown.append((data, raw)))
    book.verified("the  estimate <lies>\n within 4 SE")
    (data, raw), = shown
    assert raw is True
    assert data["text/plain"] == "✓ Verified: the estimate <lies> within 4 SE"
    assert data["text/html"] == (
        '<p class="receipt">✓ Verified: the estimate &lt;lies&gt; within 4 SE</p>')


@pytest.mark.parametrize("claim, error", [(3, TypeError), (None, TypeError),
                                           ("", ValueError), ("  \n ", ValueError)])
def test_a_receipt_must_name_what_was_verified(claim, error):
    with pytest.raises(error, match="claim"):
        book.verified(claim)


def test_glue_numbers_glues_each_value_under_its_own_name(monkeypatch):
    glued = []
    def glue(name, value, display):
        glued.append((name, value, display))

    monkeypatch.setattr("myst_nb.glue", glue)
    book.glue_numbers(ch0_a=1, ch0_b=2.5)
    assert glued == [("ch0_a", 1, False), ("ch0_b", 2.5, False)]


def test_glue_numbers_turns_array_scalars_into_python_numbers(monkeypatch):
    import numpy as np
    import torch

    glued = {}
    monkeypatch.setattr("myst_nb.glue",
                        lambda name, value, display: glued.__setitem__(name, value))
    book.glue_numbers(a=np.float64(0.5), b=np.int64(3), c=torch.tensor(2.5),
                      d=np.array([1, 2]))
    assert glued["a"] == 0.5 and type(glued["a"]) is float
    assert glued["b"] == 3 and type(glued["b"]) is int
    assert glued["c"] == 2.5 and type(glued["c"]) is float
    assert type(glued["d"]) is np.ndarray  # not a scalar: left as it is


def test_spoken_list_reads_like_prose_at_every_length():
    assert book.spoken_list([2.0]) == "2"
    assert book.spoken_list((0.5, 2.0)) == "0.5 and 2"
    assert book.spoken_list((0.5, 0.7, 2.0)) == "0.5, 0.7 and 2"
    assert book.spoken_list(iter((1, 10, 100, 1000)), ",") == "1, 10, 100 and 1,000"
    with pytest.raises(ValueError, match="at least one value"):
        book.spoken_list(())
    with pytest.raises(TypeError, match="each value must be a real number"):
        book.spoken_list((0.5, "2"))
    with pytest.raises(ValueError, match="each value must be finite"):
        book.spoken_list((0.5, float("nan")))
