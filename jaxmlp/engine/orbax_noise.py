"""What orbax and tensorstore print from their own threads about a failure that
checkpoint.py already turns into one line: silenced, so that line is all a user sees."""

import logging
import os
import sys


def ignore_late_reads() -> None:
  """After a read of a damaged step fails, tensorstore's reads of the step's other
  arrays still finish, and report to orbax's event loop, closed by then: Python
  would print that RuntimeError as a traceback, of no meaning to anyone."""
  previous = sys.unraisablehook
  if getattr(previous, 'ignores_late_reads', False):
    return

  def hook(unraisable):
    if not (isinstance(unraisable.exc_value, RuntimeError) and
            str(unraisable.exc_value) == 'Event loop is closed'):
      previous(unraisable)

  hook.ignores_late_reads = True
  sys.unraisablehook = hook


class _OrbaxErrors(logging.Filter):
  def filter(self, record: logging.LogRecord) -> bool:
    return not (record.levelno >= logging.WARNING and f'{os.sep}orbax{os.sep}' in record.pathname)


def silence() -> None:
  """orbax logs a failed background write, with its traceback, from its own threads,
  then raises it where the write is waited for: there checkpoint.py turns
  it into one line (or re-raises what is no write error), so the log only buries it."""
  logger = logging.getLogger('absl')
  if not any(isinstance(f, _OrbaxErrors) for f in logger.filters):
    logger.addFilter(_OrbaxErrors())
  ignore_late_reads()
