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
- :mod:`.discrete`: categorical choices: Gumbel-max, Gumbel-softmax, score function.
- :mod:`.vae`: a small variational autoencoder trained with either estimator.
- :mod:`.diffusion`: a small denoising diffusion model (DDPM) on the same digits.
- :mod:`.explorers`: the interactive figures, one module each (ipywidgets and Bokeh).
- :mod:`.style`: the book's matplotlib style (figures legible on a phone).

Submodules are imported lazily so that ``import reparam`` stays cheap (SymPy, PyTorch
and Bokeh are each imported only by the module that needs them).
"""

import importlib

__all__ = [
    "change_of_variables",
    "costs",
    "crossover",
    "diffusion",
    "discrete",
    "estimators",
    "explorers",
    "gaussian",
    "graphs",
    "implicit",
    "jumps",
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
