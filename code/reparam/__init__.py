"""Helpers for the book *The reparameterization trick, derived and tested*.

Submodules, one idea each:

- :mod:`.change_of_variables`: symbolic densities of transformed variables (SymPy).
- :mod:`.gaussian`: standardize / unstandardize / density of N(mu, sigma^2).
- :mod:`.estimators`: per-sample pathwise and score-function gradient estimators.
- :mod:`.costs`: cost functions with closed-form Gaussian expectations and gradients.
- :mod:`.variance`: exact per-draw variances of the estimators, optimal baselines.
- :mod:`.crossover`: where the score function beats the pathwise estimator (brentq).
- :mod:`.jumps`: the boundary term that the pathwise gradient misses at a jump.
- :mod:`.sgd`: stochastic gradient descent with one-sample pathwise gradients.
- :mod:`.graphs`: the computation graph before and after the trick.
- :mod:`.implicit`: implicit reparameterization gradients; the Gamma, Beta, Dirichlet.
- :mod:`.discrete`: categorical choices: Gumbel-max, Gumbel-softmax, straight-through,
  the score function, REBAR, their exact moments, and SGD runs with each.
- :mod:`.data`: the bundled 8x8 digits, their splits and an image grid.
- :mod:`.vae`: a small variational autoencoder trained with either estimator.
- :mod:`.flows`: normalizing flows (affine coupling) and the tanh-squashed Gaussian.
- :mod:`.diffusion`: a small denoising diffusion model (DDPM) on the same digits.
- :mod:`.likelihood`: likelihoods on the 17 grey levels: the DDPM's bound with a
  discretized decoder, a dequantized Gaussian, independent pixels, a Binomial VAE.
- :mod:`.learned_schedule`: a noise schedule learned through the trick (as in VDM).
- :mod:`.explorers`: the interactive figures, one module each (ipywidgets and Bokeh).
- :mod:`.style`: the book's matplotlib style (figures legible on a phone).
- :mod:`.book`: what a chapter's check cells print (receipts) and glue.

Conventions, the same in every module:

- **Randomness comes in only through a generator argument**: every function that
  draws takes ``generator``, a ``torch.Generator`` (a ``numpy.random.Generator`` where
  NumPy draws: :mod:`.sgd` and :func:`.diffusion.gaussian_baseline`), and requires it:
  ``None`` is a ``TypeError``, as it would mean torch's global state (a signature shows
  ``generator=None`` only where arguments with defaults come before it). Nothing in the
  package seeds or reseeds a global random state (no ``torch.manual_seed``): a seeded
  call gives the same result whatever was drawn before it. The digits' split is part of
  the data set, named by an integer ``seed`` (:mod:`.data`). The chapters pass seeded
  generators; the test suite's builds fail a chapter cell that draws from a global
  generator (``tests/global_draw_watch.py``).
- **Bad input fails at the boundary, with the argument named**: a ``TypeError`` for an
  argument of the wrong type (a string or a bool where a number belongs, a float where
  a count belongs), a ``ValueError`` for a value of the right type that is out of range,
  NaN or infinite. Never a NaN or a silently wrong answer. The checks live in
  :mod:`._validation`.
- **Arguments come in one order**: what is computed on (a cost ``f``, samples ``z``),
  then the distribution's parameters in the order ``torch.distributions`` names them
  (``mu, sigma``; ``concentration, rate``; ``logits``), then sizes (``n``), then the
  ``generator``, then options by keyword (``baseline=``). A relaxation's
  ``temperature`` follows the logits it relaxes (``RelaxedOneHotCategorical`` takes
  it first, before its optional ``probs`` or ``logits``); in REBAR's functions and
  ``sgd_paths``, where it is one tuning option among others, it is a keyword.
- **Per-sample estimators return rows**: an ``(n, number of parameters)`` float64
  tensor whose row ``i`` is the estimate from draw ``i`` alone (their mean is the
  n-sample estimate); :func:`.estimators.summarize` gives mean and standard error.
- **Several results come back as a named tuple or a frozen dataclass**, never a bare
  tuple of more than two.

Submodules are imported lazily so that ``import reparam`` stays cheap (SymPy, PyTorch
and Bokeh are each imported only by the module that needs them).
"""

import importlib

__all__ = [
    "book",
    "change_of_variables",
    "costs",
    "crossover",
    "data",
    "diffusion",
    "discrete",
    "estimators",
    "explorers",
    "flows",
    "gaussian",
    "graphs",
    "implicit",
    "jumps",
    "learned_schedule",
    "likelihood",
    "sgd",
    "style",
    "vae",
    "variance",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
