"""The exception types for mistakes a user can fix, and the one line for an output
path that cannot be written."""

import errno
from pathlib import Path


class UserError(Exception):
  """Bad input or environment; the CLI prints it as one line and exits 2. The message
  is forced onto one line here, so the Python API raises the CLI's very text (messages
  echo what a user typed, which may hold newlines)."""

  def __init__(self, message: str = ''):
    super().__init__(' '.join(str(message).split()))


class DataError(UserError):
  """A data problem the user can fix (its messages often embed OS or URL errors)."""


def cannot_write(path: Path, error: OSError, flag: str = '--output_dir') -> str:
  """One line for an output path that cannot be written: what is wrong, and the fix."""
  why = error.strerror or str(error)
  if error.errno in (errno.ENOTDIR, errno.EEXIST):
    blocking = next((p for p in [path, *path.parents] if p.exists() and not p.is_dir()),
                    path)
    return f'{blocking} is a file, not a folder: pass another {flag}, or move that file'
  if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
    return f'cannot write in {path} ({why}): pass a writable {flag}'
  if error.errno == errno.ENOENT:
    gone = [p for p in [path, *path.parents] if not p.exists()]
    if gone:
      return (f'{gone[-1]} does not exist (deleted while this wrote in it, its disk '
              f'unmounted, or a folder that cannot be made): check that path, then rerun '
              f'the same command, or pass another {flag}')
  if error.errno in (errno.ENOSPC, errno.EDQUOT):
    return (f'cannot write {path}: the disk is full ({why}); files written before are '
            f'kept: free space and rerun the same command to continue, or pass a {flag} '
            'on another disk')
  return f'cannot write {path} ({why}): check that path, or pass another {flag}'
