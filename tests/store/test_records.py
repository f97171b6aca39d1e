"""MemberRecord: result.json files written by the release before records had a
version load into it and write back the same values; one rule each for the best
epoch and divergence; the Objective decides every direction."""

import json
import math
import pathlib
import subprocess
import sys
from types import SimpleNamespace

import jax
import numpy as np
import pytest

from jaxmlp.core import objective as objective_lib
from jaxmlp.store import records
from jaxmlp.store import folders
from jaxmlp.studies import study as study_lib

FIXTURES = pathlib.Path(__file__).parent / 'fixtures'
# Written by the release before (3a8972a) with --data_limit=600 on a 2-core x86 CPU:
# a grid member, a continued Hyperband trial (test_hyperband_search runs its command
# again), an Optuna trial's execution and its final model.
OLD = ('grid_member.json', 'hyperband_trial.json', 'optuna_trial.json', 'optuna_final.json')


@pytest.mark.parametrize('name', OLD)
def test_an_old_result_loads_and_writes_back_the_same_values(name, tmp_path):
  old = json.loads((FIXTURES / name).read_text())
  record = records.MemberRecord.from_json(old)
  assert record.version == 1 and 'version' not in old
  assert record.best_epoch == records.best_epoch(record.history, record.config['objective'])
  tested = record.run is not None
  assert record.diverged == records.diverged(
      record.history, record.run.test_loss if tested else None, tested=tested)
  folders.write_record(tmp_path, record)
  again = folders.read_member(tmp_path)
  assert type(again) is records.MemberRecord and again == record
  written = json.loads((tmp_path / folders.RESULT_FILE).read_text())
  assert written.pop('version') == 1 and written == old


def test_the_kind_of_record_follows_its_fields():
  grid = records.MemberRecord.from_json(json.loads((FIXTURES / 'grid_member.json').read_text()))
  trial = records.MemberRecord.from_json(json.loads((FIXTURES / 'optuna_trial.json').read_text()))
  assert grid.trial is None and grid.run.program and grid.member.label == grid.label
  assert trial.run is None and trial.trial.state in ('COMPLETE', 'PRUNED')
  continued = records.MemberRecord.from_json(
      json.loads((FIXTURES / 'hyperband_trial.json').read_text()))
  assert continued.run.initial_epoch == 1


def test_a_trial_of_several_objectives_with_a_diverged_one_writes_and_reads(tmp_path):
  """A multi-objective trial told NaN (a diverged seed's mean) keeps its values as
  null, and its result.json reads back (the report reads every trial's)."""
  obj = json.loads((FIXTURES / 'optuna_trial.json').read_text())
  trial = records.MemberRecord.from_json(obj)
  several = records.OptunaTrial(**{**trial.trial.__dict__, 'value': None,
                                   'values': [None, 12345.0], 'state': 'FAIL'})
  record = records.MemberRecord(**{**trial.__dict__, 'trial': several})
  folders.write_record(tmp_path, record)
  back = folders.read_member(tmp_path)
  assert back.trial.values == [None, 12345.0] and back.trial.value is None
  assert 'values' not in trial.to_json()   # one objective: the file as before


def _program_result(history, test_loss=0.3, schedule=None):
  """What engine.program.run_program returns, for one member."""
  epochs = len(history['val_loss'])
  return SimpleNamespace(
      schedule=None if schedule is None else
      {k: np.array([v], np.float32) for k, v in schedule.items()},
      epochs_trained=np.array([epochs]),
      history={k: np.array([v], np.float32) for k, v in history.items()},
      test_loss=np.array([test_loss], np.float32), test_accuracy=np.array([0.9], np.float32),
      test_f1=np.array([0.8], np.float32), fit_time_s=np.array([1.5]),
      compile_time_s=np.array([2.5]), members_per_program=np.array([1]),
      weight_updates=np.array([10]))


