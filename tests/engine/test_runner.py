"""Interruptions lose nothing finished, a rerun finishes with identical results, and a
results folder is only ever reused by the run it belongs to."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from jaxmlp.common import faults
from jaxmlp.engine import interrupt
from jaxmlp.engine import program as program_lib
from jaxmlp.engine import runner
from jaxmlp.search import registry
from jaxmlp.store import run_identity
from jaxmlp.studies import study
from jaxmlp.common.errors import UserError

TINY = ['--study=dropout', '--epochs=4', '--seeds=2', '--data_limit=2000',
        '--progress=false', '--checkpoint_every=1']
FIRST = ('rmsprop__seed0', 'rmsprop__seed1')       # the first compiled program
SECOND = ('sgd_normal10__seed0', 'sgd_normal10__seed1')
TIMING = ('fit_time_s', 'compile_time_s')


def _command(out):
  return [sys.executable, '-m', 'jaxmlp.launch', *TINY, f'--output_dir={out}']


def _records(folder: Path) -> dict[str, dict]:
  records = {}
  for path in sorted(folder.glob('*/result.json')):
    record = json.loads(path.read_text())
    records[path.parent.name] = {k: v for k, v in record.items() if k not in TIMING}
  return records


class _Clean(dict):
  """A clean run's records; `folder` is its study folder."""
  folder: Path


@pytest.fixture(scope='module')
def clean_run(tmp_path_factory):
  out = tmp_path_factory.mktemp('clean')
  result = _run(out)
  assert result.returncode == 0, result.stderr
  records = _Clean(_records(out / 'dropout' / 'members'))
  records.folder = out / 'dropout'
  return records


def _run(out: Path, fault: str | None = None) -> subprocess.CompletedProcess:
  """The tiny study, stopped by a deterministic fault (common/faults.py) if given."""
  env = {k: v for k, v in os.environ.items() if k != faults.ENV}
  if fault is not None:
    env[faults.ENV] = fault
  return subprocess.run(_command(out), capture_output=True, text=True, timeout=600, env=env)


# Epochs count over the process: the first program's are 1-4, the second's 5-8.
@pytest.mark.parametrize('fault', [
    'epoch:6:KILL',    # killed after the second program's 2nd epoch (checkpoint 1 done)
    'epoch:6:TERM',    # asked to stop there: it saves at the next epoch's end and exits
    'program:1:KILL',  # killed once the first program's members are written
])
def test_a_stopped_study_resumes_to_identical_results(tmp_path, clean_run, fault):
  stopped = _run(tmp_path, fault)
  if fault.endswith('TERM'):
    assert stopped.returncode == 143, stopped.stderr
    assert stopped.stderr.strip().splitlines()[-1] == (
        'stopped by SIGTERM: [dropout] program 2/2 saved a checkpoint at epoch 3 of 4; '
        f'finished programs are saved in {tmp_path}; rerun the same command to continue')
    assert 'Traceback' not in stopped.stderr
  else:
    assert stopped.returncode == -signal.SIGKILL, stopped.stderr
  members = tmp_path / 'dropout' / 'members'
  # The first program's members are complete; the second's never look finished.
  assert all((members / m / 'result.json').is_file() for m in FIRST)
  assert not any((members / m / 'result.json').is_file() for m in SECOND)
  before = {m: (members / m / 'result.json').stat().st_mtime_ns for m in FIRST}

  rerun = _run(tmp_path)
  assert rerun.returncode == 0, rerun.stderr
  assert 'program 1/2: 2 members (rmsprop, batch 256, hidden 128x256): complete on disk, ' \
         'skipped' in rerun.stdout
  resumed = 'program 2/2: 2 members (sgd, batch 256, hidden 128x256): resumed at epoch '
  assert (resumed in rerun.stdout) == fault.startswith('epoch'), rerun.stdout
  if fault.endswith('TERM'):
    assert f'{resumed}3 of 4' in rerun.stdout
  assert before == {m: (members / m / 'result.json').stat().st_mtime_ns for m in FIRST}
  assert _records(members) == clean_run
  assert not list(tmp_path.rglob('*.tmp'))
  assert not (tmp_path / 'dropout' / 'checkpoints').exists()
  assert (tmp_path / 'dropout' / 'report.md').is_file()


def test_damaged_results_are_set_aside_and_their_members_trained_again(tmp_path, clean_run):
  """Both members of a program: retrained together, as they first were, so every number
  matches (one retrained alone would be packed differently)."""
  shutil.copytree(clean_run.folder, tmp_path / 'dropout')
  members = tmp_path / 'dropout' / 'members'
  damage = {SECOND[0]: '{}', SECOND[1]: '{"label": '}   # another shape; truncated
  for name, content in damage.items():
    (members / name / 'result.json').write_text(content)
  rerun = _run(tmp_path)
  assert rerun.returncode == 0, rerun.stderr
  lines = [l for l in rerun.stdout.splitlines() if 'is damaged' in l]
  assert len(lines) == 2
  for name, content in damage.items():
    aside, = (tmp_path / 'dropout' / 'members.damaged').glob(f'{name}-*')
    line, = [l for l in lines if l.startswith(f'{members / name}/result.json is damaged (')]
    assert line.endswith(f'; moved {members / name} to {aside}, and that member trains again')
    assert (aside / 'result.json').read_text() == content   # kept as it was
  assert 'program 1/2: 2 members (rmsprop, batch 256, hidden 128x256): complete on disk' \
      in rerun.stdout
  assert _records(members) == clean_run


