"""Interruptions lose nothing finished, and a rerun finishes with identical results."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxmlp import engine
from jaxmlp import interrupt
from jaxmlp import runner
from jaxmlp import study

TINY = ['--study=dropout', '--epochs=2', '--seeds=2', '--data_limit=2000',
        '--progress=false']
FIRST = ('rmsprop__seed0', 'rmsprop__seed1')       # the first compiled program
SECOND = ('sgd_normal10__seed0', 'sgd_normal10__seed1')
TIMING = ('fit_time_s', 'compile_time_s')


def _command(out):
  return [sys.executable, '-m', 'jaxmlp.launch', *TINY, f'--output_dir={out}']


def _records(out: Path) -> dict[str, dict]:
  records = {}
  for path in sorted((out / 'dropout' / 'members').glob('*/result.json')):
    record = json.loads(path.read_text())
    records[path.parent.name] = {k: v for k, v in record.items() if k not in TIMING}
  return records


@pytest.fixture(scope='module')
def clean_run(tmp_path_factory):
  out = tmp_path_factory.mktemp('clean')
  result = subprocess.run(_command(out), capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr
  return _records(out)


def _interrupt_during_second_program(out: Path, signum) -> subprocess.CompletedProcess:
  process = subprocess.Popen(_command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
  members = out / 'dropout' / 'members'
  deadline = time.monotonic() + 300
  while not all((members / m / 'result.json').is_file() for m in FIRST):
    assert process.poll() is None, process.communicate()
    assert time.monotonic() < deadline
    time.sleep(0.02)
  process.send_signal(signum)
  stdout, stderr = process.communicate(timeout=120)
  return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.parametrize('signum', [signal.SIGKILL, signal.SIGINT])
def test_interrupted_study_resumes_to_identical_results(tmp_path, clean_run, signum):
  killed = _interrupt_during_second_program(tmp_path, signum)
  if signum == signal.SIGINT:
    assert killed.returncode == 130
    assert 'interrupted: finished programs are saved' in killed.stderr
    assert 'Traceback' not in killed.stderr
  else:
    assert killed.returncode == -signal.SIGKILL
  members = tmp_path / 'dropout' / 'members'
  # The first program's members are complete; the second's never look finished.
  assert all((members / m / 'result.json').is_file() for m in FIRST)
  assert not any((members / m / 'result.json').is_file() for m in SECOND)
  before = {m: (members / m / 'result.json').stat().st_mtime_ns for m in FIRST}

  rerun = subprocess.run(_command(tmp_path), capture_output=True, text=True, timeout=600)
  assert rerun.returncode == 0, rerun.stderr
  assert 'program 1/2: 2 members (rmsprop, batch 256, hidden 128x256): complete on disk, ' \
         'skipped' in rerun.stdout
  assert 'program 2/2' in rerun.stdout and 'compiled in' in rerun.stdout
  assert before == {m: (members / m / 'result.json').stat().st_mtime_ns for m in FIRST}
  assert _records(tmp_path) == clean_run
  assert not list(tmp_path.rglob('*.tmp'))
  assert (tmp_path / 'dropout' / 'report.md').is_file()


def test_a_folder_of_another_run_is_refused(tmp_path, clean_run):
  first = subprocess.run(_command(tmp_path), capture_output=True, text=True, timeout=600)
  assert first.returncode == 0, first.stderr
  other = subprocess.run([*_command(tmp_path), '--config.l1=0.001'], capture_output=True,
                         text=True, timeout=600)
  assert other.returncode == 2
  assert other.stderr.strip().splitlines()[-1] == (
      f'error: {tmp_path}/dropout holds results of a different run (l1 differ): pass '
      'another --output_dir, or delete that folder to start over')
  assert _records(tmp_path) == clean_run  # nothing was mixed in


def test_a_swallowed_ctrl_c_stops_the_program_before_anything_is_written(
    tmp_path, small_split, monkeypatch, swallowed_ctrl_c):
  # Where jax's gc callback swallowed a SIGINT, the study used to finish and exit 0.
  config = study.make_config(name='tiny', epochs=3, learning_rate=(0.001, 0.01))
  epochs_seen = []
  real_run_group = engine.run_group

  def run_group(*args, on_epoch, **kwargs):
    def spy(done, total, metrics):
      epochs_seen.append(done)
      swallowed_ctrl_c()
      on_epoch(done, total, metrics)
    return real_run_group(*args, on_epoch=spy, **kwargs)

  monkeypatch.setattr(engine, 'run_group', run_group)
  with interrupt.remembered(), pytest.raises(KeyboardInterrupt):
    runner.run_study(config, small_split, seeds=1, output_dir=tmp_path, progress=False)
  assert epochs_seen == [1]  # of 3: it stopped at the first epoch's end
  assert not list(tmp_path.rglob('result.json'))

  monkeypatch.setattr(engine, 'run_group', real_run_group)
  with interrupt.remembered():  # the rerun starts afresh and finishes
    records = runner.run_study(config, small_split, seeds=1, output_dir=tmp_path,
                               progress=False)
  assert len(records) == 2 and len(list(tmp_path.rglob('result.json'))) == 2
