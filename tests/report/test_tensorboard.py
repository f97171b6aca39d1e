"""The TensorBoard folder of tiny real studies of each search, read back with
TensorBoard's own reader: every member a run, every epoch a step, exact values, an
HParams session per member and the experiment at the root; no TensorFlow."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_multiplexer
from tensorboard.plugins.hparams import metadata

from jaxmlp.report import tensorboard

_FOLDERS = ('members', 'trials', 'final')
# A tiny grid of several objectives: per-epoch metric, both costs.
_OBJECTIVES = ('val_accuracy', 'parameter_count', 'flops')
_SEVERAL = ['--study=baseline', "--config.hidden_sizes=((8, 4), (16,))", '--seeds=1',
            '--epochs=2', '--data_limit=600', '--progress=false',
            f'--config.objective=({", ".join(_OBJECTIVES)})', '--output_dir=out']
# Written out by hand, not by core.costs: weights and biases of 784 -> hidden -> 10.
_COSTS = {(8, 4): dict(parameter_count=784 * 8 + 8 + 8 * 4 + 4 + 4 * 10 + 10,
                       flops=2 * (784 * 8 + 8 * 4 + 4 * 10)),
          (16,): dict(parameter_count=784 * 16 + 16 + 16 * 10 + 10,
                      flops=2 * (784 * 16 + 16 * 10))}


@pytest.fixture
def board(tiny_study_dir):
  """(the study's folder, TensorBoard's multiplexer over its tensorboard/ folder)."""
  multiplexer = event_multiplexer.EventMultiplexer().AddRunsFromDirectory(
      str(tiny_study_dir / tensorboard.FOLDER))
  multiplexer.Reload()
  return tiny_study_dir, multiplexer


def _objective_tags(multiplexer) -> tuple[set[str], dict[str, set[str]]]:
  """(the experiment's objective/ metrics, run -> its objective/ scalars)."""
  content = multiplexer.PluginRunToTagToContent(metadata.PLUGIN_NAME)
  experiment = metadata.parse_experiment_plugin_data(content['.'][metadata.EXPERIMENT_TAG])
  listed = {m.name.tag for m in experiment.metric_infos
            if m.name.tag.startswith(tensorboard.OBJECTIVE_PREFIX)}
  return listed, {run: {t for t in tags['scalars']
                        if t.startswith(tensorboard.OBJECTIVE_PREFIX)}
                  for run, tags in multiplexer.Runs().items()}


def _members(study_dir: Path) -> dict[str, dict]:
  """run name -> the member's result.json."""
  return {f'{folder}/{path.parent.name}': json.loads(path.read_text())
          for folder in _FOLDERS for path in sorted((study_dir / folder).glob('*/result.json'))}


def test_every_member_is_a_run_with_every_epoch_exactly(board):
  study_dir, multiplexer = board
  members = _members(study_dir)
  assert set(multiplexer.Runs()) == {'.', *members}
  for run, result in members.items():
    scalars = multiplexer.GetAccumulator(run)
    first = result.get('initial_epoch', 0)   # a continued Hyperband trial goes on
    steps = list(range(first + 1, first + result['epochs_trained'] + 1))
    for name, tag in tensorboard.EPOCH_TAGS.items():
      events = scalars.Scalars(tag)
      assert [e.step for e in events] == steps, (run, tag)
      logged = np.array([e.value for e in events], np.float32)
      recorded = np.array([np.nan if v is None else v for v in result['history'][name]],
                          np.float32)
      np.testing.assert_array_equal(logged, recorded, err_msg=f'{run} {tag}')
    if 'test_accuracy' in result:
      (test,) = scalars.Scalars('test/accuracy')
      assert test.step == steps[-1] and np.float32(test.value) == np.float32(
          result['test_accuracy'])


def test_hparams_experiment_and_one_session_per_member(board):
  study_dir, multiplexer = board
  members = _members(study_dir)
  content = multiplexer.PluginRunToTagToContent(metadata.PLUGIN_NAME)
  experiment = metadata.parse_experiment_plugin_data(
      content['.'][metadata.EXPERIMENT_TAG])
  names = {info.name for info in experiment.hparam_infos}
  assert {'seed', *tensorboard.HEADLINE_FIELDS} <= names
  assert {m.name.tag for m in experiment.metric_infos} >= set(tensorboard.EPOCH_TAGS.values())
  for run, result in members.items():
    start = metadata.parse_session_start_info_plugin_data(
        content[run][metadata.SESSION_START_INFO_TAG])
    assert set(start.hparams) >= names - {'trial'}, run
    assert start.hparams['seed'].number_value == result['seed']
    for field in result['swept']:
      assert field in names
    value = result['config']['learning_rate']
    assert start.hparams['learning_rate'].number_value == pytest.approx(value, rel=1e-12)
    end = metadata.parse_session_end_info_plugin_data(
        content[run][metadata.SESSION_END_INFO_TAG])
    completed = result.get('state', 'COMPLETE') == 'COMPLETE'
    assert (end.status == 1) == completed, run   # 1: STATUS_SUCCESS


def test_the_writer_needs_no_tensorflow(tmp_path):
  script = ('import sys; from pathlib import Path; import numpy as np; '
            'from jaxmlp.report import tensorboard as tb; '
            f'b = tb.Board(Path({str(tmp_path)!r}), True, ("learning_rate",)); '
            f'r = b.open(Path({str(tmp_path)!r}) / "m", {{"learning_rate": 0.1}}, 1); '
            'b.epoch([r], 1, {"val_loss": np.array([0.5], np.float32)}); '
            'b.finish(r, 1, {}); print("tensorflow" in sys.modules)')
  result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          check=True)
  assert result.stdout.strip() == 'False'
  assert list((tmp_path / tensorboard.FOLDER / 'm').glob('events.out.tfevents.*'))


def test_tensorboard_false_writes_nothing(tmp_path):
  board = tensorboard.Board(tmp_path, False, ('learning_rate',))
  assert board.open(tmp_path / 'm', {}, 1) is None
  board.epoch([None], 1, {'val_loss': np.zeros(1)})
  assert not (tmp_path / tensorboard.FOLDER).exists()


def test_one_objective_writes_no_objective_scalars(board):
  _, multiplexer = board
  listed, scalars = _objective_tags(multiplexer)
  assert not listed and not any(scalars.values())


def test_several_objectives_each_a_metric_with_each_members_value(tmp_path):
  result = subprocess.run([sys.executable, '-m', 'jaxmlp.launch', *_SEVERAL], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  study_dir = tmp_path / 'out' / 'baseline'
  multiplexer = event_multiplexer.EventMultiplexer().AddRunsFromDirectory(
      str(study_dir / tensorboard.FOLDER))
  multiplexer.Reload()
  listed, scalars = _objective_tags(multiplexer)
  tags = {tensorboard.OBJECTIVE_PREFIX + name for name in _OBJECTIVES}
  assert listed == tags
  members = _members(study_dir)
  assert len(members) == 2 and set(scalars) == {'.', *members}
  for run, record in members.items():
    assert scalars[run] == tags, run
    logged = {name: multiplexer.Scalars(run, tensorboard.OBJECTIVE_PREFIX + name)
              for name in _OBJECTIVES}
    assert all(len(events) == 1 and events[0].step == record['epochs_trained']
               for events in logged.values()), run
    best = record['best_epoch']
    expected = dict(_COSTS[tuple(record['config']['hidden_sizes'])],
                    val_accuracy=record['history']['val_accuracy'][best - 1])
    for name, (event,) in logged.items():
      assert np.float32(event.value) == np.float32(expected[name]), (run, name)
