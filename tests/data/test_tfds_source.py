"""Tests for jaxmlp.tfds_source with a missing, broken or fake tfds."""

from __future__ import annotations

import builtins
import sys
import types

import numpy as np
import pytest

from jaxmlp.data import mnist as data
from jaxmlp.data import tfds as tfds_source
from jaxmlp.common.errors import DataError

import idx_helpers


def test_load_tfds_without_package(monkeypatch):
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', None)
  with pytest.raises(DataError) as e:
    tfds_source.load_tfds()
  message = idx_helpers.one_line_error(e)
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
  with pytest.raises(DataError, match="tensorflow.*pip install"):
    tfds_source.load_tfds()


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
  with pytest.raises(DataError, match='could not load mnist') as e:
    tfds_source.load_tfds()
  idx_helpers.one_line_error(e)
