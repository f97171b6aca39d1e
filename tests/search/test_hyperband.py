"""_oracle.Oracle creates exactly the trials keras_tuner's HyperbandOracle creates.

keras_tuner's oracle is driven as a sequential tuner drives it (create_trial, report,
end_trial COMPLETED, next); ours in batches (next_trials, then reports, in any order,
all or some at a time); the trial sequences must be identical.
"""

import collections
import hashlib
import json
import math
import os
import random
import tempfile
import warnings

import pytest

from jaxmlp.search.hyperband import _oracle
from jaxmlp.search.hyperband import _schedule

FINETUNE = {'hidden_sizes': ['64x256', '64x512', '128x256', '128x512'],
            'l2': [0.1, 0.001, 1e-06],
            'learning_rate': [0.1, 0.01, 0.001]}

# 4 * 3 * 4 * 2 * 3 = 288 points, more than any schedule below needs.
LARGE = {'activation': ['relu', 'tanh', 'elu', 'gelu'],
         'dropout': [0.0, 0.2, 0.5],
         'units': [32, 64, 128, 256],
         'batch_norm': [True, False],    # keras_tuner makes these 1 and 0
         'learning_rate': [0.1, 0.01, 0.001]}


# --- the schedule ---------------------------------------------------------------

def test_schedule_matches_keras_tuner_for_10_epochs_factor_3():
  # (trials, epochs) per round; brackets from the most aggressive.
  assert _schedule.schedule(10, 3) == [
      [(12, 2), (4, 4), (2, 10)],
      [(6, 4), (2, 10)],
      [(4, 10)],
  ]


