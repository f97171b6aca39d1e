"""Writes tests/golden/*.json: Keras' own training trajectories, for the tests to replay.

Run from a virtualenv with TensorFlow, Keras 3 and JAX (tools/requirements.txt), never
from CI; see tools/README.md. For each configuration in CONFIGS it draws the initial
weights with numpy (draw_initial_weights: the tests redraw them with a copy of the same
code), sets them into a Keras model built as the original study built it, fits a few
epochs on a small slice of real MNIST (validation_split=0.2, shuffle=False), and records
the per-epoch history, the test metrics and the final weights' norms, once with Keras on
its TensorFlow backend and once on its JAX backend (each backend in its own process).
The TensorFlow run is the reference (the original ran TF-Keras); the difference between
the two backends is stored as the fixture's noise floor.

  python tools/keras_golden.py                      # every fixture
  python tools/keras_golden.py --only adam_b256     # some of them
  python tools/keras_golden.py --weights-dir DIR    # also keep the final weights (npz)

This file imports neither TensorFlow nor Keras at module level, so that a test (or
anything else) may import draw_initial_weights from it with numpy alone.
"""

import argparse
import gzip
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
GOLDEN_DIR = ROOT / 'tests' / 'core' / 'golden'
MNIST_DIR = ROOT.parent / 'shared' / 'mnist'
BACKENDS = ('tensorflow', 'jax')
REFERENCE_BACKEND = 'tensorflow'
LAYERS = ('hidden_0', 'hidden_1', 'output')  # the project's Flax names, in Keras' order
METRICS = ('train_loss', 'train_accuracy', 'val_loss', 'val_accuracy')
KERAS_METRICS = {'train_loss': 'loss', 'train_accuracy': 'accuracy',
                 'val_loss': 'val_loss', 'val_accuracy': 'val_accuracy'}

# Keras' HeNormal is a normal truncated at 2 sigma whose stddev is rescaled to
# sqrt(2 / fan_in): divide by the stddev of a standard normal truncated to [-2, 2].
TRUNCATED_NORMAL_STDDEV = 0.87962566103423978
DISTRIBUTIONS = ('glorot_uniform', 'he_normal', 'normal_10')


def draw_initial_weights(seed, distribution, sizes=(784, 128, 256, 10)):
  """Initial weights {layer: {'kernel': (in, out) float32, 'bias': (out,) float32}}.

  `distribution` is the Keras kernel initializer the original used, applied to the
  kernels of all three Dense layers; biases are zero. One np.random.default_rng(seed)
  stream draws the kernels layer by layer.
    glorot_uniform: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out));
    he_normal: N(0, 1) redrawn until inside [-2, 2], times
      sqrt(2 / fan_in) / 0.87962566103423978 (Keras HeNormal);
    normal_10: N(10, 0.05) (Keras RandomNormal(mean=10, stddev=0.05)).
  """
  rng = np.random.default_rng(seed)
  names = [f'hidden_{i}' for i in range(len(sizes) - 2)] + ['output']
  params = {}
  for name, fan_in, fan_out in zip(names, sizes[:-1], sizes[1:]):
    shape = (fan_in, fan_out)
    if distribution == 'glorot_uniform':
      limit = np.sqrt(6.0 / (fan_in + fan_out))
      kernel = rng.uniform(-limit, limit, shape)
    elif distribution == 'he_normal':
      z = rng.standard_normal(shape)
      outside = np.abs(z) > 2.0
      while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > 2.0
      kernel = z * (np.sqrt(2.0 / fan_in) / TRUNCATED_NORMAL_STDDEV)
    elif distribution == 'normal_10':
      kernel = rng.normal(10.0, 0.05, shape)
    else:
      raise ValueError(f'unknown distribution {distribution!r}; choose from {DISTRIBUTIONS}')
    params[name] = {'kernel': kernel.astype(np.float32),
                    'bias': np.zeros(fan_out, np.float32)}
  return params


def _config(name, *, optimizer='adam', learning_rate=0.001, rho=0.9, init='glorot_uniform',
            l1=0.0, l2=0.0, dropout=0.0, batch_size=256, rows=2000, epochs=5,
            test_rows=500, seed=0, hidden_sizes=(128, 256), mask_seeds=(), note=''):
  return dict(name=name, optimizer=optimizer, learning_rate=learning_rate, rho=rho,
              beta1=0.9, beta2=0.999, epsilon=1e-7, init=init, l1=l1, l2=l2,
              dropout=dropout, batch_size=batch_size, rows=rows, epochs=epochs,
              test_rows=test_rows, seed=seed, hidden_sizes=list(hidden_sizes),
              mask_seeds=list(mask_seeds), note=note)


