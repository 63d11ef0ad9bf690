"""reparam.flows: coupling layers against autograd and closed forms, the flow's density,
the squashed Gaussian against 50-digit arithmetic and PyTorch, training from seeds, and
bad input.

Each test says which wrong implementation it is there to catch.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from reparam import flows

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One math thread, as in the book's build: these networks are tiny, and more
    threads than free cores (OpenMP threads spinning) slow training down many times."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _sharpen(flow: flows.Flow, factor: float = 3.0) -> flows.Flow:
    """Scale up the last linear maps so that s and t are far from zero: a log-det test
    on a near-identity flow would pass with log_det = 0."""
    with torch.no_grad():
        for layer in flow.layers:
            layer.net[4].weight.mul_(factor)
            layer.net[4].bias.mul_(factor)
    return flow


MASKS = {
    "2-D, first kept": [[1, 0], [0, 1], [1, 0]],
    "2-D, bools": [[False, True], [True, False]],
    "3-D": [[1, 0, 0], [0, 1, 1], [1, 1, 0]],
    "5-D, uneven": [[1, 0, 0, 1, 0], [0, 1, 1, 0, 1], [0, 0, 0, 0, 1]],
}


def _flow(masks, hidden=16, seed=0) -> flows.Flow:
    generator = _generator(seed)
    dim = len(masks[0])
    layers = [flows.AffineCoupling(dim, mask, hidden, generator=generator)
              for mask in masks]
    return _sharpen(flows.Flow(layers, dim).double())


def _jacobian_log_dets(function, points):
    jacobians = torch.stack([
        torch.autograd.functional.jacobian(lambda v: function(v[None])[0][0], point)
        for point in points])
    return torch.linalg.slogdet(jacobians)


# --- coupling layers and the flow ----------------------------------------------------


@pytest.mark.parametrize("name", list(MASKS))
@pytest.mark.parametrize("n", [1, 7])
def test_log_det_equals_autograds_full_jacobian(name, n):
    # Catches: log_det summed over the kept coordinates too, a sign error, the log-dets
    # of the layers not added up, and an inverse log-det used for the forward one.
    flow = _flow(MASKS[name])
    points = 1.5 * torch.randn(n, flow.dim, generator=_generator(1), dtype=F64)
    sign, expected = _jacobian_log_dets(flow, points)
    _, log_det = flow(points)
    assert log_det.shape == (n,)
    assert bool((sign > 0).all())
    assert float(expected.abs().max()) > 0.1  # not a trivial Jacobian
    torch.testing.assert_close(log_det, expected, rtol=0, atol=1e-12)
    for layer in flow.layers:  # and each layer on its own
        _, layer_expected = _jacobian_log_dets(layer, points)
        torch.testing.assert_close(layer(points)[1], layer_expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", list(MASKS))
def test_one_layers_jacobian_is_triangular_with_its_kept_coordinates_fixed(name):
    # Catches a layer that moves a kept coordinate, or lets a moved coordinate depend on
    # another moved coordinate (the Jacobian would not be triangular).
    layer = _flow(MASKS[name]).layers[0]
    point = torch.randn(layer.dim, generator=_generator(2), dtype=F64)
    jacobian = torch.autograd.functional.jacobian(lambda v: layer(v[None])[0][0], point)
    kept, moved = layer.kept, layer.moved
    assert torch.equal(jacobian[kept][:, kept], torch.eye(len(kept), dtype=F64))
    assert bool((jacobian[kept][:, moved] == 0).all())
    block = jacobian[moved][:, moved]
    assert torch.equal(block, torch.diag(torch.diagonal(block)))


@pytest.mark.parametrize("name", list(MASKS))
def test_inverse_undoes_forward_and_its_log_det_is_minus_the_forward_one(name):
    # Catches an inverse that divides by e^s where it should multiply (or the reverse),
    # that subtracts t after scaling, or layers inverted in the wrong order.
    flow = _flow(MASKS[name])
    x = 2 * torch.randn(50, flow.dim, generator=_generator(3), dtype=F64)
    y, forward_log_det = flow(x)
    back, inverse_log_det = flow.inverse(y)
    torch.testing.assert_close(back, x, rtol=0, atol=1e-12)
    torch.testing.assert_close(inverse_log_det, -forward_log_det, rtol=0, atol=1e-12)
    for layer in flow.layers:
        z, layer_log_det = layer(x)
        x_again, layer_inverse_log_det = layer.inverse(z)
        torch.testing.assert_close(x_again, x, rtol=0, atol=1e-12)
        torch.testing.assert_close(layer_inverse_log_det, -layer_log_det, rtol=0,
                                   atol=1e-12)
    # and the other way round: forward(inverse(y)) = y
    torch.testing.assert_close(flow(flow.inverse(y)[0])[0], y, rtol=0, atol=1e-12)


def test_a_layer_with_constant_scale_and_shift_is_a_known_gaussian():
    # An independent reference: with the hidden layers' weights zeroed, s and t are
    # constants, so x_2 = e^s eps_2 + t is N(t, e^{2s}) and x_1 = eps_1 is N(0, 1).
    layer = flows.AffineCoupling(2, [1, 0], hidden=4, generator=_generator(4)).double()
    with torch.no_grad():
        layer.net[0].weight.zero_()
        layer.net[4].bias.copy_(torch.tensor([0.4, -1.3]))
    with torch.no_grad():
        s_const, t_const = (v[0, 0] for v in layer.scale_and_shift(
            torch.zeros(1, 1, dtype=F64)))
    flow = flows.Flow([layer], 2).double()
    x = 3 * torch.randn(40, 2, generator=_generator(5), dtype=F64)
    expected = (Normal(0.0, 1.0).log_prob(x[:, 0])
                + Normal(t_const, s_const.exp()).log_prob(x[:, 1]))
    torch.testing.assert_close(flow.log_prob(x), expected, rtol=0, atol=1e-12)
    assert abs(float(s_const)) > 0.1 and abs(float(t_const)) > 0.1


def test_sample_returns_the_log_prob_that_log_prob_computes():
    # Catches a sample() whose log_prob adds the log-det instead of subtracting it, or
    # uses the wrong base density.
    flow = _flow(MASKS["3-D"])
    x, log_prob = flow.sample(300, generator=_generator(6))
    assert x.shape == (300, 3) and log_prob.shape == (300,)
    assert x.dtype == F64 and log_prob.dtype == F64
    torch.testing.assert_close(log_prob, flow.log_prob(x), rtol=0, atol=1e-10)


def test_the_density_integrates_to_one_on_a_grid():
    # Catches a log_prob without the log-determinant (or with the forward one): those do
    # not integrate to one unless the map preserves volume, and this one does not.
    flow = _flow(MASKS["2-D, first kept"], seed=8)  # its mass lies well inside the grid
    axis = torch.linspace(-20, 20, 801, dtype=F64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2)
    with torch.no_grad():
        density = flow.log_prob(grid).exp()
        without_log_det = flow.base_log_prob(flow.inverse(grid)[0]).exp()
    cell = float(axis[1] - axis[0]) ** 2
    assert abs(float(density.sum()) * cell - 1) < 1e-6
    assert abs(float(without_log_det.sum()) * cell - 1) > 0.05


def test_sample_draws_from_the_density_it_reports():
    # The draws land where log_prob puts the mass: the share of draws in a box against
    # the box's integral, within 4 standard errors (a sampler that skips a layer fails).
    flow = _flow(MASKS["2-D, first kept"], seed=8)
    with torch.no_grad():
        pilot, _ = flow.sample(2000, generator=_generator(19))
        low, high = pilot.quantile(0.25, dim=0), pilot.quantile(0.75, dim=0)
        x, _ = flow.sample(20_000, generator=_generator(9))
        steps = torch.linspace(0, 1, 301, dtype=F64)[:, None]
        edges = low + steps * (high - low)  # (301, 2)
        centres = (edges[1:] + edges[:-1]) / 2
        grid = torch.stack(torch.meshgrid(centres[:, 0], centres[:, 1], indexing="xy"),
                           -1).reshape(-1, 2)
        cell = float((edges[1, 0] - edges[0, 0]) * (edges[1, 1] - edges[0, 1]))
        box_mass = float(flow.log_prob(grid).exp().sum()) * cell
    inside = ((x >= low) & (x <= high)).all(1).double().mean()
    standard_error = math.sqrt(box_mass * (1 - box_mass) / len(x))
    assert 0.05 < box_mass < 0.95
    assert abs(float(inside) - box_mass) < 4 * standard_error


def test_double_makes_every_computation_float64_and_dtypes_must_match():
    flow = flows.coupling_flow(2, 2, hidden=4, generator=_generator(10))
    assert flow.base_loc.dtype == torch.float32
    flow.double()
    assert flow.base_loc.dtype == F64 and flow.base_scale.dtype == F64
    x, log_prob = flow.sample(5, generator=_generator(11))
    assert x.dtype == F64 and log_prob.dtype == F64
    with pytest.raises(TypeError, match="dtype"):
        flow.log_prob(torch.zeros(3, 2))  # float32 points into a float64 flow


def test_the_log_scale_of_one_layer_is_bounded():
    # s = SCALE_BOUND tanh(raw): even with huge weights one layer scales a coordinate by
    # at most e^SCALE_BOUND (a layer with an unbounded exp(s) would overflow here).
    layer = flows.AffineCoupling(3, [1, 0, 0], hidden=8, generator=_generator(12))
    with torch.no_grad():
        layer.net[4].weight.mul_(1e6)
    with torch.no_grad():
        _, log_det = layer(10 * torch.randn(100, 3, generator=_generator(13)))
    assert bool(torch.isfinite(log_det).all())
    assert float(log_det.abs().max()) <= 2 * flows.SCALE_BOUND + 1e-5
    assert float(log_det.abs().max()) > 2 * flows.SCALE_BOUND - 1e-3


def test_alternating_masks_and_coupling_flow():
    assert flows.alternating_masks(2, 3) == [[1, 0], [0, 1], [1, 0]]
    assert flows.alternating_masks(5, 2) == [[1, 1, 0, 0, 0], [0, 0, 1, 1, 1]]
    flow = flows.coupling_flow(4, 3, hidden=5, generator=_generator(0))
    assert len(flow.layers) == 3 and flow.dim == 4
    assert [layer.kept.tolist() for layer in flow.layers] == [[0, 1], [2, 3], [0, 1]]
    # The documented default width, 64, in both constructors.
    default = flows.coupling_flow(2, 2, generator=_generator(0))
    single = flows.AffineCoupling(2, [1, 0], generator=_generator(0))
    assert [layer.net[0].weight.shape for layer in [*default.layers, single]] == [
        (64, 1)] * 3


# --- initialisation and training from seeds ------------------------------------------


def _parameters(module):
    return [p.detach().clone() for p in module.parameters()]


def _same(first, second):
    return len(first) == len(second) and all(
        torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_initialisation_comes_from_the_generator_only():
    # Catches an initialisation that draws from torch's global generator (the draws in
    # between would change it) or ignores the generator (seeds 1 and 2 would agree).
    state = torch.get_rng_state()
    first = _parameters(flows.coupling_flow(2, 3, hidden=8, generator=_generator(1)))
    assert torch.equal(torch.get_rng_state(), state)  # the global state is untouched
    torch.randn(1000)
    np.random.default_rng().standard_normal(10)
    again = _parameters(flows.coupling_flow(2, 3, hidden=8, generator=_generator(1)))
    other = _parameters(flows.coupling_flow(2, 3, hidden=8, generator=_generator(2)))
    assert _same(first, again) and not _same(first, other)
    with pytest.raises(TypeError, match="generator"):  # None: the global state
        flows.AffineCoupling(2, [1, 0], 8)
    with pytest.raises(TypeError, match="generator"):
        flows.coupling_flow(2, 3, hidden=8)


def _moons_like(n, seed):
    generator = _generator(seed)
    angle = math.pi * torch.rand(n, generator=generator)
    return torch.stack([angle.cos(), angle.sin()], 1) + 0.1 * torch.randn(
        n, 2, generator=generator)


def test_training_by_likelihood_is_reproducible_from_its_seed():
    # The chapter's training runs, short: twice with other random draws in between.
    data, validation = _moons_like(400, 0), _moons_like(100, 1)

    def run():
        generator = _generator(5)
        flow = flows.coupling_flow(2, 2, hidden=8, generator=generator)
        history = flows.fit_by_likelihood(flow, data, 30, 1e-2, batch_size=64,
                                          validation=validation, evaluate_every=10,
                                          generator=generator)
        return flow, history

    flow, history = run()
    torch.randn(100)
    torch.manual_seed(1234)
    np.random.default_rng(3).random(5)
    flow_again, history_again = run()
    assert _same(_parameters(flow), _parameters(flow_again))
    assert history.validation == history_again.validation
    assert history.steps == (10, 20, 30)
    # A checkpoint's parameters are those of a run stopped there (the chapter uses it).
    generator = _generator(5)
    stopped = flows.coupling_flow(2, 2, hidden=8, generator=generator)
    flows.fit_by_likelihood(stopped, data, 20, 1e-2, batch_size=64, generator=generator)
    assert all(torch.equal(value, stopped.state_dict()[name])
               for name, value in history.parameters[1].items())


def test_training_by_reverse_kl_is_reproducible_from_its_seed():
    def log_target(x):
        return -0.5 * (((x - torch.tensor([1.0, -1.0])) / torch.tensor([0.5, 2.0])) ** 2
                       ).sum(1)

    def run():
        generator = _generator(6)
        flow = flows.coupling_flow(2, 2, hidden=8, generator=generator)
        history = flows.fit_by_reverse_kl(flow, log_target, 25, 1e-2, batch_size=64,
                                          generator=generator)
        return flow, history

    flow, history = run()
    torch.rand(10)
    flow_again, history_again = run()
    assert _same(_parameters(flow), _parameters(flow_again))
    assert history.loss == history_again.loss and len(history.loss) == 25


def _adam_by_hand(flow, loss_of_step, steps, learning_rate):
    """The training loop the docstrings describe, written out with PyTorch's default
    (foreach) Adam: a reference for the package's loops, which use the fused one."""
    optimizer = torch.optim.Adam(flow.parameters(), lr=learning_rate, foreach=True)
    for step in range(steps):
        loss = loss_of_step(step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_reverse_kl_training_is_adam_on_the_reverse_kl_of_fresh_draws():
    # Catches a loop that flips the loss's sign, forgets zero_grad (gradients would
    # accumulate), reuses one minibatch of draws, or detaches the draws (no pathwise
    # gradient through x): each moves the parameters elsewhere within five steps.
    def log_target(x):
        return -0.5 * (((x - torch.tensor([1.0, -1.0])) / 0.7) ** 2).sum(1)

    trained = flows.coupling_flow(2, 2, hidden=8, generator=_generator(20))
    by_hand = flows.coupling_flow(2, 2, hidden=8, generator=_generator(20))
    history = flows.fit_by_reverse_kl(trained, log_target, 5, 1e-2, batch_size=32,
                                      generator=_generator(21))
    draws, losses = _generator(21), []

    def loss_of_step(step):
        x, log_q = by_hand.sample(32, generator=draws)
        loss = (log_q - log_target(x)).mean()
        losses.append(float(loss.detach()))
        return loss

    _adam_by_hand(by_hand, loss_of_step, 5, 1e-2)
    for mine, reference in zip(trained.parameters(), by_hand.parameters(), strict=True):
        torch.testing.assert_close(mine, reference, rtol=1e-5, atol=1e-6)
    assert history.loss == pytest.approx(losses, rel=1e-5)


@pytest.mark.parametrize("n_points", [192, 200])
def test_likelihood_training_is_adam_on_minus_the_mean_log_likelihood(n_points):
    # Catches a loop that ascends instead of descending, draws its minibatches in
    # another order or skips one: the parameters after five steps differ. (Adam hardly
    # sees the loss's scale, so a sum in place of the mean would pass this test.)
    # 192 points fill three minibatches exactly (a pass must not end one batch early);
    # of 200, the last 8 of each shuffle go unused, and the next pass reshuffles all.
    data = _moons_like(n_points, 22)
    trained = flows.coupling_flow(2, 2, hidden=8, generator=_generator(23))
    by_hand = flows.coupling_flow(2, 2, hidden=8, generator=_generator(23))
    flows.fit_by_likelihood(trained, data, 5, 1e-2, batch_size=64,
                            generator=_generator(24))
    shuffles, order = _generator(24), []

    def loss_of_step(step):
        if step % 3 == 0:  # three minibatches of 64 per pass
            order[:] = torch.randperm(len(data), generator=shuffles).tolist()
        batch = data[order[64 * (step % 3):64 * (step % 3 + 1)]]
        return -by_hand.log_prob(batch).mean()

    _adam_by_hand(by_hand, loss_of_step, 5, 1e-2)
    for mine, reference in zip(trained.parameters(), by_hand.parameters(), strict=True):
        torch.testing.assert_close(mine, reference, rtol=1e-5, atol=1e-6)


def test_base_log_prob_is_torchs_normal_bit_for_bit():
    # base_log_prob writes out Normal.log_prob to skip building a distribution at every
    # step; catches a dropped 1/2, log(2 pi) for log(sqrt(2 pi)), or a sum over rows.
    for dtype in (torch.float32, F64):
        flow = flows.coupling_flow(3, 2, hidden=4, generator=_generator(0)).to(dtype)
        eps = 4 * torch.randn(50, 3, generator=_generator(25), dtype=dtype)
        expected = Normal(flow.base_loc, flow.base_scale).log_prob(eps).sum(-1)
        assert torch.equal(flow.base_log_prob(eps), expected)


def test_maximum_likelihood_learns_a_gaussian():
    # Data from N(m, C): the fitted flow's mean log-likelihood on fresh data approaches
    # the true Gaussian's (which is the best any model can do on average).
    generator = _generator(7)
    factor = torch.tensor([[1.0, 0.0], [0.8, 0.5]])
    shift = torch.tensor([0.5, -1.0])

    def draw(n):
        return torch.randn(n, 2, generator=generator) @ factor.T + shift

    train, test = draw(2000), draw(2000)
    flow = flows.coupling_flow(2, 4, hidden=16, generator=_generator(8))
    flows.fit_by_likelihood(flow, train, 400, 1e-2, generator=_generator(9))
    truth = torch.distributions.MultivariateNormal(shift, scale_tril=factor)
    with torch.no_grad():
        gap = float(truth.log_prob(test).mean() - flow.log_prob(test).mean())
    assert -0.05 < gap < 0.1


def test_reverse_kl_finds_a_gaussian_target_through_its_samples():
    # The target's normalizing constant is left out on purpose: it must not matter.
    mean, scale = torch.tensor([1.0, -1.0]), torch.tensor([0.5, 2.0])

    def log_target(x):
        return -0.5 * (((x - mean) / scale) ** 2).sum(1) + 123.0

    flow = flows.coupling_flow(2, 4, hidden=16, generator=_generator(10))
    flows.fit_by_reverse_kl(flow, log_target, 400, 1e-2, generator=_generator(11))
    with torch.no_grad():
        x, log_q = flow.sample(20_000, generator=_generator(12))
        log_p = Normal(mean, scale).log_prob(x).sum(1)
        kl = float((log_q - log_p).mean())
    assert 0 <= kl < 0.05
    torch.testing.assert_close(x.mean(0), mean, rtol=0, atol=0.1)
    torch.testing.assert_close(x.std(0), scale, rtol=0.1, atol=0)


# --- the squashed Gaussian ------------------------------------------------------------


def _reference(u: float, mean: float, std: float) -> float:
    """One coordinate of log N(u; mean, std^2) - log(1 - tanh^2 u), 60 digits."""
    with mpmath.workdps(60):
        u, mean, std = mpmath.mpf(u), mpmath.mpf(mean), mpmath.mpf(std)
        return float(-((u - mean) / std) ** 2 / 2 - mpmath.log(std)
                     - mpmath.log(2 * mpmath.pi) / 2 - 2 * mpmath.log(mpmath.sech(u)))


TAILS = [-1e18, -1e12, -1e6, -1e4, -1e3, -250.0, -20.0, -9.0108404, -3.0, -1e-3, 0.0,
         1e-6, 0.5, 9.0108404, 9.5, 17.0, 88.0, 1e3, 3e3, 1e6, 1e12, 1e18]


@pytest.mark.parametrize("mean, std", [(0.0, 1.0), (0.3, 0.8), (-2.0, 3.0)])
def test_squashed_log_prob_in_float32_is_accurate_far_into_the_tails(mean, std):
    # The naive log(1 - tanh(u)^2) is -inf from |u| = 9.0108 on in float32; this catches
    # it, and a form that overflows in (u - mean)^2 before the value itself does.
    u = torch.tensor(TAILS, dtype=torch.float32)[:, None]
    ours = flows.squashed_gaussian_log_prob(u, mean, std)
    assert ours.dtype == torch.float32 and ours.shape == (len(TAILS),)
    assert bool(torch.isfinite(ours).all())
    # the reference at the float32 values of u, mean and std that the function sees
    as32 = [float(v) for v in torch.tensor([mean, std], dtype=torch.float32)]
    exact = torch.tensor([_reference(float(v), *as32) for v in u[:, 0]], dtype=F64)
    scale = exact.abs().clamp(min=1.0)
    assert float(((ours.double() - exact) / scale).abs().max()) < 2e-6


def test_squashed_log_prob_beyond_float32s_range_is_minus_infinity_not_nan():
    # At |u - mean| / std above 2.6e19 the true log-density, about -(u/std)^2 / 2, is
    # below -3.4e38, float32's most negative number: it rounds to -inf, never to NaN.
    u = torch.tensor([[3e19], [-3e38], [2e19]])
    out = flows.squashed_gaussian_log_prob(u, 0.0, 1.0)
    assert out[0] == -math.inf and out[1] == -math.inf
    assert bool(torch.isfinite(out[2]))
    assert not bool(torch.isnan(out).any())


def test_the_correction_is_torchs_tanh_transform_and_the_naive_form_fails():
    u = torch.linspace(-40, 40, 8001)
    assert torch.equal(flows.tanh_log_det(u),
                       TanhTransform().log_abs_det_jacobian(u, torch.tanh(u)))
    naive = flows.naive_tanh_log_det(u)
    assert not bool(torch.isfinite(naive[u.abs() >= 9.0108404]).any())
    assert bool(torch.isfinite(flows.tanh_log_det(u)).all())


def test_squashed_log_prob_equals_torchs_transformed_distribution_where_both_exact():
    # For |u| <= 3 in float64, atanh(tanh(u)) recovers u, so PyTorch's log_prob(a) is
    # exact too. Catches a missing correction, a wrong sign, or no sum over coordinates.
    mean = torch.tensor([0.3, -1.2, 2.0], dtype=F64)
    std = torch.tensor([0.8, 1.5, 0.4], dtype=F64)
    u = 3 * torch.rand(500, 3, generator=_generator(1), dtype=F64) * 2 - 3
    policy = TransformedDistribution(Normal(mean, std), TanhTransform())
    expected = policy.log_prob(torch.tanh(u)).sum(-1)
    ours = flows.squashed_gaussian_log_prob(u, mean, std)
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-10)


