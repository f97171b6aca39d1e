"""The vmapped, sharded engine, cut into programs by the planner, gives each member
what it would get alone."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from jaxmlp.engine import checkpoint
from jaxmlp.engine import devices
from jaxmlp.engine import interrupt
from jaxmlp.engine import plan
from jaxmlp.engine import program as program_lib
from jaxmlp.studies import study
from jaxmlp.core import train

STRUCTURE = train.Structure(hidden_sizes=(32, 16), batch_size=128, optimizer='rmsprop',
                            use_l2=True)


def _hparams(learning_rates, l2=1e-3):
  base = study.hparams_of(study.baseline())
  n = len(learning_rates)
  hp = {k: np.full(n, v, np.float32) for k, v in base.items()}
  hp['learning_rate'] = np.asarray(learning_rates, np.float32)
  hp['l2'] = np.full(n, l2, np.float32)
  return hp


def _select(hp, k):
  return {name: v[k:k + 1] for name, v in hp.items()}


@pytest.fixture(scope='module')
def device_data(small_split):
  return devices.put_data(small_split, devices.member_mesh())


def _train(structure, hp, seeds, data, epochs, **kw):
  """Each member's (result, row), trained as the runner plans and runs a group."""
  return plan.by_member(plan.train_group(structure, hp, np.asarray(seeds), data, epochs,
                                   devices.member_mesh(), **kw))


def _one(structure, hp, seeds, data, epochs, **kw):
  """The result of a group the planner runs as one program."""
  (_, result), = plan.train_group(structure, hp, np.asarray(seeds), data, epochs,
                            devices.member_mesh(), **kw)
  return result


def _run(hp, seeds, data, epochs=2, **kw):
  return _train(STRUCTURE, hp, seeds, data, epochs, **kw)


def _field(members, name):
  """A GroupResult field (member axis first) gathered over the members' programs."""
  return np.stack([getattr(result, name)[row] for result, row in members])


def _tree(members, name):
  return program_lib.jax.tree.map(lambda *xs: np.stack(xs),
                             *(program_lib.member(r, row)[name] for r, row in members))


def _assert_same(a, ka, b, kb, rtol=2e-5):
  (ra, ia), (rb, ib) = a[ka], b[kb]
  for name in ra.history:
    np.testing.assert_allclose(ra.history[name][ia], rb.history[name][ib], rtol=rtol,
                               atol=1e-6, err_msg=name)
  np.testing.assert_allclose(ra.test_loss[ia], rb.test_loss[ib], rtol=rtol)
  np.testing.assert_allclose(ra.test_accuracy[ia], rb.test_accuracy[ib], rtol=rtol)


def test_member_k_equals_the_same_configuration_trained_alone(device_data):
  hp = _hparams([1e-3, 3e-3, 1e-2])
  seeds = [5, 6, 7]
  together = _run(hp, seeds, device_data)
  assert len({id(result) for result, _ in together}) == 1   # one program
  assert _field(together, 'members_per_program')[0] == 3
  for k in range(3):
    alone = _run(_select(hp, k), seeds[k:k + 1], device_data)
    _assert_same(together, k, alone, 0)
  # Different seeds and learning rates really are different runs.
  assert len({float(v) for v in _field(together, 'test_loss')}) == 3
  assert list(_field(together, 'weight_updates')) == [2 * 16] * 3  # 2000 rows / 128 -> 16 per epoch


def test_running_means_are_keras_total_over_count_for_every_member(device_data,
                                                                    small_split):
  """Keras divides an epoch's correct count by its row count; vmapped, XLA would
  multiply by the reciprocal of the count broadcast to every member instead, 1 ulp
  off for some counts. Every member's train accuracy, in one program of several, is
  the correctly rounded quotient."""
  hp = _hparams([1e-3, 2e-3, 3e-3, 4e-3])
  result = _one(STRUCTURE, hp, [0, 1, 2, 3], device_data, 4)
  rows = np.float32(len(small_split.x_train))
  accuracy = result.history['train_accuracy']
  correct = np.round(accuracy.astype(np.float64) * rows)
  np.testing.assert_array_equal(accuracy, (correct / rows).astype(np.float32))


