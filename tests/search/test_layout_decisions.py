"""A search decides the same whatever the layout: a member's numbers do not depend on
its packing (member_arithmetic 'auto', alone on a CPU: tests/engine/test_invariance.py),
so neither do Hyperband's promotions nor PBT's exploits and lineage."""

import json
import subprocess
import sys

import pytest

_TINY = ['--data_limit=600', '--progress=false', '--tensorboard=false']
_LAYOUT_FREE = ('fit_time_s', 'compile_time_s', 'members_per_program', 'program',
                'worker')


def _launch(out, *args):
  run = subprocess.run([sys.executable, '-m', 'jaxmlp.launch', *args, *_TINY,
                        f'--output_dir={out}'], capture_output=True, text=True, timeout=600)
  assert run.returncode == 0, run.stderr
  return out


def _records(folder):
  """Every member's result.json, less what says where and how fast it ran."""
  return {p.parent.name: {k: v for k, v in json.loads(p.read_text()).items()
                          if k not in _LAYOUT_FREE}
          for p in sorted(folder.glob('*/result.json'))}


@pytest.mark.parametrize('search, args, files', [
    ('hyperband', ['--study=finetune', '--search=hyperband', '--seeds=1',
                   "--config.hidden_sizes=(64, 256)", '--config.hyperband.max_epochs=3',
                   '--config.final_epochs=0'],
     ('trials.csv',)),
    ('pbt', ['--study=finetune_pbt', '--epochs=4', '--config.pbt.population=4',
             '--config.pbt.interval=2', '--config.final_epochs=0'],
     ('pbt_lineage.jsonl',)),
    # A sampler whose draws ignore the finished trials, and no pruner: what Optuna can
    # promise for any slot count (README: what is guaranteed).
    ('optuna', ['--study=finetune_optuna', '--epochs=2', '--config.optuna.trials=6',
                '--config.optuna.sampler=random', '--config.optuna.pruner=none',
                '--config.final_epochs=0'], ()),
])
def test_a_search_decides_the_same_whatever_the_layout(tmp_path, search, args, files):
  """Hyperband's trials and promotions, PBT's exploits and lineage, a seeded random
  Optuna study's trials: the same with one member a program (or slot) on one device as
  with the planner's programs (or 4 slots) over two devices."""
  one_a_program = {'hyperband': ['--config.max_members_per_program=1'],
                   'optuna': ['--config.optuna.slots=1'], 'pbt': []}[search]
  packed = _launch(tmp_path / 'packed', *args, '--cpu_devices=2',
                   *(['--config.optuna.slots=4'] if search == 'optuna' else []))
  alone = _launch(tmp_path / 'alone', *args, '--cpu_devices=1', *one_a_program)
  name = args[0].split('=')[1]
  for file in files:
    assert (packed / name / file).read_text() == (alone / name / file).read_text(), file
  for folder in ('trials', 'members'):
    assert _records(packed / name / folder) == _records(alone / name / folder)
  assert _records(packed / name / 'trials') or _records(packed / name / 'members')
  if search == 'pbt':
    a, b = (json.loads((o / name / 'pbt.json').read_text()) for o in (packed, alone))
    assert a['devices'] == 2 and b['devices'] == 1
    for key in ('members', 'winner', 'dimensions'):
      assert a[key] == b[key], key


def test_a_grid_killed_and_resumed_with_another_packing_ends_with_the_same_bits(tmp_path):
  """Killed mid-program with 4 members a program, rerun with 2 a program (as after a
  change of free memory): the rerun cuts what is left anew, and every member's record
  and weights are those of an uninterrupted run."""
  import os  # pylint: disable=g-import-not-at-top
  from jaxmlp.common import faults  # pylint: disable=g-import-not-at-top
  args = ['--study=baseline', '--epochs=3', '--seeds=4', "--config.learning_rate=(0.01, 0.001)",
          '--cpu_devices=1', '--checkpoint_every=1']
  clean = _launch(tmp_path / 'clean', *args, '--config.max_members_per_program=4')
  killed = subprocess.run([sys.executable, '-m', 'jaxmlp.launch', *args, *_TINY,
                           '--config.max_members_per_program=4',
                           f'--output_dir={tmp_path / "resumed"}'],
                          env={**os.environ, faults.ENV: 'epoch:5:KILL'},
                          capture_output=True, text=True, timeout=600)
  assert killed.returncode == -9, killed.stderr
  _launch(tmp_path / 'resumed', *args, '--config.max_members_per_program=2')
  members = lambda out: out / 'baseline' / 'members'
  assert len(_records(members(clean))) == 8
  assert _records(members(clean)) == _records(members(tmp_path / 'resumed'))
  for folder in members(clean).iterdir():
    assert (folder / 'params.msgpack').read_bytes() == (
        members(tmp_path / 'resumed') / folder.name / 'params.msgpack').read_bytes()
