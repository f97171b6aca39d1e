"""--search=optuna with several objectives: Optuna's study gets its directions and the
constraints, the front reported is `study.best_trials`, and successive halving ranks
each rung by Pareto dominance (_pareto_rungs), which Optuna's pruners cannot do."""

import json
import subprocess
import sys

import numpy as np
import optuna
import pandas as pd
import pytest

from jaxmlp.core import pareto
from jaxmlp.report import pareto as pareto_report
from jaxmlp.search import registry
from jaxmlp.search.optuna import _pareto_rungs
from jaxmlp.studies import study
import jaxmlp
from jaxmlp import pipeline
from jaxmlp.common.errors import UserError

OBJECTIVES = '(val_accuracy, parameter_count)'
BOUND = 'parameter_count <= 60000'


@pytest.fixture(scope='module')
def searched(tmp_path_factory):
  out = tmp_path_factory.mktemp('optuna_pareto')
  result = subprocess.run(
      [sys.executable, '-m', 'jaxmlp.launch', '--study=finetune_optuna', '--data_limit=500',
       '--epochs=3', "--config.hidden_sizes=(choice(16, 64), choice(16, 64))",
       f'--config.objective={OBJECTIVES}', f'--config.constraints=({BOUND},)',
       '--config.optuna.sampler=nsga2', '--config.optuna.pruner=successive_halving',
       '--config.optuna.slots=3', '--config.optuna.trials=12', '--config.final_epochs=1',
       '--config.final_front_size=2',
       '--progress=false', f'--output_dir={out}'],
      capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr
  optuna.logging.set_verbosity(optuna.logging.WARNING)
  return out / 'finetune_optuna', optuna.load_study(
      study_name='finetune_optuna', storage=f'sqlite:///{out}/finetune_optuna/optuna.db')


def test_the_study_has_both_directions_and_the_reported_front_is_best_trials(searched):
  folder, optuna_study = searched
  assert optuna_study.directions == [optuna.study.StudyDirection.MAXIMIZE,
                                     optuna.study.StudyDirection.MINIMIZE]
  trials = optuna_study.get_trials()
  assert len(trials) == 12
  complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
  for t in complete:
    record = json.loads((folder / 'trials' / f'trial-{t.number:04d}__seed{t.number}' /
                         'result.json').read_text())
    assert record['values'] == t.values and record['value'] is None
    assert t.user_attrs['constraints'] == [t.values[1] - 60000]
    if hasattr(t, 'constraints'):   # Optuna 5: on the trial, where its samplers read it
      assert list(t.constraints.values()) == [t.values[1] - 60000]
  front = pd.read_csv(folder / pareto_report.FRONT_FILE)
  on_front = front[(front.pareto_rank == 0) & front.feasible]
  best = optuna_study.best_trials   # feasible and non-dominated, by Optuna
  assert sorted((round(v[0], 6), v[1]) for v in (t.values for t in best)) == sorted(
      {(round(a, 6), b) for a, b in zip(on_front.val_accuracy, on_front.parameter_count)})
  report = (folder / 'report.md').read_text()
  assert '## Pareto front' in report and 'Pruning by Pareto rank' in report
  results = jaxmlp.read_results(folder)
  final = set(results.label[results.role == 'final'])
  assert len(final) == min(2, len(on_front)) and final <= set(on_front.label)
  assert '## Final models: the Pareto front' in report or len(final) == 1


def test_each_rung_keeps_the_best_third_by_pareto_rank(searched):
  """Every decision recomputed from the rung's values as they stood when it was made."""
  _, optuna_study = searched
  trials = optuna_study.get_trials()
  decided = 0
  for rung in (0, 1):
    key = f'{_pareto_rungs.PREFIX}{rung}'
    reached = sorted((t for t in trials if key in t.user_attrs),
                     key=lambda t: t.user_attrs[key + '_decision']['of'])
    for t in reached:
      decision = t.user_attrs[key + '_decision']
      before = [u for u in reached if u.user_attrs[key + '_decision']['of'] <
                decision['of']] + [t]
      assert len(before) == decision['of']
      losses = pareto.failed_as_worst(
          [[np.inf if v is None else v for v in u.user_attrs[key]['losses']] for u in before])
      violation = np.array([u.user_attrs[key]['violation'] for u in before])
      violation = violation if (violation > 0).any() else None
      place = list(pareto.best_first(losses, violation)).index(len(before) - 1)
      kept = len(before) // 3
      rank = pareto.nondominated_ranks(losses, violation)[-1]
      goes_on = place < kept if kept else rank == 0
      assert decision['decision'] == ('continued' if goes_on else 'pruned')
      assert (t.state == optuna.trial.TrialState.PRUNED) == (not goes_on)
      decided += 1
  assert decided >= 12   # every trial met rung 0 (epoch 1 of 3)
  counts = _pareto_rungs.decisions(trials)
  assert counts[0]['reached'] == 12 and counts[0]['pruned'] > 0


def test_rungs_are_optunas_successive_halving_epochs():
  assert [_pareto_rungs.rung_of(e) for e in range(1, 11)] == [
      0, None, 1, None, None, None, None, None, 2, None]


@pytest.mark.parametrize('setting, value, message', [
    ('sampler', 'cmaes', 'sampler=cmaes takes one objective'),
    ('pruner', 'median', 'pruner=median judges one value'),
    ('pruner', 'hyperband', 'pruner=hyperband judges one value'),
])
def test_what_cannot_take_several_objectives_is_refused_in_one_line(setting, value, message):
  config = registry.complete(study.load_config('finetune_optuna'))
  config.objective, config.optuna[setting] = OBJECTIVES, value
  config.optuna.pruner = value if setting == 'pruner' else 'successive_halving'
  with pytest.raises(UserError, match=message) as error:
    pipeline.check_study(config, study.training_rows(config))
  assert '\n' not in str(error.value)


def test_tensorboard_has_each_trials_objectives(searched):
  from tensorboard.backend.event_processing import event_multiplexer  # pylint: disable=g-import-not-at-top
  folder, optuna_study = searched
  multiplexer = event_multiplexer.EventMultiplexer().AddRunsFromDirectory(
      str(folder / 'tensorboard'))
  multiplexer.Reload()
  complete = [t for t in optuna_study.get_trials()
              if t.state == optuna.trial.TrialState.COMPLETE]
  assert complete
  for t in complete:
    run = f'trials/trial-{t.number:04d}__seed{t.number}'
    accuracy, = multiplexer.Scalars(run, 'objective/val_accuracy')
    size, = multiplexer.Scalars(run, 'objective/parameter_count')
    assert np.float32(accuracy.value) == np.float32(t.values[0])
    assert size.value == t.values[1]


def test_gp_with_several_objectives_needs_optuna_4_4(monkeypatch):
  from jaxmlp.search import optuna as optuna_search  # pylint: disable=g-import-not-at-top
  config = registry.complete(study.load_config('finetune_optuna'))
  config.objective, config.optuna.sampler = OBJECTIVES, 'gp'
  config.optuna.pruner = 'successive_halving'
  pipeline.check_study(config, study.training_rows(config))   # this Optuna: accepted
  monkeypatch.setattr(optuna_search, '_version', lambda package: (4, 3, 0))
  with pytest.raises(UserError, match='sampler=gp takes several objectives from Optuna 4.4'):
    pipeline.check_study(config, study.training_rows(config))
