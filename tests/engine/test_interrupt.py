"""A Ctrl-C that Python swallows (in a gc callback or a __del__) is still acted on."""

import gc
import signal
import sys

import pytest

from jaxmlp.engine import interrupt


@pytest.fixture
def reported(monkeypatch):
  """The exception types that reach the unraisable hook in place before a run."""
  seen = []
  monkeypatch.setattr(sys, 'unraisablehook', lambda u: seen.append(u.exc_type))
  return seen


@pytest.fixture
def python_ctrl_c():
  """Python's own SIGINT handler, whatever an earlier test in this process left."""
  previous = signal.signal(signal.SIGINT, signal.default_int_handler)
  yield
  signal.signal(signal.SIGINT, previous)


def test_a_swallowed_ctrl_c_is_lost_without_the_handler(reported, swallowed_ctrl_c,
                                                         python_ctrl_c):
  del python_ctrl_c
  swallowed_ctrl_c()  # no exception reaches here: what made a study run on and exit 0
  interrupt.raise_if_requested()
  assert reported == [KeyboardInterrupt]


def test_a_swallowed_ctrl_c_is_raised_at_the_next_check(reported, swallowed_ctrl_c):
  with interrupt.remembered():
    interrupt.raise_if_requested()  # nothing requested yet
    swallowed_ctrl_c()
    with pytest.raises(KeyboardInterrupt):
      interrupt.raise_if_requested()
    with pytest.raises(KeyboardInterrupt):  # and at every check after
      interrupt.raise_if_requested()
  assert reported == []  # no "Exception ignored ... Traceback" for it on stderr


def test_a_swallowed_ctrl_c_in_a_gc_callback_is_raised(reported):
  calls = []

  def callback(phase, info):
    if phase == 'start' and not calls:
      calls.append(phase)
      signal.raise_signal(signal.SIGINT)

  gc.callbacks.append(callback)
  try:
    with interrupt.remembered():
      gc.collect()
      with pytest.raises(KeyboardInterrupt):
        interrupt.raise_if_requested()
  finally:
    gc.callbacks.remove(callback)
  assert calls and reported == []


def test_ctrl_c_still_raises_where_it_lands_and_the_old_handler_comes_back():
  before = signal.getsignal(signal.SIGINT)
  with interrupt.remembered():
    with pytest.raises(KeyboardInterrupt):
      signal.raise_signal(signal.SIGINT)
  assert signal.getsignal(signal.SIGINT) is before
  interrupt.raise_if_requested()  # nor does the request outlive its run
  with interrupt.remembered():  # a new run starts with nothing requested
    interrupt.raise_if_requested()


def test_other_exceptions_in_del_are_still_reported(reported, swallowed_ctrl_c):
  class Broken:
    def __del__(self):
      raise ValueError('a real bug')

  with interrupt.remembered():
    swallowed_ctrl_c()
    Broken()
    with pytest.raises(KeyboardInterrupt):
      interrupt.raise_if_requested()
  assert reported == [ValueError]


def test_inside_an_epoch_loop_the_first_signal_waits_and_a_second_stops_at_once():
  with interrupt.remembered():
    with interrupt.deferred():
      signal.raise_signal(signal.SIGTERM)   # recorded: the loop saves, then stops
      assert interrupt.requested() == signal.SIGTERM
      with pytest.raises(interrupt.Stopped) as second:
        signal.raise_signal(signal.SIGINT)  # impatient: at once
    assert second.value.signum == signal.SIGINT and second.value.exit_code == 130
    with pytest.raises(interrupt.Stopped) as first:
      interrupt.raise_if_requested('saved a checkpoint at epoch 3 of 9')
    assert first.value.exit_code == 143 and str(first.value) == 'SIGTERM'
    assert first.value.where == 'saved a checkpoint at epoch 3 of 9'


def test_sigterm_outside_an_epoch_loop_stops_where_it_lands():
  with interrupt.remembered():
    with pytest.raises(interrupt.Stopped) as stopped:
      signal.raise_signal(signal.SIGTERM)
  assert stopped.value.exit_code == 143