def test_a_trained_member_and_its_file_give_the_same_record(tmp_path):
  history = dict(train_loss=[1.0, 0.5, 0.6], val_loss=[1.1, 0.7, 0.7],
                 train_accuracy=[0.5, 0.8, 0.8], val_accuracy=[0.4, 0.75, 0.75],
                 train_f1=[0.4, 0.7, 0.7], val_f1=[0.3, 0.7, 0.7])
  member = study_lib.expand(study_lib.load_config('init'), 1)[0]
  record = folders.member_record(member, _program_result(history), 0, {}, 'p')
  assert record.best_epoch == 2   # the first epoch to reach the best val_accuracy
  assert not record.diverged and record.version == records.VERSION
  folders.write_record(tmp_path, record)
  assert folders.read_member(tmp_path).to_json() == json.loads(json.dumps(record.to_json()))
  history['val_loss'][1] = math.nan
  assert folders.member_record(member, _program_result(history), 0, {}).diverged
  history['val_loss'][1] = 0.7
  assert folders.member_record(member, _program_result(history, math.inf), 0, {}).diverged
  assert 'schedule' not in record.to_json()


def test_a_schedule_is_kept_for_the_epochs_trained_and_read_back(tmp_path):
  """A PBT member's hyperparameters per epoch; a member stopped early has none after."""
  history = dict(train_loss=[1.0, 0.5, 0.6], val_loss=[1.1, 0.7, 0.7],
                 train_accuracy=[0.5, 0.8, 0.8], val_accuracy=[0.4, 0.75, 0.75],
                 train_f1=[0.4, 0.7, 0.7], val_f1=[0.3, 0.7, 0.7])
  result = _program_result(history, schedule=dict(learning_rate=[1e-3, 1e-3, 1.2e-3, 9.0]))
  member = study_lib.expand(study_lib.load_config('init'), 1)[0]
  record = folders.member_record(member, result, 0, {}, 'p')
  assert record.schedule == {'learning_rate': [float(np.float32(v)) for v in (1e-3, 1e-3, 1.2e-3)]}
  folders.write_record(tmp_path, record)
  assert folders.read_member(tmp_path).schedule == record.schedule


def test_the_objective_decides_every_direction():
  loss, accuracy = objective_lib.Objective.of('val_loss'), objective_lib.Objective.of('val_f1')
  assert loss.direction is objective_lib.Direction.MINIMIZE and loss.worst == math.inf
  assert accuracy.direction is objective_lib.Direction.MAXIMIZE and accuracy.worst == -math.inf
  assert (loss.optuna_direction, accuracy.optuna_direction) == ('minimize', 'maximize')
  assert (loss.keras_tuner_direction, accuracy.keras_tuner_direction) == ('min', 'max')
  assert loss.better(0.1, 0.2) and not loss.better(0.2, 0.2) and not loss.better(math.nan, 1)
  assert accuracy.better(0.9, 0.8) and not accuracy.better(0.8, 0.8)
  values = [None, 0.5, 0.3, 0.3, 0.9]
  assert (loss.best_epoch(values), accuracy.best_epoch(values)) == (3, 5)
  assert loss.best_epoch([None, None]) is None
  with pytest.warns(RuntimeWarning):   # numpy's, on a history with no finite value
    assert math.isnan(loss.best_value([None]))
  assert (loss.best_value(values), accuracy.best_value(values)) == (0.3, 0.9)
  scores = [('a', 0.2), ('b', math.nan), ('c', 0.1), ('d', 0.2)]
  assert [s for s, _ in loss.best_first(scores, lambda s: s[1])] == ['c', 'a', 'd', 'b']
  assert [s for s, _ in accuracy.best_first(scores, lambda s: s[1])] == ['a', 'd', 'c', 'b']


TIMING = ('fit_time_s', 'compile_time_s')


def _same_run(written: dict, old: dict) -> bool:
  """The same values, timing apart (and the version the old file lacks)."""
  written = {k: v for k, v in written.items() if k not in TIMING + ('version',)}
  return written == {k: v for k, v in old.items() if k not in TIMING}


def test_the_same_run_writes_the_values_the_release_before_wrote(tmp_path):
  """grid_member.json's command, run again: bit-identical numbers (on the CPU the
  fixture was written on; other backends sum in other orders)."""
  if jax.default_backend() != 'cpu':
    pytest.skip('the fixture holds CPU numbers')
  command = [sys.executable, '-m', 'jaxmlp.launch', '--study=init', '--seeds=1',
             '--data_limit=600', '--epochs=2', '--progress=false', '--output_dir=out']
  ran = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
  assert ran.returncode == 0, ran.stderr
  written = json.loads((tmp_path / 'out' / 'init' / 'members' / 'init__seed0' /
                        folders.RESULT_FILE).read_text())
  assert written['version'] == records.VERSION
  assert _same_run(written, json.loads((FIXTURES / 'grid_member.json').read_text()))
