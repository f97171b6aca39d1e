"""Several processes under jax.distributed: only process 0 reads or writes the output
folder; the others train their share and learn from process 0 what is on disk."""

import os
import re
import socket
import subprocess
import sys

ARGS = ['--study=dropout', '--epochs=2', '--seeds=2', '--data_limit=1000',
        '--cpu_devices=1', '--progress=false']


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _two_processes(tmp_path, port) -> list[subprocess.CompletedProcess]:
  processes = []
  for process_id in (0, 1):
    env = {**os.environ, 'JAXMLP_DISTRIBUTED': '1', 'JAX_PLATFORMS': 'cpu',
           'JAX_COORDINATOR_ADDRESS': f'127.0.0.1:{port}', 'JAXMLP_NUM_PROCESSES': '2',
           'JAXMLP_PROCESS_ID': str(process_id)}
    env.pop('XLA_FLAGS', None)
    processes.append(subprocess.Popen(
        [sys.executable, '-m', 'jaxmlp.launch', *ARGS,
         f'--output_dir={tmp_path}/out{process_id}'],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  done = []
  for p in processes:
    stdout, stderr = p.communicate(timeout=300)
    done.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
  return done


def test_two_processes_write_one_folder_from_process_0_and_resume_from_it(tmp_path):
  first = _two_processes(tmp_path, _free_port())
  for p in first:
    assert p.returncode == 0, p.stderr
  study_dir = tmp_path / 'out0' / 'dropout'
  assert (study_dir / 'report.md').is_file()
  assert len(list(study_dir.glob('members/*/result.json'))) == 4
  assert not (tmp_path / 'out1').exists()   # process 1 never touched its folder
  assert 'report: ' in first[0].stdout and 'report: ' not in first[1].stdout
  # Both trained the same programs (each process runs every program's shards).
  # Both ran every program and hold every result (timings aside).
  # Compile figures are each process's own: its seconds, and whether its compile cache
  # held the programs (only one process writes an entry).
  trained = [[re.sub(r'[\d.]+ s( \(cached\))?', 'T s', l) for l in p.stdout.splitlines()
              if 'compiled in' in l] for p in first]
  assert len(trained[0]) == 2 and trained[0] == trained[1]

  again = _two_processes(tmp_path, _free_port())
  for p in again:
    assert p.returncode == 0, p.stderr
    # Process 1 has no files: it knows the study is complete from process 0.
    assert p.stdout.count('complete on disk, skipped') == 2
  assert not (tmp_path / 'out1').exists()
