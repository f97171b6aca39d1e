"""Any study a user can write runs to its report, and its members evaluate back.

A property test: hypothesis draws study shapes (depth, widths, optimizer, penalties,
dropout, initializer, batch size, shuffling, early stopping, sweep axes, arms, the
search, a final retraining) and runs each on a few hundred real MNIST rows through
pipeline.run_study (what jaxmlp.launch runs), the report and evaluate. CI tries
JAXMLP_SHAPES shapes (default 3, a fixed sequence); JAXMLP_SHAPES=200 searches wider.
"""

import json
import os

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from jaxmlp.engine import checkpoint
from jaxmlp.data import mnist as data
from jaxmlp import pipeline
from jaxmlp.studies import study
from jaxmlp.common.errors import UserError

ROWS = 200
SHAPES = int(os.environ.get('JAXMLP_SHAPES', '3'))

networks = st.lists(st.integers(1, 24), min_size=1, max_size=3).map(tuple)


def _one_or_axis(values: st.SearchStrategy, max_size: int = 2) -> st.SearchStrategy:
  """One value, or a sweep axis of distinct values."""
  return st.one_of(values, st.lists(values, min_size=1, max_size=max_size,
                                    unique=True).map(tuple))


@st.composite
def study_shapes(draw) -> dict:
  # At most one structural axis (each value is its own compiled program): CI's
  # few shapes stay quick, and wider sweeps are the same code path.
  structural = draw(st.sampled_from(['hidden_sizes', 'optimizer', 'batch_size', None]))
  architectures = st.lists(networks, min_size=1, max_size=2, unique=True).map(tuple)
  fields = dict(
      name='shape',
      hidden_sizes=draw(st.one_of(networks, architectures) if structural == 'hidden_sizes'
                        else networks),
      optimizer=draw(_one_or_axis(st.sampled_from(['adam', 'rmsprop', 'sgd']),
                                  2 if structural == 'optimizer' else 1)),
      kernel_init=draw(st.sampled_from(['glorot_uniform', 'he_normal', 'normal'])),
      init_mean=draw(st.sampled_from([0.0, 10.0])),
      learning_rate=draw(_one_or_axis(st.sampled_from([1e-3, 1e-2, 0.1]))),
      l1=draw(st.sampled_from([0.0, 0.01])),
      l2=draw(_one_or_axis(st.sampled_from([0.0, 1e-3, 0.1]))),
      dropout_rate=draw(st.sampled_from([0.0, 0.3])),
      batch_size=draw(_one_or_axis(st.sampled_from([1, 7, 64, ROWS]),
                                   2 if structural == 'batch_size' else 1)),
      shuffle=draw(st.booleans()),
      epochs=draw(st.integers(1, 3)),
      early_stopping_patience=draw(st.integers(0, 2)),
      objective=draw(st.sampled_from(study.OBJECTIVES)),
      seeds=draw(st.integers(1, 2)),
      final_epochs=draw(st.sampled_from([0, 1])),
      final_batch_size=draw(st.sampled_from([1, 32])),
      confusion_matrix=draw(st.booleans()),
      data_limit=ROWS,
  )
  if structural is None and draw(st.booleans()):
    fields['arms'] = dict(a=dict(optimizer='sgd'), b=dict(optimizer='adam', rho=0.5))
    fields['optimizer'] = 'rmsprop'
  if draw(st.integers(0, 3)) == 0:
    fields.update(search='hyperband', hyperband=dict(max_epochs=draw(st.integers(1, 4))),
                  learning_rate=(1e-3, 1e-2, 0.1))
  return fields


@pytest.fixture(scope='module')
def tiny_split(mnist_split):
  return data.head(mnist_split, ROWS)


@settings(max_examples=SHAPES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(shape=study_shapes())
def test_any_study_shape_runs_through_launch_report_and_evaluate(shape, tiny_split,
                                                                 tmp_path_factory):
  config = study.make_config(**shape)
  try:
    pipeline.check_study(config, len(tiny_split.x_train))
  except UserError as e:
    _log(f'refused: {e}')
    return  # validation refuses it before anything runs, as the command line does
  out = tmp_path_factory.mktemp('shape')
  report = pipeline.run_study(config, tiny_split, output_dir=out, command='(property test)',
                            checkpoint_every=checkpoint.Policy.parse('1'), progress=False)
  text = report.read_text()
  assert '## What ran' in text and 'Traceback' not in text
  study_dir = out / 'shape'
  members = sorted(study_dir.glob('*/*/result.json'))
  assert members and not (study_dir / 'checkpoints').exists()
  for figure in study_dir.glob('figures/*.png'):
    assert figure.read_bytes()[:4] == b'\x89PNG'
  record = json.loads(members[0].read_text())
  assert 1 <= record['epochs_trained'] <= record['config']['epochs']
  answer = pipeline.evaluate_member(members[-1].parent)
  assert answer['identical'], answer
  _log(f'ran: {len(members)} members, {len(study.group(study.expand(config)))} groups, '
       f'search {config.search}, final {config.final_epochs}')


def _log(line: str) -> None:
  """JAXMLP_SHAPES_LOG=FILE: one line per shape tried (what ran, what was refused)."""
  if os.environ.get('JAXMLP_SHAPES_LOG'):
    with open(os.environ['JAXMLP_SHAPES_LOG'], 'a') as f:
      f.write(line + '\n')
