"""When a program saves a checkpoint, and that a checkpoint round-trips exactly."""

import numpy as np
import pytest

from jaxmlp.engine import checkpoint
from jaxmlp.errors import UserError


@pytest.mark.parametrize('text, policy', [
    ('auto', checkpoint.Policy('auto')),
    ('5', checkpoint.Policy('epochs', 5)),
    ('5e', checkpoint.Policy('epochs', 5)),
    ('10m', checkpoint.Policy('seconds', 600)),
    ('30s', checkpoint.Policy('seconds', 30)),
    ('0', checkpoint.Policy('never')),
])
def test_policies_parse(text, policy):
  assert checkpoint.Policy.parse(text) == policy


@pytest.mark.parametrize('text', ['often', '-1', '2.5', '5h'])
def test_bad_policies_are_one_line_errors(text):
  with pytest.raises(UserError, match='checkpoint'):
    checkpoint.Policy.parse(text)


def test_when_a_checkpoint_is_due():
  every_2 = checkpoint.Policy('epochs', 2)
  assert [every_2.due(e, 0.0, 0.1) for e in (1, 2, 3, 4)] == [False, True, False, True]
  minute = checkpoint.Policy('seconds', 60)
  assert not minute.due(7, 59.0, 0.1) and minute.due(7, 60.0, 0.1)
  auto = checkpoint.Policy('auto')
  assert auto.due(1, 0.0, None)          # the first save measures what saving costs
  ratio = checkpoint.AUTO_RATIO
  assert not auto.due(5, ratio * 0.1 - 0.01, 0.1) and auto.due(5, ratio * 0.1, 0.1)
  assert not checkpoint.Policy('never').due(100, 1e9, 0.1)


def test_a_checkpoint_round_trips_exactly(tmp_path):
  rng = np.random.default_rng(0)
  tree = {'w': rng.normal(size=(3, 5)).astype(np.float32),
          'key': rng.integers(0, 2**32, (3, 2), dtype=np.uint32),
          'history': np.array([[0.5, np.nan]], np.float32)}
  saver = checkpoint.ProgramCheckpoint(tmp_path / 'p', checkpoint.Policy('auto'))
  assert saver.restore(tree) is None
  saver.save(4, lambda: tree, dict(fit_time_s=1.5))
  saver.wait()
  restored, meta = checkpoint.ProgramCheckpoint(tmp_path / 'p',
                                                checkpoint.Policy('auto')).restore(tree)
  for name in tree:
    np.testing.assert_array_equal(restored[name], tree[name])
    assert restored[name].dtype == tree[name].dtype
  assert meta == {'fit_time_s': 1.5, 'epochs_done': 4}
  saver.delete()
  assert not (tmp_path / 'p').exists()
