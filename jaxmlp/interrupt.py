"""Ctrl-C that always stops a run, even where Python swallows the KeyboardInterrupt.

Python drops an exception raised inside a gc callback or a `__del__` and prints it as
"Exception ignored ... Traceback"; jax runs a gc callback on every collection, so a
Ctrl-C landing there used to let a study run to its end and exit 0. The handler below
also remembers the request, and the runner checks it between epochs and before it
writes a result.
"""

import contextlib
import signal
import sys
import threading

_requested = threading.Event()


def _on_sigint(signum, frame):
  del signum, frame
  _requested.set()
  raise KeyboardInterrupt


def _quiet_when_requested(previous_hook):
  def hook(unraisable):
    # The swallowed interrupt is handled by raise_if_requested; its traceback is noise.
    if _requested.is_set() and issubclass(unraisable.exc_type, KeyboardInterrupt):
      return
    previous_hook(unraisable)
  return hook


@contextlib.contextmanager
def remembered():
  """Within: SIGINT raises KeyboardInterrupt as usual and is also remembered.

  Call from the main thread; the previous handler and unraisable hook come back after.
  """
  _requested.clear()
  previous_handler = signal.signal(signal.SIGINT, _on_sigint)
  previous_hook = sys.unraisablehook
  sys.unraisablehook = _quiet_when_requested(previous_hook)
  try:
    yield
  finally:
    signal.signal(signal.SIGINT, previous_handler)
    sys.unraisablehook = previous_hook


def raise_if_requested() -> None:
  """Raises KeyboardInterrupt if Ctrl-C came, wherever its first raise went."""
  if _requested.is_set():
    raise KeyboardInterrupt
