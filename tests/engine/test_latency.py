"""Latency objectives: measured once per structure on this device, then read from the
study's latency.json, so every later ranking of the study sees the same numbers."""

import json

import pytest

from jaxmlp.engine import latency


def test_a_structure_is_measured_once_and_read_back(tmp_path, monkeypatch):
  latency.use_study(tmp_path)
  first = latency.of('latency_ms', (8, 4))
  batch = latency.of('batch_latency_ms', (8, 4))
  assert 0 < first < 1e3 and 0 < batch < 1e3
  stored = json.loads((tmp_path / latency.FILE).read_text())
  assert stored['structures']['8x4'] == {'latency_ms': first, 'batch_latency_ms': batch}
  assert stored['batches'] == {'latency_ms': 1, 'batch_latency_ms': 1024}

  def never(*args, **kwargs):
    raise AssertionError('measured again')
  monkeypatch.setattr(latency, 'measure', never)
  latency.use_study(tmp_path)   # a resumed run, or read_pareto afterwards
  assert latency.of('latency_ms', (8, 4)) == first
  with pytest.raises(AssertionError, match='measured again'):
    latency.of('latency_ms', (16,))   # a structure it has not seen


def test_a_damaged_file_is_measured_again(tmp_path):
  (tmp_path / latency.FILE).write_text('{not json')
  latency.use_study(tmp_path)
  assert latency.of('latency_ms', (4,)) > 0
  assert '4' in json.loads((tmp_path / latency.FILE).read_text())['structures']


def test_a_larger_batch_takes_longer():
  assert latency.measure((256, 256), 1024, repeats=9) > latency.measure((256, 256), 1,
                                                                        repeats=9)
