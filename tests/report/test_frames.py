"""read_results / read_history against the result.json files of tiny real studies."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import jaxmlp
from jaxmlp.common.errors import UserError

_FOLDERS = {'members': 'member', 'trials': 'trial', 'final': 'final'}


@pytest.fixture
def study_dir(tiny_study_dir) -> Path:
  return tiny_study_dir


def _result_files(study_dir: Path) -> dict[tuple[str, str], dict]:
  """(role, member folder) -> its result.json, read here as plain JSON."""
  return {(role, path.parent.name): json.loads(path.read_text())
          for folder, role in _FOLDERS.items()
          for path in sorted((study_dir / folder).glob('*/result.json'))}


def _same(frame_value, json_value) -> bool:
  """The frame holds the file's value; a missing value only where the file has null."""
  if json_value is None:
    return pd.isna(frame_value)
  if isinstance(json_value, float) or isinstance(frame_value, float):
    return not math.isnan(frame_value) and frame_value == json_value
  return frame_value == json_value


def _expected_row(result: dict) -> dict:
  """What read_results must hold of a result.json, column by column."""
  expected = {k: result[k] for k in ('label', 'arm', 'seed', 'epochs_trained',
                                     'best_epoch', 'diverged')}
  expected['swept'] = ','.join(result['swept'])
  for name, value in result['config'].items():
    expected[name] = 'x'.join(map(str, value)) if isinstance(value, list) else value
  for name in ('test_loss', 'test_accuracy', 'test_f1', 'initial_epoch', 'fit_time_s',
               'compile_time_s', 'members_per_program', 'program', 'weight_updates',
               'trial', 'configuration', 'state', 'value', 'worker'):
    if name in result:
      expected[name] = result[name]
  best = result['best_epoch']
  for name, values in result['history'].items():
    if name.startswith('val_'):
      expected[f'best_{name}'] = values[best - 1] if best else None
  return expected


def test_read_results_matches_every_result_file(study_dir):
  files = _result_files(study_dir)
  frame = jaxmlp.read_results(study_dir)
  assert len(frame) == len(files) == len(list(study_dir.glob('*/*/result.json'))) > 0
  for row in frame.to_dict('records'):
    expected = _expected_row(files[row['role'], row['folder']])
    mismatched = {k: (row.get(k), v) for k, v in expected.items() if not _same(row.get(k), v)}
    assert not mismatched, (row['folder'], mismatched)


def test_hyperband_trials_carry_their_id_bracket_and_round(study_dir):
  frame = jaxmlp.read_results(study_dir)
  if study_dir.name != 'finetune':
    assert 'bracket' not in frame.columns
    return
  trials = pd.read_csv(study_dir / 'trials.csv', dtype={'trial': str}).set_index('trial')
  executions = frame[frame.role == 'trial']
  assert len(executions) > 0 and (frame.role == 'final').sum() == 1
  for row in executions.to_dict('records'):
    trial_id = row['label'].split(':')[0].removeprefix('trial-')
    assert row['trial_id'] == int(trial_id)
    assert (row['bracket'], row['round']) == (trials.loc[trial_id, 'bracket'],
                                              trials.loc[trial_id, 'round'])


def test_read_history_has_every_epoch_of_every_member(study_dir):
  files = _result_files(study_dir)
  history = jaxmlp.read_history(study_dir)
  assert len(history) == sum(r['epochs_trained'] for r in files.values())
  for (role, folder), result in files.items():
    rows = history[(history.role == role) & (history.folder == folder)]
    assert rows.epoch.tolist() == list(range(1, result['epochs_trained'] + 1))
    assert (rows.label == result['label']).all() and (rows.seed == result['seed']).all()
    for name, values in result['history'].items():
      assert all(_same(a, b) for a, b in zip(rows[name].tolist(), values, strict=True)), name


def test_a_folder_that_is_no_study_is_named(tmp_path):
  with pytest.raises(UserError, match=str(tmp_path)):
    jaxmlp.read_results(tmp_path)


def test_import_jaxmlp_loads_neither_pandas_nor_jax(tmp_path):
  show = ('import sys, jaxmlp; print(sorted(m for m in ("pandas", "jax") if m in '
          'sys.modules)); print("read_results" in dir(jaxmlp))')
  result = subprocess.run([sys.executable, '-c', show], cwd=tmp_path, capture_output=True,
                          text=True, check=True)
  assert result.stdout.split('\n')[:2] == ['[]', 'True']
  with pytest.raises(AttributeError, match='no attribute'):
    jaxmlp.read_everything   # pylint: disable=pointless-statement


def test_read_pareto_ranks_the_configurations_by_their_files(study_dir):
  """Means over seeds from the result.json files, costs from the layer sizes, and the
  front by brute-force dominance (maximize accuracy, minimize parameters). An Optuna
  trial counts where it completed, as its configuration (trials alike: more seeds)."""
  by_label: dict[str, list[dict]] = {}
  for (role, _), result in _result_files(study_dir).items():
    if role == 'final' or result.get('state', 'COMPLETE') != 'COMPLETE':
      continue
    key = result['configuration'] if 'trial' in result else result['label']
    by_label.setdefault(key, []).append(result)
  frame = jaxmlp.read_pareto(study_dir, '(val_accuracy, parameter_count)')
  assert sorted(frame.label) == sorted(by_label)
  points = {}
  for row in frame.to_dict('records'):
    results = by_label[row['label']]
    accuracy = [r['history']['val_accuracy'][r['best_epoch'] - 1] for r in results]
    sizes = [784, *results[0]['config']['hidden_sizes'], 10]
    count = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    assert row['seeds'] == len(results)
    assert row['val_accuracy'] == pytest.approx(sum(accuracy) / len(accuracy), rel=1e-12)
    assert row['parameter_count'] == count
    points[row['label']] = (row['val_accuracy'], count)
  dominated = {a for a, (acc_a, n_a) in points.items() for acc_b, n_b in points.values()
               if acc_b >= acc_a and n_b <= n_a and (acc_b, n_b) != (acc_a, n_a)}
  assert set(frame.label[frame.pareto_rank == 0]) == set(points) - dominated
  assert list(frame.pareto_rank) == sorted(frame.pareto_rank)   # best first


def test_read_pareto_refuses_an_unknown_objective_in_one_line(study_dir):
  with pytest.raises(UserError, match="'size' is not an objective"):
    jaxmlp.read_pareto(study_dir, '(val_accuracy, size)')