# rows: the first `rows` MNIST training rows are given to fit; validation_split=0.2 makes
# the last 20% of them the validation set (2000 -> 1600 train, 400 val: at batch 256
# that is 6 full batches and a partial one of 64, as the original's 48000 rows end).
# batch_size 'full': one batch of every training row.
CONFIGS = [
    _config('adam_b256', seed=1, note='the baseline: Adam, Keras defaults, batch 256'),
    _config('adam_b1', batch_size=1, rows=400, epochs=2, seed=2,
            note='batch_size study, batch 1 (320 updates per epoch)'),
    _config('adam_full', batch_size='full', epochs=10, seed=3,
            note='batch_size study, full batch (1 update per epoch)'),
    _config('rmsprop_rho099', optimizer='rmsprop', rho=0.99, seed=4,
            note='rmsprop study, rho 0.99'),
    _config('rmsprop_rho001', optimizer='rmsprop', rho=0.01, seed=5,
            note='rmsprop study, rho 0.01'),
    _config('sgd_glorot', optimizer='sgd', learning_rate=0.01, seed=6,
            note='SGD(0.01) from Glorot weights: a plain check of the SGD update'),
    _config('sgd_normal10', optimizer='sgd', learning_rate=0.01, init='normal_10', seed=7,
            note='init study: SGD(0.01) from RandomNormal(10, 0.05) kernels; the softmax '
                 'saturates, TF computes the cross-entropy from the logits'),
    _config('l2_rmsprop', optimizer='rmsprop', rho=0.99, l2=0.01, seed=8,
            note='regularization study (a): L2(0.01) on the hidden kernels, RMSprop'),
    _config('l2_sgd_normal10', optimizer='sgd', learning_rate=0.01, init='normal_10',
            l2=0.01, epochs=3, seed=9,
            note='regularization study (b): L2(0.01), SGD(0.01), N(10) kernels'),
    _config('l1_rmsprop', optimizer='rmsprop', rho=0.99, l1=0.01, seed=10,
            note='L1(0.01) on the hidden kernels without dropout. Its sign(w) subgradient '
                 'makes small weights hop around zero, so rounding differences grow fast: '
                 'TF- and JAX-Keras end 1-4% apart in the hidden kernels (every seed tried)'),
    # Seeds 11 and 31 put a hidden unit's pre-activation within rounding of zero for some
    # row, so that TF- and JAX-Keras already part ways (weights 1e-3 apart); 21 does not.
    _config('he_l2_rmsprop', optimizer='rmsprop', rho=0.9, l2=1e-6, init='he_normal',
            seed=21, note='finetune study\'s best: RMSprop(0.001, Keras default rho 0.9), '
                          'L2(1e-6), HeNormal kernels'),
    _config('dropout_l1_rmsprop', optimizer='rmsprop', rho=0.99, l1=0.01, dropout=0.3,
            seed=12, mask_seeds=(0, 1, 2),
            note='dropout study (a): L1(0.01) + Dropout(0.3), RMSprop(0.001, 0.99)'),
    _config('dropout_l1_sgd_normal10', optimizer='sgd', learning_rate=0.01,
            init='normal_10', l1=0.01, dropout=0.3, epochs=3, seed=13, mask_seeds=(0, 1, 2),
            note='dropout study (b): L1(0.01) + Dropout(0.3), SGD(0.01), N(10) kernels'),
    _config('adam_b1_long', batch_size=1, rows=3750, epochs=1, seed=14,
            note='batch 1 over 3000 updates: where small arithmetic differences grow'),
]
CHECKPOINTS = (1, 10, 100, 300, 1000, 2000, 3000)  # updates at which adam_b1_long saves weights


# --------------------------------------------------------------------------------------
# Data: the MNIST IDX files, read with numpy alone.


def _read_idx(path):
  with gzip.open(path, 'rb') if str(path).endswith('.gz') else open(path, 'rb') as f:
    data = f.read()
  dims = data[3]
  shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(dims))
  return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def _find(folder, stem):
  for name in (stem + '.gz', stem):
    if (folder / name).exists():
      return folder / name
  raise FileNotFoundError(f'{stem}[.gz] not in {folder}')


