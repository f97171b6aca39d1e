"""Hyperband follows keras_tuner's schedule and promotion rules."""

import math


from jaxmlp import hyperband, study


def test_schedule_matches_keras_tuner_for_10_epochs_factor_3():
  # (trials, epochs) per round; brackets from the most aggressive.
  assert hyperband.schedule(10, 3) == [
      [(12, 2), (4, 4), (2, 10)],
      [(6, 4), (2, 10)],
      [(4, 10)],
  ]


def test_schedule_matches_keras_tuner_for_81_epochs_factor_3():
  assert hyperband.schedule(81, 3) == [
      [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
      [(34, 3), (12, 9), (4, 27), (2, 81)],
      [(15, 9), (5, 27), (2, 81)],
      [(8, 27), (3, 81)],
      [(5, 81)],
  ]


def test_keras_tuners_own_bracket_test():
  # keras_tuner's test_hyperband_oracle_bracket_configs (max_epochs 8, factor 2).
  assert hyperband.num_brackets(8, 2) == 4
  assert hyperband.size(8, 2, 3, 0) == 8 and hyperband.epochs(8, 2, 3, 0) == 1
  assert hyperband.size(8, 2, 3, 3) == 1 and hyperband.epochs(8, 2, 3, 3) == 8
  assert hyperband.size(8, 2, 0, 0) == 4 and hyperband.epochs(8, 2, 0, 0) == 8


def _trial(name, score):
  member = study.expand(study.make_config(name=name), 1)[0]
  trial = hyperband.Trial(name, member, 0, 0, 0, 1)
  trial.scores = [score]
  return trial


def test_promotion_keeps_the_top_trials_by_the_objective():
  trials = [_trial('a', 0.5), _trial('b', 0.9), _trial('c', math.nan), _trial('d', 0.7)]
  assert [t.trial_id for t in hyperband.promote(trials, 2, 'val_accuracy')] == ['b', 'd']
  assert [t.trial_id for t in hyperband.promote(trials, 3, 'val_loss')] == ['a', 'd', 'b']
  # A diverged (NaN) trial is never promoted ahead of a finite one.
  assert hyperband.better_first(trials, 'val_loss')[-1].trial_id == 'c'


def _grid(n_lr):
  config = study.make_config(name='grid', learning_rate=tuple(0.001 * (i + 1)
                                                              for i in range(n_lr)))
  return study.expand(config, 1)


def _run(configurations, **kw):
  rounds = []

  def train_round(trials):
    rounds.append(trials)
    for t in trials:
      # A fixed, configuration-dependent score; more epochs score a little higher.
      t.scores = [t.configuration.values['learning_rate'] % 0.007 + 1e-4 * t.epochs]

  args = dict(max_epochs=10, factor=3, iterations=1, seed=0, objective='val_accuracy')
  args.update(kw)
  trials = hyperband.search(configurations, train_round=train_round, **args)
  return trials, rounds


def test_search_runs_each_round_of_each_bracket_with_promotions():
  trials, rounds = _run(_grid(40))
  expected = [(2, 0, 12, 0, 2), (2, 1, 4, 2, 4), (2, 2, 2, 4, 10),
              (1, 0, 6, 0, 4), (1, 1, 2, 4, 10), (0, 0, 4, 0, 10)]
  assert [(r[0].bracket, r[0].round, len(r), r[0].initial_epoch, r[0].epochs)
          for r in rounds] == expected
  assert len(trials) == sum(e[2] for e in expected)
  for previous, current in zip(rounds, rounds[1:]):
    if current[0].round:
      best = hyperband.promote(previous, len(current), 'val_accuracy')
      assert [t.parent for t in current] == best
      assert [t.configuration for t in current] == [t.configuration for t in best]
  first_rounds = [t.configuration.label for r in rounds if r[0].round == 0 for t in r]
  assert len(first_rounds) == len(set(first_rounds)) == 22  # never a configuration twice


def test_sampling_is_seeded_and_a_small_grid_is_not_resampled():
  a, _ = _run(_grid(40), seed=1)
  b, _ = _run(_grid(40), seed=1)
  c, _ = _run(_grid(40), seed=2)
  ids = lambda trials: [t.trial_id for t in trials]
  assert ids(a) == ids(b) and ids(a) != ids(c)
  # 14 configurations: bracket 2 takes 12, bracket 1 the last 2, then the search ends.
  trials, rounds = _run(_grid(14))
  assert [(r[0].bracket, r[0].round, len(r)) for r in rounds] == [
      (2, 0, 12), (2, 1, 4), (2, 2, 2), (1, 0, 2), (1, 1, 2)]
  assert len({t.configuration.label for t in trials}) == 14


def test_best_trial_and_cost():
  trials, _ = _run(_grid(40))
  best = hyperband.best_trial(trials, 'val_accuracy')
  assert best.score == max(t.score for t in trials)
  for t in trials:
    t.records = [dict(epochs_trained=t.epochs - t.initial_epoch)]
  assert hyperband.cost(trials) == 12 * 2 + 4 * 2 + 2 * 6 + 6 * 4 + 2 * 6 + 4 * 10
