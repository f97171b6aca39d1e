"""What a study writes, estimated before it runs, and refused in one line where the
disk cannot hold it."""

import shutil
from collections import namedtuple

import pytest

from jaxmlp import api
from jaxmlp import pipeline
from jaxmlp.common.errors import UserError
from jaxmlp.core import train
from jaxmlp.engine import footprint
from jaxmlp.engine import plan

BASELINE = train.Structure()   # 784-128-256-10, adam
_Usage = namedtuple('_Usage', 'total used free')


def test_the_estimate_counts_every_kind_of_file():
  f = footprint.estimate([(BASELINE, 10)], epochs=4, slots=4, figures=5, tensorboard=True)
  params = plan.parameter_count(BASELINE)
  assert params == 784 * 128 + 128 + 128 * 256 + 256 + 256 * 10 + 10
  assert f.weights == 10 * 3 * 4 * params   # initial, final, best; float32
  assert f.records == 10 * (footprint.RECORD_BYTES + 4 * footprint.RECORD_BYTES_PER_EPOCH)
  assert f.checkpoints == 2 * 4 * 4 * (2 + 2) * params   # 2 steps of 4 adam slots
  assert f.figures == 5 * footprint.FIGURE_BYTES
  off = footprint.estimate([(BASELINE, 10)], 4, 4, 5, tensorboard=False)
  assert off.events == 0 and f.total - off.total == f.events > 0


def test_the_estimate_is_an_upper_bound_of_what_a_run_wrote(tmp_path):
  """The sizes are measured: a small study writes less than estimated, and more than
  half of it (the estimate is no wild guess)."""
  result = api.run_study('dropout', output_dir=tmp_path, epochs=2, seeds=2, data_limit=600,
                         progress=False)
  config = result.config
  search_members = [(m.structure, 2) for m in api.members_of('dropout', seeds=1)]
  estimate = footprint.estimate(search_members, 2, config.max_members_per_program or 4,
                                figures=5, tensorboard=True)
  written = footprint._size(result.folder)   # pylint: disable=protected-access
  without_checkpoints = estimate.total - estimate.checkpoints   # deleted as programs end
  assert without_checkpoints >= written > 0.8 * without_checkpoints


def test_a_study_the_disk_cannot_hold_is_refused_in_one_line(tmp_path, monkeypatch):
  monkeypatch.setattr(shutil, 'disk_usage', lambda path: _Usage(10**12, 0, 10 * 10**9))
  config = api.load_study('baseline', seeds=1_000_000)
  with pytest.raises(UserError) as e:
    pipeline.require_disk(config, tmp_path)
  message = str(e.value)
  assert message.startswith(f'this study would write about 1.7 TB to {tmp_path}/baseline '
                            '(weights of 1000000 members 1.6 TB, records ')
  assert message.endswith('and its disk has 10.0 GB free: run fewer seeds or values, use '
                          '--tensorboard=false, or pass an --output_dir on a larger disk')
  pipeline.require_disk(api.load_study('baseline', seeds=100), tmp_path)   # 0.2 GB: fits


def test_what_a_rerun_finds_on_disk_counts_as_written(tmp_path, monkeypatch):
  f = footprint.estimate([(BASELINE, 1)], 1, 1, 0, tensorboard=False)
  monkeypatch.setattr(shutil, 'disk_usage', lambda path: _Usage(10**12, 0, f.total // 2))
  with pytest.raises(UserError, match='would write about'):
    footprint.require_disk(f, tmp_path / 'study')
  (tmp_path / 'study').mkdir()
  (tmp_path / 'study' / 'params.msgpack').write_bytes(b'0' * (f.total // 2 + 1))
  footprint.require_disk(f, tmp_path / 'study')
