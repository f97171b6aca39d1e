"""A study's report, figures and checkpoints, from a tiny real run."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

import jaxmlp
from jaxmlp import pipeline
from jaxmlp.core import metrics
from jaxmlp.report import configurations
from jaxmlp.store import records

TINY = ['--epochs=2', '--seeds=2', '--data_limit=2000', '--progress=false']


def _launch(args, cwd):
  return subprocess.run([sys.executable, '-m', 'jaxmlp.launch', *args], cwd=cwd,
                        capture_output=True, text=True, timeout=600)


@pytest.fixture(scope='module')
def regularization_run(tmp_path_factory):
  out = tmp_path_factory.mktemp('run')
  result = _launch(['--study=regularization', *TINY, '--output_dir=out'], out)
  assert result.returncode == 0, result.stderr
  return out / 'out' / 'regularization'


def test_report_has_a_row_per_configuration_beside_the_original(regularization_run):
  text = (regularization_run / 'report.md').read_text()
  for label, original in (('rmsprop,l2=0.1', '88.37'), ('rmsprop,l2=0.01', '93.45'),
                          ('rmsprop,l2=0.001', '97.40'), ('sgd_normal10,l2=0.1', '11.34'),
                          ('sgd_normal10,l2=0.01', '11.34'),
                          ('sgd_normal10,l2=0.001', '11.35')):
    rows = [l for l in text.splitlines() if l.startswith(f'| {label} | 2 |')]
    assert len(rows) == 1 and f'| {original} |' in rows[0], label
    assert f'### {label}' in text
  assert 'jax 0' in text and 'git revision' in text and '--study=regularization' in text
  # The sgd arm's N(10) kernels leave it guessing one class; the sentence says so.
  assert text.count('Does not learn: test accuracy') == 3


def test_figures_exist_and_are_real_images(regularization_run):
  figures = sorted((regularization_run / 'figures').glob('*.png'))
  assert len(figures) == 6 * 2 + 1   # curves + weights per configuration, the ranking
  for path in figures:
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and path.stat().st_size > 10_000
  text = (regularization_run / 'report.md').read_text()
  for path in figures:
    assert f'](figures/{path.name})' in text


def test_a_saved_member_evaluates_back_to_the_same_numbers(regularization_run, tmp_path):
  member = regularization_run / 'members' / 'rmsprop_l2=0.01__seed1'
  result = subprocess.run(
      [sys.executable, '-m', 'jaxmlp.evaluate', f'--run={member}'],
      capture_output=True, text=True, timeout=300, cwd=tmp_path)
  assert result.returncode == 0, result.stderr
  # The run used --data_limit=2000: evaluate reads that from run.json.
  answer = json.loads(result.stdout.strip().splitlines()[-1])
  record = json.loads((member / 'result.json').read_text())
  assert answer['test_accuracy'] == record['test_accuracy']
  assert answer['test_loss'] == record['test_loss'] and answer['identical'] is True


def test_evaluate_reproduces_test_metrics_exactly(init_run):
  for seed in (0, 2):   # (the command line's own path: the saved-member test above)
    member = init_run / 'members' / f'init__seed{seed}'
    assert pipeline.evaluate_member(member)['identical'] is True
  predictions = subprocess.run(
      [sys.executable, '-m', 'jaxmlp.evaluate', f'--run={member}', '--limit=5',
       f'--images={_test_images()}'], capture_output=True, text=True, timeout=300)
  assert predictions.returncode == 0, predictions.stderr
  # N(10) kernels + SGD predicts digit 1 for everything.
  assert predictions.stdout.split() == ['0', '1', '1', '1', '2', '1', '3', '1', '4', '1']


def _test_images():
  import os
  from pathlib import Path
  return Path(os.environ['MNIST_DIR']) / 't10k-images-idx3-ubyte.gz'


def _runs(histories, test_accuracy=0.95):
  tested = records.ProgramRun(
      test_loss=0.2, test_accuracy=test_accuracy, test_f1=None, initial_epoch=0,
      fit_time_s=1.0, compile_time_s=1.0, members_per_program=1, program='0',
      weight_updates=1, reference={})
  return [records.MemberRecord(
      label='c', arm='', seed=seed, swept=(), config={},
      history={k: list(v) for k, v in h.items()}, epochs_trained=len(h['val_loss']),
      best_epoch=None, diverged=False, run=tested) for seed, h in enumerate(histories)]


def test_describe_names_the_pattern_from_the_numbers():
  epochs = np.arange(20)
  overfit = dict(train_loss=0.5 * 0.8**epochs, val_loss=0.2 + 0.01 * (epochs - 5)**2 / 5,
                 train_accuracy=np.full(20, 0.999), val_accuracy=np.full(20, 0.98))
  assert configurations.describe(_runs([overfit])).startswith('Overfits: validation loss is lowest '
                                                      'at epoch 6')
  under = dict(train_loss=np.linspace(1, 0.5, 20), val_loss=np.linspace(1, 0.5, 20),
               train_accuracy=np.full(20, 0.85), val_accuracy=np.full(20, 0.86))
  assert configurations.describe(_runs([under])).startswith('Underfits: training accuracy reaches '
                                                    'only 85.00%')
  good = dict(train_loss=np.linspace(1, 0.05, 20), val_loss=np.linspace(1, 0.08, 20),
              train_accuracy=np.full(20, 0.99), val_accuracy=np.full(20, 0.98))
  assert configurations.describe(_runs([good])).startswith('Fits without an overfitting gap')
  assert configurations.describe(_runs([good], test_accuracy=0.1135)).startswith('Does not learn')
  diverged = _runs([good, good])
  diverged[1] = dataclasses.replace(diverged[1], diverged=True)
  assert configurations.describe(diverged) == (
      'Diverged in 1 of 2 seeds: a loss became NaN or infinite, exceeded sqrt(float32 max) '
      "= 1.8e+19, or grew to over 1e+06 times the first epoch's training loss.")


def test_metrics_match_a_direct_computation():
  rng = np.random.default_rng(0)
  y_true = rng.integers(0, 10, 500)
  y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 10, 500))
  cm = metrics.confusion_matrix(y_true, y_pred)
  assert cm.sum() == 500 and np.trace(cm) == np.sum(y_true == y_pred)
  scores = metrics.precision_recall_f1(cm)
  for c in range(10):
    tp = np.sum((y_pred == c) & (y_true == c))
    precision, recall = tp / np.sum(y_pred == c), tp / np.sum(y_true == c)
    assert scores['precision'][c] == pytest.approx(precision)
    assert scores['recall'][c] == pytest.approx(recall)
    assert scores['f1'][c] == pytest.approx(2 * precision * recall / (precision + recall))
  assert scores['macro_f1'] == pytest.approx(np.mean(scores['f1']))
  np.testing.assert_allclose(metrics.normalize_rows(cm).sum(axis=1), 1.0)


def test_hyperband_report_with_the_final_model(tmp_path):
  """A tiny Hyperband: 3 configurations, keras_tuner's brackets for max_epochs 3."""
  args = ['--study=finetune', '--search=hyperband', '--seeds=1', '--data_limit=1500',
          '--epochs=1', "--config.hidden_sizes=((64, 256),)", '--config.l2=1e-6',
          '--config.hyperband.max_epochs=3', '--progress=false', '--output_dir=out']
  result = _launch(args, tmp_path)
  assert result.returncode == 0, result.stderr
  study_dir = tmp_path / 'out' / 'finetune'
  text = (study_dir / 'report.md').read_text()
  # Bracket 1 draws all 3 configurations (1 epoch), promotes 1 (to epoch 3); bracket 0
  # finds none left untried, so the search ends.
  trials = (study_dir / 'trials.csv').read_text().strip().splitlines()
  assert len(trials) == 1 + 4
  assert '4 trials x 1 executions (seeds)' in text
  assert 'bracket 1: (3, 1), (1, 3); bracket 0: (2, 3)' in text
  assert '## Final model' in text and 'retrained 1 epochs at batch 32, shuffled' in text
  assert 'original, hidden_sizes=128x256,l2=1e-06,learning_rate=0.001: 98.29%' in text
  assert (study_dir / 'figures' / 'confusion_matrix.png').stat().st_size > 10_000
  assert len(list((study_dir / 'final').glob('*/result.json'))) == 1
  again = _launch(args, tmp_path)
  assert again.returncode == 0, again.stderr
  assert again.stdout.count('complete on disk, skipped') == 3  # 2 rounds + final


