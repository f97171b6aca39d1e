"""Shared fixtures: the real MNIST files and small slices of them.

MNIST comes from $MNIST_DIR, else the verified copy beside the checkout
(../shared/mnist), else jaxmlp's cache (downloaded there on first use).
"""

import os
import pathlib
import signal
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from jaxmlp.data import mnist as data

import idx_helpers


def _share_compiled_programs() -> None:
  """Most tests run the command line as a subprocess, which compiles the same few
  programs again and again: JAX's persistent compilation cache lets each compile once.
  One cache folder per test process (xdist worker), so no two processes write it at
  once; a cached executable is the one the compiler would build, so numbers are equal."""
  if 'JAX_COMPILATION_CACHE_DIR' in os.environ:
    return
  worker = os.environ.get('PYTEST_XDIST_WORKER', 'main')
  folder = Path(os.environ.get('TMPDIR', '/tmp')) / f'jaxmlp-tests-{os.getuid()}' / worker
  os.environ['XDG_CACHE_HOME'] = str(folder / 'xdg')   # where jaxmlp's own default lives
  os.environ['JAX_COMPILATION_CACHE_DIR'] = str(folder / 'jax_cache')
  os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'


_share_compiled_programs()

_BESIDE_CHECKOUT = Path(__file__).resolve().parents[2] / 'shared' / 'mnist'
if not os.environ.get('MNIST_DIR') and _BESIDE_CHECKOUT.is_dir():
  os.environ['MNIST_DIR'] = str(_BESIDE_CHECKOUT)
elif os.environ.get('MNIST_DIR'):
  # Some tests run the command line from a temporary folder.
  os.environ['MNIST_DIR'] = str(Path(os.environ['MNIST_DIR']).resolve())


@pytest.fixture(scope='session')
def mnist_split() -> data.Split:
  """The real split, 48000 / 12000 / 10000 rows."""
  return data.split(data.load_idx())


@pytest.fixture(scope='session')
def small_split(mnist_split) -> data.Split:
  """A small slice of real MNIST for numeric checks that must run fast."""
  s = mnist_split
  return data.Split(s.x_train[:2000], s.y_train[:2000], s.x_val[:1000], s.y_val[:1000],
                    s.x_test[:1000], s.y_test[:1000])


class _CtrlCWhileCollected:
  """Python drops any exception raised in __del__, as in the gc callback jax runs."""

  def __del__(self):
    signal.raise_signal(signal.SIGINT)


@pytest.fixture
def swallowed_ctrl_c():
  """Delivers a Ctrl-C whose KeyboardInterrupt Python swallows."""
  def deliver():
    _CtrlCWhileCollected()  # collected at once
  return deliver


# ---------------------------------------------------------------------------
# Every test stays off the internet and out of the user's cache; real MNIST files.


@pytest.fixture(autouse=True)
def no_internet_and_private_cache(monkeypatch, tmp_path_factory):
  """Fails any non-local URL and keeps tests out of the user's real cache."""
  real_urlopen = urllib.request.urlopen

  def guarded(url, *args, **kwargs):
    host = urllib.parse.urlsplit(getattr(url, 'full_url', url)).hostname
    assert host == '127.0.0.1', f'test tried to reach {url}'
    return real_urlopen(url, *args, **kwargs)

  monkeypatch.setattr(urllib.request, 'urlopen', guarded)
  monkeypatch.setenv('JAXMLP_CACHE_DIR',
                     str(tmp_path_factory.mktemp('default_cache')))


@pytest.fixture(scope='module')
def mnist_dir() -> pathlib.Path:
  if not all((idx_helpers.MNIST_DIR / f'{n}.gz').is_file() for n in idx_helpers.NAMES):
    pytest.skip(f'real MNIST .gz files not found in {idx_helpers.MNIST_DIR}; set '
                f'MNIST_DIR')
  return idx_helpers.MNIST_DIR


@pytest.fixture(scope='module')
def mnist(mnist_dir) -> data.Mnist:  # pylint: disable=redefined-outer-name
  return data.load_idx(str(mnist_dir), mirrors=[], cache_dir=mnist_dir)


@pytest.fixture(scope='session')
def init_run(tmp_path_factory) -> Path:
  """`--study=init --seeds=3 --epochs=5` run as a user runs it, from another folder;
  its study folder (SGD from N(10) kernels: every seed predicts one class)."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  cwd = tmp_path_factory.mktemp('init_run')
  result = subprocess.run([sys.executable, '-m', 'jaxmlp.launch', '--study=init', '--seeds=3',
                           '--epochs=5', '--output_dir=out'], cwd=cwd, capture_output=True,
                          text=True, timeout=600)
  assert result.returncode == 0, result.stderr
  return cwd / 'out' / 'init'
