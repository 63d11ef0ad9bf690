"""Checks shared by the public functions: bad input fails loudly at the boundary."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


def _is_torch_tensor(value: Any) -> bool:
    # Avoid importing torch just to validate NumPy input.
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def as_real_scalar(value: Any, name: str) -> float:
    """Return ``value`` as a finite Python float or raise naming ``name``.

    Accepts Python/NumPy real numbers and 0-d (or one-element 0-d) tensors/arrays;
    rejects bools, complex numbers, strings and arrays with more than one element.
    """
    if isinstance(value, bool) or isinstance(value, np.bool_):
        raise TypeError(f"{name} must be a real number, got a bool ({value!r})")
    if _is_torch_tensor(value) or isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise ValueError(
                f"{name} must be a scalar (0-d), got shape {tuple(value.shape)}"
            )
        if str(value.dtype) in ("bool", "torch.bool") or "complex" in str(value.dtype):
            raise TypeError(f"{name} must be real, got dtype {value.dtype}")
        value = value.item()
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, got a bool ({value!r})")
    if not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a real number, got {type(value).__name__} ({value!r})"
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_scale(sigma: Any, name: str = "sigma") -> float:
    """A standard deviation: a finite real number > 0."""
    sigma = as_real_scalar(sigma, name)
    if sigma <= 0.0:
        raise ValueError(f"{name} must be > 0 (a standard deviation), got {sigma}")
    return sigma


def check_sample_count(n: Any, name: str = "n") -> int:
    """A number of Monte Carlo samples: an integer >= 1 (not a bool, not 10.0)."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ValueError(
            f"{name} must be an integer >= 1, got {type(n).__name__} ({n!r})"
        )
    if n < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {n}")
    return int(n)


def check_finite_array(values: Any, name: str) -> None:
    """Raise if a NumPy array or tensor holds NaN or infinity."""
    if _is_torch_tensor(values):
        import torch

        finite = bool(torch.isfinite(values).all())
    else:
        finite = bool(np.isfinite(np.asarray(values, dtype=float)).all())
    if not finite:
        raise ValueError(f"{name} contains NaN or infinite values")


def check_generator(generator: Any) -> None:
    """``None`` or a ``torch.Generator``; a ``TypeError`` naming the type otherwise."""
    import torch  # here, so that importing this module stays cheap

    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            "generator must be a torch.Generator or None, got "
            f"{type(generator).__name__}"
        )
