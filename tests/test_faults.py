"""Fault injection: a run stopped at every stage (kill -9 or SIGTERM, through the
deterministic hook of engine/faults.py), its checkpoint files then damaged, reruns to
the results of a run that nothing stopped; a second run into a live study folder is
refused at once while the first finishes intact.

One tiny study (3 programs of 3 epochs, a 16-unit layer, 500 rows) is run once cleanly
and then through a chain of faults in one folder: each rerun continues what the fault
before left, so every fault is survived by the same code a user's rerun takes, and the
final results are compared with the clean run's, file by file.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxmlp.common import faults

TINY = ['--study=baseline', '--epochs=3', '--seeds=1', '--data_limit=500',
        "--config.hidden_sizes=(16,)", '--config.batch_size=(100, 250, 500)',
        '--progress=false',
        '--tensorboard=false', '--checkpoint_every=1', '--nodata_checksums']
TIMING = ('fit_time_s', 'compile_time_s')
PROGRAM_PY = Path(__file__).resolve().parents[1] / 'jaxmlp' / 'engine' / 'program.py'


def _command(out: Path) -> list[str]:
  return [sys.executable, '-m', 'jaxmlp.launch', *TINY, f'--output_dir={out}']


def _env(fault: str | None) -> dict[str, str]:
  env = {k: v for k, v in os.environ.items() if k != faults.ENV}
  if fault:
    env[faults.ENV] = fault
  return env


def _run(out: Path, fault: str | None = None) -> subprocess.CompletedProcess:
  return subprocess.run(_command(out), capture_output=True, text=True, timeout=600,
                        env=_env(fault))


def _results(study_dir: Path) -> dict[str, object]:
  """Every member's result.json (timings aside) and weight file, by member."""
  out = {}
  for path in sorted((study_dir / 'members').glob('*/result.json')):
    record = json.loads(path.read_text())
    out[path.parent.name] = ({k: v for k, v in record.items() if k not in TIMING},
                             (path.parent / 'params.msgpack').read_bytes())
  return out


@pytest.fixture(scope='module')
def clean(tmp_path_factory):
  """The study run to its end, paused (SIGSTOP) after its first epoch while a second
  run into the same folder is refused; (study folder, results, the refusal)."""
  out = tmp_path_factory.mktemp('clean')
  first = subprocess.Popen(_command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=_env('epoch:1:STOP'))
  _, status = os.waitpid(first.pid, os.WUNTRACED)   # until it stops itself
  assert os.WIFSTOPPED(status)
  started = time.monotonic()
  second = _run(out)
  refused_in = time.monotonic() - started
  os.kill(first.pid, signal.SIGCONT)
  stdout, stderr = first.communicate(timeout=600)
  assert first.returncode == 0, stderr
  assert 'report: ' in stdout
  return out / 'baseline', _results(out / 'baseline'), (first.pid, second, refused_in)


def test_a_second_run_into_a_live_folder_is_refused_and_the_first_finishes(clean):
  study_dir, results, (pid, second, refused_in) = clean
  assert second.returncode == 2 and 'Traceback' not in second.stderr
  line = second.stderr.strip().splitlines()[-1]
  assert line.startswith(f'error: {study_dir} is in use by another run (pid {pid} on host '
                         f'{socket.gethostname()}, since ')
  assert line.endswith('): wait for it to end, or pass another --output_dir')
  assert refused_in < 60      # data loaded, lock refused: seconds, not a training run
  assert len(results) == 3 and (study_dir / 'report.md').is_file()


def _has_compile_point() -> bool:
  return "faults.passed('compile')" in PROGRAM_PY.read_text()


def _truncate_checkpoints(study_dir: Path) -> int:
  files = [p for p in (study_dir / 'checkpoints').rglob('*') if p.is_file()]
  for p in files:
    p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 3])
  return len(files)


