"""The Python API: a study run from Python is the command line's run, and `train`
reproduces a study's members from their initial weights."""

import json
import subprocess
import sys

import numpy as np
import pytest

import jaxmlp
from jaxmlp.common.errors import UserError
from jaxmlp.store import folders

_FIELDS = dict(epochs=2, seeds=2, data_limit=600)


@pytest.fixture(scope='module')
def study(tmp_path_factory):
  out = tmp_path_factory.mktemp('api') / 'out'
  return jaxmlp.run_study('baseline', output_dir=out, progress=False, tensorboard=False,
                          **_FIELDS)


def test_run_study_returns_its_folder_report_and_frame(study):
  assert study.folder.name == 'baseline' and study.report == study.folder / 'report.md'
  assert study.report.is_file()
  frame = study.frame
  assert len(frame) == 2 and sorted(frame.seed) == [0, 1]
  for row in frame.to_dict('records'):
    stored = json.loads((study.folder / 'members' / row['folder'] / 'result.json').read_text())
    assert row['test_accuracy'] == stored['test_accuracy']
    assert row['epochs'] == 2
  assert len(study.history) == 4
  assert not (study.folder / 'tensorboard').exists()


def test_the_command_line_finds_the_python_run_complete(study):
  """Same study, same settings: the command line's run is the same run."""
  args = ['--study=baseline', '--epochs=2', '--seeds=2', '--data_limit=600',
          f'--output_dir={study.folder.parent}', '--progress=false', '--tensorboard=false']
  result = subprocess.run([sys.executable, '-m', 'jaxmlp.launch', *args],
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  assert 'complete on disk, skipped' in result.stdout


def test_train_reproduces_the_members_from_their_initial_weights(study):
  members = jaxmlp.members_of('baseline', **_FIELDS)
  initial = [folders.load_params(folders.member_dir(study.folder / 'members', m))['initial']
             for m in members]
  trained = jaxmlp.train(members, initial_params=initial)
  for member, got in zip(members, trained):
    stored = json.loads((folders.member_dir(study.folder / 'members', member) /
                         'result.json').read_text())
    for name, values in stored['history'].items():
      np.testing.assert_array_equal(got.history[name], np.array(values, np.float32))
    assert got.test['test_accuracy'] == stored['test_accuracy']


def test_overrides_are_checked_as_on_the_command_line():
  with pytest.raises(UserError, match='learning_rat'):
    jaxmlp.load_study('baseline', learning_rat=0.1)
  config = jaxmlp.load_study('finetune', epochs=3, learning_rate=(0.1, 0.01))
  assert config.final_epochs == 3 and config.learning_rate == (0.1, 0.01)
  with pytest.raises(UserError, match='initial_params'):
    jaxmlp.train(jaxmlp.members_of('baseline', seeds=2), initial_params=[{}])


def test_api_mistakes_raise_jaxmlp_user_error_with_the_command_lines_text():
  assert jaxmlp.UserError is UserError
  with pytest.raises(jaxmlp.UserError, match='no members given'):
    jaxmlp.train([])
  with pytest.raises(jaxmlp.UserError, match=r'--config.seeds=1.0 is impossible'):
    jaxmlp.run_study('baseline', seeds=1.0)
  with pytest.raises(jaxmlp.UserError, match='has no arms; drop --config.arm'):
    jaxmlp.members_of('baseline', arm='x')
  member, = jaxmlp.members_of('baseline', seeds=1)
  good = member.structure.param_shapes()
  wrong_shape = {'params': dict(good)} if 'params' not in good else None
  as_arrays = lambda tree, dtype: {k: {n: np.zeros(x.shape, dtype) for n, x in v.items()}
                                   for k, v in tree.items()}
  with pytest.raises(jaxmlp.UserError, match=r"initial_params for baseline \(seed 0\) does "
                     r"not match its network at \['hidden_0'\]\['bias'\]: \(128,\) float32"):
    jaxmlp.train([member], initial_params=[as_arrays(good, np.float64)])
  assert wrong_shape is not None
  with pytest.raises(jaxmlp.UserError, match='does not match its network'):
    jaxmlp.train([member], initial_params=[wrong_shape])
