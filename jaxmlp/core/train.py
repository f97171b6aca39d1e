"""Training as pure functions of one member; vmap, jit and sharding wrap them in engine.py.

Shape suffixes: B batch rows, D input features (784), C classes (10), N dataset rows.
"""

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmlp.core import model as model_lib
from jaxmlp.core import objective as objective_lib
from jaxmlp.core import optim

HParams = dict[str, jax.Array]  # one member's numeric hyperparameters, traced
EVAL_CHUNK = 2000


@dataclasses.dataclass(frozen=True)
class Structure:
  """What fixes a compiled program's shapes; members sharing it train together."""
  hidden_sizes: tuple[int, ...] = (128, 256)
  kernel_init: str = 'glorot_uniform'
  use_dropout: bool = False
  optimizer: str = 'adam'
  use_l1: bool = False
  use_l2: bool = False
  batch_size: int = 256
  shuffle: bool = False
  # How a program's members share a device: 'alone' (each computed as it is alone, so
  # its numbers do not depend on the packing), 'batched' (one batched matmul per layer:
  # faster on accelerators, numbers that depend on the packing), 'auto' (alone on a
  # CPU, where it costs nothing, batched elsewhere).
  arithmetic: str = 'auto'

  def alone(self, platform: str) -> bool:
    """Whether members on a `platform` device are computed one by one, as alone."""
    return self.arithmetic == 'alone' or (self.arithmetic == 'auto' and platform == 'cpu')

  def model(self, hparams: HParams | None = None) -> model_lib.MLP:
    hparams = hparams or {}
    init = model_lib.kernel_initializer(
        self.kernel_init, hparams.get('init_mean', 0.0),
        hparams.get('init_stddev', 0.05))
    return model_lib.MLP(tuple(self.hidden_sizes), use_dropout=self.use_dropout,
                         kernel_init=init)

  def param_shapes(self, input_dim: int = 784):
    """The parameters' shapes and dtypes (no computation)."""
    return jax.eval_shape(lambda: self.model().init(
        jax.random.key(0), jnp.zeros((1, input_dim), jnp.float32))['params'])

  def optimizer_for(self, hparams: HParams) -> optax.GradientTransformation:
    return optim.make_optimizer(self.optimizer, hparams, use_l1=self.use_l1,
                                use_l2=self.use_l2)

  def penalty(self, params, hparams: HParams):
    return optim.penalty(params, hparams, use_l1=self.use_l1, use_l2=self.use_l2)


class TrainState(NamedTuple):
  params: Any
  opt_state: Any
  step: jax.Array   # weight updates so far
  key: jax.Array    # the member's own stream for dropout and shuffling
  epoch: jax.Array  # the next epoch's number, counted from the member's lineage start


class Sums(NamedTuple):
  """Batch-size-weighted sums, so the epoch mean matches Keras' running mean."""
  loss: jax.Array
  correct: jax.Array
  count: jax.Array

  @classmethod
  def zeros(cls):
    return cls(jnp.zeros([], jnp.float32), jnp.zeros([], jnp.int32),
               jnp.zeros([], jnp.int32))

  def __add__(self, other):
    return Sums(*(a + b for a, b in zip(self, other)))


# The correctly rounded float32 quotients v / 255 that Keras trains on (numpy's
# `x.astype('float32') / 255`). XLA compiles `x / 255.0` as `x * (1/255)`, one ulp off
# for 126 of the 256 pixel values; the data stays uint8 and indexes this table.
PIXEL_VALUES = np.arange(256, dtype=np.float32) / np.float32(255)


def normalize(x_BD_u8):
  """uint8 pixels to float32 x / 255, bit for bit what Keras' inputs were."""
  return jnp.asarray(PIXEL_VALUES)[x_BD_u8]


def init_state(seed, hparams: HParams, structure: Structure, input_dim: int = 784,
               first_epoch=0) -> TrainState:
  """A member's weights and optimizer state from its seed; `first_epoch` numbers its
  epochs on from where a parent stopped (a continued Hyperband trial)."""
  init_key, run_key = jax.random.split(jax.random.key(seed))
  params = structure.model(hparams).init(
      init_key, jnp.zeros((1, input_dim), jnp.float32))['params']
  opt_state = structure.optimizer_for(hparams).init(params)
  return TrainState(params, opt_state, jnp.zeros([], jnp.int32), run_key,
                    jnp.asarray(first_epoch, jnp.int32))