def test_schedule_matches_keras_tuner_for_81_epochs_factor_3():
  assert _schedule.schedule(81, 3) == [
      [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
      [(34, 3), (12, 9), (4, 27), (2, 81)],
      [(15, 9), (5, 27), (2, 81)],
      [(8, 27), (3, 81)],
      [(5, 81)],
  ]


def test_keras_tuners_own_bracket_test():
  # keras_tuner's test_hyperband_oracle_bracket_configs (max_epochs 8, factor 2).
  assert _schedule.num_brackets(8, 2) == 4
  assert _schedule.size(8, 2, 3, 0) == 8 and _schedule.epochs(8, 2, 3, 0) == 1
  assert _schedule.size(8, 2, 3, 3) == 1 and _schedule.epochs(8, 2, 3, 3) == 8
  assert _schedule.size(8, 2, 0, 0) == 4 and _schedule.epochs(8, 2, 0, 0) == 8


# --- drivers --------------------------------------------------------------------

def hashed_score(values, epochs):
  """A fixed score in [0, 1) per configuration and epoch count; ties are rare."""
  s = ''.join(f'{k}={values[k]};' for k in sorted(values)) + f'@{epochs}'
  return int(hashlib.sha256(s.encode()).hexdigest()[:12], 16) / 16 ** 12


def tied_score(values, epochs):
  """Three distinct scores only: most rankings break ties by creation order."""
  return math.floor(hashed_score(values, epochs) * 3) / 3


def nan_score(values, epochs):
  """Diverges (NaN) for about a quarter of the configurations and epoch counts."""
  s = hashed_score(values, epochs)
  return math.nan if s < 0.25 else s


@pytest.fixture(scope='module')
def kt():
  os.environ['KERAS_BACKEND'] = 'jax'
  pytest.importorskip('six')
  return pytest.importorskip('keras_tuner')


def run_keras_tuner(kt, tmp_path, space, score, *, max_epochs, factor, iterations=1,
                    seed, direction='max', max_consecutive_failed_trials=3):
  """keras_tuner's HyperbandOracle as its sequential tuner runs it.

  Returns [(trial_id, hyperparameters.values)], the oracle, and the RuntimeError
  end_trial raised (after too many failures in a row) or None.
  """
  hps = kt.HyperParameters()
  for name, values in space.items():
    hps.Choice(name, values)
  oracle = kt.oracles.HyperbandOracle(
      objective=kt.Objective('score', direction), max_epochs=max_epochs, factor=factor,
      hyperband_iterations=iterations, seed=seed, hyperparameters=hps,
      max_consecutive_failed_trials=max_consecutive_failed_trials)
  oracle._set_project_dir(tempfile.mkdtemp(dir=tmp_path), 'hyperband')
  oracle.verbose = 0
  created = []
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', DeprecationWarning)   # threading.currentThread()
    warnings.simplefilter('ignore', RuntimeWarning)       # numpy's nanmax of a NaN
    while True:
      trial = oracle.create_trial('tuner0')
      assert trial.status in ('RUNNING', 'STOPPED')   # never IDLE when sequential
      if trial.status == 'STOPPED':
        return created, oracle, None
      values = dict(trial.hyperparameters.values)
      created.append((trial.trial_id, values))
      hp_values = {k: v for k, v in values.items() if not k.startswith('tuner/')}
      oracle.update_trial(trial.trial_id,
                          {'score': score(hp_values, values['tuner/epochs'])})
      trial.status = 'COMPLETED'
      try:
        oracle.end_trial(trial)
      except RuntimeError as e:
        return created, oracle, e


def run_ours(space, score, *, report_order=None, oracle=None, **kw):
  """Our oracle in batches; `report_order` (a random.Random) reports a random subset
  of the pending trials, in random order, between calls to next_trials.

  Returns the oracle and the batch sizes.
  """
  oracle = oracle or _oracle.Oracle(space, **kw)
  pending, batches = list(oracle.pending), []
  while True:
    batch = oracle.next_trials()
    if batch:
      batches.append(len(batch))
    pending += batch
    if not pending:
      assert oracle.stopped and oracle.done and oracle.next_trials() == []
      return oracle, batches
    if report_order is None:
      chosen = pending
    else:
      chosen = report_order.sample(pending, report_order.randint(1, len(pending)))
    for t in chosen:
      oracle.report(t.trial_id, score(t.values, t.epochs))
    pending = [t for t in pending if t not in chosen]


def assert_same(created, oracle, ours):
  assert [(t.trial_id, t.keras_tuner_values) for t in ours.trials] == created
  state = ours.state()
  assert state['seed_state'] == oracle._seed_state
  assert set(state['tried_so_far']) == oracle._tried_so_far
  assert state['brackets'] == oracle._brackets
  assert state['current_bracket'] == oracle._current_bracket
  assert state['current_iteration'] == oracle._current_iteration


def counts(trials):
  """[((iteration, bracket, round), trials)] in order of appearance."""
  return list(collections.Counter((t.iteration, t.bracket, t.round)
                                  for t in trials).items())


def compare(kt, tmp_path, space, score, *, direction='max', iterations=1, **kw):
  """Runs both and asserts the same trials and state; returns our oracle, its batch
  sizes, and keras_tuner's oracle.

  Ours runs twice: reporting each batch in full, and reporting random subsets of
  the pending trials in random order (the same trials must come out).
  """
  created, oracle, error = run_keras_tuner(kt, tmp_path, space, score, direction=direction,
                                           iterations=iterations, **kw)
  assert error is None
  kw = dict(kw, objective_direction=direction, iterations=iterations)
  ours, batches = run_ours(space, score, **kw)
  assert_same(created, oracle, ours)
  ours_partial, _ = run_ours(space, score, report_order=random.Random(kw['seed']), **kw)
  assert ours_partial.state() == ours.state()
  assert [t.trial_id for t in ours.best_trials(len(ours.trials))] == [
      t.trial_id for t in oracle.get_best_trials(len(ours.trials))]
  return ours, batches, oracle


# --- identical to keras_tuner ----------------------------------------------------

@pytest.mark.parametrize('seed, expected', [
    # Bracket 3 in full, then 2 trials of bracket 2 (all 36 points drawn), STOPPED.
    (1, [(3, 0, 34), (3, 1, 12), (3, 2, 4), (3, 3, 2), (2, 0, 2)]),
    # Could not draw a 33rd untried point in 21 draws: STOPPED before any promotion.
    (2, [(3, 0, 32)]),
    (3, [(3, 0, 34), (3, 1, 12), (3, 2, 4), (3, 3, 2), (2, 0, 2)]),
    # Bracket 3 in full, then no untried point in 21 draws for bracket 2.
    (5, [(3, 0, 34), (3, 1, 12), (3, 2, 4), (3, 3, 2)]),
])
def test_finetune_grid_like_keras_tuner(kt, tmp_path, seed, expected):
  ours, batches, _ = compare(kt, tmp_path, FINETUNE, hashed_score, max_epochs=50, factor=3,
                          seed=seed)
  assert counts(ours.trials) == [((0, b, r), n) for b, r, n in expected]
  assert [t.trial_id for t in ours.trials] == [f'{i:04d}' for i in range(len(ours.trials))]
  assert sum(batches) == len(ours.trials)
  if seed == 1:
    assert len(ours.trials) == 54
    # A round per batch; bracket 3's last round and bracket 2's first share one.
    assert batches == [34, 12, 4, 2 + 2]


def test_large_grid_runs_every_bracket_like_keras_tuner(kt, tmp_path):
  ours, batches, _ = compare(kt, tmp_path, LARGE, hashed_score, max_epochs=10, factor=3,
                          seed=7)
  sizes = [n for bracket in _schedule.schedule(10, 3) for n, _ in bracket]
  assert [n for _, n in counts(ours.trials)] == sizes == [12, 4, 2, 6, 2, 4]
  assert batches == [12, 4, 2 + 6, 2 + 4]
  assert {t.values['batch_norm'] for t in ours.trials} <= {0, 1}
  # Every promotion continues the best remaining trial of the round before.
  for t in ours.trials:
    if t.parent_id is not None:
      parent = ours.trials[int(t.parent_id)]
      assert (parent.values, parent.bracket, parent.round + 1, parent.epochs) == (
          t.values, t.bracket, t.round, t.initial_epoch)


def test_two_iterations_like_keras_tuner(kt, tmp_path):
  ours, _, _ = compare(kt, tmp_path, LARGE, hashed_score, max_epochs=9, factor=3,
                    iterations=2, seed=3)
  sizes = [n for bracket in _schedule.schedule(9, 3) for n, _ in bracket]
  assert [n for _, n in counts(ours.trials)] == sizes * 2 == [9, 3, 1, 5, 2, 3] * 2
  assert [t.iteration for t in ours.trials] == [0] * 23 + [1] * 23
  assert len({json.dumps(t.values) for t in ours.trials if t.round == 0}) == 2 * (9 + 5 + 3)


def test_min_objective_like_keras_tuner(kt, tmp_path):
  ours, _, _ = compare(kt, tmp_path, LARGE, hashed_score, max_epochs=27, factor=3,
                    seed=11, direction='min')
  assert len(ours.trials) == 70
  # The lowest score of bracket 3's first round is the first promoted.
  first = [t for t in ours.trials if (t.bracket, t.round) == (3, 0)]
  best = min(first, key=lambda t: hashed_score(t.values, t.epochs))
  assert next(t for t in ours.trials if t.round == 1).parent_id == best.trial_id


@pytest.mark.parametrize('direction', ['max', 'min'])
def test_ties_like_keras_tuner(kt, tmp_path, direction):
  compare(kt, tmp_path, LARGE, tied_score, max_epochs=27, factor=3, seed=5,
          direction=direction)
  compare(kt, tmp_path, FINETUNE, tied_score, max_epochs=50, factor=3, seed=1,
          direction=direction)


def test_nan_scores_fail_and_are_never_promoted_like_keras_tuner(kt, tmp_path):
  # keras_tuner's end_trial makes a NaN-scored trial FAILED; only COMPLETED trials
  # are promotion candidates, so a round may promote fewer than its size.
  ours, batches, oracle = compare(kt, tmp_path, LARGE, nan_score, max_epochs=27,
                                  factor=3, seed=2, max_consecutive_failed_trials=None)
  # 7 of bracket 3's first 27 fail: 20 candidates, of which only 2 are promoted
  # (keras_tuner promotes while more than 27 - 9 remain); round 2 (3 from more than
  # 9 - 3) can then never run: the bracket stays incomplete and the search moves on.
  assert counts(ours.trials) == [((0, 3, 0), 27), ((0, 3, 1), 2), ((0, 2, 0), 12),
                                 ((0, 2, 1), 2), ((0, 1, 0), 6), ((0, 1, 1), 1),
                                 ((0, 0, 0), 4)]
  # Round 2 of bracket 3 cannot run whatever round 1's scores: no need to wait.
  assert batches == [27, 2 + 12, 2 + 6, 1 + 4]
  failed = {t.trial_id for t in ours.trials if ours.status(t.trial_id) == 'FAILED'}
  assert failed and not {t.parent_id for t in ours.trials} & failed
  assert all(math.isnan(ours.score(i)) for i in failed)
  assert failed == {i for i, t in oracle.trials.items() if t.status == 'FAILED'}
  assert counts(ours.trials) != counts(run_ours(
      LARGE, hashed_score, max_epochs=27, factor=3, iterations=1, seed=2,
      objective_direction='max')[0].trials)   # diverged trials changed the run
  json.dumps(ours.state(), allow_nan=False)


def test_consecutive_nan_scores_raise_like_keras_tuner(kt, tmp_path):
  def score(values, epochs):   # the 3rd, 4th and 5th configuration drawn diverge
    return math.nan if values in drawn[2:5] else hashed_score(values, epochs)

  drawn = [t.values for t in _oracle.Oracle(
      FINETUNE, max_epochs=50, factor=3, iterations=1, seed=1,
      objective_direction='max').next_trials()]
  created, _, error = run_keras_tuner(kt, tmp_path, FINETUNE, score, max_epochs=50,
                                      factor=3, seed=1)
  assert 'consecutive failures' in str(error) and len(created) == 5
  ours = _oracle.Oracle(FINETUNE, max_epochs=50, factor=3, iterations=1, seed=1,
                          objective_direction='max')
  batch = ours.next_trials()
  assert [(t.trial_id, t.keras_tuner_values) for t in batch[:5]] == created
  for t in batch:
    ours.report(t.trial_id, score(t.values, t.epochs))
  with pytest.raises(RuntimeError, match='consecutive failures.*trial 0004'):
    ours.next_trials()


# --- batches and state ----------------------------------------------------------

def test_batches_stop_at_the_first_trial_that_needs_a_pending_score():
  oracle = _oracle.Oracle(LARGE, max_epochs=10, factor=3, iterations=1, seed=1,
                            objective_direction='max')
  first = oracle.next_trials()
  assert [(t.bracket, t.round, t.initial_epoch, t.epochs) for t in first] == \
      [(2, 0, 0, 2)] * 12
  assert oracle.next_trials() == [] and not oracle.stopped
  for t in first[:-1]:
    oracle.report(t.trial_id, hashed_score(t.values, t.epochs))
  assert oracle.next_trials() == []   # the last one may be the best
  oracle.report(first[-1].trial_id, 0.5)
  promoted = oracle.next_trials()
  assert [(t.bracket, t.round, t.initial_epoch, t.epochs) for t in promoted] == \
      [(2, 1, 2, 4)] * 4
  assert [t.trial_id for t in promoted] == ['0012', '0013', '0014', '0015']
  assert oracle.next_trials() == []
  with pytest.raises(ValueError):
    oracle.report(first[0].trial_id, 1.0)
  with pytest.raises(KeyError):
    oracle.report('9999', 1.0)


def test_state_round_trips_mid_search():
  kw = dict(max_epochs=27, factor=3, iterations=2, seed=4, objective_direction='min')
  reference, _ = run_ours(LARGE, hashed_score, **kw)

  oracle = _oracle.Oracle(LARGE, **kw)
  rng = random.Random(0)
  for _ in range(5):   # a few batches, some trials left pending
    for t in oracle.next_trials():
      if rng.random() < 0.7:
        oracle.report(t.trial_id, hashed_score(t.values, t.epochs))
  state = json.loads(json.dumps(oracle.state(), allow_nan=False))
  restored = _oracle.Oracle.from_state(state)
  assert restored.state() == oracle.state() and restored.pending == oracle.pending
  assert restored.pending   # the killed search's trials to run again
  for o in (oracle, restored):
    resumed, _ = run_ours(LARGE, hashed_score, oracle=o)
    assert resumed.trials == reference.trials
    assert resumed.state() == reference.state()


def test_best_trials_like_get_best_trials():
  oracle, _ = run_ours(FINETUNE, nan_score, max_epochs=50, factor=3, iterations=1,
                       seed=1, objective_direction='max',
                       max_consecutive_failed_trials=None)
  completed = [t for t in oracle.trials if oracle.status(t.trial_id) == 'COMPLETED']
  best = oracle.best_trials(3)
  assert [oracle.score(t.trial_id) for t in best] == sorted(
      (oracle.score(t.trial_id) for t in completed), reverse=True)[:3]
  # Fewer COMPLETED than asked for: the others follow, in creation order.
  failed = [t for t in oracle.trials if oracle.status(t.trial_id) == 'FAILED']
  assert oracle.best_trials(len(oracle.trials)) == (
      sorted(completed, key=lambda t: -oracle.score(t.trial_id)) + failed)


@pytest.mark.parametrize('seed', [0, None, -1, 1.5, True])
def test_the_seed_must_be_explicit(seed):
  with pytest.raises(ValueError, match='seed'):
    _oracle.Oracle(FINETUNE, max_epochs=50, factor=3, iterations=1, seed=seed,
                     objective_direction='max')


def test_rejects_bad_arguments():
  kw = dict(max_epochs=50, factor=3, iterations=1, seed=1, objective_direction='max')
  with pytest.raises(ValueError):
    _oracle.Oracle(FINETUNE, **dict(kw, objective_direction='val_accuracy'))
  with pytest.raises(ValueError):
    _oracle.Oracle(FINETUNE, **dict(kw, factor=1))
  with pytest.raises(TypeError):
    _oracle.Oracle({'x': [1, 0.5]}, **kw)


# --- several objectives -----------------------------------------------------------

def test_several_objectives_promote_by_non_dominated_sorting():
  """Losses (a, constant): dominance is a's order, so the trials and promotions are
  the single-objective oracle's minimizing a; (a, -a) puts every candidate on one
  front, and promotion then follows crowding distance, extremes first."""
  kw = dict(max_epochs=27, factor=3, iterations=1, seed=2, objective_direction='min')
  single, _ = run_ours(LARGE, hashed_score, **kw)
  pair, _ = run_ours(LARGE, lambda v, e: (hashed_score(v, e), 7.0), **kw)
  assert pair.trials == single.trials
  assert pair.best_trials(5) == single.best_trials(5)
  traded, _ = run_ours(LARGE, lambda v, e: (hashed_score(v, e), -hashed_score(v, e)), **kw)
  assert traded.trials != single.trials   # another selection rule, other promotions
  promoted = [t for t in traded.trials if t.parent_id is not None]
  assert promoted
  taken = set()
  for t in promoted:   # each promotion: an extreme of the candidates left (one front)
    scores = [traded.score(c.trial_id)[0] for c in traded.trials
              if c.bracket == t.bracket and c.round == t.round - 1
              and c.trial_id not in taken]
    assert traded.score(t.parent_id)[0] in (min(scores), max(scores))
    taken.add(t.parent_id)


def test_several_objectives_fail_on_a_nan_and_round_trip_in_the_state():
  kw = dict(max_epochs=9, factor=3, iterations=1, seed=3, objective_direction='min')
  oracle = _oracle.Oracle(LARGE, **kw)
  first, second = oracle.next_trials()[:2]
  oracle.report(first.trial_id, (math.nan, 1.0))
  oracle.report(second.trial_id, (0.5, math.inf))
  assert oracle.status(first.trial_id) == 'FAILED'
  assert oracle.status(second.trial_id) == 'COMPLETED'
  state = json.loads(json.dumps(oracle.state(), allow_nan=False))
  restored = _oracle.Oracle.from_state(state)
  assert restored.score(second.trial_id) == (0.5, math.inf)
  assert math.isnan(restored.score(first.trial_id)[0])


def test_constraints_put_feasible_trials_first_and_round_trip():
  """Deb's rules: a feasible trial beats every infeasible one, whatever its losses;
  between infeasible ones the smaller violation wins."""
  kw = dict(max_epochs=9, factor=3, iterations=1, seed=3, objective_direction='min')
  oracle = _oracle.Oracle(LARGE, **kw)
  batch = oracle.next_trials()
  violations = {}
  for k, t in enumerate(batch):   # the best losses go with the largest violations
    violations[t.trial_id] = float(max(0, len(batch) - 3 - k))
    oracle.report(t.trial_id, (float(k), -float(k)), violations[t.trial_id])
  ranked = oracle.best_trials(len(batch))
  feasible = [t.trial_id for t in ranked if violations[t.trial_id] == 0]
  assert [t.trial_id for t in ranked[:len(feasible)]] == feasible
  rest = [violations[t.trial_id] for t in ranked[len(feasible):]]
  assert rest == sorted(rest) and rest[0] > 0
  state = json.loads(json.dumps(oracle.state(), allow_nan=False))
  restored = _oracle.Oracle.from_state(state)
  assert restored.best_trials(len(batch)) == ranked