def test_squashed_log_prob_broadcasts_mean_and_std():
    u = torch.randn(6, 2, generator=_generator(2), dtype=F64)
    mean = torch.tensor([0.5, -0.5], dtype=F64)
    full = flows.squashed_gaussian_log_prob(u, mean.expand(6, 2),
                                            torch.full((6, 2), 0.7, dtype=F64))
    torch.testing.assert_close(flows.squashed_gaussian_log_prob(u, mean, 0.7), full,
                               rtol=0, atol=0)
    per_row = torch.tensor([[0.5], [1.0], [2.0], [0.1], [1.0], [3.0]], dtype=F64)
    expected = torch.stack([
        flows.squashed_gaussian_log_prob(u[i:i + 1], mean, float(per_row[i, 0]))[0]
        for i in range(6)])
    torch.testing.assert_close(flows.squashed_gaussian_log_prob(u, mean, per_row),
                               expected, rtol=0, atol=1e-14)


def test_squashed_log_prob_gradients_are_the_formulas():
    # The |u| form must not change the derivatives (in particular at u = 0, where |u|
    # has a kink): against autograd of log N(u) - 2(log 2 - u - softplus(-2u)).
    u = torch.tensor([[-7.0, -0.3, 0.0, 0.4, 12.0]], dtype=F64, requires_grad=True)
    mean = torch.tensor([0.5, -1.0, 0.0, 2.0, 1.0], dtype=F64, requires_grad=True)
    std = torch.tensor([0.7, 1.3, 1.0, 0.2, 3.0], dtype=F64, requires_grad=True)
    ours = torch.autograd.grad(flows.squashed_gaussian_log_prob(u, mean, std).sum(),
                               (u, mean, std))
    formula = (Normal(mean, std).log_prob(u) - flows.tanh_log_det(u)).sum()
    expected = torch.autograd.grad(formula, (u, mean, std))
    for got, want in zip(ours, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_squashed_gaussian_entropy_from_its_log_prob():
    # -E[log pi(a)] is the entropy of a = tanh(u); for u ~ N(0, 1) the exact value by
    # quadrature over a is 0.66979 nats. Without the correction it would be 1.41894.
    from scipy import integrate, stats

    def density(a):
        return stats.norm.pdf(np.arctanh(a)) / (1 - a**2)

    exact, _ = integrate.quad(lambda a: -density(a) * np.log(density(a)), -1, 1,
                              limit=200)
    u = torch.randn(40_000, 1, generator=_generator(3), dtype=F64)
    values = -flows.squashed_gaussian_log_prob(u, 0.0, 1.0)
    standard_error = float(values.std()) / math.sqrt(len(values))
    assert abs(float(values.mean()) - exact) < 4 * standard_error


# --- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize("dim, mask, error, match", [
    (2, [1, 0, 1], ValueError, "length"),
    (3, [1, 1, 1], ValueError, "at least one 0"),
    (3, [0, 0, 0], ValueError, "at least one 1"),
    (2, [1, 2], ValueError, "0 or 1"),
    (2, [1, 0.5], ValueError, "0 or 1"),
    (2, "10", TypeError, "sequence"),
    (2, 10, TypeError, "sequence"),
    (2, None, TypeError, "sequence"),
    (2, [1, "0"], TypeError, "0/1"),
    (2, np.array([[1, 0]]), ValueError, "one-dimensional"),
    (1, [1], ValueError, "dim"),
    (2.0, [1, 0], TypeError, "dim"),
    (True, [1, 0], TypeError, "dim"),
])
def test_coupling_rejects_bad_masks_and_dimensions(dim, mask, error, match):
    with pytest.raises(error, match=match):
        flows.AffineCoupling(dim, mask, generator=_generator(0))


