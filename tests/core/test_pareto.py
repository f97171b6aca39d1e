"""pareto.py against Optuna's own ranking, front and hypervolume, on random point sets
with ties, duplicates, NaN (diverged members) and constraints."""

import types

import numpy as np
import optuna
import pytest
from hypothesis import given, settings, strategies as st
from optuna._hypervolume import compute_hypervolume
from optuna.samplers._base import _CONSTRAINTS_KEY
from optuna.samplers.nsgaii._elite_population_selection_strategy import (
    _calc_crowding_distance)
from optuna.study._multi_objective import _fast_non_domination_rank

from jaxmlp.core import pareto

optuna.logging.set_verbosity(optuna.logging.WARNING)


@st.composite
def point_sets(draw, nan=True, min_points=0):
  """N points of M objectives drawn from a few levels, so ties and duplicates are
  common; some NaN; and C constraint values a point."""
  m = draw(st.integers(1, 4))
  n = draw(st.integers(min_points, 24))
  levels = st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, -1.0, np.nan] if nan
                           else [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, -1.0])
  losses = np.array(draw(st.lists(st.lists(levels, min_size=m, max_size=m),
                                  min_size=n, max_size=n)), dtype=float).reshape(n, m)
  c = draw(st.integers(0, 2))
  constraints = np.array(draw(st.lists(
      st.lists(st.sampled_from([-1.0, 0.0, 0.25, 1.0, 2.0]), min_size=c, max_size=c),
      min_size=n, max_size=n)), dtype=float).reshape(n, c)
  return losses, constraints


@settings(max_examples=150, deadline=None)
@given(point_sets())
def test_ranks_are_optunas(points):
  losses, constraints = points
  expected = _fast_non_domination_rank(pareto.as_losses(losses))
  assert list(pareto.nondominated_ranks(losses)) == list(expected)
  penalty = pareto.violation(constraints)
  expected = _fast_non_domination_rank(pareto.as_losses(losses), penalty=penalty)
  assert list(pareto.nondominated_ranks(losses, penalty)) == list(expected)


@settings(max_examples=100, deadline=None)
@given(point_sets(nan=False, min_points=1))
def test_crowding_distance_is_optunas(points):
  losses, _ = points
  population = [types.SimpleNamespace(number=i, values=list(row))
                for i, row in enumerate(losses)]
  expected = _calc_crowding_distance(population)
  assert pareto.crowding_distance(losses) == pytest.approx(
      [expected[i] for i in range(len(losses))], rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(point_sets(nan=False, min_points=1), st.lists(st.booleans(), min_size=4, max_size=4))
def test_the_front_of_an_optuna_study_is_its_best_trials(points, maximize):
  losses, constraints = points
  m = losses.shape[1]
  if m == 1:
    return   # best_trials is for several objectives
  directions = ['maximize' if up else 'minimize' for up in maximize[:m]]
  values = np.where(maximize[:m], -losses, losses)   # what the trials report
  study = optuna.create_study(directions=directions)
  for row, c in zip(values, constraints):
    study.add_trial(optuna.trial.create_trial(
        values=list(row), system_attrs={_CONSTRAINTS_KEY: list(c)} if c.size else {}))
  penalty = pareto.violation(constraints)
  ranks = pareto.nondominated_ranks(losses, penalty if constraints.size else None)
  front = {i for i in np.flatnonzero(ranks == 0) if penalty[i] <= 0 or not constraints.size}
  assert front == {t.number for t in study.best_trials}


@settings(max_examples=120, deadline=None)
@given(point_sets(nan=False, min_points=1), st.floats(0.0, 1.0))
def test_hypervolume_is_optunas(points, margin):
  losses, _ = points
  reference = losses.max(axis=0) + margin   # a margin of 0: points on it add nothing
  expected = compute_hypervolume(losses, reference)
  assert pareto.hypervolume(losses, reference) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_a_diverged_member_is_worst_and_dominance_is_strict():
  ranks = pareto.nondominated_ranks([[0.1, 5.0], [np.nan, 1.0], [0.1, 5.0], [0.2, 6.0]])
  assert list(ranks) == [0, 0, 0, 1]   # NaN is +inf in its objective only
  assert pareto.dominates([1, 1], [1, 2]) and not pareto.dominates([1, 1], [1, 1])


def test_best_first_is_rank_then_crowding():
  losses = [[0.0, 4.0], [1.0, 2.0], [1.5, 1.5], [4.0, 0.0], [5.0, 5.0]]
  order = pareto.best_first(losses)
  assert set(order[:2]) == {0, 3}                 # the front's extremes: infinitely far
  assert list(order[2:]) == [2, 1, 4]             # then the more crowded-free, then rank 1
  assert list(pareto.best_first(losses, [0, 0, 0, 1.0, 0])) == [0, 2, 1, 4, 3]


def test_no_points_and_bad_shapes():
  assert list(pareto.nondominated_ranks([])) == []
  assert list(pareto.crowding_distance([])) == [] and list(pareto.violation([])) == []
  assert pareto.hypervolume([], [1.0, 1.0]) == 0.0
  assert list(pareto.violation(np.zeros((3, 0)))) == [0.0, 0.0, 0.0]   # no constraints
  with pytest.raises(ValueError, match='one row a point'):
    pareto.nondominated_ranks([3.0, 1.0, 2.0])
  with pytest.raises(ValueError, match='NaN'):
    pareto.hypervolume([[0.0, 0.0]], [1.0, np.nan])


def test_spread_keeps_the_extremes_and_drops_the_most_crowded_first():
  # A front on a line with a cluster near x = 1: the cluster thins out first.
  losses = np.array([[0, 10], [1, 9], [1.1, 8.9], [1.2, 8.8], [5, 5], [10, 0]], float)
  assert pareto.spread(losses, 6).tolist() == [0, 1, 2, 3, 4, 5]
  # Crowding 0.22, 0.04, 0.78 in the cluster: 2 goes, then 1 (now 0.24 against 3's 0.8).
  assert pareto.spread(losses, 4).tolist() == [0, 3, 4, 5]
  assert pareto.spread(losses, 3).tolist() == [0, 4, 5]
  assert pareto.spread(losses, 2).tolist() == [0, 5]
  assert pareto.spread(losses, 0).tolist() == []


def test_a_failed_point_is_worst_in_every_objective():
  """NaN as +inf in one objective alone leaves a diverged point with the smallest other
  loss on the front; as the worst in all it is dominated by every finite point."""
  losses = np.array([[np.nan, 1000], [-0.9, 5000], [-0.95, 20000]])
  assert pareto.nondominated_ranks(losses).tolist() == [0, 0, 0]
  assert pareto.nondominated_ranks(pareto.failed_as_worst(losses)).tolist() == [1, 0, 0]
  assert np.isinf(pareto.failed_as_worst([[1.0, np.inf]])).all()
