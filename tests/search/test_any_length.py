"""Every search runs at any length: 1 epoch, and its own period (Hyperband's factor,
an Optuna pruner's first rung) and one past it. PBT and PB2 (interval, interval + 1)
are in test_pbt.py; a PBT study of 1 epoch is replayed here."""

import pytest

from jaxmlp import pipeline
from jaxmlp.engine import checkpoint
from jaxmlp.engine import runner
from jaxmlp.search import registry
from jaxmlp.studies import space
from jaxmlp.studies import study as study_lib


def _run(tmp_path, split, **fields):
  config = registry.complete(study_lib.make_config(**{
      **dict(hidden_sizes=(16,), seeds=1, final_epochs=0, data_limit=1000), **fields}))
  pipeline.check_study(config, len(split.x_train))   # as a run does (a replay renames)
  settings, data = runner.start(config, split, tmp_path, progress=False,
                                checkpoint_every=checkpoint.Policy.parse('1'),
                                identity=registry.identity_rules(config.search))
  return registry.search_named(config.search).run(config, settings, data)


@pytest.mark.parametrize('max_epochs', [1, 3, 4])   # 1, factor, factor + 1
def test_hyperband_at_any_length(tmp_path, small_split, max_epochs):
  outcome = _run(tmp_path, small_split, name=f'hb{max_epochs}', search='hyperband',
                 learning_rate=(0.01, 0.001), epochs=max_epochs,
                 hyperband=dict(max_epochs=max_epochs, factor=3))
  assert outcome.records and max(r.epochs_trained for r in outcome.records) <= max_epochs


@pytest.mark.parametrize('epochs', [1, 2])   # successive halving's first rung is epoch 1
def test_optuna_with_a_pruner_at_any_length(tmp_path, small_split, epochs):
  outcome = _run(tmp_path, small_split, name=f'optuna{epochs}', search='optuna',
                 learning_rate=space.log_uniform(1e-4, 1e-1), epochs=epochs,
                 optuna=dict(trials=3, slots=2, pruner='successive_halving'))
  assert len(outcome.records) >= 1
  assert all(r.epochs_trained <= epochs for r in outcome.records)


def test_a_one_epoch_pbt_study_trains_and_replays(tmp_path, small_split):
  pbt_space = dict(hidden_sizes=(16,), learning_rate=space.log_uniform(1e-4, 1e-1),
                   epochs=1, optimizer='rmsprop')
  outcome = _run(tmp_path, small_split, name='pbt1', search='pbt',
                 pbt=dict(population=2, interval=2), **pbt_space)
  assert outcome.pbt['complete'] and outcome.pbt['winner'] in (0, 1)
  replay = _run(tmp_path, small_split, name='pbt1', search='pbt_replay',
                pbt_replay=dict(study=str(tmp_path / 'pbt1')), **pbt_space)
  record, = replay.records
  winner = outcome.records[outcome.pbt['winner']]
  assert record.history == winner.history   # the lineage, bit for bit
