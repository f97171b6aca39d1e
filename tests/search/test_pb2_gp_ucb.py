"""PB2's explore step (pb2._gp_ucb): the time-varying kernel, the likelihood fit and the
posterior it conditions, and the picks: near a known maximum, inside the bounds as
float32 numbers, decided by the seed alone, and spread over a round's targets."""

import numpy as np
import pytest

from jaxmlp.search.pb2 import _gp_ucb as gp

UNIT = ([0.0], [1.0], [False])   # (low, high, log) of one linear dimension


def _rng(seed=0):
  return np.random.default_rng(seed)


def _bimodal():
  """Two equal peaks, at 0.2 and 0.8, sampled off them: a UCB tie to break."""
  X_N1 = np.arange(0.05, 1.0, 0.1)[:, None]
  return X_N1, np.zeros(len(X_N1)), -np.minimum((X_N1[:, 0] - 0.2) ** 2,
                                                 (X_N1[:, 0] - 0.8) ** 2)


# --- the model --------------------------------------------------------------------------


def test_the_kernel_is_symmetric_psd_and_ray_s_time_varying_squared_exponential():
  rng = _rng()
  Z_NK = np.hstack([rng.integers(0, 5, (30, 1)) / 4, rng.uniform(0, 1, (30, 2))])
  hyper = gp.Hyper(variance=1.7, lengthscale=0.3, epsilon=0.2)
  K_NN = gp.kernel(Z_NK, Z_NK, hyper)
  assert np.array_equal(K_NN, K_NN.T) and np.allclose(np.diag(K_NN), 1.7)
  assert np.linalg.eigvalsh(K_NN).min() > -1e-9
  a, b = np.array([[0.0, 0.1, 0.2]]), np.array([[0.5, 0.4, 0.6]])
  d2 = 0.3 ** 2 + 0.4 ** 2   # exp(-d^2 / lengthscale): Ray's form, no factor 2
  expected = 1.7 * np.exp(-d2 / 0.3) * 0.8 ** 0.25   # dt = 0.5
  assert gp.kernel(a, b, hyper)[0, 0] == pytest.approx(expected)
  same_x = np.array([[t, 0.1, 0.2] for t in (0.0, 0.5, 1.0)])
  decay = gp.kernel(same_x[:1], same_x, hyper)[0]
  assert decay == pytest.approx(1.7 * 0.8 ** np.array([0.0, 0.25, 0.5]))
  no_decay = gp.kernel(same_x[:1], same_x, gp.Hyper(1.7, 0.3, epsilon=0.0))[0]
  assert no_decay == pytest.approx([1.7] * 3)


@pytest.mark.parametrize('true_length', [0.01, 0.3])
def test_the_fit_maximizes_the_likelihood_and_recovers_the_lengthscale(true_length):
  rng = _rng(1)
  Z_NK = np.hstack([np.zeros((60, 1)), rng.uniform(0, 1, (60, 1))])
  true = gp.Hyper(variance=1.0, lengthscale=true_length, epsilon=0.0, noise=1e-4)
  K_NN = gp.kernel(Z_NK, Z_NK, true) + true.noise * np.eye(60)
  y_N = np.linalg.cholesky(K_NN) @ rng.normal(size=60)
  hyper, log_lik = gp.fit(Z_NK, y_N)
  assert true_length / 2.5 < hyper.lengthscale < true_length * 2.5
  dt_NN, d2_NN = gp._distances(Z_NK, Z_NK)
  theta = np.array([0.0, np.log(true_length), 0.0, np.log(1e-4)])
  assert log_lik >= -gp._neg_log_likelihood(theta, dt_NN, d2_NN, y_N)[0]


def test_the_fit_lets_old_intervals_count_less_when_the_best_value_moved():
  X_N1 = np.tile(np.linspace(0, 1, 11), 2)[:, None]
  t_N = np.repeat([0.0, 1.0], 11)
  y_N = np.where(t_N == 0, -(X_N1[:, 0] - 0.8) ** 2, -(X_N1[:, 0] - 0.2) ** 2)
  hyper, _ = gp.fit(np.hstack([t_N[:, None], X_N1]), gp.standardize(y_N))
  assert hyper.epsilon > 0.1
  assert abs(gp.explore(X_N1, t_N, y_N, *UNIT, [], _rng())[0] - 0.2) < 0.1