def test_chunked_group_equals_one_program(device_data):
  hp = _hparams([1e-3, 2e-3, 3e-3, 4e-3, 5e-3])
  seeds = [0, 1, 2, 3, 4]
  whole = _run(hp, seeds, device_data)
  chunked = _run(hp, seeds, device_data, max_members=2)
  # On a CPU the last program's one member runs alone; an accelerator pads it to 2,
  # so that every program of the group shares one compiled shape.
  last = 1 if program_lib.jax.devices()[0].platform == 'cpu' else 2
  assert list(_field(chunked, 'members_per_program')) == [2, 2, 2, 2, last]
  for k in range(5):
    _assert_same(whole, k, chunked, k)


def test_a_diverging_member_does_not_disturb_the_others(device_data):
  hp = _hparams([1e-3, 1e30, 2e-3])
  result = _run(hp, [0, 1, 2], device_data)
  diverged, row = result[1]
  assert not np.isfinite(diverged.history['train_loss'][row]).all()
  calm = _run(_hparams([1e-3, 2e-3]), [0, 2], device_data)
  _assert_same(result, 0, calm, 0)
  _assert_same(result, 2, calm, 1)


SHARDED_RUN = r'''
import json, sys, numpy as np, jax
from jaxmlp.data import mnist as data
from jaxmlp.engine import devices
from jaxmlp.engine import plan
from jaxmlp.studies import study
from jaxmlp.core import train
split = data.split(data.load_idx())
split = data.Split(split.x_train[:1000], split.y_train[:1000], split.x_val[:500],
                   split.y_val[:500], split.x_test[:500], split.y_test[:500])
base = study.hparams_of(study.baseline())
hp = {k: np.full(6, v, np.float32) for k, v in base.items()}
hp['learning_rate'] = np.linspace(1e-3, 6e-3, 6).astype(np.float32)
s = train.Structure(hidden_sizes=(32,), batch_size=100, shuffle=True)
mesh = devices.member_mesh()
device_data = devices.put_data(split, mesh)
def trained(**kw):
  """name -> that field of each member (history's fields by their own names)."""
  members = plan.by_member(plan.train_group(s, hp, np.arange(6), device_data, 2, mesh, **kw))
  field = lambda r, name: r.history[name] if name in r.history else getattr(r, name)
  return lambda name: [field(r, name)[row].tolist() for r, row in members]
r = trained()
# Programs of at most 4: on 4 devices the last 2 members run on 2 of them.
chunked = trained(max_members=4)
layouts = {}
for n in range(1, 10):
  program_mesh, block = devices.program_layout(mesh, n, chunk=4 * mesh.size)
  layouts[n] = [program_mesh.size, block]
print(json.dumps(dict(devices=len(jax.devices()), per_program=r('members_per_program')[0],
                      val=r('val_loss'), test=r('test_loss'),
                      chunked_per_program=chunked('members_per_program'),
                      chunked_val=chunked('val_loss'), layouts=layouts)))
'''


def _python(script: str, xla_flags: str, *args: str) -> dict:
  """The JSON last printed by `script`, run in a fresh process (its own JAX backends)."""
  out = subprocess.run([sys.executable, '-c', script, *args],
                       # CPU devices, also where an accelerator is present.
                       env={**os.environ, 'XLA_FLAGS': xla_flags, 'JAX_PLATFORMS': 'cpu'},
                       capture_output=True, text=True, check=True, timeout=300)
  return json.loads(out.stdout.strip().splitlines()[-1])


def _sharded(devices):
  return _python(SHARDED_RUN, f'--xla_force_host_platform_device_count={devices}')


