"""Checks shared by the public functions: bad input fails loudly at the boundary.

The package's rule (see ``reparam.__init__``): a ``TypeError`` for an argument of the
wrong type (a string, a bool where a number belongs, a list where a tensor belongs), a
``ValueError`` for a value of the right type that is out of range, NaN or infinite. Each
message names the argument.
"""

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


def check_count(n: Any, name: str = "n", minimum: int = 1) -> int:
    """A count: an integer >= ``minimum``. ``TypeError`` for a bool, a float such as
    10.0 or a string; ``ValueError`` for an integer below ``minimum``."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer >= {minimum}, got {type(n).__name__} ({n!r})"
        )
    if n < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {n}")
    return int(n)


def check_tensor(value: Any, name: str):
    """A torch tensor (or a subclass), returned; a ``TypeError`` naming ``name``
    otherwise."""
    import torch  # here, so that importing this module stays cheap

    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """One of the strings ``choices``: a ``TypeError`` for a value that is not a
    string, a ``ValueError`` for a string that is not one of them."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {choices}, got "
                        f"{type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_images(images: Any, name: str, pixels: int | None):
    """A batch of images: a floating tensor of shape (n, pixels), n >= 1 (any width
    if ``pixels`` is None; 8x8 images are flattened when ``pixels`` is 64), finite."""
    from .data import IMAGE_PIXELS, IMAGE_SIDE  # here: .data imports this module

    images = check_tensor(images, name)
    if not images.dtype.is_floating_point:
        raise TypeError(f"{name} must be floating point, got dtype {images.dtype}")
    side = (IMAGE_SIDE, IMAGE_SIDE)
    if pixels == IMAGE_PIXELS and images.ndim == 3 and images.shape[1:] == side:
        images = images.reshape(images.shape[0], IMAGE_PIXELS)
    if images.ndim != 2 or images.shape[0] == 0 or (
            pixels is not None and images.shape[1] != pixels):
        wanted = "(n, d)" if pixels is None else f"(n, {pixels})"
        if pixels == IMAGE_PIXELS:
            wanted += f" or (n, {IMAGE_SIDE}, {IMAGE_SIDE})"
        raise ValueError(
            f"{name} must have shape {wanted} with n >= 1, got {tuple(images.shape)}")
    check_finite_array(images, name)
    return images


def as_real_array(values: Any, name: str) -> np.ndarray:
    """``values`` (a number, a list or a NumPy array of them) as a finite float array:
    a ``TypeError`` for strings, bools, complex numbers or other objects (NumPy would
    read the string "1" as 1.0); a ``ValueError`` for NaN, infinity, a number too large
    for a float, or a ragged list (like ``discrete``'s vectors)."""
    try:
        raw = np.asarray(values)
    except ValueError as error:  # a ragged list
        raise ValueError(f"{name} must be a rectangular array: {error}") from None
    if raw.dtype.kind == "O" and all(isinstance(v, numbers.Real)
                                     and not isinstance(v, bool) for v in raw.flat):
        try:
            raw = raw.astype(float)  # e.g. Python fractions, or integers beyond float
        except OverflowError:
            raise ValueError(f"{name} must be finite, got a number too large for a "
                             "float") from None
    if raw.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be real numbers or an array of them, got "
                        f"{type(values).__name__} of dtype {raw.dtype}")
    array = raw.astype(float)
    check_finite_array(array, name)
    return array


def check_finite_array(values: Any, name: str) -> None:
    """Raise if a NumPy array or tensor holds NaN or infinity."""
    if _is_torch_tensor(values):
        import torch

        finite = bool(torch.isfinite(values).all())
    else:
        finite = bool(np.isfinite(np.asarray(values, dtype=float)).all())
    if not finite:
        raise ValueError(f"{name} contains NaN or infinite values")


def check_numpy_generator(generator: Any) -> None:
    """A ``numpy.random.Generator``; a ``TypeError`` naming the type otherwise."""
    if not isinstance(generator, np.random.Generator):
        raise TypeError("generator must be a numpy.random.Generator, got "
                        f"{type(generator).__name__}")


def check_generator(generator: Any):
    """A ``torch.Generator``, returned; a ``TypeError`` naming the type otherwise.
    ``None`` is refused too: it would mean torch's global random state."""
    import torch  # here, so that importing this module stays cheap

    if not isinstance(generator, torch.Generator):
        raise TypeError(
            "generator must be a torch.Generator (randomness comes in only through an "
            f"explicit generator), got {type(generator).__name__}"
        )
    return generator


LEAVE_ONE_OUT = "leave-one-out"


def check_baseline(baseline: Any, n: int) -> float | str | None:
    """A score-function baseline: ``None`` (b = 0), a finite real number (a constant b)
    or ``"leave-one-out"`` (needs ``n >= 2`` draws)."""
    if baseline is None:
        return None
    if isinstance(baseline, str):
        if baseline != LEAVE_ONE_OUT:
            raise ValueError(f"baseline must be None, a number or "
                             f"{LEAVE_ONE_OUT!r}, got {baseline!r}")
        if n < 2:
            raise ValueError(f"baseline={LEAVE_ONE_OUT!r} needs n >= 2 draws, got {n}")
        return baseline
    return as_real_scalar(baseline, "baseline")