def test_the_posterior_mean_interpolates_noise_free_data():
  x_N = np.linspace(0, 0.4, 12)
  Z_NK = np.stack([np.zeros(12), x_N], 1)
  y_N = np.sin(6 * x_N)
  post = gp.posterior(Z_NK, y_N, gp.Hyper(1.0, 0.05, 0.0, noise=1e-8))
  mean_N, var_N, _, _ = gp.predict(post, Z_NK)
  assert np.allclose(mean_N, y_N, atol=1e-4) and np.all(var_N < 1e-6)
  between_mean, _, _, _ = gp.predict(post, Z_NK[:-1] + [0, 0.4 / 22])
  assert np.allclose(between_mean, np.sin(6 * (x_N[:-1] + 0.4 / 22)), atol=1e-2)
  far_mean, far_var, _, _ = gp.predict(post, np.array([[0.0, 2.0]]))
  assert abs(far_mean[0]) < 1e-6 and far_var[0] > 0.999   # back to the prior


# --- the picks --------------------------------------------------------------------------


@pytest.mark.parametrize('low, high, log, best', [(0.0, 1.0, False, 0.3),
                                                  (2.0, 6.0, False, 3.2),
                                                  (1e-4, 1e-1, True, 10 ** -2.5)])
def test_ucb_picks_the_maximum_of_a_1d_function(low, high, log, best):
  rng = _rng(2)
  u_N = rng.uniform(0, 1, 25)
  X_N1 = (np.exp(np.log(low) + u_N * np.log(high / low)) if log
          else low + u_N * (high - low))[:, None]
  warp = np.log if log else (lambda v: v)
  y_N = -(warp(X_N1[:, 0]) - warp(best)) ** 2
  pick = gp.explore(X_N1, np.zeros(25), y_N, [low], [high], [log], [], _rng())[0]
  assert abs(warp(pick) - warp(best)) < 0.05 * (warp(high) - warp(low))


def test_ucb_picks_the_maximum_of_a_2d_function_seen_over_time():
  rng = _rng(3)
  X_N2 = rng.uniform(0, 1, (40, 2))
  t_N = np.repeat(np.arange(5.0), 8)
  y_N = -(X_N2[:, 0] - 0.3) ** 2 - (X_N2[:, 1] - 0.7) ** 2
  pick = gp.explore(X_N2, t_N, y_N, [0, 0], [1, 1], [False, False], [], _rng())
  assert np.linalg.norm(pick - [0.3, 0.7]) < 0.08


def test_the_score_an_interval_started_from_is_a_feature_as_in_ray():
  r_N, x_N = (a.ravel() for a in np.meshgrid(np.linspace(0, 1, 6), np.linspace(0, 1, 11)))
  y_N = -(x_N - (0.2 + 0.6 * r_N)) ** 2   # the best value depends on r
  t_N = np.zeros(len(y_N))
  for r_new, best in ((0.0, 0.2), (0.5, 0.5), (1.0, 0.8)):
    pick = gp.explore(x_N[:, None], t_N, y_N, *UNIT, [], _rng(), r_N=r_N, r_new=r_new)
    assert abs(pick[0] - best) < 0.05
  with pytest.raises(ValueError, match='r_new'):
    gp.explore(x_N[:, None], t_N, y_N, *UNIT, [], _rng(), r_N=r_N)


def test_picks_are_float32_numbers_inside_bounds_that_float32_cannot_hold():
  rng = _rng(5)
  low, high, log = [1e-4, 0.1], [0.1, 0.9], [True, False]
  X_N2 = np.stack([np.exp(rng.uniform(np.log(1e-4), np.log(0.1), 30)),
                   rng.uniform(0.1, 0.9, 30)], 1)
  y_N = np.log(X_N2[:, 0]) + X_N2[:, 1]   # best at both upper edges
  up = gp.explore_batch(X_N2, np.zeros(30), y_N, low, high, log, [], 3, _rng())
  down = gp.explore_batch(X_N2, np.zeros(30), -y_N, low, high, log, [], 3, _rng())
  drawn = gp.explore_batch(X_N2[:1], [0.0], y_N[:1], low, high, log, [], 200, _rng())
  for v_TF in (up, down, drawn):
    assert v_TF.dtype == np.float64 and np.array_equal(v_TF.astype(np.float32), v_TF)
    assert np.all(v_TF >= low) and np.all(v_TF <= high)
  # float32(0.1) and float32(1e-4) lie outside [1e-4, 0.1]: the next float32 inward
  assert float(np.float32(0.1)) > 0.1 and float(np.float32(1e-4)) < 1e-4
  assert up[0, 0] == np.nextafter(np.float32(0.1), np.float32(0))
  assert down[0, 0] == np.nextafter(np.float32(1e-4), np.float32(1))
  assert up[0, 1] == np.float32(0.9) and down[0, 1] == np.float32(0.1)   # inside


