"""One live run per study folder (per Optuna worker id), a dead holder's lock free at
once, and output paths that cannot be written refused in one line."""

import errno
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from jaxmlp import pipeline
from jaxmlp.store import lock
from jaxmlp.common.errors import UserError
from jaxmlp.studies import study


def test_a_second_holder_is_refused_with_the_first_ones_pid_and_host(tmp_path):
  first = lock.StudyLock(tmp_path / 'study')
  first.acquire()
  with pytest.raises(UserError) as refused:
    lock.StudyLock(tmp_path / 'study').acquire()
  assert str(refused.value).startswith(
      f'{tmp_path / "study"} is in use by another run (pid {os.getpid()} on host '
      f'{socket.gethostname()}, since ')
  first.release()
  again = lock.StudyLock(tmp_path / 'study')
  again.acquire()       # free once released
  again.release()


def test_a_dead_holders_lock_is_taken_over_without_cleanup(tmp_path):
  holder = textwrap.dedent(f'''
      import os, signal
      from pathlib import Path
      from jaxmlp.store import lock
      lock.StudyLock(Path({str(tmp_path / 'study')!r})).acquire()
      os.kill(os.getpid(), signal.SIGKILL)   # dies holding it, as kill -9 leaves it
  ''')
  died = subprocess.run([sys.executable, '-c', holder], capture_output=True, timeout=60)
  assert died.returncode == -signal.SIGKILL
  assert (tmp_path / 'study' / lock.LOCK_FILE).is_file()   # the file stays...
  taken = lock.StudyLock(tmp_path / 'study')
  taken.acquire()                                          # ...and its lock is free
  taken.release()


def test_optuna_workers_each_hold_their_own_id(tmp_path):
  config = study.make_config(name='s', search='optuna')
  zero = pipeline.study_lock(config, tmp_path, worker_id=0)
  one = pipeline.study_lock(config, tmp_path, worker_id=1)
  zero.acquire()
  one.acquire()           # two workers share the study folder
  with pytest.raises(UserError) as refused:
    pipeline.study_lock(config, tmp_path, worker_id=1).acquire()
  assert 'in use by another Optuna worker with --worker_id=1 (pid ' in str(refused.value)
  assert str(refused.value).endswith('give each worker its own --worker_id')
  zero.release()
  one.release()
  grid = study.make_config(name='s')
  assert pipeline.study_lock(grid, tmp_path, worker_id=3).path == tmp_path / 's' / '.lock'


@pytest.mark.parametrize('code, expected', [
    (errno.EACCES, 'cannot write in {p} (Permission denied): pass a writable --output_dir'),
    (errno.EROFS, 'cannot write in {p} (Read-only file system): pass a writable '
                  '--output_dir'),
    (errno.ENOSPC, 'cannot write {p}: the disk is full (No space left on device); files '
                   'written before are kept: free space and rerun the same command to '
                   'continue, or pass a --output_dir on another disk'),
])
def test_an_unwritable_output_folder_is_one_line(tmp_path, monkeypatch, code, expected):
  def refuse(*args, **kwargs):
    raise OSError(code, os.strerror(code))

  monkeypatch.setattr(lock.Path, 'mkdir', refuse)   # root ignores file modes: simulate
  with pytest.raises(UserError) as e:
    lock.StudyLock(tmp_path / 'study').acquire()
  assert str(e.value) == expected.format(p=tmp_path / 'study')


def test_an_output_folder_under_a_file_is_one_line(tmp_path):
  (tmp_path / 'out').write_text('')
  with pytest.raises(UserError) as e:
    lock.StudyLock(tmp_path / 'out' / 'study').acquire()
  assert str(e.value) == (f'{tmp_path / "out"} is a file, not a folder: pass another '
                          '--output_dir, or move that file')


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into read-only folders')
def test_a_read_only_output_folder_is_one_line(tmp_path):
  (tmp_path / 'ro').mkdir(mode=0o555)
  with pytest.raises(UserError, match='pass a writable --output_dir'):
    lock.StudyLock(tmp_path / 'ro' / 'study').acquire()
