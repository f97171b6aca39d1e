"""Tests for jaxmlp.mnist_files: where MNIST is looked for and downloaded to.

Downloads are driven through `data.load_idx`, the way training asks for them,
and go to a local HTTP server on 127.0.0.1 only.
"""

from __future__ import annotations

import gzip
import http.server
import shutil
import threading

import numpy as np
import pytest

from jaxmlp.data import mnist as data
from jaxmlp.data import mnist_files
from jaxmlp.common.errors import DataError

import idx_helpers


# ---------------------------------------------------------------------------
# Directory resolution.


def test_resolve_data_dir_precedence(monkeypatch, tmp_path):
  monkeypatch.setenv('MNIST_DIR', str(tmp_path / 'env'))
  assert mnist_files.resolve_data_dir(
      str(tmp_path / 'flag')) == tmp_path / 'flag'
  assert mnist_files.resolve_data_dir(None) == tmp_path / 'env'
  monkeypatch.delenv('MNIST_DIR')
  assert mnist_files.resolve_data_dir(None) == mnist_files.default_cache_dir()


def test_default_cache_dir(monkeypatch, tmp_path):
  monkeypatch.setenv('JAXMLP_CACHE_DIR', str(tmp_path / 'override'))
  assert mnist_files.default_cache_dir() == tmp_path / 'override'
  monkeypatch.delenv('JAXMLP_CACHE_DIR')
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
  assert mnist_files.default_cache_dir() == (
      tmp_path / 'xdg' / 'jaxmlp' / 'mnist')
  monkeypatch.delenv('XDG_CACHE_HOME')
  monkeypatch.setenv('HOME', str(tmp_path / 'home'))
  assert mnist_files.default_cache_dir() == (
      tmp_path / 'home' / '.cache' / 'jaxmlp' / 'mnist')


# ---------------------------------------------------------------------------
# Downloads.


def test_offline_error_is_one_actionable_line(tmp_path):
  (tmp_path / 'data').mkdir()
  with pytest.raises(DataError) as e:
    data.load_idx(str(tmp_path / 'data'), cache_dir=tmp_path / 'cache',
                  mirrors=[f'http://127.0.0.1:{idx_helpers.closed_port()}/'],
                  timeout_s=5)
  message = idx_helpers.one_line_error(e)
  for name in idx_helpers.NAMES:
    assert name in message
  assert '--data_dir' in message and 'MNIST_DIR' in message
  assert str(tmp_path / 'data') in message
  assert [p.name for p in (tmp_path / 'cache').iterdir()] == []


def _mnist_routes(prefix: str) -> dict[str, bytes]:
  return {f'{prefix}/{n}.gz': idx_helpers.real_gz(n)
          for n in idx_helpers.NAMES}


def test_download_into_cache_matches_shared_copy(mnist, tmp_path):
  cache = tmp_path / 'cache'
  with idx_helpers.serve(_mnist_routes('/m')) as (server, url):
    got = data.load_idx(str(tmp_path / 'empty'), mirrors=[url + '/m/'],
                        cache_dir=cache)
    assert len(server.requests) == 4
    idx_helpers.assert_same(got, mnist)
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        f'{n}.gz' for n in idx_helpers.NAMES)
    # The second load is served from the cache, with no requests.
    idx_helpers.assert_same(
        data.load_idx(str(tmp_path / 'empty'), mirrors=[url + '/m/'],
                      cache_dir=cache), mnist)
    assert len(server.requests) == 4


def test_download_only_fetches_missing_files(mnist, mnist_dir, tmp_path):
  cache = tmp_path / 'cache'
  cache.mkdir()
  for name in idx_helpers.NAMES[1:]:
    shutil.copy(mnist_dir / f'{name}.gz', cache)
  with idx_helpers.serve(_mnist_routes('/m')) as (server, url):
    got = data.load_idx(str(tmp_path / 'empty'), mirrors=[url + '/m'],
                        cache_dir=cache)
  assert server.requests == [f'/m/{idx_helpers.NAMES[0]}.gz']
  idx_helpers.assert_same(got, mnist)


