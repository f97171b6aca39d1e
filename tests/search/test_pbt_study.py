"""A PBT study end to end: its files (lineage, pbt.json with the compile count), the
winner's schedule replayed alone, and a run killed with kill -9 and rerun."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxmlp.common import faults
from jaxmlp.store import folders
from jaxmlp.search.pbt import _files
from jaxmlp.studies import space

TINY = dict(name='tiny_pbt', optimizer='rmsprop', kernel_init='he_normal',
            hidden_sizes=(16,), l2=space.log_uniform(1e-7, 1e-1),
            learning_rate=space.log_uniform(1e-4, 1e-2), epochs=8, seeds=1, search='pbt',
            pbt=dict(population=4, interval=2), final_epochs=0, data_limit=1000)


@pytest.fixture(scope='module')
def config_file(tmp_path_factory) -> Path:
  path = tmp_path_factory.mktemp('config') / 'tiny_pbt.py'
  path.write_text('from jaxmlp.studies.study import make_config\n\n\n'
                  f'def get_config():\n  return make_config(**{TINY!r})\n')
  return path


@pytest.fixture(scope='module')
def pbt_study(config_file, tmp_path_factory) -> Path:
  """TINY run by the command line, uninterrupted."""
  out = tmp_path_factory.mktemp('pbt')
  clean = _launch(config_file, out)
  assert clean.returncode == 0, clean.stderr
  return out / 'tiny_pbt'


def test_the_study_writes_its_lineage_and_compiles_the_epoch_program_once(pbt_study):
  pbt = _files.read(pbt_study)
  lineage = _files.read_lineage(pbt_study)
  assert pbt['complete'] and pbt['epoch_program_compiles'] == 1
  assert pbt['compiles_while_evolving'] == 0          # over 3 generations
  assert [row['epoch'] for row in lineage] == [2, 4, 6]   # one target a generation
  for row in lineage:
    assert set(row) == {'epoch', 'generation', 'target', 'donor', 'old', 'new',
                        'target_score', 'donor_score'}
    assert row['donor_score'] >= row['target_score']
  report = (pbt_study / 'report.md').read_text()
  assert '## Population-based training' in report and 'pbt_trajectories.png' in report
  # The final model is the winner as trained: its own weights and test scores.
  winner = json.loads(next((pbt_study / 'members').glob(
      f'member={pbt["winner"]}__seed*/result.json')).read_text())
  assert (f'## Final model\n\n**member={pbt["winner"]}** the winner as trained (nothing '
          'retrained') in report
  assert f'test accuracy {100 * winner["test_accuracy"]:.2f} ± 0.00%' in report
  assert not (pbt_study / 'final').exists()
  assert (pbt_study / 'figures' / 'pbt_trajectories.png').is_file()


def test_the_winners_schedule_replayed_alone_reproduces_it_bit_for_bit(pbt_study,
                                                                      config_file, tmp_path):
  replayed = _launch(config_file, tmp_path, None, '--search=pbt_replay',
                     f'--config.pbt_replay.study={pbt_study}')
  assert replayed.returncode == 0, replayed.stderr
  replay_dir = tmp_path / 'tiny_pbt_replay'
  assert (replay_dir / 'report.md').is_file()
  pbt = _files.read(pbt_study)
  winner = pbt['members'][pbt['winner']]
  replay, = [json.loads(p.read_text()) for p in (replay_dir / 'members').glob('*/result.json')]
  # Its members computed as alone (member_arithmetic 'auto' on a CPU), the population
  # gave the winner's lineage the numbers it gets alone: no padding to its layout.
  for name, values in winner['history'].items():
    assert replay['history'][name] == values, name
  first = json.loads(next((pbt_study / 'members').glob(
      f'member={pbt["winner"]}__seed*/result.json')).read_text())
  for field in ('test_loss', 'test_accuracy', 'test_f1', 'best_epoch', 'weight_updates'):
    assert replay[field] == first[field], field
  assert pbt['members_per_device'] * pbt['devices'] > 1 and pbt['member_arithmetic'] == 'auto'
  assert replay['members_per_program'] == 1
  weights = lambda folder: folders.load_params(folder)
  mine = weights(next((replay_dir / 'members').iterdir()))
  theirs = weights(next((pbt_study / 'members').glob(f'member={pbt["winner"]}__seed*')))
  for kind in ('final', 'best'):
    jax.tree.map(np.testing.assert_array_equal, mine[kind], theirs[kind])

def _launch(config_file: Path, out: Path, fault: str | None = None, *flags: str):
  env = {k: v for k, v in os.environ.items() if k != faults.ENV}
  if fault:
    env[faults.ENV] = fault
  command = [sys.executable, '-m', 'jaxmlp.launch', f'--study={config_file}',
             f'--output_dir={out}', '--progress=false', '--checkpoint_every=1',
             '--tensorboard=false', *flags]
  return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


def _members(study: Path) -> dict[str, dict]:
  timing = ('fit_time_s', 'compile_time_s', 'program')
  return {p.parent.name: {k: v for k, v in json.loads(p.read_text()).items()
                          if k not in timing}
          for p in sorted((study / 'members').glob('*/result.json'))}


def test_kill_9_mid_run_then_rerun_gives_the_same_lineage_and_results(pbt_study, config_file,
                                                                      tmp_path):
  killed = _launch(config_file, tmp_path, 'epoch:5:KILL')   # after generation 2's exploit
  assert killed.returncode == -9, killed.stderr
  rerun = _launch(config_file, tmp_path)
  assert rerun.returncode == 0, rerun.stderr
  assert 'resumed at epoch' in rerun.stdout, rerun.stdout
  a, b = pbt_study, tmp_path / 'tiny_pbt'
  assert (a / _files.LINEAGE_FILE).read_text() == (b / _files.LINEAGE_FILE).read_text()
  assert _members(a) == _members(b) and len(_members(a)) == 4
  for member in (a / 'members').iterdir():
    assert (member / 'params.msgpack').read_bytes() == (
        b / 'members' / member.name / 'params.msgpack').read_bytes()
  pa, pb = _files.read(a), _files.read(b)
  assert pa['members'] == pb['members'] and pa['winner'] == pb['winner']
