"""Tests for jaxmlp.idx on the real MNIST files and on synthetic IDX files."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest

from jaxmlp.data import idx
from jaxmlp.common.errors import DataError

import idx_helpers


# ---------------------------------------------------------------------------
# Real MNIST.


def test_read_idx_checks_real_sha256(mnist_dir):
  name = 't10k-labels-idx1-ubyte'
  labels = idx.read_idx(mnist_dir / f'{name}.gz',
                        expected_sha256=idx.SHA256[name])
  assert labels.shape == (10000,) and labels.dtype == np.uint8
  with pytest.raises(DataError, match='sha256') as e:
    idx.read_idx(mnist_dir / f'{name}.gz', expected_sha256='0' * 64)
  assert name in idx_helpers.one_line_error(e)


# ---------------------------------------------------------------------------
# Synthetic IDX parsing and corruption.


@pytest.mark.parametrize('gz', [False, True])
def test_read_idx_round_trip(tmp_path, gz):
  arrays = idx_helpers.synthetic()
  for name, array in arrays.items():
    path = idx_helpers.write(tmp_path / name, idx_helpers.idx_bytes(array), gz)
    got = idx.read_idx(path)
    assert got.dtype == np.uint8 and got.shape == array.shape
    np.testing.assert_array_equal(got, array)


def test_gzip_is_detected_by_content_not_name(tmp_path):
  labels = np.array([3, 1, 4], np.uint8)
  raw_named_gz = tmp_path / 'labels.gz'
  raw_named_gz.write_bytes(idx_helpers.idx_bytes(labels))
  gz_named_raw = tmp_path / 'labels'
  gz_named_raw.write_bytes(gzip.compress(idx_helpers.idx_bytes(labels)))
  np.testing.assert_array_equal(idx.read_idx(raw_named_gz), labels)
  np.testing.assert_array_equal(idx.read_idx(gz_named_raw), labels)


def test_read_idx_sha256_is_of_decompressed_bytes(tmp_path):
  content = idx_helpers.idx_bytes(np.arange(10, dtype=np.uint8))
  digest = hashlib.sha256(content).hexdigest()
  for gz in (False, True):
    path = idx_helpers.write(tmp_path / f'l{gz}', content, gz)
    idx.read_idx(path, expected_sha256=digest)


def _corrupt_cases():
  images = np.zeros((3, 28, 28), np.uint8)
  good = idx_helpers.idx_bytes(images)
  return {
      'bad_magic': (idx_helpers.idx_bytes(images, magic=0x12345678),
                    'bad magic number'),
      'int_type': (idx_helpers.idx_bytes(images, magic=0x00000c03),
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
  path = idx_helpers.write(tmp_path / 'file', content, gz)
  with pytest.raises(DataError) as e:
    idx.read_idx(path)
  message = idx_helpers.one_line_error(e)
  assert expected in message
  assert str(path) in message


def test_read_idx_rejects_truncated_label_payload(tmp_path):
  path = idx_helpers.write(tmp_path / 'labels',
                           idx_helpers.idx_bytes(np.ones(5, np.uint8))[:-1],
                           gz=False)
  with pytest.raises(DataError,
                     match=r'header declares 5 labels \(5 bytes\) but file '
                     r'holds 4 bytes'):
    idx.read_idx(path)


def test_read_idx_rejects_truncated_gzip(tmp_path):
  compressed = gzip.compress(
      idx_helpers.idx_bytes(np.zeros((3, 28, 28), np.uint8)))
  path = tmp_path / 'images.gz'
  path.write_bytes(compressed[:len(compressed) // 2])
  with pytest.raises(DataError, match='truncated gzip') as e:
    idx.read_idx(path)
  assert str(path) in idx_helpers.one_line_error(e)


def test_read_idx_rejects_gzip_with_bad_crc(tmp_path):
  compressed = bytearray(
      gzip.compress(idx_helpers.idx_bytes(np.ones(7, np.uint8))))
  compressed[-8] ^= 0xff  # CRC32 of the trailer
  path = tmp_path / 'labels.gz'
  path.write_bytes(bytes(compressed))
  with pytest.raises(DataError, match='corrupt gzip'):
    idx.read_idx(path)


def test_read_idx_missing_file_is_data_error(tmp_path):
  with pytest.raises(DataError, match='cannot read'):
    idx.read_idx(tmp_path / 'nope')