def load_mnist(folder):
  """(x_train (60000, 784) uint8, y_train int32, x_test (10000, 784) uint8, y_test)."""
  folder = pathlib.Path(folder)
  read = lambda stem: _read_idx(_find(folder, stem))
  x_train = read('train-images-idx3-ubyte').reshape(-1, 784)
  x_test = read('t10k-images-idx3-ubyte').reshape(-1, 784)
  return (x_train, read('train-labels-idx1-ubyte').astype(np.int32), x_test,
          read('t10k-labels-idx1-ubyte').astype(np.int32))


def split_sizes(config):
  rows = config['rows']
  n_train = int(rows * (1 - 0.2))  # Keras' validation_split cut
  batch = n_train if config['batch_size'] == 'full' else config['batch_size']
  return n_train, rows - n_train, batch


# --------------------------------------------------------------------------------------
# The worker: one backend, in its own process (KERAS_BACKEND is read at import).


def _keras_model(config, keras):
  regularizer = None
  if config['l1'] and config['l2']:
    regularizer = keras.regularizers.L1L2(l1=config['l1'], l2=config['l2'])
  elif config['l1']:
    regularizer = keras.regularizers.l1(config['l1'])
  elif config['l2']:
    regularizer = keras.regularizers.l2(config['l2'])
  layers = [keras.Input((784,))]
  for size in config['hidden_sizes']:
    layers.append(keras.layers.Dense(size, activation='relu',
                                     kernel_regularizer=regularizer))
    if config['dropout']:
      layers.append(keras.layers.Dropout(config['dropout']))
  layers.append(keras.layers.Dense(10, activation='softmax'))
  model = keras.Sequential(layers)
  if config['optimizer'] == 'adam':
    optimizer = keras.optimizers.Adam(learning_rate=config['learning_rate'],
                                      beta_1=config['beta1'], beta_2=config['beta2'],
                                      epsilon=config['epsilon'])
  elif config['optimizer'] == 'rmsprop':
    optimizer = keras.optimizers.RMSprop(learning_rate=config['learning_rate'],
                                         rho=config['rho'], epsilon=config['epsilon'])
  else:
    optimizer = keras.optimizers.SGD(learning_rate=config['learning_rate'])
  model.compile(optimizer=optimizer, loss='categorical_crossentropy', metrics=['accuracy'])
  return model


def _flat(params):
  return [params[layer][leaf] for layer in LAYERS for leaf in ('kernel', 'bias')]


def _nested(weights):
  return {layer: {'kernel': np.asarray(weights[2 * i]), 'bias': np.asarray(weights[2 * i + 1])}
          for i, layer in enumerate(LAYERS)}


def _run_one(config, mask_seed, mnist, keras):
  x_train, y_train, x_test, y_test = mnist
  rows, n_test = config['rows'], config['test_rows']
  n_train, _, batch = split_sizes(config)
  # As the original: float32 images divided by 255 on the host (correctly rounded).
  x = x_train[:rows].astype('float32') / 255
  y = np.eye(10, dtype='float32')[y_train[:rows]]
  xt = x_test[:n_test].astype('float32') / 255
  yt = np.eye(10, dtype='float32')[y_test[:n_test]]
  keras.utils.set_random_seed(mask_seed)  # dropout masks only; the weights are set below
  model = _keras_model(config, keras)
  sizes = (784, *config['hidden_sizes'], 10)
  model.set_weights(_flat(draw_initial_weights(config['seed'], config['init'], sizes)))
  initial = model.evaluate(x[n_train:], y[n_train:], batch_size=rows, verbose=0,
                           return_dict=True)
  checkpoints = {}
  callbacks = []
  if config['name'] == 'adam_b1_long':
    class Checkpoints(keras.callbacks.Callback):
      def on_train_batch_end(self, index, logs=None):
        if index + 1 in CHECKPOINTS:
          checkpoints[index + 1] = [np.array(w) for w in self.model.get_weights()]
    callbacks.append(Checkpoints())
  started = time.perf_counter()
  history = model.fit(x, y, batch_size=batch, epochs=config['epochs'], validation_split=0.2,
                      shuffle=False, verbose=0, callbacks=callbacks).history
  fit_s = time.perf_counter() - started
  test = model.evaluate(xt, yt, batch_size=n_test, verbose=0, return_dict=True)
  result = dict(
      history={m: [float(v) for v in history[KERAS_METRICS[m]]] for m in METRICS},
      initial_val_loss=float(initial['loss']), initial_val_accuracy=float(initial['accuracy']),
      test_loss=float(test['loss']), test_accuracy=float(test['accuracy']), fit_s=fit_s)
  return result, model.get_weights(), checkpoints