def train_step(state: TrainState, x_BD_u8, y_B, hparams: HParams, structure: Structure,
               batch_index=0) -> tuple[TrainState, Sums]:
  """One Keras weight update; returns the batch's loss (penalty included) as sums.

  Dropout masks come from (epoch, batch), so a continued trial, whose update count
  starts again at 0, never repeats its parent's masks.
  """
  model = structure.model()
  dropout_key = jax.random.fold_in(
      jax.random.fold_in(jax.random.fold_in(state.key, 0), state.epoch), batch_index)

  def cross_entropy(params):
    logits_BC = model.apply({'params': params}, normalize(x_BD_u8), train=True,
                            dropout_keep=hparams['dropout_keep'],
                            dropout_scale=hparams['dropout_scale'],
                            rngs={'dropout': dropout_key})
    return optax.softmax_cross_entropy_with_integer_labels(logits_BC, y_B).mean(), logits_BC

  (ce, logits_BC), grads = jax.value_and_grad(cross_entropy, has_aux=True)(state.params)
  loss = ce + structure.penalty(state.params, hparams)
  tx = structure.optimizer_for(hparams)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  batch = y_B.shape[0]
  sums = Sums(loss * batch, jnp.sum(jnp.argmax(logits_BC, -1) == y_B), jnp.int32(batch))
  return state._replace(params=params, opt_state=opt_state, step=state.step + 1), sums


def train_epoch(state: TrainState, x_ND_u8, y_N, hparams: HParams,
                structure: Structure) -> tuple[TrainState, Sums]:
  """One pass over the training rows in Keras' order (or shuffled from the member's key
  and epoch); the partial last batch is trained; the epoch number advances."""
  n = x_ND_u8.shape[0]
  batch = structure.batch_size
  full_batches, remainder = divmod(n, batch)
  order_N = None
  if structure.shuffle:
    shuffle_key = jax.random.fold_in(jax.random.fold_in(state.key, 1), state.epoch)
    order_N = jax.random.permutation(shuffle_key, n)

  def rows(start, size):
    if order_N is None:
      return (jax.lax.dynamic_slice_in_dim(x_ND_u8, start, size),
              jax.lax.dynamic_slice_in_dim(y_N, start, size))
    index = jax.lax.dynamic_slice_in_dim(order_N, start, size)
    return x_ND_u8[index], y_N[index]

  def body(carry, i):
    state, sums = carry
    state, batch_sums = train_step(state, *rows(i * batch, batch), hparams, structure, i)
    return (state, sums + batch_sums), None

  (state, sums), _ = jax.lax.scan(body, (state, Sums.zeros()), jnp.arange(full_batches))
  if remainder:
    state, batch_sums = train_step(state, *rows(full_batches * batch, remainder),
                                   hparams, structure, full_batches)
    sums = sums + batch_sums
  return state._replace(epoch=state.epoch + 1), sums


class Evaluation(NamedTuple):
  loss: jax.Array      # mean cross-entropy plus the penalty, as Keras reports it
  accuracy: jax.Array
  f1: jax.Array        # macro-F1 over the whole set (not a per-batch average)


def macro_f1(confusion_CC):
  """Mean over classes of F1 from confusion counts (rows actual); 0 where undefined."""
  tp = jnp.diag(confusion_CC).astype(jnp.float32)
  predicted, actual = confusion_CC.sum(0), confusion_CC.sum(1)
  precision = jnp.where(predicted > 0, tp / jnp.maximum(predicted, 1), 0.0)
  recall = jnp.where(actual > 0, tp / jnp.maximum(actual, 1), 0.0)
  both = precision + recall
  return jnp.mean(jnp.where(both > 0, 2 * precision * recall / jnp.where(both > 0, both, 1),
                            0.0))


def evaluate(params, x_ND_u8, y_N, hparams: HParams, structure: Structure) -> Evaluation:
  """Loss, accuracy and macro-F1 of a whole set, in row chunks."""
  model = structure.model()
  n = x_ND_u8.shape[0]
  chunk = min(EVAL_CHUNK, n)
  full_chunks, remainder = divmod(n, chunk)
  classes = model.num_classes

  def chunk_sums(start, size):
    x = jax.lax.dynamic_slice_in_dim(x_ND_u8, start, size)
    y = jax.lax.dynamic_slice_in_dim(y_N, start, size)
    logits_BC = model.apply({'params': params}, normalize(x))
    ce = optax.softmax_cross_entropy_with_integer_labels(logits_BC, y)
    predicted = jnp.argmax(logits_BC, -1)
    confusion = jnp.zeros((classes, classes), jnp.int32).at[y, predicted].add(1)
    return jnp.sum(ce), confusion

  def body(carry, i):
    loss, confusion = chunk_sums(i * chunk, chunk)
    return (carry[0] + loss, carry[1] + confusion), None

  zeros = (jnp.zeros([], jnp.float32), jnp.zeros((classes, classes), jnp.int32))
  (loss_sum, confusion), _ = jax.lax.scan(body, zeros, jnp.arange(full_chunks))
  if remainder:
    loss, extra = chunk_sums(full_chunks * chunk, remainder)
    loss_sum, confusion = loss_sum + loss, confusion + extra
  # Divided by the counted rows, not the constant n: XLA turns a division by a
  # constant into a product with its reciprocal, which rounds differently from Keras'
  # total / count.
  count = jnp.sum(confusion)
  loss = loss_sum / count + structure.penalty(params, hparams)
  return Evaluation(loss, jnp.trace(confusion) / count, macro_f1(confusion))