# The chain, in a run's order. Epochs and saves count within one process.
CHAIN = [
    ('data:1:TERM', 'asked to stop once the data is loaded'),
    ('data:1:KILL', 'killed once the data is loaded'),
    ('compile:1:KILL', 'killed right after the first compile'),
    ('compile:1:TERM', 'asked to stop right after the first compile'),
    ('epoch:1:KILL', 'killed after an epoch (its checkpoint written), then every '
                     'checkpoint file truncated'),
    ('save:1:KILL', 'killed while its first checkpoint is being written'),
    ('save:1:TERM', 'asked to stop while a checkpoint is being written'),
    ('epoch:1:TERM', 'asked to stop after an epoch: saves, exits 143'),
    ('program:1:TERM', 'asked to stop between programs'),
    ('program:1:KILL', 'killed between programs'),
    ('report:1:TERM', 'asked to stop while writing the report'),
    ('report:1:KILL', 'killed while writing the report'),
]


def test_every_fault_in_a_chain_reruns_to_the_clean_results(clean, tmp_path):
  study_dir = tmp_path / 'baseline'
  survived = []
  for fault, what in CHAIN:
    if fault.startswith('compile') and not _has_compile_point():
      continue   # engine/program.py does not mark its compile yet
    stopped = _run(tmp_path, fault)
    assert 'Traceback' not in stopped.stderr, (fault, stopped.stderr)
    if fault.endswith('KILL'):
      assert stopped.returncode == -signal.SIGKILL, (fault, what, stopped.stderr)
    else:
      assert stopped.returncode == 143, (fault, what, stopped.stderr)
      assert stopped.stderr.strip().splitlines()[-1].startswith('stopped by SIGTERM'), \
          stopped.stderr
    if survived and survived[-1] == 'epoch:1:KILL':   # the run after the truncation
      [line] = [l for l in stopped.stdout.splitlines() if 'is damaged' in l]
      assert f'{study_dir}/checkpoints/members/' in line and 'moved it to ' in line
      assert line.endswith('and starting the program over')
    if fault == 'epoch:1:KILL':
      assert _truncate_checkpoints(study_dir) >= 10
    survived.append(fault)
  rerun = _run(tmp_path)
  assert rerun.returncode == 0, rerun.stderr
  assert _results(study_dir) == clean[1]      # every member, every weight, identical
  assert (study_dir / 'report.md').is_file()
  assert not (study_dir / 'checkpoints').exists() and not list(tmp_path.rglob('*.tmp'))
  # The truncated checkpoint was moved aside, whole, never deleted.
  assert list((study_dir / 'checkpoints.damaged').rglob('*.damaged-*'))
  print(f'\nfaults tried: {len(survived)}, survived: {len(survived)}, results identical')
  assert len(survived) == len(CHAIN) - (0 if _has_compile_point() else 2)


def test_an_output_folder_that_is_a_file_is_one_line(tmp_path):
  (tmp_path / 'out').write_text('not a folder')
  result = subprocess.run(_command(tmp_path / 'out'),
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines() == [
      f'error: {tmp_path / "out"} is a file, not a folder: pass another --output_dir, or '
      'move that file']


OPTUNA = ['--study=finetune_optuna', '--data_limit=500', '--epochs=2',
          '--config.hidden_sizes=(16, 16)', '--config.optuna.slots=2',
          '--config.optuna.trials=4', '--config.final_epochs=1', '--progress=false',
          '--tensorboard=false', '--cpu_devices=1']


def test_two_optuna_workers_share_a_study_folder(tmp_path):
  """Worker 0 pauses (SIGSTOP) after its first trial, holding its lock; worker 1
  (--search_only) runs into the same folder beside it and finishes the budget."""
  command = [sys.executable, '-m', 'jaxmlp.launch', *OPTUNA, f'--output_dir={tmp_path}']
  zero = subprocess.Popen([*command, '--worker_id=0'], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=_env('trial:1:STOP'))
  _, status = os.waitpid(zero.pid, os.WUNTRACED)
  assert os.WIFSTOPPED(status)
  one = subprocess.run([*command, '--worker_id=1', '--search_only'], capture_output=True,
                       text=True, timeout=600, env=_env(None))
  os.kill(zero.pid, signal.SIGCONT)
  _, stderr = zero.communicate(timeout=600)
  assert one.returncode == 0, one.stderr
  assert zero.returncode == 0, stderr
  study_dir = tmp_path / 'finetune_optuna'
  workers = {json.loads(p.read_text())['worker'].rpartition(':')[2]
             for p in (study_dir / 'trials').glob('*/result.json')}
  assert str(zero.pid) in workers and len(workers) == 2   # each wrote its own trials
  assert (study_dir / 'report.md').is_file()