def worker(names, out_dir, mnist_dir):
  import keras  # pylint: disable=g-import-not-at-top
  mnist = load_mnist(mnist_dir)
  out_dir = pathlib.Path(out_dir)
  (out_dir / 'versions.json').write_text(json.dumps(_versions(keras)))
  for config in CONFIGS:
    if config['name'] not in names:
      continue
    runs, arrays = [], {}
    for k, mask_seed in enumerate(config['mask_seeds'] or [0]):
      result, weights, checkpoints = _run_one(config, mask_seed, mnist, keras)
      runs.append(result)
      for i, w in enumerate(weights):
        arrays[f'run{k}/{i}'] = np.asarray(w)
      for step, ws in checkpoints.items():
        for i, w in enumerate(ws):
          arrays[f'step{step}/{i}'] = np.asarray(w)
      print(f'[{keras.backend.backend()}] {config["name"]} run {k}: '
            f'{result["fit_s"]:.1f} s', file=sys.stderr, flush=True)
    np.savez(out_dir / f'{config["name"]}.npz', **arrays)
    (out_dir / f'{config["name"]}.json').write_text(json.dumps(runs))


# --------------------------------------------------------------------------------------
# The parent: runs one worker per backend, then writes the fixtures.


def _g(x, digits=9):
  """A float rounded to `digits` significant digits (float32 needs 9), for small JSON."""
  return float(f'{float(x):.{digits}g}')


def _norms(params):
  return {layer: {leaf: _g(np.linalg.norm(np.asarray(params[layer][leaf], np.float64)))
                  for leaf in ('kernel', 'bias')} for layer in LAYERS}


def _relative_difference(a, b):
  """Per layer and leaf ||a - b||_F / ||a||_F, and the same over all weights at once."""
  out = {layer: {} for layer in LAYERS}
  num = den = 0.0
  for layer in LAYERS:
    for leaf in ('kernel', 'bias'):
      x = np.asarray(a[layer][leaf], np.float64)
      y = np.asarray(b[layer][leaf], np.float64)
      d, n = np.sum((x - y) ** 2), np.sum(x ** 2)
      num, den = num + d, den + n
      out[layer][leaf] = _g(np.sqrt(d) / np.sqrt(n), 3) if n > 0 else _g(np.sqrt(d), 3)
  out['all'] = _g(np.sqrt(num / den), 3)
  return out


# A random projection of each weight array (Johnson-Lindenstrauss): ||S(a) - S(b)|| /
# ||S(a)|| estimates ||a - b|| / ||a|| to about 1/sqrt(SKETCH_SIZE), so a fixture can hold
# the final weights' relative difference without holding the weights.
SKETCH_SIZE, SKETCH_SEED = 32, 2024


def sketch(params):
  """{layer: {leaf: SKETCH_SIZE numbers}}: each array, flattened, times a seeded
  Gaussian matrix (one per shape) scaled by 1/sqrt(SKETCH_SIZE)."""
  out = {}
  for layer in LAYERS:
    out[layer] = {}
    for leaf in ('kernel', 'bias'):
      w = np.asarray(params[layer][leaf], np.float64).ravel()
      projection = np.random.default_rng([SKETCH_SEED, w.size]).standard_normal(
          (w.size, SKETCH_SIZE)) / np.sqrt(SKETCH_SIZE)
      out[layer][leaf] = w @ projection
  return out


def sketch_difference(a, b):
  """||S(a) - S(b)|| / ||S(a)||, over all arrays at once, from two sketches."""
  num = sum(np.sum((np.asarray(a[l][f]) - np.asarray(b[l][f])) ** 2)
            for l in LAYERS for f in ('kernel', 'bias'))
  den = sum(np.sum(np.asarray(a[l][f]) ** 2) for l in LAYERS for f in ('kernel', 'bias'))
  return float(np.sqrt(num / den))


def _checksum(params):
  """What the tests check first: that they redrew the same initial weights."""
  return {layer: {'kernel_sum': _g(np.sum(params[layer]['kernel'], dtype=np.float64), 12),
                  'kernel_norm': _g(np.linalg.norm(params[layer]['kernel'].astype(np.float64)),
                                    12),
                  'kernel_first': _g(params[layer]['kernel'].flat[0], 9)}
          for layer in LAYERS}


