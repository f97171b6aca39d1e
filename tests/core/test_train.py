"""The pure training functions: Keras batching, running means, evaluation."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmlp.engine import devices
from jaxmlp.core import metrics
from jaxmlp.studies import study
from jaxmlp.core import train
from jaxmlp.core import model as model_lib

HPARAMS = {k: jnp.float32(v) for k, v in study.hparams_of(study.baseline()).items()}
TINY = train.Structure(hidden_sizes=(8,), batch_size=4)


def _epoch(structure, state, x, y, epoch=0, hp=HPARAMS):
  fn = jax.jit(functools.partial(train.train_epoch, structure=structure))
  return fn(state._replace(epoch=jnp.int32(epoch)), jnp.asarray(x), jnp.asarray(y), hp)


@pytest.mark.parametrize('batch_size,updates', [(256, 188), (48_000, 1), (47_999, 2)])
def test_updates_per_epoch_on_48000_rows(mnist_split, batch_size, updates):
  structure = train.Structure(hidden_sizes=(8,), batch_size=batch_size)
  state = train.init_state(0, HPARAMS, structure)
  state, sums = _epoch(structure, state, mnist_split.x_train, mnist_split.y_train)
  assert int(state.step) == updates
  assert int(sums.count) == 48_000  # every row trained, the partial batch included


def test_partial_last_batch_is_trained_and_running_mean_is_batch_weighted(small_split):
  x, y = small_split.x_train[:10], small_split.y_train[:10]
  state0 = train.init_state(3, HPARAMS, TINY)
  state, sums = _epoch(TINY, state0, x, y)

  manual, losses = state0, []
  for start, stop in ((0, 4), (4, 8), (8, 10)):
    manual, batch = train.train_step(manual, jnp.asarray(x[start:stop]),
                                     jnp.asarray(y[start:stop]), HPARAMS, TINY, start // 4)
    losses.append(float(batch.loss) / (stop - start))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
               state.params, manual.params)
  np.testing.assert_allclose(float(sums.loss) / int(sums.count),
                             (4 * losses[0] + 4 * losses[1] + 2 * losses[2]) / 10, rtol=1e-6)


def test_shuffle_reorders_each_epoch_from_the_members_key(small_split):
  x, y = small_split.x_train[:64], small_split.y_train[:64]
  shuffled = train.Structure(hidden_sizes=(8,), batch_size=16, shuffle=True)
  fixed = train.Structure(hidden_sizes=(8,), batch_size=16)
  start = train.init_state(0, HPARAMS, shuffled)
  kernel = lambda s: np.asarray(s.params['hidden_0']['kernel'])
  a0, _ = _epoch(shuffled, start, x, y, epoch=0)
  a0_again, _ = _epoch(shuffled, start, x, y, epoch=0)
  a1, _ = _epoch(shuffled, start, x, y, epoch=1)
  b0, _ = _epoch(fixed, start, x, y, epoch=0)
  b1, _ = _epoch(fixed, start, x, y, epoch=1)
  np.testing.assert_array_equal(kernel(a0), kernel(a0_again))   # reproducible
  assert not np.allclose(kernel(a0), kernel(a1))                # new order each epoch
  assert not np.allclose(kernel(a0), kernel(b0))                # not the file order
  np.testing.assert_array_equal(kernel(b0), kernel(b1))         # shuffle=False: fixed order


def test_evaluate_matches_direct_computation_with_a_partial_chunk(small_split):
  structure = train.Structure(use_l2=True)
  hp = {**HPARAMS, 'l2': jnp.float32(0.01)}
  state = train.init_state(0, hp, structure)
  x = np.concatenate([small_split.x_train, small_split.x_val])[:2500]  # 2000 + 500
  y = np.concatenate([small_split.y_train, small_split.y_val])[:2500]
  loss, accuracy, f1 = train.evaluate(state.params, jnp.asarray(x), jnp.asarray(y), hp,
                                      structure)
  logits = structure.model().apply({'params': state.params}, x.astype(np.float32) / 255)
  logp = jax.nn.log_softmax(logits)
  expected = -np.mean(np.take_along_axis(np.asarray(logp), y[:, None], 1))
  expected += 0.01 * sum(float(jnp.sum(state.params[l]['kernel'] ** 2))
                         for l in ('hidden_0', 'hidden_1'))
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(accuracy, np.mean(np.argmax(logits, -1) == y))
  cm = metrics.confusion_matrix(y, np.argmax(logits, -1))
  np.testing.assert_allclose(f1, metrics.precision_recall_f1(cm)['macro_f1'], rtol=1e-5)


def test_one_epoch_of_the_baseline_on_real_mnist(mnist_split):
  """Real MNIST smoke test: the original's network learns in one epoch."""
  structure = train.Structure()
  state = train.init_state(0, HPARAMS, structure)
  fit = jax.jit(functools.partial(train.fit_epoch, structure=structure))
  state, metrics = fit(state, HPARAMS, devices.put_data(mnist_split, devices.member_mesh()))
  assert int(state.step) == 188
  assert float(metrics.val_accuracy) > 0.93
  assert float(metrics.train_loss) < 0.5



def test_an_epoch_advances_the_epoch_number_and_draws_new_dropout_masks(small_split):
  """Masks come from (epoch, batch): a continued trial, whose update count restarts,
  never repeats its parent's masks."""
  x, y = small_split.x_train[:64], small_split.y_train[:64]
  dropped = train.Structure(hidden_sizes=(16,), batch_size=16, use_dropout=True)
  hp = {**HPARAMS, **{k: jnp.float32(v) for k, v in model_lib.dropout_constants(0.3).items()}}
  start = train.init_state(0, hp, dropped)
  kernel = lambda s: np.asarray(s.params['hidden_0']['kernel'])
  a, _ = _epoch(dropped, start, x, y, epoch=0, hp=hp)
  assert int(a.epoch) == 1 and int(a.step) == 4
  again, _ = _epoch(dropped, start, x, y, epoch=0, hp=hp)
  later, _ = _epoch(dropped, start, x, y, epoch=3, hp=hp)
  np.testing.assert_array_equal(kernel(a), kernel(again))
  assert not np.allclose(kernel(a), kernel(later))   # same step count, other masks
  assert int(later.epoch) == 4


def test_inputs_are_the_correctly_rounded_float32_quotients_keras_trains_on():
  pixels = np.arange(256, dtype=np.uint8)
  keras = pixels.astype(np.float32) / np.float32(255)   # numpy: correctly rounded
  np.testing.assert_array_equal(jax.jit(train.normalize)(pixels), keras)
  # What the table avoids: XLA compiles x / 255 as x * (1/255).
  divided = jax.jit(lambda x: x.astype(jnp.float32) / 255.0)(pixels)
  assert np.sum(np.asarray(divided) != keras) == 126