def test_a_folder_of_another_run_is_refused(tmp_path, clean_run):
  shutil.copytree(clean_run.folder, tmp_path / 'dropout')
  other = subprocess.run([*_command(tmp_path), '--config.l1=0.001'], capture_output=True,
                         text=True, timeout=600)
  assert other.returncode == 2
  assert other.stderr.strip().splitlines()[-1] == (
      f'error: {tmp_path}/dropout holds results of a different run (l1: 0.01 there, 0.001 '
      'now): rerun with the same settings to resume, pass another --output_dir, or delete '
      'that folder to start over')
  assert _records(tmp_path / 'dropout' / 'members') == clean_run  # nothing was mixed in


def _claim(tmp_path, **fields):
  """run.json after a run of `fields` claims the folder; a dotted field is a search's
  setting (that search runs)."""
  sections = {}
  for name in [k for k in fields if '.' in k]:
    section, _, setting = name.partition('.')
    sections.setdefault(section, {})[setting] = fields.pop(name)
    fields.setdefault('search', section)
  config = registry.complete(study.make_config(name='tiny', **fields, **sections))
  run_identity.claim(tmp_path / 'tiny', config, registry.identity_rules(config.search))
  return run_identity.read(tmp_path / 'tiny')['config']


@pytest.mark.parametrize('field, first, then', [
    ('final_batch_size', 32, 64),
    ('final_shuffle', True, False),
    ('matmul_precision', 'float32', 'bfloat16'),
    ('data_limit', 0, 2000),
    ('data_checksums', True, False),
    ('data_source', 'idx', 'tfds'),
    ('epochs', 10, 20),
    ('search', 'grid', 'hyperband'),
    ('hyperband.factor', 3, 4),
    ('seeds', 3, 2),                          # fewer seeds: not only more work
    ('learning_rate', (0.1, 0.01), (0.1,)),  # a value gone
])
def test_a_rerun_that_changes_what_trains_is_refused_naming_the_field(
    tmp_path, field, first, then):
  _claim(tmp_path, **{field: first})
  with pytest.raises(UserError, match=rf'holds results of a different run \({field}: '):
    _claim(tmp_path, **{field: then})


def test_a_rerun_that_only_adds_work_extends_the_run(tmp_path):
  _claim(tmp_path, learning_rate=(0.1, 0.01), seeds=2)
  stored = _claim(tmp_path, learning_rate=(0.1, 0.01, 0.001), seeds=3,
                  reference=(dict(test_accuracy=0.9),))   # the report's data may change
  assert stored['seeds'] == 3 and stored['learning_rate'] == [0.1, 0.01, 0.001]
  # The same run again (what a resume is) changes nothing.
  assert _claim(tmp_path, learning_rate=(0.1, 0.01, 0.001), seeds=3) == stored
  # Only the grid adds work: Hyperband's trials would all change.
  _claim(tmp_path / 'hb', search='hyperband', learning_rate=(0.1, 0.01))
  with pytest.raises(UserError, match=r'\(learning_rate: 0\.1x0\.01 there, 0\.1x0\.01x0\.001 '):
    _claim(tmp_path / 'hb', search='hyperband', learning_rate=(0.1, 0.01, 0.001))


def test_added_seeds_and_configurations_train_only_what_is_new(tmp_path, small_split):
  config = study.make_config(name='tiny', epochs=1, seeds=1, learning_rate=(0.001, 0.01),
                             hidden_sizes=(16,))
  settings, data = runner.start(config, small_split, tmp_path, progress=False)
  runner.run_grid(config, settings, data)
  members = tmp_path / 'tiny' / 'members'
  before = {p.parent.name: p.stat().st_mtime_ns for p in members.glob('*/result.json')}
  assert len(before) == 2
  more = study.make_config(name='tiny', epochs=1, seeds=2, hidden_sizes=(16,),
                           learning_rate=(0.001, 0.01, 0.1))
  settings, data = runner.start(more, small_split, tmp_path, progress=False,
                                identity=registry.identity_rules('grid'))
  records = runner.run_grid(more, settings, data)
  after = {p.parent.name: p.stat().st_mtime_ns for p in members.glob('*/result.json')}
  assert len(records) == len(after) == 6
  assert {k: after[k] for k in before} == before   # untouched


def test_a_swallowed_ctrl_c_stops_the_program_at_the_epochs_end_with_a_checkpoint(
    tmp_path, small_split, monkeypatch, swallowed_ctrl_c):
  # Where jax's gc callback swallowed a SIGINT, the study used to finish and exit 0.
  config = study.make_config(name='tiny', epochs=3, seeds=1, learning_rate=(0.001, 0.01),
                             hidden_sizes=(16,))
  epochs_seen = []
  real_run_program = program_lib.run_program

  def run_program(*args, on_epoch, **kwargs):
    def spy(epoch, metrics):
      epochs_seen.append(epoch)
      swallowed_ctrl_c()
      on_epoch(epoch, metrics)
    return real_run_program(*args, on_epoch=spy, **kwargs)

  monkeypatch.setattr(program_lib, 'run_program', run_program)
  with interrupt.remembered(), pytest.raises(interrupt.Stopped) as stopped:
    settings, data = runner.start(config, small_split, tmp_path, progress=False)
    runner.run_grid(config, settings, data)
  assert epochs_seen == [0]  # of 3: it stopped at the first epoch's end
  assert stopped.value.exit_code == 130
  assert stopped.value.where == '[tiny] program 1/1 saved a checkpoint at epoch 1 of 3'
  assert not list(tmp_path.rglob('result.json'))

  monkeypatch.setattr(program_lib, 'run_program', real_run_program)
  with interrupt.remembered():  # the rerun continues from the checkpoint and finishes
    settings, data = runner.start(config, small_split, tmp_path, progress=False)
    records = runner.run_grid(config, settings, data)
  assert len(records) == 2 and len(list(tmp_path.rglob('result.json'))) == 2
  assert [r.epochs_trained for r in records] == [3, 3]