def test_the_seed_alone_decides():
  X_N1, t_N, y_N = _bimodal()
  first = gp.explore_batch(X_N1, t_N, y_N, *UNIT, [], 3, _rng(7))
  np.random.seed(123)   # the global generator plays no part
  assert np.array_equal(first, gp.explore_batch(X_N1, t_N, y_N, *UNIT, [], 3, _rng(7)))
  drawn = [gp.explore_batch(X_N1[:1], t_N[:1], y_N[:1], *UNIT, [], 3, _rng(seed))
           for seed in (7, 7, 8)]   # too little data: the draws show the seed
  assert np.array_equal(drawn[0], drawn[1]) and not np.array_equal(drawn[0], drawn[2])


def test_non_finite_scores_are_dropped():
  X_N1, t_N, y_N = _bimodal()
  bad_X = np.array([[0.5], [0.5], [0.55], [np.nan]])
  bad_y = np.array([np.nan, np.inf, -np.inf, 1.0])
  with_bad = gp.explore_batch(np.vstack([bad_X, X_N1]),
                              np.concatenate([np.zeros(4), t_N]),
                              np.concatenate([bad_y, y_N]), *UNIT, [], 2, _rng())
  assert np.array_equal(with_bad, gp.explore_batch(X_N1, t_N, y_N, *UNIT, [], 2, _rng()))


def test_too_little_data_draws_uniformly_in_the_search_space():
  log_space = ([1e-4], [1e-1], [True])
  one = gp.explore_batch([[0.01], [0.02]], [0, 0], [1.0, np.nan], *log_space, [], 400,
                         _rng())
  flat = gp.explore_batch([[0.01], [0.02]], [0, 0], [1.0, 1.0], *log_space, [], 400,
                          _rng())
  empty = gp.explore_batch(np.zeros((0, 1)), [], [], *log_space, [], 400, _rng())
  assert np.array_equal(one, flat) and np.array_equal(one, empty)
  below_middle = np.mean(np.log10(one[:, 0]) < -2.5)   # log-uniform: half of them
  assert 0.4 < below_middle < 0.6


def test_a_round_s_targets_spread_over_the_peaks():
  X_N1, t_N, y_N = _bimodal()
  picks = gp.explore_batch(X_N1, t_N, y_N, *UNIT, [], 2, _rng())[:, 0]
  assert sorted(np.round(picks, 1)) == [0.2, 0.8]
  rng = _rng()   # the same as explore one target at a time, each joining current
  first = gp.explore(X_N1, t_N, y_N, *UNIT, [], rng)
  second = gp.explore(X_N1, t_N, y_N, *UNIT, [first], rng)
  assert np.array_equal(np.stack([first, second])[:, 0], picks)


def test_select_length_keeps_the_latest_window_that_fits_best():
  rng = _rng(6)
  x_N1 = rng.uniform(0, 1, (230, 1))
  t_N1 = np.arange(230.0)[:, None]
  clean_N = np.sin(4 * x_N1[:, 0])
  assert gp.select_length(t_N1[:150], x_N1[:150], clean_N[:150]) == 150   # all, < 200
  assert gp.select_length(t_N1, x_N1, clean_N) in (210, 220, 230)   # more of it helps
  noisy_N = clean_N.copy()
  noisy_N[:25] = rng.normal(size=25) * 3   # the oldest intervals: noise
  assert gp.select_length(t_N1, x_N1, noisy_N) == 200
  shuffled = rng.permutation(230)   # explore sorts by time, then fits the latest 200
  picks = gp.explore_batch(x_N1[shuffled], t_N1[shuffled, 0], noisy_N[shuffled], *UNIT,
                           [], 1, _rng())
  latest = gp.explore_batch(x_N1[30:], t_N1[30:, 0], noisy_N[30:], *UNIT, [], 1, _rng())
  assert np.array_equal(picks, latest)
