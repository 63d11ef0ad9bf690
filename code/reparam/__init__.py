"""Helpers for the book *The reparameterization trick, derived and tested*.

Submodules, one idea each:

- :mod:`reparam.change_of_variables`: symbolic densities of transformed variables (SymPy).
- :mod:`reparam.gaussian`: standardize / unstandardize / density of N(mu, sigma^2) for NumPy and PyTorch.
- :mod:`reparam.estimators`: per-sample pathwise and score-function gradient estimators.
- :mod:`reparam.costs`: cost functions with closed-form Gaussian expectations and gradients.
- :mod:`reparam.explorers`: the interactive figures, one module each (ipywidgets and Bokeh).
- :mod:`reparam.style`: the book's matplotlib style (figures legible on a phone).
- :mod:`reparam.vae`: a small variational autoencoder trained with either estimator.

Submodules are imported lazily so that ``import reparam`` stays cheap (SymPy, PyTorch and Bokeh
are each imported only by the module that needs them).
"""

import importlib

__all__ = ["change_of_variables", "costs", "estimators", "explorers", "gaussian", "style", "vae"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