def test_members_shard_over_four_devices_with_the_same_numbers(mnist_split):
  one, four = _sharded(1), _sharded(4)
  assert (one['devices'], four['devices']) == (1, 4)
  # One CPU device takes 4 members a program (then the other 2); 6 members on 4
  # devices run on 3 of them, 2 each, rather than on 4 with 2 padding slots.
  assert (one['per_program'], four['per_program']) == (4, 6)
  # members: [devices, members per device]
  assert four['layouts'] == {'1': [1, 1], '2': [2, 1], '3': [3, 1], '4': [4, 1],
                             '5': [3, 2], '6': [3, 2], '7': [4, 2], '8': [4, 2],
                             '9': [3, 3]}
  assert all(layout == [1, n] for n, layout in zip(range(1, 10), one['layouts'].values()))
  np.testing.assert_allclose(one['val'], four['val'], rtol=2e-5)
  assert four['chunked_per_program'] == [4, 4, 4, 4, 2, 2]
  np.testing.assert_allclose(one['val'], four['chunked_val'], rtol=2e-5)
  np.testing.assert_allclose(one['test'], four['test'], rtol=2e-5)


SGD = train.Structure(hidden_sizes=(32, 16), batch_size=128, optimizer='sgd')


def _sgd_hparams(learning_rates):
  return _hparams(learning_rates, l2=0.0)


def test_continuing_from_saved_weights_equals_training_straight_through(device_data):
  """SGD keeps no state, so reloaded weights continue exactly where they stopped."""
  hp, seeds = _sgd_hparams([0.05, 0.1]), np.array([0, 1])
  straight = _one(SGD, hp, seeds, device_data, 5)
  first = _one(SGD, hp, seeds, device_data, 2)
  rest = _one(SGD, hp, seeds, device_data, 3, first_epoch=2,
              initial_params=[program_lib.member(first, k)['final'] for k in range(2)])
  jax_tree_allclose(rest.final_params, straight.final_params)
  np.testing.assert_allclose(rest.history['val_loss'], straight.history['val_loss'][:, 2:],
                             rtol=1e-5)
  np.testing.assert_allclose(rest.test_loss, straight.test_loss, rtol=1e-5)


def jax_tree_allclose(a, b, rtol=1e-5):
  program_lib.jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-6),
                      a, b)


def test_early_stopped_members_freeze_and_best_weights_are_kept(device_data):
  hp = _sgd_hparams([0.05, 3.0])
  tracking = train.Tracking(objective='val_accuracy', monitor='val_loss', patience=1)
  result = _one(SGD, hp, [0, 1], device_data, 6, tracking=tracking)
  trained = result.epochs_trained
  assert trained[0] == 6 and 1 <= trained[1] < 6   # lr 3.0 stops, lr 0.05 goes on
  assert np.isnan(result.history['val_loss'][1, trained[1]:]).all()
  # The stopped member froze: bit for bit what the same program gives when it ends
  # at that epoch.
  shorter = _one(SGD, hp, [0, 1], device_data, int(trained[1]), tracking=tracking)
  program_lib.jax.tree.map(np.testing.assert_array_equal,
                      program_lib.jax.tree.map(lambda x: x[1], result.final_params),
                      program_lib.jax.tree.map(lambda x: x[1], shorter.final_params))
  # The other member did not notice.
  calm = _one(SGD, _select(hp, 0), [0], device_data, 6)
  _assert_same([(result, 0)], 0, [(calm, 0)], 0)
  # Best weights: those of the best validation-accuracy epoch.
  best = int(result.best_epoch[0])
  assert result.history['val_accuracy'][0, best] == np.nanmax(result.history['val_accuracy'][0])
  upto = _one(SGD, _select(hp, 0), [0], device_data, best + 1)
  jax_tree_allclose(program_lib.jax.tree.map(lambda x: x[:1], result.best_params),
                    upto.final_params)


