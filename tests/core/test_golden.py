"""Keras' own trajectories (tests/golden/, written by tools/keras_golden.py with TF-Keras
and JAX-Keras), replayed by the engine from the same numpy-drawn initial weights.

Each number must stay within the fixture's noise floor (TF-Keras vs JAX-Keras, times
FLOOR_FACTOR), compared with the TensorFlow run, the original's backend. Where the two
backends agree exactly (most accuracies) the replay must too; a minimum tolerance
(relative, MIN_RELATIVE) applies only where they differ, and with N(10) kernels, where
the JAX backend clips probabilities and so trains differently, the TF run alone counts.
Dropout masks cannot be replayed: there the initial evaluation must be exact, and the
trained loss and accuracy must lie within the Keras runs' range widened by their spread.
"""

import json
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tools'))
import golden_replay  # pylint: disable=g-import-not-at-top,wrong-import-position
import keras_golden  # pylint: disable=g-import-not-at-top,wrong-import-position

FIXTURES = golden_replay.fixtures()
FLOOR_FACTOR = 4
MIN_RELATIVE = 1e-5
# N(10) kernels give logits near 1e9, and a loss is their difference: the matmuls'
# summation order alone (XLA's against Eigen's) moves it by 1e-5 relative.
SATURATED_MIN_RELATIVE = 1e-4
SEEDS = 3     # members (dropout masks) per dropout fixture
SPREADS = 2   # a dropout replay may lie this many Keras spreads outside their range


def _load(path):
  return json.loads(path.read_text())


def _within(name, ours, keras, floor, exact_where_floor_is_zero=True,
            min_relative=MIN_RELATIVE):
  # The fixtures hold float32 values to 9 digits: compared as float32, they are exact.
  ours = np.asarray(ours, np.float32).astype(np.float64)
  keras = np.asarray(keras, np.float32).astype(np.float64)
  floor = float(floor)
  if floor == 0 and exact_where_floor_is_zero:
    tolerance = 0.0
  else:
    tolerance = np.maximum(FLOOR_FACTOR * floor, min_relative * np.abs(keras))
  worst = np.max(np.abs(ours - keras) - tolerance)
  assert worst <= 0, (f'{name}: {ours} vs TF-Keras {keras}: off by '
                      f'{np.max(np.abs(ours - keras)):.3g}, floor {floor:.3g}')


def _sketch_difference(params, tf_sketch) -> float:
  ours = keras_golden.sketch(jax.tree.map(np.asarray, params))
  return keras_golden.sketch_difference(tf_sketch, ours)


DETERMINISTIC = [p for p in FIXTURES if not _load(p)['config']['dropout']]
DROPOUT = [p for p in FIXTURES if _load(p)['config']['dropout']]


@pytest.mark.parametrize('path', DETERMINISTIC, ids=lambda p: p.stem)
def test_a_keras_trajectory_is_replayed_within_the_backends_noise_floor(path, mnist_split):
  fixture = _load(path)
  tf, floor = fixture['backends']['tensorflow'], fixture['noise_floor']
  # With saturated N(10) kernels the JAX backend trains differently: TF alone counts.
  saturated = fixture['config']['init'] == 'normal_10'
  scale = 0 if saturated else 1
  least = SATURATED_MIN_RELATIVE if saturated else MIN_RELATIVE
  result, initial = golden_replay.replay(fixture, mnist_split)
  _within('initial val_loss', initial.loss, tf['initial_val_loss'], 0, False, least)
  assert np.float32(initial.accuracy) == np.float32(tf['initial_val_accuracy'])
  for name, values in tf['history'].items():
    _within(name, result.history[name][0], values, scale * floor['history'][name],
            not saturated or name.endswith('accuracy'), least)
  for name in ('test_loss', 'test_accuracy'):
    _within(name, getattr(result, name)[0], tf[name], scale * floor[name],
            not saturated or name.endswith('accuracy'), least)
  final = jax.tree.map(lambda x: x[0], result.final_params)
  for layer, leaves in tf['weight_norms'].items():
    for leaf, norm in leaves.items():
      ours = float(np.linalg.norm(np.asarray(final[layer][leaf], np.float64)))
      _within(f'{layer}/{leaf} norm', ours / norm, 1.0,
              scale * floor['weight_norm_relative'][layer][leaf], False)
  difference = _sketch_difference(final, tf['weight_sketch'])
  assert difference <= max(FLOOR_FACTOR * scale * floor['weight_sketch_relative'],
                           MIN_RELATIVE), difference


@pytest.mark.parametrize('path', DROPOUT, ids=lambda p: p.stem)
def test_dropout_runs_end_within_the_keras_runs_spread(path, mnist_split):
  fixture = _load(path)
  saturated = fixture['config']['init'] == 'normal_10'
  runs = fixture['backends']['tensorflow'] + ([] if saturated else fixture['backends']['jax'])
  result, initial = golden_replay.replay(fixture, mnist_split, members=SEEDS)
  # No dropout when evaluating: the initial weights' numbers are Keras' exactly.
  least = SATURATED_MIN_RELATIVE if saturated else MIN_RELATIVE
  _within('initial val_loss', initial.loss, runs[0]['initial_val_loss'], 0, False, least)
  assert np.float32(initial.accuracy) == np.float32(runs[0]['initial_val_accuracy'])
  spread = fixture['spread']['tensorflow']
  for name in ('train_loss', 'train_accuracy', 'val_loss', 'val_accuracy'):
    last = [r['history'][name][-1] for r in runs]
    low, high = min(last) - SPREADS * spread[name], max(last) + SPREADS * spread[name]
    ours = result.history[name][:, -1]
    assert np.all((low <= ours) & (ours <= high)), (name, ours.tolist(), low, high)
  for name in ('test_loss', 'test_accuracy'):
    values = [r[name] for r in runs]
    width = SPREADS * (max(values) - min(values))
    ours = getattr(result, name)
    assert np.all((min(values) - width <= ours) & (ours <= max(values) + width)), (
        name, ours.tolist(), values)
