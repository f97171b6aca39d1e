"""One live run per study folder: an advisory lock that names its holder.

Two runs writing one folder (two terminals, a SLURM array with the same flags) would
both train everything and overwrite each other's files, so a run holds an exclusive
`flock` on a file in its study folder while it runs, and a second run is refused at
once with the holder's pid and host. The kernel drops the lock when its process ends,
however it ends (kill -9 included), so a dead run's lock is free without any cleanup;
the file itself stays (deleting it would let a third run lock a file the second still
has open). Optuna's workers share one study folder by design: each holds the lock of
its own --worker_id, so two workers run side by side and a second run with a worker
id already in use is refused.
"""

import dataclasses
import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from jaxmlp.common.errors import UserError, cannot_write

LOCK_FILE = '.lock'


def lock_file(study_dir: Path, worker_id: int | None = None) -> Path:
  """The study's lock, or Optuna worker `worker_id`'s."""
  return study_dir / (LOCK_FILE if worker_id is None else f'{LOCK_FILE}-worker{worker_id}')


@dataclasses.dataclass
class StudyLock:
  """The lock of `study_dir` (of Optuna worker `worker_id` where given)."""
  study_dir: Path
  worker_id: int | None = None
  _fd: int | None = None

  @property
  def path(self) -> Path:
    return lock_file(self.study_dir, self.worker_id)

  def acquire(self) -> None:
    """Takes the lock, or raises UserError naming the live run that holds it."""
    try:
      self.study_dir.mkdir(parents=True, exist_ok=True)
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
      raise UserError(cannot_write(self.study_dir, e)) from None
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      os.close(fd)
      if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        raise UserError(f'cannot lock {self.path} ({e.strerror or e}): pass an '
                        '--output_dir on a file system that supports file locks') from None
      raise UserError(self._refusal()) from None
    holder = dict(pid=os.getpid(), host=socket.gethostname(),
                  started=time.strftime('%Y-%m-%d %H:%M:%S'))
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(holder) + '\n').encode(), 0)
    self._fd = fd

  def _refusal(self) -> str:
    try:
      holder = json.loads(self.path.read_text())
      who = f'pid {holder["pid"]} on host {holder["host"]}, since {holder["started"]}'
    except (OSError, ValueError, KeyError, TypeError):
      who = 'a process that has not written its pid yet'   # it has just taken the lock
    if self.worker_id is None:
      return (f'{self.study_dir} is in use by another run ({who}): wait for it to end, '
              'or pass another --output_dir')
    return (f'{self.study_dir} is in use by another Optuna worker with --worker_id='
            f'{self.worker_id} ({who}): give each worker its own --worker_id')

  def release(self) -> None:
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None
