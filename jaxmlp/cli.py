"""What every command line of jaxmlp shares: quiet logs, one-line errors, and
terminal streams that cannot stop a run."""

import errno
import logging
import os
import sys

from absl import flags
from absl import logging as absl_logging


def quiet_logs() -> None:
  """WARNING and above, unless --verbosity was given; call after flags are parsed."""
  # jax logs at INFO that it found no TPU on every CPU or GPU machine.
  logging.getLogger('jax._src.xla_bridge').setLevel(logging.WARNING)
  if not flags.FLAGS['verbosity'].present:
    absl_logging.set_verbosity(absl_logging.WARNING)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, with a mistake in a flag reported as one line and exit code 2
  (absl's own exits 1 with 'FATAL Flags parsing error'); --help exits 0."""
  try:
    return flags.FLAGS(argv)
  except SystemExit as e:   # absl exits 1 after printing --help: asking is no failure
    asked = any(a in ('-h', '--help', '--helpshort', '--helpfull') for a in argv)
    sys.exit(0 if asked else e.code)
  except flags.Error as e:
    fail(str(e))
  return []


def fail(message: str, code: int = 2) -> None:
  """A user's mistake: one line on stderr, no traceback, a non-zero exit."""
  print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
  sys.exit(code)


def _to_devnull(stream) -> None:
  """Points `stream`'s file descriptor at os.devnull: what it still holds, and what it
  is given, goes nowhere."""
  null = os.open(os.devnull, os.O_WRONLY)
  os.dup2(null, stream.fileno())
  os.close(null)


class _Diverting:
  """A text stream that, once a write to it fails (a closed pipe, a full disk), sends
  the rest to os.devnull: the terminal is not the output folder, and losing it must not
  stop a run or lose its files."""

  def __init__(self, stream):
    self._stream = stream

  def _divert(self) -> None:
    try:
      _to_devnull(self._stream)
      self._stream.flush()   # what was buffered now goes nowhere
    except (OSError, ValueError):
      pass

  def write(self, text):
    try:
      return self._stream.write(text)
    except OSError:
      self._divert()
      return len(text)

  def flush(self):
    try:
      self._stream.flush()
    except OSError:
      self._divert()

  def __getattr__(self, name):
    return getattr(self._stream, name)


def guard_streams() -> None:
  """Makes stdout and stderr divert to os.devnull when they stop taking writes."""
  for name in ('stdout', 'stderr'):
    stream = getattr(sys, name)
    if stream is not None and not isinstance(stream, _Diverting):
      setattr(sys, name, _Diverting(stream))


def write_stdout(content: bytes) -> None:
  """`content` to stdout, where it is the command's output: a reader that stopped
  early (| head) ends the command quietly; any other failure is one line."""
  try:
    sys.stdout.buffer.write(content)
    sys.stdout.buffer.flush()
  except OSError as e:
    _to_devnull(sys.stdout)   # nothing left to flush at exit
    if e.errno == errno.EPIPE:
      sys.exit(0)
    fail(f'cannot write the table to stdout ({e.strerror or e}): pass --output=FILE')