def _summary(run, weights):
  out = {'history': {m: [_g(v) for v in run['history'][m]] for m in METRICS}}
  for key in ('initial_val_loss', 'initial_val_accuracy', 'test_loss', 'test_accuracy'):
    out[key] = _g(run[key])
  out['weight_norms'] = _norms(weights)
  out['weight_sketch'] = {layer: {leaf: [_g(v) for v in values] for leaf, values in leaves.items()}
                          for layer, leaves in sketch(weights).items()}
  out['fit_seconds'] = round(run['fit_s'], 2)
  return out


def _max_abs(a, b):
  return _g(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))), 3)


def _floor(runs_a, runs_b, weights_a, weights_b):
  """Per metric the max abs difference over epochs (and over every pair of runs)."""
  pairs = [(i, j) for i in range(len(runs_a)) for j in range(len(runs_b))]
  floor = {'history': {m: max(_max_abs(runs_a[i]['history'][m], runs_b[j]['history'][m])
                              for i, j in pairs) for m in METRICS}}
  for key in ('initial_val_loss', 'initial_val_accuracy', 'test_loss', 'test_accuracy'):
    floor[key] = max(_max_abs(runs_a[i][key], runs_b[j][key]) for i, j in pairs)
  norms_a = [_norms(w) for w in weights_a]
  norms_b = [_norms(w) for w in weights_b]
  floor['weight_norm_relative'] = {
      layer: {leaf: max(_g(abs(norms_a[i][layer][leaf] - norms_b[j][layer][leaf])
                           / max(norms_a[i][layer][leaf], 1e-30), 3) for i, j in pairs)
              for leaf in ('kernel', 'bias')} for layer in LAYERS}
  floor['weight_sketch_relative'] = max(
      _g(sketch_difference(sketch(weights_a[i]), sketch(weights_b[j])), 3) for i, j in pairs)
  if len(pairs) == 1:
    floor['weight_relative_difference'] = _relative_difference(weights_a[0], weights_b[0])
  return floor


def _versions(keras):
  import jax  # pylint: disable=g-import-not-at-top
  out = dict(keras=keras.__version__, jax=jax.__version__, numpy=np.__version__)
  if keras.backend.backend() == 'tensorflow':
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    out['tensorflow'] = tf.__version__
  return out