def test_a_report_never_shows_a_storage_password():
  from jaxmlp.report import report   # pylint: disable=import-outside-toplevel
  line = ('- command: `python -m jaxmlp.launch --storage=postgresql://alice:s3cr3t@db:5432/s '
          '--data_dir=/data` (storage mysql+pymysql://bob:pw@h/s, sqlite:////r/optuna.db)')
  assert report.mask_passwords(line) == (
      '- command: `python -m jaxmlp.launch --storage=postgresql://alice:***@db:5432/s '
      '--data_dir=/data` (storage mysql+pymysql://bob:***@h/s, sqlite:////r/optuna.db)')


def test_the_index_sums_up_each_study_from_the_records_its_run_holds(regularization_run):
  from jaxmlp.report import report  # pylint: disable=g-import-not-at-top
  from jaxmlp.report import summaries  # pylint: disable=g-import-not-at-top
  from jaxmlp.store import folders  # pylint: disable=g-import-not-at-top
  on_disk = [folders.read_member(d) for d in sorted((regularization_run / 'members').iterdir())]
  shuffled = on_disk[::-1]   # as a search may hold them: the index orders them itself
  index = report.write_index(regularization_run.parent,
                             [('regularization', regularization_run, shuffled)], 'cmd')
  text = index.read_text()
  assert '## [regularization](regularization/report.md)' in text
  assert summaries.summary_markdown(on_disk) in text


def test_a_large_study_gets_aggregate_figures_and_capped_tables(tmp_path, monkeypatch):
  """Past FIGURED configurations the report draws a figure count that no longer grows
  with the study (here FIGURED=3, tables of 2 rows, 4 bars at most, for 5)."""
  from jaxmlp.report import configurations as configurations_report  # pylint: disable=g-import-not-at-top
  from jaxmlp.report import figures  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(configurations_report, 'FIGURED', 3)
  monkeypatch.setattr(configurations_report, 'TABLE_ROWS', 2)
  monkeypatch.setattr(figures, 'MOST_BARS', 4)
  result = jaxmlp.run_study('baseline', output_dir=tmp_path, seeds=1, epochs=2,
                            data_limit=600, progress=False, tensorboard=False,
                            learning_rate=(0.1, 0.03, 0.01, 0.003, 0.001))
  drawn = sorted(p.name for p in (result.folder / 'figures').iterdir())
  assert len(drawn) == configurations_report.figure_count(5) == 1 + 2 * 3 + 1
  assert 'all_curves.png' in drawn and 'configurations.png' in drawn
  report = result.report.read_text()
  assert '*The first 2 of 5 configurations; all are in summary.csv' in report
  assert '*The best 2 of 5 configurations; all are in summary.csv' in report
  assert report.count('\n### learning_rate=') == 3
  assert '5 configurations: the best 3 by val_accuracy follow, each with its figures; ' \
         'the other 2 by the same rules' in report
