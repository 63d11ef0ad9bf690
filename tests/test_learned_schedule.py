"""reparam.learned_schedule against independent references: finite differences,
numerical integration (scipy.integrate.quad) and Monte Carlo."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.integrate import quad

from reparam import diffusion as d
from reparam import learned_schedule as ls
from reparam.data import load_scaled_digits

IMAGES = load_scaled_digits().train_images
DENOISER = d.LinearDenoiser(IMAGES)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def central_differences(schedule, value, h: float = 1e-6) -> list[float]:
    """(value(logits + h e_i) - value(logits - h e_i)) / 2h for each i; the logits are
    put back afterwards."""
    start, numeric = schedule.logits.detach().clone(), []
    for i in range(len(start)):
        values = []
        for sign in (1, -1):
            with torch.no_grad():
                schedule.logits.copy_(start)
                schedule.logits[i] += sign * h
            values.append(value())
        numeric.append((values[0] - values[1]) / (2 * h))
    with torch.no_grad():
        schedule.logits.copy_(start)
    return numeric


def _draws(n: int, seed: int):
    generator = _gen(seed)
    rows = torch.randint(0, len(IMAGES), (n,), generator=generator)
    noise = torch.randn(n, 64, generator=generator, dtype=torch.float64)
    t = torch.rand(n, generator=generator, dtype=torch.float64)
    return IMAGES[rows], noise, t


def test_the_schedule_keeps_its_end_points_and_rises_for_any_parameters():
    schedule = ls.PiecewiseLinearSchedule(torch.tensor([-6.0, -1.0, 2.0, 9.0]))
    t = torch.linspace(0, 1, 301, dtype=torch.float64)
    for logits in (schedule.logits.detach().clone(), torch.tensor([3.0, -2.0, 0.5])):
        with torch.no_grad():
            schedule.logits.copy_(logits)
            gamma, slope = schedule(t)
        assert math.isclose(float(gamma[0]), -6.0, abs_tol=1e-12)
        assert math.isclose(float(gamma[-1]), 9.0, abs_tol=1e-12)
        assert bool((gamma.diff() > 0).all()) and bool((slope > 0).all())
        # The slope is the derivative inside each piece (central differences).
        inside = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
        h = 1e-6
        with torch.no_grad():
            numeric = (schedule(inside + h)[0] - schedule(inside - h)[0]) / (2 * h)
            assert torch.allclose(numeric, schedule(inside)[1], rtol=1e-6)


def test_the_initial_knots_are_the_discrete_schedules_log_inverse_snr():
    discrete = d.book_schedule()
    schedule = ls.PiecewiseLinearSchedule.from_schedule(discrete, 20)
    with torch.no_grad():
        gamma, _ = schedule(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    abar = discrete.alpha_bars
    for value, step in zip(gamma.tolist(), (1, 100, 200), strict=True):
        expected = math.log((1 - float(abar[step - 1])) / float(abar[step - 1]))
        assert math.isclose(value, expected, rel_tol=1e-12, abs_tol=1e-12)
    with pytest.raises(ValueError, match="bins must divide T = 200"):
        ls.PiecewiseLinearSchedule.from_schedule(discrete, 30)
    with pytest.raises(ValueError, match="strictly increasing"):
        ls.PiecewiseLinearSchedule(torch.tensor([1.0, 0.0]))


def test_the_exact_loss_is_the_integral_of_the_expected_error():
    low, high = -4.0, 6.0
    integral, _ = quad(lambda v: float(DENOISER.expected_error(v)), math.exp(-high),
                       math.exp(-low), limit=200)
    assert math.isclose(ls.exact_diffusion_loss(DENOISER, low, high), 0.5 * integral,
                        rel_tol=1e-7)


def test_the_mean_loss_does_not_depend_on_the_schedules_shape():
    """Monte Carlo means for two shapes with the same end points agree with the
    closed form (within 4 standard errors)."""
    schedule = ls.PiecewiseLinearSchedule.from_schedule(d.book_schedule(), 10)
    exact = ls.exact_diffusion_loss(DENOISER, float(schedule.gamma_min),
                                    float(schedule.gamma_max))
    x, noise, t = _draws(60_000, 1)
    for logits in (schedule.logits.detach().clone(), torch.zeros(10)):
        with torch.no_grad():
            schedule.logits.copy_(logits)
            values = ls.diffusion_loss(schedule, DENOISER, x, noise, t)
        error = float(values.std()) / math.sqrt(len(values))
        assert abs(float(values.mean()) - exact) < 4 * error


def test_the_pathwise_gradient_through_z_t_matches_finite_differences():
    schedule = ls.PiecewiseLinearSchedule.from_schedule(d.book_schedule(), 5)
    x, noise, t = _draws(256, 2)
    square = ls.diffusion_loss(schedule, DENOISER, x, noise, t).pow(2).mean()
    gradient = torch.autograd.grad(square, schedule.logits)[0]
    numeric = central_differences(schedule, lambda: float(
        ls.diffusion_loss(schedule, DENOISER, x, noise, t).pow(2).mean()))
    for i in range(5):
        assert math.isclose(float(gradient[i]), numeric[i], rel_tol=1e-5)


def test_holding_z_t_fixed_leaves_the_direct_part_of_the_gradient():
    """through_z=False keeps each value and drops the path through z_t: its gradient
    matches finite differences of the loss with z_t computed once and held fixed, and
    differs from the whole gradient (a version that detached nothing, or everything,
    would fail one of the two)."""
    schedule = ls.PiecewiseLinearSchedule.from_schedule(d.book_schedule(), 5)
    x, noise, t = _draws(256, 3)
    whole = ls.diffusion_loss(schedule, DENOISER, x, noise, t)
    direct = ls.diffusion_loss(schedule, DENOISER, x, noise, t, through_z=False)
    assert torch.equal(whole, direct)
    gradient = torch.autograd.grad(direct.pow(2).mean(), schedule.logits)[0]
    whole_gradient = torch.autograd.grad(whole.pow(2).mean(), schedule.logits)[0]
    with torch.no_grad():
        gamma, _ = schedule(t)
        z = (torch.sigmoid(-gamma).sqrt()[:, None] * x.double()
             + torch.sigmoid(gamma).sqrt()[:, None] * noise)

    def fixed_z_mean_square():
        gamma, slope = schedule(t)
        snr = torch.exp(-gamma)
        error = (x.double() - DENOISER(z, snr[:, None])).pow(2).sum(-1)
        return float((0.5 * slope * snr * error).pow(2).mean())

    numeric = central_differences(schedule, fixed_z_mean_square)
    for i in range(5):
        assert math.isclose(float(gradient[i]), numeric[i], rel_tol=1e-5)
    assert float((whole_gradient - gradient).norm()) > 0.1 * float(gradient.norm())
    with pytest.raises(TypeError, match="through_z must be a bool"):
        ls.diffusion_loss(schedule, DENOISER, x, noise, t, through_z=0)


def test_fitting_lowers_the_variance_and_is_seeded():
    def fitted():
        schedule = ls.PiecewiseLinearSchedule.from_schedule(d.book_schedule(), 10)
        fit = ls.fit_schedule(schedule, DENOISER, IMAGES, steps=40, batch_size=256,
                              generator=_gen(4))
        return schedule, fit

    (schedule, fit), (again, _) = fitted(), fitted()
    assert torch.equal(schedule.logits, again.logits) and len(fit.mean_squares) == 40
    start = ls.PiecewiseLinearSchedule.from_schedule(d.book_schedule(), 10)
    # The first step's mean square, from the generator's draws in fit_schedule's order
    # (rows of any image, noise, t), at the starting schedule.
    with torch.no_grad():
        first = ls.diffusion_loss(start, DENOISER, *_draws(256, 4)).pow(2).mean()
    assert fit.mean_squares[0] == pytest.approx(float(first), rel=1e-12)
    x, noise, t = _draws(20_000, 5)
    with torch.no_grad():
        before = ls.diffusion_loss(start, DENOISER, x, noise, t).var()
        after = ls.diffusion_loss(schedule, DENOISER, x, noise, t).var()
    assert after < 0.5 * before
    with pytest.raises(TypeError, match="PiecewiseLinearSchedule"):
        ls.fit_schedule(d.book_schedule(), DENOISER, IMAGES, steps=1,
                        generator=_gen())
    for rate in (0.0, -0.1):
        with pytest.raises(ValueError, match="learning_rate must be > 0"):
            ls.fit_schedule(start, DENOISER, IMAGES, steps=1, learning_rate=rate,
                            generator=_gen())


def test_bad_values_are_refused_each_on_its_own():
    # Each condition of a compound check alone (a check that needed both would pass
    # one of them).
    schedule = ls.PiecewiseLinearSchedule(torch.tensor([-2.0, 2.0]))
    x, noise, t = _draws(3, 0)
    for bad_t in (t[:2], torch.tensor([0.5, 1.5, 0.2], dtype=torch.float64)):
        with pytest.raises(ValueError, match="t must hold 3 times in"):
            ls.diffusion_loss(schedule, DENOISER, x, noise, bad_t)
    for knots in (torch.tensor([1.0]), torch.tensor([[-2.0, 2.0], [-1.0, 3.0]])):
        with pytest.raises(ValueError, match="knots must be a 1-D tensor"):
            ls.PiecewiseLinearSchedule(knots)
    with pytest.raises(ValueError, match="strictly increasing"):
        ls.PiecewiseLinearSchedule(torch.tensor([-2.0, 0.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="knots must be finite"):
        ls.PiecewiseLinearSchedule(torch.tensor([-math.inf, 2.0]))
    ends = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64)  # both ends of [0, 1]
    assert bool(torch.isfinite(ls.diffusion_loss(schedule, DENOISER, x, noise, ends))
                .all())
    with pytest.raises(ValueError, match="gamma_min must be below gamma_max"):
        ls.exact_diffusion_loss(DENOISER, 1.0, 1.0)
