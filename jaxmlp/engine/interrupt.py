"""Ctrl-C (SIGINT) and SIGTERM stop a run cleanly, even where Python swallows them.

Inside a program's epoch loop (`deferred()`), the first signal is only recorded: the
loop saves a checkpoint at the end of the epoch and stops; a second Ctrl-C stops at
once. Elsewhere a signal raises `Stopped` where it lands. Either way the request is
remembered: Python drops an exception raised inside a gc callback or a `__del__` (jax
runs a gc callback on every collection), so the runner also checks between epochs and
programs. Exit codes follow the shell: 130 for SIGINT, 143 for SIGTERM.
"""

import contextlib
import signal
import sys
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
  """A stop request; `where` says what was saved (filled in by whoever saved it)."""

  def __init__(self, signum: int, where: str = ''):
    super().__init__(signal.Signals(signum).name)
    self.signum, self.where = signum, where

  @property
  def exit_code(self) -> int:
    return 128 + self.signum


_requested: list[int] = []     # signals received, in order
_deferring = threading.Event()


def _on_signal(signum, frame):
  del frame
  _requested.append(signum)
  if _deferring.is_set() and len(_requested) == 1:
    return  # the epoch loop saves and stops at the epoch's end
  raise Stopped(signum)


def _quiet_when_requested(previous_hook):
  def hook(unraisable):
    # The swallowed stop is handled by raise_if_requested; its traceback is noise.
    if _requested and issubclass(unraisable.exc_type, KeyboardInterrupt):
      return
    previous_hook(unraisable)
  return hook


@contextlib.contextmanager
def remembered():
  """Within: SIGINT and SIGTERM raise Stopped (or are deferred) and are remembered.

  Call from the main thread; the previous handlers and unraisable hook come back after.
  """
  _requested.clear()
  _deferring.clear()
  previous = {s: signal.signal(s, _on_signal) for s in SIGNALS}
  previous_hook = sys.unraisablehook
  sys.unraisablehook = _quiet_when_requested(previous_hook)
  try:
    yield
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
    sys.unraisablehook = previous_hook
    _requested.clear()   # a request belongs to the run it stopped


@contextlib.contextmanager
def deferred():
  """Within: the first signal is recorded, not raised (see `requested`)."""
  _deferring.set()
  try:
    yield
  finally:
    _deferring.clear()


def requested() -> int | None:
  """The first stop signal received so far, if any."""
  return _requested[0] if _requested else None


def raise_if_requested(where: str = '') -> None:
  """Raises Stopped if a signal came, wherever its first raise went."""
  if _requested:
    raise Stopped(_requested[0], where)
