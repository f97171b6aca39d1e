"""Tests for jaxmlp.data on the real MNIST files and on synthetic IDX files.

Nothing here touches the internet: every download goes to a local HTTP server
on 127.0.0.1, and an autouse fixture fails any other URL.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import gzip
import hashlib
import http.server
import os
import pathlib
import shutil
import socket
import struct
import sys
import threading
import types
import urllib.parse
import urllib.request

import numpy as np
import pytest

from jaxmlp import data
from jaxmlp.errors import UserError

_MNIST_DIR = pathlib.Path(
    os.environ.get('MNIST_DIR')
    or pathlib.Path(__file__).parents[2] / 'shared' / 'mnist')
_NAMES = tuple(data.FILES.values())


# ---------------------------------------------------------------------------
# Fixtures and helpers.


@pytest.fixture(autouse=True)
def _no_internet_and_private_cache(monkeypatch, tmp_path_factory):
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
  if not all((_MNIST_DIR / f'{n}.gz').is_file() for n in _NAMES):
    pytest.skip(f'real MNIST .gz files not found in {_MNIST_DIR}; set '
                f'MNIST_DIR')
  return _MNIST_DIR


@pytest.fixture(scope='module')
def mnist(mnist_dir) -> data.Mnist:
  return data.load_idx(str(mnist_dir), mirrors=[], cache_dir=mnist_dir)


def _idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
  """Serializes a uint8 array as IDX: magic, big-endian dims, payload."""
  if magic is None:
    magic = 0x0800 | array.ndim
  header = struct.pack(f'>I{array.ndim}I', magic, *array.shape)
  return header + np.ascontiguousarray(array, np.uint8).tobytes()


def _write(path: pathlib.Path, content: bytes, gz: bool) -> pathlib.Path:
  if gz:
    path = path.with_name(path.name + '.gz')
    content = gzip.compress(content)
  path.write_bytes(content)
  return path


def _synthetic(n_train: int = 6, n_test: int = 4, seed: int = 0):
  rng = np.random.default_rng(seed)
  return {
      'train-images-idx3-ubyte': rng.integers(0, 256, (n_train, 28, 28),
                                              dtype=np.uint8),
      'train-labels-idx1-ubyte': rng.integers(0, 10, n_train, dtype=np.uint8),
      't10k-images-idx3-ubyte': rng.integers(0, 256, (n_test, 28, 28),
                                             dtype=np.uint8),
      't10k-labels-idx1-ubyte': rng.integers(0, 10, n_test, dtype=np.uint8),
  }


def _write_dataset(folder: pathlib.Path, arrays, gz: bool = True,
                   overrides: dict[str, bytes] | None = None) -> None:
  """Writes four IDX files, with raw bytes in `overrides` replacing some."""
  folder.mkdir(parents=True, exist_ok=True)
  for name, array in arrays.items():
    content = (overrides or {}).get(name, _idx_bytes(array))
    _write(folder / name, content, gz)


def _closed_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _one_line_error(excinfo) -> str:
  message = str(excinfo.value)
  assert '\n' not in message
  assert isinstance(excinfo.value, UserError)
  return message


def _assert_same(a: data.Mnist, b: data.Mnist) -> None:
  for field in ('train_images', 'train_labels', 'test_images', 'test_labels'):
    np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


class _Handler(http.server.BaseHTTPRequestHandler):
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
def _serve(routes: dict[str, bytes]):
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
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
def _real_gz(name: str) -> bytes:
  return (_MNIST_DIR / f'{name}.gz').read_bytes()


# ---------------------------------------------------------------------------
# Real MNIST.


def test_real_mnist_shapes_dtypes_and_known_facts(mnist):
  assert mnist.train_images.shape == (60000, 784)
  assert mnist.train_images.dtype == np.uint8
  assert mnist.train_labels.shape == (60000,)
  assert mnist.train_labels.dtype == np.int32
  assert mnist.test_images.shape == (10000, 784)
  assert mnist.test_labels.dtype == np.int32
  assert mnist.train_labels[0] == 5
  assert mnist.test_labels[0] == 7
  assert np.sum(mnist.test_labels == 1) == 1135
  assert set(np.unique(mnist.train_labels)) == set(range(10))
  # Pixels cover the full byte range; the first image is not blank.
  assert mnist.train_images.max() == 255 and mnist.train_images[0].any()


def test_real_images_are_flattened_row_wise(mnist, mnist_dir):
  raw = data.read_idx(mnist_dir / 't10k-images-idx3-ubyte.gz')
  assert raw.shape == (10000, 28, 28)
  np.testing.assert_array_equal(mnist.test_images[3], raw[3].reshape(-1))
  np.testing.assert_array_equal(mnist.test_images[3, 28:56], raw[3, 1])


def test_real_split_takes_the_file_tail_as_validation(mnist):
  s = data.split(mnist, 0.2)
  assert len(s.x_train) == len(s.y_train) == 48000
  assert len(s.x_val) == len(s.y_val) == 12000
  assert len(s.x_test) == len(s.y_test) == 10000
  np.testing.assert_array_equal(s.x_val, mnist.train_images[48000:])
  np.testing.assert_array_equal(s.y_val, mnist.train_labels[48000:])
  np.testing.assert_array_equal(s.x_train, mnist.train_images[:48000])
  assert s.x_train.dtype == np.uint8


def test_read_idx_checks_real_sha256(mnist_dir):
  name = 't10k-labels-idx1-ubyte'
  labels = data.read_idx(mnist_dir / f'{name}.gz',
                         expected_sha256=data.SHA256[name])
  assert labels.shape == (10000,) and labels.dtype == np.uint8
  with pytest.raises(data.DataError, match='sha256') as e:
    data.read_idx(mnist_dir / f'{name}.gz', expected_sha256='0' * 64)
  assert name in _one_line_error(e)


def test_tampered_real_labels_fail_checksum_without_redownload(
    mnist_dir, tmp_path):
  folder = tmp_path / 'data'
  folder.mkdir()
  for name in _NAMES:
    shutil.copy(mnist_dir / f'{name}.gz', folder)
  target = 'train-labels-idx1-ubyte'
  content = bytearray(gzip.decompress(_real_gz(target)))
  content[8] = 6  # first label 5 -> 6: still a valid digit, wrong checksum
  (folder / f'{target}.gz').write_bytes(gzip.compress(bytes(content)))
  cache = tmp_path / 'cache'
  with _serve({}) as (server, url):
    with pytest.raises(data.DataError, match='sha256') as e:
      data.load_idx(str(folder), mirrors=[url + '/'], cache_dir=cache)
    assert not server.requests  # a corrupt user file is never replaced
  message = _one_line_error(e)
  assert target in message and 'checksum verification' in message
  assert not cache.exists()
  # Structure is intact, so the same files load without verification.
  loaded = data.load_idx(str(folder), verify_checksums=False, mirrors=[],
                         cache_dir=cache)
  assert loaded.train_labels[0] == 6


# ---------------------------------------------------------------------------
# Synthetic IDX parsing and corruption.


@pytest.mark.parametrize('gz', [False, True])
def test_read_idx_round_trip(tmp_path, gz):
  arrays = _synthetic()
  for name, array in arrays.items():
    path = _write(tmp_path / name, _idx_bytes(array), gz)
    got = data.read_idx(path)
    assert got.dtype == np.uint8 and got.shape == array.shape
    np.testing.assert_array_equal(got, array)


def test_gzip_is_detected_by_content_not_name(tmp_path):
  labels = np.array([3, 1, 4], np.uint8)
  raw_named_gz = tmp_path / 'labels.gz'
  raw_named_gz.write_bytes(_idx_bytes(labels))
  gz_named_raw = tmp_path / 'labels'
  gz_named_raw.write_bytes(gzip.compress(_idx_bytes(labels)))
  np.testing.assert_array_equal(data.read_idx(raw_named_gz), labels)
  np.testing.assert_array_equal(data.read_idx(gz_named_raw), labels)


def test_read_idx_sha256_is_of_decompressed_bytes(tmp_path):
  content = _idx_bytes(np.arange(10, dtype=np.uint8))
  digest = hashlib.sha256(content).hexdigest()
  for gz in (False, True):
    path = _write(tmp_path / f'l{gz}', content, gz)
    data.read_idx(path, expected_sha256=digest)


def _corrupt_cases():
  images = np.zeros((3, 28, 28), np.uint8)
  good = _idx_bytes(images)
  return {
      'bad_magic': (_idx_bytes(images, magic=0x12345678), 'bad magic number'),
      'int_type': (_idx_bytes(images, magic=0x00000c03),
                   'unsupported IDX data type 0x0c'),
      'empty': (b'', 'truncated'),
      'short_header': (good[:9], 'truncated: the IDX header needs 16'),
      'truncated_payload': (good[:-5], 'truncated: header declares 3 images '
                            'of 28x28 (2352 bytes) but file holds 2347 bytes'),
      'trailing_bytes': (good + b'\0\0', 'trailing bytes: header declares 3 '
                         'images of 28x28 (2352 bytes) but file holds 2354 '
                         'bytes (2 extra)'),
  }


@pytest.mark.parametrize('gz', [False, True])
@pytest.mark.parametrize('case', sorted(_corrupt_cases()))
def test_read_idx_rejects_corruption(tmp_path, case, gz):
  content, expected = _corrupt_cases()[case]
  path = _write(tmp_path / 'file', content, gz)
  with pytest.raises(data.DataError) as e:
    data.read_idx(path)
  message = _one_line_error(e)
  assert expected in message
  assert str(path) in message


def test_read_idx_rejects_truncated_label_payload(tmp_path):
  path = _write(tmp_path / 'labels', _idx_bytes(np.ones(5, np.uint8))[:-1],
                gz=False)
  with pytest.raises(data.DataError,
                     match=r'header declares 5 labels \(5 bytes\) but file '
                     r'holds 4 bytes'):
    data.read_idx(path)


def test_read_idx_rejects_truncated_gzip(tmp_path):
  compressed = gzip.compress(_idx_bytes(np.zeros((3, 28, 28), np.uint8)))
  path = tmp_path / 'images.gz'
  path.write_bytes(compressed[:len(compressed) // 2])
  with pytest.raises(data.DataError, match='truncated gzip') as e:
    data.read_idx(path)
  assert str(path) in _one_line_error(e)


def test_read_idx_rejects_gzip_with_bad_crc(tmp_path):
  compressed = bytearray(gzip.compress(_idx_bytes(np.ones(7, np.uint8))))
  compressed[-8] ^= 0xff  # CRC32 of the trailer
  path = tmp_path / 'labels.gz'
  path.write_bytes(bytes(compressed))
  with pytest.raises(data.DataError, match='corrupt gzip'):
    data.read_idx(path)


def test_read_idx_missing_file_is_data_error(tmp_path):
  with pytest.raises(data.DataError, match='cannot read'):
    data.read_idx(tmp_path / 'nope')


# ---------------------------------------------------------------------------
# load_idx on synthetic folders.


@pytest.mark.parametrize('gz', [False, True])
def test_load_idx_synthetic_without_checksums(tmp_path, gz):
  arrays = _synthetic()
  _write_dataset(tmp_path / 'd', arrays, gz=gz)
  m = data.load_idx(str(tmp_path / 'd'), verify_checksums=False, mirrors=[],
                    cache_dir=tmp_path / 'cache')
  assert m.train_images.shape == (6, 784) and m.train_images.dtype == np.uint8
  assert m.test_images.shape == (4, 784)
  assert m.train_labels.dtype == m.test_labels.dtype == np.int32
  np.testing.assert_array_equal(
      m.train_images, arrays['train-images-idx3-ubyte'].reshape(6, -1))
  np.testing.assert_array_equal(m.test_labels,
                                arrays['t10k-labels-idx1-ubyte'])
  assert not (tmp_path / 'cache').exists()


def test_load_idx_prefers_raw_over_gz(tmp_path):
  arrays = _synthetic()
  folder = tmp_path / 'd'
  _write_dataset(folder, arrays, gz=False)
  # Broken .gz siblings must be ignored because the raw files win.
  for name in _NAMES:
    (folder / f'{name}.gz').write_bytes(b'\x1f\x8bgarbage')
  m = data.load_idx(str(folder), verify_checksums=False, mirrors=[],
                    cache_dir=tmp_path / 'cache')
  np.testing.assert_array_equal(m.train_labels,
                                arrays['train-labels-idx1-ubyte'])


def test_load_idx_label_out_of_range_is_reported_before_checksum(tmp_path):
  arrays = _synthetic()
  arrays['train-labels-idx1-ubyte'][2] = 12
  _write_dataset(tmp_path / 'd', arrays)
  for verify in (False, True):
    with pytest.raises(data.DataError,
                       match='label 12 out of range 0..9 at row 2') as e:
      data.load_idx(str(tmp_path / 'd'), verify_checksums=verify, mirrors=[],
                    cache_dir=tmp_path / 'cache')
    assert 'train-labels-idx1-ubyte' in _one_line_error(e)


def test_load_idx_count_mismatch(tmp_path):
  arrays = _synthetic()
  arrays['t10k-labels-idx1-ubyte'] = arrays['t10k-labels-idx1-ubyte'][:3]
  _write_dataset(tmp_path / 'd', arrays)
  with pytest.raises(data.DataError, match='test split has 4 images but 3 '
                     'labels') as e:
    data.load_idx(str(tmp_path / 'd'), verify_checksums=False, mirrors=[],
                  cache_dir=tmp_path / 'cache')
  _one_line_error(e)


def test_load_idx_with_checksums_wants_mnist_counts(tmp_path):
  _write_dataset(tmp_path / 'd', _synthetic())
  with pytest.raises(data.DataError,
                     match='train split has 6 examples but MNIST has 60000'):
    data.load_idx(str(tmp_path / 'd'), mirrors=[],
                  cache_dir=tmp_path / 'cache')


def test_load_idx_rejects_swapped_files(tmp_path):
  arrays = _synthetic()
  labels = _idx_bytes(arrays['train-labels-idx1-ubyte'])
  _write_dataset(tmp_path / 'd', arrays,
                 overrides={'train-images-idx3-ubyte': labels})
  with pytest.raises(data.DataError, match='holds labels, but an image file'):
    data.load_idx(str(tmp_path / 'd'), verify_checksums=False, mirrors=[],
                  cache_dir=tmp_path / 'cache')


def test_load_idx_rejects_wrong_image_size(tmp_path):
  arrays = _synthetic()
  arrays['t10k-images-idx3-ubyte'] = np.zeros((4, 32, 32), np.uint8)
  _write_dataset(tmp_path / 'd', arrays)
  with pytest.raises(data.DataError, match='images are 32x32'):
    data.load_idx(str(tmp_path / 'd'), verify_checksums=False, mirrors=[],
                  cache_dir=tmp_path / 'cache')


def test_load_idx_corrupt_user_file_names_it(tmp_path):
  arrays = _synthetic()
  broken = _idx_bytes(arrays['t10k-images-idx3-ubyte'], magic=0x00000802)
  _write_dataset(tmp_path / 'd', arrays,
                 overrides={'t10k-images-idx3-ubyte': broken})
  with pytest.raises(data.DataError, match='bad magic number 0x00000802') as e:
    data.load_idx(str(tmp_path / 'd'), verify_checksums=False,
                  mirrors=[f'http://127.0.0.1:{_closed_port()}/'],
                  cache_dir=tmp_path / 'cache')
  assert 't10k-images-idx3-ubyte.gz' in _one_line_error(e)


# ---------------------------------------------------------------------------
# Directory resolution.


def test_resolve_data_dir_precedence(monkeypatch, tmp_path):
  monkeypatch.setenv('MNIST_DIR', str(tmp_path / 'env'))
  assert data.resolve_data_dir(str(tmp_path / 'flag')) == tmp_path / 'flag'
  assert data.resolve_data_dir(None) == tmp_path / 'env'
  monkeypatch.delenv('MNIST_DIR')
  assert data.resolve_data_dir(None) == data.default_cache_dir()


def test_default_cache_dir(monkeypatch, tmp_path):
  monkeypatch.setenv('JAXMLP_CACHE_DIR', str(tmp_path / 'override'))
  assert data.default_cache_dir() == tmp_path / 'override'
  monkeypatch.delenv('JAXMLP_CACHE_DIR')
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
  assert data.default_cache_dir() == tmp_path / 'xdg' / 'jaxmlp' / 'mnist'
  monkeypatch.delenv('XDG_CACHE_HOME')
  monkeypatch.setenv('HOME', str(tmp_path / 'home'))
  assert data.default_cache_dir() == (
      tmp_path / 'home' / '.cache' / 'jaxmlp' / 'mnist')


# ---------------------------------------------------------------------------
# Downloads.


def test_offline_error_is_one_actionable_line(tmp_path):
  (tmp_path / 'data').mkdir()
  with pytest.raises(data.DataError) as e:
    data.load_idx(str(tmp_path / 'data'), cache_dir=tmp_path / 'cache',
                  mirrors=[f'http://127.0.0.1:{_closed_port()}/'],
                  timeout_s=5)
  message = _one_line_error(e)
  for name in _NAMES:
    assert name in message
  assert '--data_dir' in message and 'MNIST_DIR' in message
  assert str(tmp_path / 'data') in message
  assert [p.name for p in (tmp_path / 'cache').iterdir()] == []


def _mnist_routes(prefix: str) -> dict[str, bytes]:
  return {f'{prefix}/{n}.gz': _real_gz(n) for n in _NAMES}


def test_download_into_cache_matches_shared_copy(mnist, tmp_path):
  cache = tmp_path / 'cache'
  with _serve(_mnist_routes('/m')) as (server, url):
    got = data.load_idx(str(tmp_path / 'empty'), mirrors=[url + '/m/'],
                        cache_dir=cache)
    assert len(server.requests) == 4
    _assert_same(got, mnist)
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        f'{n}.gz' for n in _NAMES)
    # The second load is served from the cache, with no requests.
    _assert_same(data.load_idx(str(tmp_path / 'empty'),
                               mirrors=[url + '/m/'], cache_dir=cache), mnist)
    assert len(server.requests) == 4


def test_download_only_fetches_missing_files(mnist, mnist_dir, tmp_path):
  cache = tmp_path / 'cache'
  cache.mkdir()
  for name in _NAMES[1:]:
    shutil.copy(mnist_dir / f'{name}.gz', cache)
  with _serve(_mnist_routes('/m')) as (server, url):
    got = data.load_idx(str(tmp_path / 'empty'), mirrors=[url + '/m'],
                        cache_dir=cache)
  assert server.requests == [f'/m/{_NAMES[0]}.gz']
  _assert_same(got, mnist)


def test_second_mirror_used_when_first_404s(mnist, tmp_path, monkeypatch):
  monkeypatch.delenv('MNIST_DIR', raising=False)  # so data_dir=None -> cache
  # The first mirror serves only one file; the rest come from the second.
  routes = _mnist_routes('/good')
  routes['/bad/t10k-labels-idx1-ubyte.gz'] = _real_gz('t10k-labels-idx1-ubyte')
  with _serve(routes) as (server, url):
    got = data.load_idx(None, mirrors=[url + '/bad/', url + '/good/'],
                        cache_dir=tmp_path / 'cache')
  assert '/bad/train-images-idx3-ubyte.gz' in server.requests
  assert '/good/train-images-idx3-ubyte.gz' in server.requests
  assert '/good/t10k-labels-idx1-ubyte.gz' not in server.requests
  _assert_same(got, mnist)


@pytest.mark.parametrize('damage', ['truncated', 'tampered'])
def test_bad_download_leaves_nothing_in_cache(mnist_dir, tmp_path, damage):
  routes = _mnist_routes('/m')
  name = 'train-labels-idx1-ubyte'
  if damage == 'truncated':
    routes[f'/m/{name}.gz'] = _real_gz(name)[:1000]
    expected = 'truncated gzip'
  else:
    content = bytearray(gzip.decompress(_real_gz(name)))
    content[-1] = (content[-1] + 1) % 10
    routes[f'/m/{name}.gz'] = gzip.compress(bytes(content))
    expected = 'sha256'
  cache = tmp_path / 'cache'
  with _serve(routes) as (_, url):
    with pytest.raises(data.DataError) as e:
      data.load_idx(str(tmp_path / 'empty'), mirrors=[url + '/m/'],
                    cache_dir=cache)
  message = _one_line_error(e)
  assert expected in message and '--data_dir' in message
  assert f'{url}/m/{name}.gz' in message
  leftovers = sorted(p.name for p in cache.iterdir())
  assert f'{name}.gz' not in leftovers
  assert not [p for p in leftovers if p.endswith('.partial')]


def test_dropped_connection_leaves_nothing_in_cache(mnist_dir, tmp_path):
  """A server that closes before Content-Length is reached.

  urllib returns the short body without complaint, so only the verification
  of the downloaded file stands between it and the cache.
  """
  partial = _real_gz('train-images-idx3-ubyte')[:50000]

  class ShortHandler(_Handler):

    def do_GET(self):  # pylint: disable=invalid-name
      self.send_response(200)
      self.send_header('Content-Length', '9719438')
      self.end_headers()
      self.wfile.write(partial)
      self.close_connection = True

  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), ShortHandler)
  server.daemon_threads = True
  server.routes, server.requests = {}, []
  thread = threading.Thread(target=server.serve_forever,
                            kwargs={'poll_interval': 0.05}, daemon=True)
  thread.start()
  try:
    with pytest.raises(data.DataError, match='truncated gzip') as e:
      data.load_idx(str(tmp_path / 'empty'), cache_dir=tmp_path / 'cache',
                    mirrors=[f'http://127.0.0.1:{server.server_address[1]}/'],
                    timeout_s=5)
  finally:
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
  _one_line_error(e)
  assert list((tmp_path / 'cache').iterdir()) == []


# ---------------------------------------------------------------------------
# split().


def _tiny(n: int = 10) -> data.Mnist:
  images = np.arange(n * 784, dtype=np.uint32).astype(np.uint8).reshape(n, 784)
  labels = (np.arange(n) % 10).astype(np.int32)
  return data.Mnist(images, labels, images[:3], labels[:3])


def test_split_boundary_matches_keras():
  m = _tiny(10)
  s = data.split(m, 0.25)  # int(10 * 0.75) == 7
  np.testing.assert_array_equal(s.y_train, np.arange(7))
  np.testing.assert_array_equal(s.y_val, np.arange(7, 10))
  np.testing.assert_array_equal(s.x_val, m.train_images[7:])
  assert s.x_train.dtype == np.uint8
  np.testing.assert_array_equal(s.x_test, m.test_images)
  s = data.split(m, 0.0)
  assert len(s.x_train) == 10 and len(s.x_val) == 0
  s = data.split(_tiny(7), 0.5)  # int(3.5) == 3: validation gets the odd row
  assert len(s.y_train) == 3 and len(s.y_val) == 4


@pytest.mark.parametrize('bad', [-0.1, 1.0, 1.5, float('nan')])
def test_split_rejects_bad_fraction(bad):
  with pytest.raises(data.DataError, match='validation_split') as e:
    data.split(_tiny(), bad)
  _one_line_error(e)


def test_split_rejects_fraction_leaving_no_training_rows():
  with pytest.raises(data.DataError, match='leaves no training rows'):
    data.split(_tiny(10), 0.95)


# ---------------------------------------------------------------------------
# Sources.


def test_load_dispatches_idx(mnist, mnist_dir):
  _assert_same(data.load('idx', str(mnist_dir)), mnist)


def test_unknown_source():
  with pytest.raises(data.DataError) as e:
    data.load('keras')
  message = _one_line_error(e)
  assert "'keras'" in message and "'idx'" in message and "'tfds'" in message


def test_load_tfds_without_package(monkeypatch):
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', None)
  with pytest.raises(data.DataError) as e:
    data.load_tfds()
  message = _one_line_error(e)
  assert "pip install 'jaxmlp[tfds]'" in message
  assert '--data_source=idx' in message


def test_load_tfds_when_its_dependency_is_missing(monkeypatch):
  real_import = builtins.__import__

  def fake_import(name, *args, **kwargs):
    if name == 'tensorflow_datasets':
      raise ModuleNotFoundError("No module named 'tensorflow'",
                                name='tensorflow')
    return real_import(name, *args, **kwargs)

  monkeypatch.delitem(sys.modules, 'tensorflow_datasets', raising=False)
  monkeypatch.setattr(builtins, '__import__', fake_import)
  with pytest.raises(data.DataError, match="tensorflow.*pip install"):
    data.load_tfds()


def test_load_tfds_converts_with_a_fake_tfds(monkeypatch):
  """Checks the conversion without TensorFlow, using tfds' documented API."""
  rng = np.random.default_rng(1)
  train = (rng.integers(0, 256, (60000, 28, 28, 1), dtype=np.uint8),
           rng.integers(0, 10, 60000).astype(np.int64))
  test = (rng.integers(0, 256, (10000, 28, 28, 1), dtype=np.uint8),
          rng.integers(0, 10, 10000).astype(np.int64))
  calls = []

  def fake_load(name, **kwargs):
    calls.append((name, kwargs))
    return [train, test]

  fake = types.ModuleType('tensorflow_datasets')
  fake.load = fake_load
  fake.as_numpy = lambda tree: tree
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', fake)
  m = data.load('tfds', '/some/dir')
  assert calls == [('mnist', {'split': ['train', 'test'], 'batch_size': -1,
                              'as_supervised': True,
                              'data_dir': '/some/dir'})]
  assert m.train_images.shape == (60000, 784)
  assert m.train_images.dtype == np.uint8
  assert m.test_labels.dtype == np.int32
  np.testing.assert_array_equal(m.train_images[5], train[0][5].reshape(-1))
  np.testing.assert_array_equal(m.test_labels, test[1])


def test_load_tfds_failure_is_data_error(monkeypatch):
  fake = types.ModuleType('tensorflow_datasets')

  def fake_load(name, **kwargs):
    raise RuntimeError('Failed to download\nsomething')

  fake.load = fake_load
  fake.as_numpy = lambda tree: tree
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', fake)
  with pytest.raises(data.DataError, match='could not load mnist') as e:
    data.load_tfds()
  _one_line_error(e)


def test_data_error_is_user_error_and_single_line():
  error = data.DataError('first\nsecond  third')
  assert isinstance(error, UserError)
  assert str(error) == 'first second third'