def test_a_group_ends_when_every_member_has_stopped(device_data):
  hp = _sgd_hparams([3.0, 4.0])
  tracking = train.Tracking(monitor='val_loss', patience=1)
  calls = []
  result = _one(SGD, hp, [0, 1], device_data, 50, tracking=tracking,
                on_epoch=lambda done, total, m: calls.append(done))
  assert max(result.epochs_trained) < 50 and len(calls) == max(result.epochs_trained)


def _program(hp, seeds, data, epochs, **kw):
  programs = plan.cut(SGD, [False] * len(seeds), len(seeds), plan.data_bytes_of(data),
                      len(data.x_train))
  return program_lib.run_program(SGD, train.Tracking(), hp, np.asarray(seeds), data, epochs,
                            programs[0].layout(devices.member_mesh()), **kw)


def _same_result(a, b):
  """Bit for bit, timings aside."""
  for name in a.history:
    np.testing.assert_array_equal(a.history[name], b.history[name], err_msg=name)
  for field in ('test_loss', 'test_accuracy', 'weight_updates', 'best_epoch'):
    np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
  for tree in ('initial_params', 'final_params', 'best_params'):
    program_lib.jax.tree.map(np.testing.assert_array_equal, getattr(a, tree), getattr(b, tree))


def test_a_stopped_program_saves_a_checkpoint_and_resumes_to_identical_results(
    device_data, tmp_path):
  hp, seeds = _sgd_hparams([0.05, 0.1, 0.2]), [0, 1, 2]
  straight = _program(hp, seeds, device_data, 5)
  policy = checkpoint.Policy.parse('0')   # only when stopped
  logged = []
  ckpt = lambda: checkpoint.ProgramCheckpoint(tmp_path / 'p', policy, log=logged.append)

  def stop_after_epoch_2(epoch, metrics):
    if epoch == 1:
      signal.raise_signal(signal.SIGTERM)  # deferred: the loop saves, then stops

  with interrupt.remembered(), pytest.raises(interrupt.Stopped) as stopped:
    _program(hp, seeds, device_data, 5, checkpoint=ckpt(), on_epoch=stop_after_epoch_2)
  assert stopped.value.exit_code == 143
  assert stopped.value.where == 'saved a checkpoint at epoch 2 of 5'
  epochs_run = []
  with interrupt.remembered():
    resumed = _program(hp, seeds, device_data, 5, checkpoint=ckpt(),
                       on_epoch=lambda epoch, metrics: epochs_run.append(epoch))
  assert logged == ['resumed at epoch 2 of 5 from its checkpoint']
  assert epochs_run == [2, 3, 4]   # only the rest
  _same_result(straight, resumed)


def test_a_checkpoint_policy_saves_when_due(device_data, tmp_path):
  hp, seeds = _sgd_hparams([0.05]), [0]
  ckpt = checkpoint.ProgramCheckpoint(tmp_path / 'p', checkpoint.Policy.parse('2'))
  saved = []
  real_save = ckpt.save
  ckpt.save = lambda done, *args: (saved.append(done), real_save(done, *args))
  _program(hp, seeds, device_data, 5, checkpoint=ckpt)
  assert saved == [2, 4]   # not after the last epoch: the members are written then
  ckpt.delete()
  assert not (tmp_path / 'p').exists()


def test_a_checkpoint_of_another_layout_is_not_used(device_data, tmp_path):
  hp = _sgd_hparams([0.05, 0.1])
  policy = checkpoint.Policy.parse('1')
  two = checkpoint.ProgramCheckpoint(tmp_path / 'p', policy)
  _program(hp, [0, 1], device_data, 2, checkpoint=two)
  two.wait()   # its checkpoint of epoch 1 is on disk
  logged = []
  alone = checkpoint.ProgramCheckpoint(tmp_path / 'p', policy, log=logged.append)
  one = _program(_select(hp, 0), [0], device_data, 2, checkpoint=alone)
  alone.delete()
  assert logged == [] and int(one.epochs_trained[0]) == 2