def test_coupling_accepts_masks_as_tuples_arrays_tensors_and_bools():
    for mask in ((1, 0), np.array([1, 0]), torch.tensor([1, 0]), [True, False],
                 np.array([True, False])):
        layer = flows.AffineCoupling(2, mask, hidden=2, generator=_generator(0))
        assert layer.kept.tolist() == [0]


def test_coupling_and_flow_reject_bad_input():
    layer = flows.AffineCoupling(3, [1, 0, 0], hidden=4, generator=_generator(0))
    with pytest.raises(ValueError, match="hidden"):
        flows.AffineCoupling(3, [1, 0, 0], hidden=0, generator=_generator(0))
    with pytest.raises(TypeError, match="generator"):
        flows.AffineCoupling(3, [1, 0, 0], generator=0)
    with pytest.raises(ValueError, match=r"shape \(batch, 3\)"):
        layer(torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"shape \(batch, 3\)"):
        layer.inverse(torch.zeros(3))
    with pytest.raises(TypeError, match="torch.Tensor"):
        layer(np.zeros((4, 3)))
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.zeros(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        layer(torch.full((1, 3), float("nan")))
    with pytest.raises(ValueError, match="acts in 3 dimensions"):
        flows.Flow([layer], 2)
    with pytest.raises(TypeError, match="sequence of modules"):
        flows.Flow(layer, 3)
    with pytest.raises(TypeError, match="sequence of modules"):
        flows.Flow(iter([layer]), 3)  # an iterator would be used up by one pass
    with pytest.raises(TypeError, match="layers\\[1\\]"):
        flows.Flow([layer, "layer"], 3)
    flow = flows.Flow([layer], 3)
    with pytest.raises(ValueError, match=r"shape \(batch, 3\)"):
        flow.log_prob(torch.zeros(5, 4))
    with pytest.raises(ValueError, match="NaN"):
        flow.log_prob(torch.tensor([[0.0, float("inf"), 0.0]]))
    with pytest.raises(ValueError, match="n must be"):
        flow.sample(0, _generator(1))
    with pytest.raises(TypeError, match="n must be"):
        flow.sample(2.0, _generator(1))
    with pytest.raises(TypeError, match="generator"):
        flow.sample(3, generator=np.random.default_rng())


def test_training_rejects_bad_input():
    flow = flows.coupling_flow(2, 2, hidden=4, generator=_generator(0))
    data = torch.zeros(10, 2)
    with pytest.raises(ValueError, match="learning_rate"):
        flows.fit_by_likelihood(flow, data, 5, 0.0)
    with pytest.raises(ValueError, match=r"shape \(batch, 2\)"):
        flows.fit_by_likelihood(flow, torch.zeros(10, 3), 5, 1e-3)
    with pytest.raises(TypeError, match="dtype"):
        flows.fit_by_likelihood(flow, data.double(), 5, 1e-3)
    with pytest.raises(ValueError, match="steps"):
        flows.fit_by_likelihood(flow, data, 0, 1e-3)
    with pytest.raises(TypeError, match="flow"):
        flows.fit_by_likelihood(torch.nn.Linear(2, 2), data, 5, 1e-3)
    with pytest.raises(TypeError, match="callable"):
        flows.fit_by_reverse_kl(flow, 3.0, 5, 1e-3)
    with pytest.raises(ValueError, match="learning_rate"):
        flows.fit_by_reverse_kl(flow, lambda x: x.sum(1), 5, -1.0)


@pytest.mark.parametrize("u, mean, std, error, match", [
    (torch.zeros(3, 2), 0.0, 0.0, ValueError, "std must be > 0"),
    (torch.zeros(3, 2), 0.0, -1.0, ValueError, "std must be > 0"),
    (torch.zeros(3, 2), 0.0, torch.tensor([1.0, 0.0]), ValueError, "std must be > 0"),
    (torch.zeros(3, 2), 0.0, float("nan"), ValueError, "NaN"),
    (torch.zeros(3, 2), float("inf"), 1.0, ValueError, "NaN or infinite"),
    (torch.tensor([[0.0, float("inf")]]), 0.0, 1.0, ValueError, "NaN or infinite"),
    (torch.tensor([[float("nan")]]), 0.0, 1.0, ValueError, "NaN or infinite"),
    (torch.zeros(3), 0.0, 1.0, ValueError, r"shape \(batch, d\)"),
    (torch.zeros(3, 2), torch.zeros(3), 1.0, ValueError, "broadcast"),
    (torch.zeros(3, 2), torch.zeros(4, 2), 1.0, ValueError, "broadcast"),
    (torch.zeros(3, 2), torch.zeros(2, 3, 2), 1.0, ValueError, "broadcast"),
    (np.zeros((3, 2)), 0.0, 1.0, TypeError, "torch.Tensor"),
    (torch.zeros(3, 2, dtype=torch.long), 0.0, 1.0, TypeError, "floating-point"),
    (torch.zeros(3, 2), "0", 1.0, TypeError, "mean"),
    (torch.zeros(3, 2), 0.0, True, TypeError, "std"),
])
def test_squashed_log_prob_rejects_bad_input(u, mean, std, error, match):
    with pytest.raises(error, match=match):
        flows.squashed_gaussian_log_prob(u, mean, std)
