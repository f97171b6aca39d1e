"""A grid study with several objectives: its Pareto front in the report and in
pareto_front.csv, the same table as jaxmlp.read_pareto, and its members' numbers those
of the single-objective study (the objectives rank; they do not change training)."""

import json
import subprocess
import sys

import pandas as pd

import jaxmlp
from jaxmlp.report import growth
from jaxmlp.report import pareto as pareto_report
from jaxmlp.studies import study

_RUN = ['--study=baseline', "--config.hidden_sizes=((16,), (64,), (64, 32))", '--seeds=2',
        '--epochs=1', '--data_limit=600', '--progress=false', '--tensorboard=false']
OBJECTIVES = '(val_accuracy, parameter_count)'


def _launch(cwd, *args):
  cwd.mkdir()
  result = subprocess.run([sys.executable, '-m', 'jaxmlp.launch', *_RUN, *args,
                           '--output_dir=out'], cwd=cwd, capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr
  return cwd / 'out' / 'baseline'


def test_a_multi_objective_grid_reports_its_front(tmp_path):
  several = _launch(tmp_path / 'several', f'--config.objective={OBJECTIVES}')
  one = _launch(tmp_path / 'one')
  front = pd.read_csv(several / pareto_report.FRONT_FILE)
  expected = jaxmlp.read_pareto(several, OBJECTIVES)
  pd.testing.assert_frame_equal(front, expected, check_dtype=False)
  assert len(front) == 3 and front.pareto_rank.min() == 0
  report = (several / 'report.md').read_text()
  assert '## Pareto front' in report and 'Hypervolume' in report
  assert '![Pareto front](figures/pareto_front.png)' in report
  assert (several / 'figures' / pareto_report.FIGURE_FILE).stat().st_size > 10_000
  # The growth ends at the report's hypervolume, against the same reference point.
  objectives = study.objectives(OBJECTIVES)
  reference = pareto_report.reference_point(pareto_report.losses(front, objectives))
  grown = growth.timeline(several, objectives, (), reference)
  assert len(grown) == 6 and (grown.seconds >= 0).all() and grown.seconds.is_monotonic_increasing
  assert f'Hypervolume {grown.hypervolume.iloc[-1]:.6g},' in report
  assert list(grown.configurations) == sorted(grown.configurations)
  assert '![hypervolume growth](figures/hypervolume_growth.png)' in report
  for label in front.label[front.pareto_rank == 0]:
    assert f'| {label} |' in report.split('## Pareto front')[1]
  members = jaxmlp.read_results(several)
  trained = members[members.role == 'member']
  ranks = front.set_index('label')
  assert (trained.pareto_rank.to_numpy() == ranks.pareto_rank[trained.label].to_numpy()).all()
  assert (trained.val_accuracy == trained.best_val_accuracy).all()
  assert members[members.role == 'final'].pareto_rank.isna().all()
  assert 'pareto_rank' not in jaxmlp.read_results(one).columns
  assert '## Pareto front' not in (one / 'report.md').read_text()
  assert not (one / pareto_report.FRONT_FILE).exists()
  for member in (one / 'members').iterdir():   # the same bits
    assert (member / 'params.msgpack').read_bytes() == (
        several / 'members' / member.name / 'params.msgpack').read_bytes()


def test_hyperband_with_several_objectives_reports_the_front_of_its_trials(tmp_path):
  (tmp_path / 'hb').mkdir()
  result = subprocess.run(
      [sys.executable, '-m', 'jaxmlp.launch', '--study=finetune', '--search=hyperband',
       '--config.hyperband.max_epochs=3', '--seeds=1', '--data_limit=600',
       '--config.final_epochs=1', '--config.final_batch_size=256', '--progress=false',
       '--tensorboard=false',
       f'--config.objective={OBJECTIVES}', '--output_dir=out'],
      cwd=tmp_path / 'hb', capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  study_dir = tmp_path / 'hb' / 'out' / 'finetune'
  front = pd.read_csv(study_dir / pareto_report.FRONT_FILE)
  assert front.label.str.startswith('trial-').all() and (front.pareto_rank == 0).any()
  report = (study_dir / 'report.md').read_text()
  assert '## Pareto front' in report and '## Pareto front' in report.split('Best:')[1]
  on_front = {label.split(':', 1)[1] for label in front.label[front.pareto_rank == 0]}
  final = jaxmlp.read_results(study_dir)
  final = set(final.label[final.role == 'final'])
  assert final <= on_front and 1 <= len(final) <= 5   # trials of one configuration: once


def test_a_constraint_no_configuration_meets_is_said_last(tmp_path):
  (tmp_path / 'bound').mkdir()
  result = subprocess.run(
      [sys.executable, '-m', 'jaxmlp.launch', *_RUN, '--seeds=1',
       f'--config.objective={OBJECTIVES}', "--config.constraints=(parameter_count <= 100,)",
       '--output_dir=out'], cwd=tmp_path / 'bound', capture_output=True, text=True,
      timeout=300)
  assert result.returncode == 0, result.stderr
  study = tmp_path / 'bound' / 'out' / 'baseline'
  last = result.stdout.strip().splitlines()[-1]
  assert last.startswith('No configuration satisfies parameter_count <= 100: the one that '
                         'violates them least is hidden_sizes=16 (parameter_count 12730;'), last
  front = pd.read_csv(study / pareto_report.FRONT_FILE)
  assert not front.feasible.any()
  assert list(front.label) == ['hidden_sizes=16', 'hidden_sizes=64', 'hidden_sizes=64x32']
  assert list(front.pareto_rank) == [0, 1, 2]   # by violation alone, as Optuna
  assert 'No configuration satisfies' in (study / 'report.md').read_text()
  # After the fact, a bound the smallest network meets: it alone is feasible.
  bounded = jaxmlp.read_pareto(study, OBJECTIVES, '(parameter_count <= 20000,)')
  assert list(bounded.feasible) == [True, False, False]
  assert list(bounded.violation) == [0, 50890 - 20000, 52650 - 20000]
  assert 'violation' in jaxmlp.read_results(study).columns


def test_pbt_with_several_objectives_reports_the_front_of_its_population(tmp_path):
  (tmp_path / 'pbt').mkdir()
  result = subprocess.run(
      [sys.executable, '-m', 'jaxmlp.launch', '--study=finetune_pbt', '--epochs=3',
       '--data_limit=600', '--config.pbt.population=6', '--config.pbt.interval=1',
       '--config.objective=(val_accuracy, val_loss)', '--progress=false',
       '--tensorboard=false', '--output_dir=out'], cwd=tmp_path / 'pbt',
      capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  study = tmp_path / 'pbt' / 'out' / 'finetune_pbt'
  pbt = json.loads((study / 'pbt.json').read_text())
  assert pbt['objectives'] == '(val_accuracy, val_loss)' and pbt['objective'] == 'val_accuracy'
  front = pd.read_csv(study / pareto_report.FRONT_FILE)
  assert len(front) == 6 and front.pareto_rank.min() == 0
  assert front.label[0] == f'member={pbt["winner"]}'   # the winner: first in NSGA-II's order
  assert '## Pareto front' in (study / 'report.md').read_text()


def test_the_front_is_retrained_together_at_most_final_front_size(tmp_path):
  study = _launch(tmp_path / 'front', f'--config.objective={OBJECTIVES}',
                  '--config.final_epochs=1', '--config.final_front_size=1')
  front = pd.read_csv(study / pareto_report.FRONT_FILE)
  on_front = set(front.label[front.pareto_rank == 0])
  final = jaxmlp.read_results(study)
  final = final[final.role == 'final']
  assert len(final) == 2 and final.label.nunique() == 1   # 1 configuration x 2 seeds
  assert set(final.label) <= on_front
  # The extreme kept is the first objective's: spread keeps both ends, then the first.
  report = (study / 'report.md').read_text()
  assert f'1 of the {len(on_front)} configurations of the Pareto front' in report
