"""Latency objectives: measured once per structure on this device, then read from the
study's latency.json, so every later ranking of the study sees the same numbers."""

import json

import pytest

from jaxmlp.engine import latency


@pytest.fixture(autouse=True)
def _no_study_after():
  """Later tests in this process must not write into a folder pytest removes."""
  yield
  latency._file = None   # pylint: disable=protected-access
  latency._measured.clear()   # pylint: disable=protected-access


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


def test_a_worker_takes_what_another_measured_and_keeps_it(tmp_path, monkeypatch):
  """Two workers of one study: the second reads the first's number before measuring,
  and writing its own keeps the first's entries."""
  latency.use_study(tmp_path)
  first = latency.of('latency_ms', (8,))
  latency._measured.clear()   # another process, which read the file before it existed
  latency._measured['16'] = {'latency_ms': 1.0, 'batch_latency_ms': 2.0}
  monkeypatch.setattr(latency, 'measure', lambda hidden_sizes, batch, repeats=0: 0.5)
  assert latency.of('latency_ms', (8,)) == first   # re-read, not measured
  latency.of('latency_ms', (4,))                    # measured: merged into the file
  stored = json.loads((tmp_path / latency.FILE).read_text())['structures']
  assert stored['8']['latency_ms'] == first and stored['4']['latency_ms'] == 0.5
  assert not list(tmp_path.glob('*.tmp'))
