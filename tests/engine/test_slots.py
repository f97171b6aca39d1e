"""A slot refilled while its program runs trains exactly its new occupant; the other
slots go on undisturbed; nothing recompiles."""

import numpy as np
import pytest

from jaxmlp.engine import devices
from jaxmlp.engine import plan
from jaxmlp.engine import program as program_lib
from jaxmlp.engine import slots
from jaxmlp.studies import study
from jaxmlp.core import train

STRUCTURE = train.Structure(hidden_sizes=(32,), batch_size=100, optimizer='adam',
                            use_l2=True, use_dropout=True, shuffle=True)


def _hparams(learning_rate, l2=1e-4, dropout=0.2):
  return study.hparams_of({**study.baseline(), 'learning_rate': learning_rate, 'l2': l2,
                           'dropout_rate': dropout})


@pytest.fixture(scope='module')
def device_data(small_split):
  return devices.put_data(small_split, devices.member_mesh())


def _alone(hparams, seed, epochs, device_data):
  (_, result), = plan.train_group(STRUCTURE, {k: np.array([v]) for k, v in hparams.items()},
                            np.array([seed]), device_data, epochs, devices.member_mesh())
  return result


def test_a_slot_refilled_mid_run_trains_as_its_trial_would_alone(device_data):
  program = slots.SlotProgram(STRUCTURE, train.Tracking(), devices.member_mesh(), 4,
                              device_data, _hparams(1e-3))
  first, second, refill = _hparams(1e-3), _hparams(3e-3, dropout=0.0), _hparams(5e-3, 1e-3)
  program.fill([0], 'first', [11], [first])
  program.fill([2], 'second', [12], [second])
  history = {0: [], 2: []}
  for _ in range(2):
    metrics, _ = program.run_epoch()
    for slot in history:
      history[slot].append(metrics['val_loss'][slot])
  assert np.isnan(metrics['val_loss'][1])   # an empty slot is frozen
  program.release([0])
  program.fill([0], 'refill', [13], [refill])   # slot 0 starts over, mid-run
  functions = program.program
  compiled = lambda: [f._cache_size() for f in (functions.init, functions.start,
                                                functions.select)]
  before = compiled()
  refill_history = []
  for _ in range(3):
    metrics, _ = program.run_epoch()
    refill_history.append(metrics['val_loss'][0])
    history[2].append(metrics['val_loss'][2])
  assert list(program.epoch_of[[0, 2]]) == [3, 5]
  # The refilled slot: as its trial alone, from its own seed, epochs counted from 0.
  alone = _alone(refill, 13, 3, device_data)
  np.testing.assert_allclose(refill_history, alone.history['val_loss'][0], rtol=2e-5)
  program_lib.jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b[0], rtol=2e-5,
                                                               atol=1e-6),
                      program.params(0), alone.final_params)
  # The slot next to it went on as if nothing happened.
  undisturbed = _alone(second, 12, 5, device_data)
  np.testing.assert_allclose(history[2], undisturbed.history['val_loss'][0], rtol=2e-5)
  # Refills change values, never shapes: once running, nothing more compiles.
  program.fill([1], 'third', [14], [first])
  program.run_epoch()
  assert compiled() == before
  assert functions.epoch._cache_size() == 1   # its own outputs fed back in hit the cache


def test_slots_per_program_hold_whole_trials(device_data):
  assert slots.sizes(STRUCTURE, 6, 3, 100, device_data, 'slots') == 6
  assert slots.sizes(STRUCTURE, 5, 3, 100, device_data, 'slots') == 6   # whole trials
  assert slots.sizes(STRUCTURE, 1, 1, 100, device_data, 'slots') == 1   # one trial at a time
  assert slots.sizes(STRUCTURE, 0, 2, 100, device_data, 'slots') % 2 == 0
  assert slots.sizes(STRUCTURE, 0, 1, 8, device_data, 'slots') <= 2     # a quarter of the budget
