"""Replays tests/golden/*.json through the engine and prints, per configuration, the
largest per-epoch difference project vs TF-Keras beside TF-Keras vs JAX-Keras.

  MNIST_DIR=../shared/mnist python tools/golden_replay.py [--weights-dir DIR]

Runs in the project's own environment (no TensorFlow). tests/test_golden.py replays the
fixtures with the same functions and holds each number to the noise floor.
--weights-dir (where `keras_golden.py --weights-dir` kept TF-Keras' final weights) adds
the exact relative weight difference to TF-Keras; without it, the fixture's sketch of
the weights estimates it.
"""

import argparse
import json
import pathlib
import sys

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import keras_golden  # pylint: disable=g-import-not-at-top,wrong-import-position

from jaxmlp.data import mnist as data  # pylint: disable=g-import-not-at-top
from jaxmlp.engine import devices  # pylint: disable=g-import-not-at-top
from jaxmlp.engine import plan  # pylint: disable=g-import-not-at-top
from jaxmlp.studies import study  # pylint: disable=g-import-not-at-top
from jaxmlp.core import train  # pylint: disable=g-import-not-at-top

GOLDEN_DIR = keras_golden.GOLDEN_DIR
METRICS = keras_golden.METRICS


def fixtures() -> list[pathlib.Path]:
  return sorted(GOLDEN_DIR.glob('*.json'))


def structure_of(config, n_train) -> train.Structure:
  batch = n_train if config['batch_size'] == 'full' else config['batch_size']
  return train.Structure(hidden_sizes=tuple(config['hidden_sizes']),
                         use_dropout=config['dropout'] > 0, optimizer=config['optimizer'],
                         use_l1=config['l1'] > 0, use_l2=config['l2'] > 0, batch_size=batch)


def hparams_of(config, members: int) -> dict[str, np.ndarray]:
  values = {**study.baseline(), 'dropout_rate': config['dropout'],
            **{k: config[k] for k in ('learning_rate', 'rho', 'beta1', 'beta2', 'epsilon',
                                      'l1', 'l2')}}
  return {k: np.full(members, v) for k, v in study.hparams_of(values).items()}


def split_of(fixture, split: data.Split) -> data.Split:
  """The rows Keras' fit was given (the first of the file; all in this project's
  training part) cut by validation_split=0.2, and the first test rows."""
  rows, n_train = fixture['data']['rows_given_to_fit'], fixture['data']['train_rows']
  x, y = split.x_train[:rows], split.y_train[:rows]
  n_test = fixture['data']['test_rows']
  return data.Split(x[:n_train], y[:n_train], x[n_train:], y[n_train:],
                    split.x_test[:n_test], split.y_test[:n_test])


def initial_weights(fixture) -> dict:
  """The numpy-drawn initial weights, checked against the fixture's checksum."""
  drawn = fixture['initial_weights']
  params = keras_golden.draw_initial_weights(drawn['seed'], drawn['distribution'],
                                             tuple(drawn['sizes']))
  for layer, checks in drawn['checksum'].items():
    kernel = params[layer]['kernel']
    if not np.isclose(np.sum(kernel, dtype=np.float64), checks['kernel_sum'], rtol=1e-9):
      raise AssertionError(f'{fixture["name"]}: redrawn {layer} weights differ from Keras\'')
  return params


def replay(fixture, split: data.Split, members: int = 1):
  """(GroupResult, the initial weights' validation Evaluation)."""
  config = fixture['config']
  split = split_of(fixture, split)
  structure = structure_of(config, len(split.x_train))
  mesh = devices.member_mesh()
  params = initial_weights(fixture)
  # As a study trains them: planned, then run; a few members make one program.
  (_, result), = plan.train_group(structure, hparams_of(config, members), np.arange(members),
                                  devices.put_data(split, mesh), config['epochs'], mesh,
                                  initial_params=[params] * members)
  hp = {k: np.float32(v[0]) for k, v in hparams_of(config, 1).items()}
  initial_val = jax.jit(train.evaluate, static_argnames='structure')(
      params, split.x_val, split.y_val, hp, structure=structure)
  return result, initial_val


def weight_difference(final, reference) -> float:
  """||final - reference|| / ||reference|| over all weights."""
  num = den = 0.0
  for layer in keras_golden.LAYERS:
    for leaf in ('kernel', 'bias'):
      a = np.asarray(reference[layer][leaf], np.float64)
      b = np.asarray(final[layer][leaf], np.float64)
      num, den = num + np.sum((a - b) ** 2), den + np.sum(a ** 2)
  return float(np.sqrt(num / den))


def _max_diff(a, b) -> float:
  a = np.asarray(a, np.float32).astype(np.float64)
  b = np.asarray(b, np.float32).astype(np.float64)
  return float(np.max(np.abs(a - b)))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--weights-dir', help='TF-Keras final weights (keras_golden.py '
                      '--weights-dir)')
  args = parser.parse_args(argv)
  split = data.split(data.load_idx())
  print('| configuration | updates | ' + ' | '.join(METRICS) +
        ' | test loss | test acc | weights (relative) |')
  print('|---' * (4 + len(METRICS)) + '|')
  for path in fixtures():
    fixture = json.loads(path.read_text())
    if fixture['config']['dropout']:
      continue  # masks cannot be replayed: tests/test_golden.py compares statistically
    tf, floor = fixture['backends']['tensorflow'], fixture['noise_floor']
    result, _ = replay(fixture, split)
    final = jax.tree.map(lambda x: np.asarray(x[0]), result.final_params)
    cells = [f'{_max_diff(result.history[m][0], tf["history"][m]):.2g} '
             f'[{floor["history"][m]:.2g}]' for m in METRICS]
    cells += [f'{_max_diff(getattr(result, m)[0], tf[m]):.2g} [{floor[m]:.2g}]'
              for m in ('test_loss', 'test_accuracy')]
    weights_dir = pathlib.Path(args.weights_dir) if args.weights_dir else None
    exact = weights_dir and (weights_dir / f'{path.stem}.tensorflow.npz').is_file()
    if exact:
      saved = np.load(weights_dir / f'{path.stem}.tensorflow.npz')
      reference = {layer: {'kernel': saved[f'run0/{2 * i}'], 'bias': saved[f'run0/{2 * i + 1}']}
                   for i, layer in enumerate(keras_golden.LAYERS)}
      ours = weight_difference(final, reference)
      jax_floor = floor.get('weight_relative_difference', {}).get('all', float('nan'))
    else:
      ours = keras_golden.sketch_difference(tf['weight_sketch'], keras_golden.sketch(final))
      jax_floor = floor['weight_sketch_relative']
    updates = fixture['data']['updates_per_epoch'] * fixture['config']['epochs']
    cells.append(f'{ours:.2g} [{jax_floor:.2g}]{"" if exact else " (sketch)"}')
    print(f'| {path.stem} | {updates} | ' + ' | '.join(cells) + ' |', flush=True)
  print('\nEach cell: largest absolute difference project vs TF-Keras over the epochs '
        '[TF-Keras vs JAX-Keras]. With N(10) kernels the JAX backend clips probabilities, '
        'so its floor there is no tolerance.')


if __name__ == '__main__':
  main()
