"""Shared helpers for the data tests: synthetic IDX files and a local server.

Nothing in the data tests touches the internet: every download goes to a
local HTTP server on 127.0.0.1, and `no_internet_and_private_cache` (autouse
in each test module that imports it) fails any other URL.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import http.server
import os
import pathlib
import socket
import struct
import threading

import numpy as np

from jaxmlp.data import mnist as data
from jaxmlp.data import idx
from jaxmlp.common.errors import UserError

MNIST_DIR = pathlib.Path(
    os.environ.get('MNIST_DIR')
    or pathlib.Path(__file__).parents[2] / 'shared' / 'mnist')
NAMES = tuple(idx.FILES.values())


# ---------------------------------------------------------------------------
# Helpers.


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
  """Serializes a uint8 array as IDX: magic, big-endian dims, payload."""
  if magic is None:
    magic = 0x0800 | array.ndim
  header = struct.pack(f'>I{array.ndim}I', magic, *array.shape)
  return header + np.ascontiguousarray(array, np.uint8).tobytes()


def write(path: pathlib.Path, content: bytes, gz: bool) -> pathlib.Path:
  if gz:
    path = path.with_name(path.name + '.gz')
    content = gzip.compress(content)
  path.write_bytes(content)
  return path


def synthetic(n_train: int = 6, n_test: int = 4, seed: int = 0):
  rng = np.random.default_rng(seed)
  return {
      'train-images-idx3-ubyte': rng.integers(0, 256, (n_train, 28, 28),
                                              dtype=np.uint8),
      'train-labels-idx1-ubyte': rng.integers(0, 10, n_train, dtype=np.uint8),
      't10k-images-idx3-ubyte': rng.integers(0, 256, (n_test, 28, 28),
                                             dtype=np.uint8),
      't10k-labels-idx1-ubyte': rng.integers(0, 10, n_test, dtype=np.uint8),
  }


def write_dataset(folder: pathlib.Path, arrays, gz: bool = True,
                  overrides: dict[str, bytes] | None = None) -> None:
  """Writes four IDX files, with raw bytes in `overrides` replacing some."""
  folder.mkdir(parents=True, exist_ok=True)
  for name, array in arrays.items():
    content = (overrides or {}).get(name, idx_bytes(array))
    write(folder / name, content, gz)


def closed_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def one_line_error(excinfo) -> str:
  message = str(excinfo.value)
  assert '\n' not in message
  assert isinstance(excinfo.value, UserError)
  return message


def assert_same(a: data.Mnist, b: data.Mnist) -> None:
  for field in ('train_images', 'train_labels', 'test_images', 'test_labels'):
    np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


class Handler(http.server.BaseHTTPRequestHandler):
  """Serves bytes from `server.routes` ({path: bytes}); 404 for the rest."""

  timeout = 10

  def do_GET(self):  # pylint: disable=invalid-name
    body = self.server.routes.get(self.path)
    self.server.requests.append(self.path)
    if body is None:
      self.send_error(404)
      return
    self.send_response(200)
    self.send_header('Content-Length', str(len(body)))
    self.end_headers()
    self.wfile.write(body)

  def log_message(self, *args):  # keep pytest output clean
    pass


@contextlib.contextmanager
def serve(routes: dict[str, bytes]):
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
  server.daemon_threads = True
  server.routes = routes
  server.requests = []
  thread = threading.Thread(target=server.serve_forever,
                            kwargs={'poll_interval': 0.05}, daemon=True)
  thread.start()
  try:
    yield server, f'http://127.0.0.1:{server.server_address[1]}'
  finally:
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@functools.lru_cache(maxsize=None)
def real_gz(name: str) -> bytes:
  return (MNIST_DIR / f'{name}.gz').read_bytes()