class EpochMetrics(NamedTuple):
  train_loss: jax.Array
  train_accuracy: jax.Array
  val_loss: jax.Array
  val_accuracy: jax.Array
  val_f1: jax.Array


def fit_epoch(state: TrainState, hparams: HParams, data,
              structure: Structure) -> tuple[TrainState, EpochMetrics]:
  """An epoch as Keras' fit reports it: running train means, then validation."""
  state, sums = train_epoch(state, data.x_train, data.y_train, hparams, structure)
  val = evaluate(state.params, data.x_val, data.y_val, hparams, structure)
  # Keras divides its running total by its count. XLA would divide by the constant row
  # count as a product with its reciprocal, and, under vmap, by one scalar broadcast to
  # every member the same way (1 ulp off in some epochs): the count is made per member
  # (the select's two sides are the same) and kept from being folded by the barrier.
  count = jax.lax.optimization_barrier(jnp.where(sums.correct >= 0, sums.count, sums.count))
  return state, EpochMetrics(sums.loss / count, sums.correct / count,
                             val.loss, val.accuracy, val.f1)


@dataclasses.dataclass(frozen=True)
class Tracking:
  """Per-epoch bookkeeping inside the program: the best epoch by `objective` (its
  weights are kept, as keras_tuner checkpoints a trial's best epoch), and Keras'
  EarlyStopping on `monitor` (patience 0: never stop)."""
  objective: str = 'val_accuracy'
  monitor: str = 'val_loss'
  patience: int = 0


def _better(name: str, new, old):
  return objective_lib.Objective.of(name).better(new, old)


class Tracker(NamedTuple):
  best_params: Any
  best_score: jax.Array
  best_epoch: jax.Array
  monitor_best: jax.Array
  wait: jax.Array
  stopped: jax.Array
  epochs_trained: jax.Array


def init_tracker(params, tracking: Tracking) -> Tracker:
  worst = lambda name: jnp.float32(objective_lib.Objective.of(name).worst)
  return Tracker(params, worst(tracking.objective), jnp.int32(-1), worst(tracking.monitor),
                 jnp.int32(0), jnp.bool_(False), jnp.int32(0))


def tracked_epoch(state: TrainState, tracker: Tracker, hparams: HParams, data,
                  structure: Structure, tracking: Tracking):
  """fit_epoch, then the bookkeeping; a stopped member stays frozen as it was."""
  epoch = state.epoch
  trained, metrics = fit_epoch(state, hparams, data, structure)
  frozen = tracker.stopped
  state = jax.tree.map(lambda old, new: jnp.where(frozen, old, new), state, trained)
  score = getattr(metrics, tracking.objective)
  improved = ~frozen & _better(tracking.objective, score, tracker.best_score)
  keep = lambda new, old: jnp.where(improved, new, old)
  monitored = getattr(metrics, tracking.monitor)
  progress = _better(tracking.monitor, monitored, tracker.monitor_best)
  wait = jnp.where(progress, 0, tracker.wait + 1)
  stopped = frozen | ((tracking.patience > 0) & (wait >= tracking.patience))
  tracker = Tracker(
      jax.tree.map(keep, state.params, tracker.best_params), keep(score, tracker.best_score),
      keep(epoch, tracker.best_epoch),
      jnp.where(frozen | ~progress, tracker.monitor_best, monitored),
      jnp.where(frozen, tracker.wait, wait), stopped,
      tracker.epochs_trained + jnp.where(frozen, 0, 1))
  return state, tracker, metrics


def predict(params, x_ND_u8, structure: Structure):
  """Predicted classes (argmax of the logits)."""
  logits_NC = structure.model().apply({'params': params}, normalize(jnp.asarray(x_ND_u8)))
  return jnp.argmax(logits_NC, -1)