def write_fixture(config, raw, out_dir, weights_dir=None):
  name = config['name']
  runs = {b: json.loads((raw[b] / f'{name}.json').read_text()) for b in BACKENDS}
  npz = {b: np.load(raw[b] / f'{name}.npz') for b in BACKENDS}
  weights = {b: [_nested([npz[b][f'run{k}/{i}'] for i in range(6)])
                 for k in range(len(runs[b]))] for b in BACKENDS}
  n_train, n_val, batch = split_sizes(config)
  sizes = (784, *config['hidden_sizes'], 10)
  dropout = bool(config['dropout'])
  fixture = dict(
      name=name, note=config['note'],
      config={k: v for k, v in config.items() if k not in ('name', 'note', 'mask_seeds')},
      data=dict(source='MNIST IDX files, file order', rows_given_to_fit=config['rows'],
                train_rows=n_train, val_rows=n_val, test_rows=config['test_rows'],
                batch_size=batch, updates_per_epoch=-(-n_train // batch),
                inputs='uint8 / 255 as float32 on the host (correctly rounded)',
                validation='the last 20% of the rows given to fit', shuffle=False),
      initial_weights=dict(seed=config['seed'], distribution=config['init'],
                           sizes=list(sizes), drawn_by='tools/keras_golden.py:'
                                                       'draw_initial_weights',
                           checksum=_checksum(draw_initial_weights(config['seed'],
                                                                   config['init'], sizes))),
      reference_backend=REFERENCE_BACKEND,
  )
  if dropout:
    fixture['mask_seeds'] = config['mask_seeds']
    fixture['comparable'] = (
        'Dropout masks differ between Keras backends and seeds and cannot be replayed: '
        'only the initial evaluation (no dropout) is exact. Each backend ran once per mask '
        'seed (keras.utils.set_random_seed) from the same initial weights; noise_floor is '
        'the largest difference between any TF run and any JAX run, spread the largest '
        'difference between two runs of the same backend. Compare a replay statistically: '
        'its trajectory should lie within the runs\' range widened by the floor.')
    fixture['backends'] = {b: [_summary(r, w) for r, w in zip(runs[b], weights[b])]
                           for b in BACKENDS}
    fixture['spread'] = {b: _floor(runs[b], runs[b], weights[b], weights[b])['history']
                         for b in BACKENDS}
  else:
    fixture['comparable'] = (
        'Everything: no randomness after the initial weights. noise_floor is TF-Keras vs '
        'JAX-Keras (per metric the max abs difference over epochs; weights: relative '
        'Frobenius differences).')
    fixture['backends'] = {b: _summary(runs[b][0], weights[b][0]) for b in BACKENDS}
  fixture['noise_floor'] = _floor(runs['tensorflow'], runs['jax'], weights['tensorflow'],
                                  weights['jax'])
  if 'normal_10' == config['init']:
    fixture['noise_floor']['note'] = (
        'Keras on JAX clips the softmax probabilities in the cross-entropy, TF-Keras '
        'computes it from the logits: with saturated N(10) kernels the two backends '
        'train differently, so this floor is not a tolerance; follow the TensorFlow run.')
  checkpoint_steps = sorted({int(k.split('/')[0][4:]) for k in npz['tensorflow'].files
                             if k.startswith('step')})
  if checkpoint_steps:
    fixture['checkpoints'] = {
        str(s): _relative_difference(
            _nested([npz['tensorflow'][f'step{s}/{i}'] for i in range(6)]),
            _nested([npz['jax'][f'step{s}/{i}'] for i in range(6)]))['all']
        for s in checkpoint_steps}
    fixture['checkpoints_note'] = ('TF-Keras vs JAX-Keras relative weight difference '
                                   '(all weights) after that many updates')
  versions = {b: json.loads((raw[b] / 'versions.json').read_text()) for b in BACKENDS}
  fixture['versions'] = {'tensorflow': versions['tensorflow'].get('tensorflow'),
                         'keras': versions['tensorflow']['keras'],
                         'jax': versions['jax']['jax'], 'numpy': versions['jax']['numpy']}
  path = out_dir / f'{name}.json'
  path.write_text(json.dumps(fixture, indent=1) + '\n')
  if weights_dir is not None:
    for b in BACKENDS:
      np.savez(pathlib.Path(weights_dir) / f'{name}.{b}.npz', **dict(npz[b].items()))
  return path


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--only', nargs='*', help='configuration names (default: all)')
  parser.add_argument('--out', default=str(GOLDEN_DIR), help='where the fixtures go')
  parser.add_argument('--mnist', default=os.environ.get('MNIST_DIR', str(MNIST_DIR)))
  parser.add_argument('--weights-dir', help='also keep each backend\'s final weights here')
  parser.add_argument('--worker', choices=BACKENDS, help=argparse.SUPPRESS)
  parser.add_argument('--raw', help=argparse.SUPPRESS)
  parser.add_argument('--list', action='store_true', help='list the configurations')
  args = parser.parse_args(argv)
  known = [c['name'] for c in CONFIGS]
  names = args.only or known
  unknown = set(names) - set(known)
  if unknown:
    parser.error(f'unknown configurations {sorted(unknown)}; choose from {known}')
  if args.list:
    for c in CONFIGS:
      print(c['name'], '-', c['note'])
    return
  if args.worker:
    if os.environ.get('KERAS_BACKEND') != args.worker:
      parser.error('the worker needs KERAS_BACKEND set to its backend')
    worker(names, args.raw, args.mnist)
    return
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  if args.weights_dir:
    pathlib.Path(args.weights_dir).mkdir(parents=True, exist_ok=True)
  with tempfile.TemporaryDirectory() as tmp:
    raw = {}
    for backend in BACKENDS:
      raw[backend] = pathlib.Path(tmp) / backend
      raw[backend].mkdir()
      subprocess.run([sys.executable, __file__, '--worker', backend, '--raw', str(raw[backend]),
                      '--mnist', args.mnist, '--only', *names],
                     env={**os.environ, 'KERAS_BACKEND': backend, 'JAX_PLATFORMS': 'cpu',
                          'CUDA_VISIBLE_DEVICES': ''}, check=True)
    for config in CONFIGS:
      if config['name'] in names:
        print(write_fixture(config, raw, out, args.weights_dir))


if __name__ == '__main__':
  main()
