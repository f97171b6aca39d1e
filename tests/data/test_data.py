"""Tests for jaxmlp.data on the real MNIST files and on synthetic IDX files.

Nothing here touches the internet: `load_idx` gets no mirrors or only local
ones, and the autouse fixture from idx_helpers fails any other URL.
"""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from jaxmlp.data import mnist as data
from jaxmlp.common.errors import UserError

import idx_helpers


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


def test_tampered_real_labels_fail_checksum_without_redownload(
    mnist_dir, tmp_path):
  folder = tmp_path / 'data'
  folder.mkdir()
  for name in idx_helpers.NAMES:
    shutil.copy(mnist_dir / f'{name}.gz', folder)
  target = 'train-labels-idx1-ubyte'
  content = bytearray(gzip.decompress(idx_helpers.real_gz(target)))
  content[8] = 6  # first label 5 -> 6: still a valid digit, wrong checksum
  (folder / f'{target}.gz').write_bytes(gzip.compress(bytes(content)))
  cache = tmp_path / 'cache'
  with idx_helpers.serve({}) as (server, url):
    with pytest.raises(data.DataError, match='sha256') as e:
      data.load_idx(str(folder), mirrors=[url + '/'], cache_dir=cache)
    assert not server.requests  # a corrupt user file is never replaced
  message = idx_helpers.one_line_error(e)
  assert target in message and 'checksum verification' in message
  assert not cache.exists()
  # Structure is intact, so the same files load without verification.
  loaded = data.load_idx(str(folder), verify_checksums=False, mirrors=[],
                         cache_dir=cache)
  assert loaded.train_labels[0] == 6


# ---------------------------------------------------------------------------
# load_idx on synthetic folders.


@pytest.mark.parametrize('gz', [False, True])
def test_load_idx_synthetic_without_checksums(tmp_path, gz):
  arrays = idx_helpers.synthetic()
  idx_helpers.write_dataset(tmp_path / 'd', arrays, gz=gz)
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
  arrays = idx_helpers.synthetic()
  folder = tmp_path / 'd'
  idx_helpers.write_dataset(folder, arrays, gz=False)
  # Broken .gz siblings must be ignored because the raw files win.
  for name in idx_helpers.NAMES:
    (folder / f'{name}.gz').write_bytes(b'\x1f\x8bgarbage')
  m = data.load_idx(str(folder), verify_checksums=False, mirrors=[],
                    cache_dir=tmp_path / 'cache')
  np.testing.assert_array_equal(m.train_labels,
                                arrays['train-labels-idx1-ubyte'])


def test_load_idx_label_out_of_range_is_reported_before_checksum(tmp_path):
  arrays = idx_helpers.synthetic()
  arrays['train-labels-idx1-ubyte'][2] = 12
  idx_helpers.write_dataset(tmp_path / 'd', arrays)
  for verify in (False, True):
    with pytest.raises(data.DataError,
                       match='label 12 out of range 0..9 at row 2') as e:
      data.load_idx(str(tmp_path / 'd'), verify_checksums=verify, mirrors=[],
                    cache_dir=tmp_path / 'cache')
    assert 'train-labels-idx1-ubyte' in idx_helpers.one_line_error(e)


def test_load_idx_count_mismatch(tmp_path):
  arrays = idx_helpers.synthetic()
  arrays['t10k-labels-idx1-ubyte'] = arrays['t10k-labels-idx1-ubyte'][:3]
  idx_helpers.write_dataset(tmp_path / 'd', arrays)
  with pytest.raises(data.DataError, match='test split has 4 images but 3 '
                     'labels') as e:
    data.load_idx(str(tmp_path / 'd'), verify_checksums=False, mirrors=[],
                  cache_dir=tmp_path / 'cache')
  idx_helpers.one_line_error(e)


def test_load_idx_with_checksums_wants_mnist_counts(tmp_path):
  idx_helpers.write_dataset(tmp_path / 'd', idx_helpers.synthetic())
  with pytest.raises(data.DataError,
                     match='train split has 6 examples but MNIST has 60000'):
    data.load_idx(str(tmp_path / 'd'), mirrors=[],
                  cache_dir=tmp_path / 'cache')


def test_load_idx_rejects_swapped_files(tmp_path):
  arrays = idx_helpers.synthetic()
  labels = idx_helpers.idx_bytes(arrays['train-labels-idx1-ubyte'])
  idx_helpers.write_dataset(tmp_path / 'd', arrays,
                            overrides={'train-images-idx3-ubyte': labels})
  with pytest.raises(data.DataError, match='holds labels, but an image file'):
    data.load_idx(str(tmp_path / 'd'), verify_checksums=False, mirrors=[],
                  cache_dir=tmp_path / 'cache')


def test_load_idx_rejects_wrong_image_size(tmp_path):
  arrays = idx_helpers.synthetic()
  arrays['t10k-images-idx3-ubyte'] = np.zeros((4, 32, 32), np.uint8)
  idx_helpers.write_dataset(tmp_path / 'd', arrays)
  with pytest.raises(data.DataError, match='images are 32x32'):
    data.load_idx(str(tmp_path / 'd'), verify_checksums=False, mirrors=[],
                  cache_dir=tmp_path / 'cache')


def test_load_idx_corrupt_user_file_names_it(tmp_path):
  arrays = idx_helpers.synthetic()
  broken = idx_helpers.idx_bytes(arrays['t10k-images-idx3-ubyte'],
                                 magic=0x00000802)
  idx_helpers.write_dataset(tmp_path / 'd', arrays,
                            overrides={'t10k-images-idx3-ubyte': broken})
  with pytest.raises(data.DataError, match='bad magic number 0x00000802') as e:
    data.load_idx(str(tmp_path / 'd'), verify_checksums=False,
                  mirrors=[f'http://127.0.0.1:{idx_helpers.closed_port()}/'],
                  cache_dir=tmp_path / 'cache')
  assert 't10k-images-idx3-ubyte.gz' in idx_helpers.one_line_error(e)


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
  idx_helpers.one_line_error(e)


def test_split_rejects_fraction_leaving_no_training_rows():
  with pytest.raises(data.DataError, match='leaves no training rows'):
    data.split(_tiny(10), 0.95)


# ---------------------------------------------------------------------------
# Sources.


def test_load_dispatches_idx(mnist, mnist_dir):
  idx_helpers.assert_same(data.load('idx', str(mnist_dir)), mnist)


def test_unknown_source():
  with pytest.raises(data.DataError) as e:
    data.load('keras')
  message = idx_helpers.one_line_error(e)
  assert "'keras'" in message and "'idx'" in message and "'tfds'" in message


def test_data_error_is_user_error_and_single_line():
  error = data.DataError('first\nsecond  third')
  assert isinstance(error, UserError)
  assert str(error) == 'first second third'