def test_second_mirror_used_when_first_404s(mnist, tmp_path, monkeypatch):
  monkeypatch.delenv('MNIST_DIR', raising=False)  # so data_dir=None -> cache
  # The first mirror serves only one file; the rest come from the second.
  routes = _mnist_routes('/good')
  routes['/bad/t10k-labels-idx1-ubyte.gz'] = idx_helpers.real_gz(
      't10k-labels-idx1-ubyte')
  with idx_helpers.serve(routes) as (server, url):
    got = data.load_idx(None, mirrors=[url + '/bad/', url + '/good/'],
                        cache_dir=tmp_path / 'cache')
  assert '/bad/train-images-idx3-ubyte.gz' in server.requests
  assert '/good/train-images-idx3-ubyte.gz' in server.requests
  assert '/good/t10k-labels-idx1-ubyte.gz' not in server.requests
  idx_helpers.assert_same(got, mnist)


@pytest.mark.parametrize('damage', ['truncated', 'tampered'])
def test_bad_download_leaves_nothing_in_cache(mnist_dir, tmp_path, damage):
  routes = _mnist_routes('/m')
  name = 'train-labels-idx1-ubyte'
  if damage == 'truncated':
    routes[f'/m/{name}.gz'] = idx_helpers.real_gz(name)[:1000]
    expected = 'truncated gzip'
  else:
    content = bytearray(gzip.decompress(idx_helpers.real_gz(name)))
    content[-1] = (content[-1] + 1) % 10
    routes[f'/m/{name}.gz'] = gzip.compress(bytes(content))
    expected = 'sha256'
  cache = tmp_path / 'cache'
  with idx_helpers.serve(routes) as (_, url):
    with pytest.raises(DataError) as e:
      data.load_idx(str(tmp_path / 'empty'), mirrors=[url + '/m/'],
                    cache_dir=cache)
  message = idx_helpers.one_line_error(e)
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
  partial = idx_helpers.real_gz('train-images-idx3-ubyte')[:50000]

  class ShortHandler(idx_helpers.Handler):

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
    with pytest.raises(DataError, match='truncated gzip') as e:
      data.load_idx(str(tmp_path / 'empty'), cache_dir=tmp_path / 'cache',
                    mirrors=[f'http://127.0.0.1:{server.server_address[1]}/'],
                    timeout_s=5)
  finally:
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
  idx_helpers.one_line_error(e)
  assert list((tmp_path / 'cache').iterdir()) == []


# A data folder that is a file, and one that lacks a single file.


def test_a_data_folder_that_is_a_file_is_one_line(tmp_path):
  (tmp_path / 'mnist').write_text('')
  with pytest.raises(DataError) as e:
    data.load_idx(str(tmp_path / 'mnist'), cache_dir=tmp_path / 'cache', mirrors=[])
  assert idx_helpers.one_line_error(e) == (
      f'the MNIST folder {tmp_path / "mnist"} is a file, not a folder: pass '
      '--data_dir=FOLDER (or set MNIST_DIR=FOLDER) naming the folder that holds the four '
      'MNIST IDX files')


def test_a_missing_test_labels_file_is_named(mnist_dir, tmp_path):
  folder = tmp_path / 'data'
  folder.mkdir()
  for name in idx_helpers.NAMES:
    if name != 't10k-labels-idx1-ubyte':
      shutil.copy(mnist_dir / f'{name}.gz', folder)
  with pytest.raises(DataError) as e:
    data.load_idx(str(folder), cache_dir=tmp_path / 'cache',
                  mirrors=[f'http://127.0.0.1:{idx_helpers.closed_port()}/'], timeout_s=5)
  message = idx_helpers.one_line_error(e)
  assert message.startswith(f'{folder} lacks t10k-labels-idx1-ubyte[.gz] (it holds the '
                            'other MNIST files)')
  assert message.endswith(f'put t10k-labels-idx1-ubyte[.gz] in {folder}')
  assert 'train-images' not in message   # the download of that one file failed, nothing else


def test_a_folder_lacking_one_file_takes_it_from_the_cache(mnist, mnist_dir, tmp_path):
  folder, cache = tmp_path / 'data', tmp_path / 'cache'
  folder.mkdir()
  cache.mkdir()
  for name in idx_helpers.NAMES:
    shutil.copy(mnist_dir / f'{name}.gz',
                cache if name == 't10k-labels-idx1-ubyte' else folder)
  loaded = data.load_idx(str(folder), cache_dir=cache, mirrors=[])
  np.testing.assert_array_equal(loaded.test_labels, mnist.test_labels)
