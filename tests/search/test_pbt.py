"""Population-based training's decisions (pbt._rules) and its exploit inside one compiled
program (pbt._evolve): quantile 0 is plain vmapped training bit for bit, an exploit
copies a donor's whole state, and nothing compiles while the population evolves."""

import json
import re

import numpy as np
import pytest

from jaxmlp.core import pareto
from jaxmlp.core import train
from jaxmlp.engine import devices
from jaxmlp.engine import plan
from jaxmlp.common.errors import UserError
from jaxmlp.search.pbt import PBTSearch
from jaxmlp.search.pbt import _search
from jaxmlp.search.pbt import _evolve
from jaxmlp.search.pbt import _rules
from jaxmlp.search import registry
from jaxmlp.studies import space
from jaxmlp.studies import study as study_lib


def _config(pbt=None, **overrides):
  fields = dict(name='tiny_pbt', optimizer='rmsprop', kernel_init='he_normal',
                hidden_sizes=(16,), l2=space.log_uniform(1e-7, 1e-1),
                learning_rate=space.log_uniform(1e-4, 1e-1), epochs=6, seeds=1,
                search='pbt', pbt={**dict(population=4, interval=2), **(pbt or {})},
                final_epochs=0, data_limit=1000)
  return registry.complete(study_lib.make_config(**{**fields, **overrides}))


# --- decisions --------------------------------------------------------------------------


def test_ranking_follows_the_objectives_direction_nan_last_ties_by_index():
  scores = np.array([0.5, np.nan, 0.9, 0.5, 0.1], np.float32)
  assert _rules.ranked(scores, 'val_accuracy') == [2, 0, 3, 4, 1]
  assert _rules.ranked(scores, 'val_loss') == [4, 0, 3, 2, 1]


@pytest.mark.parametrize('n, q, k', [(16, 0.25, 4), (4, 0.25, 1), (5, 0.5, 2), (3, 0.5, 1),
                                     (8, 0, 0), (10, 0.1, 1)])
def test_the_exploited_count_is_ceil_n_q_at_most_half(n, q, k):
  assert _rules.exploit_count(n, q) == k


def test_decisions_are_deterministic_inside_the_space_and_copy_from_the_top():
  config = _config(pbt=dict(population=8, resample=0.5))
  _, dims = _rules.dimensions(config)
  values = _rules.first_population(8, dims, config.search_seed)
  scores = np.linspace(0.1, 0.8, 8).astype(np.float32)
  first = _rules.decide(scores, values, dims, config, generation=3)
  again = _rules.decide(scores, values, dims, config, generation=3)
  assert [(t, d) for t, d, _ in first] == [(t, d) for t, d, _ in again]
  assert all(np.array_equal(a[2], b[2]) for a, b in zip(first, again))
  assert [t for t, _, _ in first] == [0, 1] and all(d in (6, 7) for _, d, _ in first)
  for _, _, new in first:
    for d, v in zip(dims, new):
      assert d.low <= v <= d.high and v == np.float32(v)
  assert _rules.decide(scores, values, dims, _config(pbt=dict(quantile=0)), 1) == []


def test_several_objectives_rank_by_pareto_dominance_feasible_first():
  """Multi-objective PBT: the targets are the last of NSGA-II's order, the donors
  its first; a constraint puts feasible members ahead whatever their losses."""
  config = _config(pbt=dict(population=8), objective='(val_accuracy, val_loss)')
  _, dims = _rules.dimensions(config)
  values = _rules.first_population(8, dims, config.search_seed)
  # Members 4..7 dominate 0..3: the front is 4..7 (a trade-off), then 0..3.
  losses = np.array([[5, 8], [6, 7], [7, 6], [8, 5], [1, 4], [2, 3], [3, 2], [4, 1]], float)
  assert _rules.ranked(losses, config.objective) == list(pareto.best_first(losses))
  decided = _rules.decide(losses, values, dims, config, generation=1)
  assert [t for t, _, _ in decided] == [1, 2]   # the middle of the dominated front
  assert all(d in (4, 7) for _, d, _ in decided)   # its extremes, infinitely crowded
  violation = np.array([0, 0, 0, 0, 1, 2, 3, 4], float)   # the dominant ones break a bound
  decided = _rules.decide(losses, values, dims, config, 1, violation)
  assert [t for t, _, _ in decided] == [6, 7] and all(d in (0, 3) for _, d, _ in decided)


def test_a_generation_ranks_metrics_at_its_epoch_and_costs_by_network():
  config = _config(objective='(val_accuracy, parameter_count)',
                   constraints='(val_loss <= 1.0,)')
  members = study_lib.expand(config, 1)[:1] * 3
  history = {'val_accuracy': np.array([[0.1, 0.5], [0.2, 0.4], [0.3, 0.9]]),
             'val_loss': np.array([[3., 0.5], [3., 2.0], [3., 1.0]])}
  losses, violation = _rules.pareto_scores(history, 2, members, config)
  assert losses[:, 0].tolist() == [-0.5, -0.4, -0.9]
  assert losses[:, 1].tolist() == [784 * 16 + 16 + 16 * 10 + 10] * 3
  assert violation.tolist() == [0, 1.0, 0]


def test_a_perturbed_value_is_clipped_to_the_space_and_choices_move_to_a_neighbour():
  rng = np.random.default_rng(0)
  dim = _rules.Dimension('learning_rate', 1e-4, 1e-1, True)
  assert all(dim.perturb(0.1, rng, (1.2,)) == 0.1 for _ in range(3))
  choices = _rules.Dimension.of('learning_rate', (1e-3, 1e-2, 1e-1))
  assert {choices.perturb(1e-2, rng, (0.8, 1.2)) for _ in range(20)} == {1e-3, 1e-1}


def test_a_space_over_the_network_or_a_population_cut_in_programs_is_refused():
  with pytest.raises(UserError, match='changes only numeric hyperparameters'):
    PBTSearch().validate_config(_config(hidden_sizes=((16,), (32,))), 1000)
  with pytest.raises(UserError, match='several programs'):
    PBTSearch().validate_config(_config(max_members_per_program=2), 1000)
  with pytest.raises(UserError, match='needs a space'):
    PBTSearch().validate_config(_config(l2=0.0, learning_rate=1e-3), 1000)


# --- inside the program -----------------------------------------------------------------


@pytest.fixture(scope='module')
def device_data(small_split):
  return devices.put_data(small_split, devices.member_mesh())


def _train(config, data, evolve=True, seen=None):
  """The population trained as the runner plans it, as one program."""
  members, dims, values = _search.population(config)
  group = {f: np.array([m.hparams[f] for m in members]) for f in members[0].hparams}
  made = []

  def evolve_for(planned):
    mesh, block = planned.layout(devices.member_mesh())
    made.append(_evolve.Population(members, dims, values, config.epochs, mesh,
                                      block * mesh.size, config))
    return made[-1]

  on_epoch = None if seen is None else lambda done, total, metrics: seen.append(metrics)
  (_, result), = plan.train_group(members[0].structure, group, np.arange(len(members)),
                                  data, config.epochs, devices.member_mesh(),
                                  max_members=len(members),
                                  tracking=members[0].tracking, on_epoch=on_epoch,
                                  evolve_for=evolve_for if evolve else None)
  return result, (made[0] if made else None)


def test_quantile_0_is_plain_vmapped_training_bit_for_bit(device_data):
  config = _config(pbt=dict(quantile=0.0, interval=1), epochs=3)
  plain, _ = _train(config, device_data, evolve=False)
  evolved, population = _train(config, device_data)
  for name in plain.history:
    np.testing.assert_array_equal(plain.history[name], evolved.history[name], name)
  for field in ('test_loss', 'test_accuracy', 'weight_updates', 'best_epoch'):
    np.testing.assert_array_equal(getattr(plain, field), getattr(evolved, field), field)
  for tree in ('final_params', 'best_params'):
    train.jax.tree.map(np.testing.assert_array_equal, getattr(plain, tree),
                       getattr(evolved, tree))
  assert (population.donor_GM == -1).all() and plain.schedule is None
  assert np.array_equal(evolved.schedule['learning_rate'][:, 0],
                        evolved.schedule['learning_rate'][:, -1])


def test_exploits_copy_the_donor_and_nothing_compiles_over_generations(device_data):
  config = _config(pbt=dict(interval=2), epochs=7)    # 3 generations, one target each
  seen = []
  result, population = _train(config, device_data, seen=seen)
  assert population.compiles_during == 0 and population.epoch_compiles == 1
  assert ((population.donor_GM >= 0).sum(axis=1) == 1).all()
  for g, donors in enumerate(population.donor_GM):
    (target,), epoch = np.flatnonzero(donors >= 0), 2 * (g + 1)
    donor = donors[target]
    # Its score that generation was the worst, its donor's the best.
    scores = population.score_GM[g]
    assert scores[target] == scores.min() and scores[donor] == scores.max()
  # After the last exploit the target trains with its new values; before it, its
  # lineage (schedule and history) is its donor's.
  lr = result.schedule['learning_rate']
  assert lr[target, epoch] == population.new_GMF[-1, target, 0]
  np.testing.assert_array_equal(lr[target, :epoch], lr[donor, :epoch])
  np.testing.assert_array_equal(result.history['val_loss'][target, :epoch],
                                result.history['val_loss'][donor, :epoch])
  # on_epoch gets each member's hyperparameters as hp/<name>: what the epoch used.
  assert set(seen[0]) >= {'hp/learning_rate', 'hp/l2', 'val_accuracy'}
  np.testing.assert_array_equal(seen[0]['hp/learning_rate'], _search.population(config)[2][:, 0])
  np.testing.assert_array_equal(seen[-1]['hp/learning_rate'], population.values_MF[:, 0])
  # A member's history ends as its lineage's: its best epoch is its tracker's.
  for k in range(4):
    best = np.nanargmax(result.history['val_accuracy'][k])
    assert best == result.best_epoch[k]


@pytest.mark.parametrize('search', ['pbt', 'pb2'])
def test_a_population_runs_at_any_length_with_checkpoints(tmp_path, small_split, search):
  """1 epoch, epochs == interval (no exploit: a smoke run) and interval + 1 (one), each
  checkpointed every epoch: a run shorter than its interval trains without exploits."""
  from jaxmlp.engine import checkpoint  # pylint: disable=g-import-not-at-top
  from jaxmlp.engine import runner  # pylint: disable=g-import-not-at-top
  from jaxmlp.search.pbt import _files  # pylint: disable=g-import-not-at-top
  for epochs, exploits in ((1, 0), (2, 0), (3, 1)):
    config = _config(search=search, epochs=epochs, name=f'{search}_{epochs}',
                     **{search: dict(population=4, interval=2)})
    settings, data = runner.start(config, small_split, tmp_path, progress=False,
                                  checkpoint_every=checkpoint.Policy.parse('1'),
                                  identity=registry.identity_rules(search))
    outcome = registry.search_named(search).run(config, settings, data)
    assert len(outcome.records) == 4 and outcome.pbt['complete'], epochs
    assert len(_files.read_lineage(settings.study_dir)) == exploits, epochs


_HEAD = dict(complete=True, epochs_done=2, epochs=2, objective='val_accuracy', population=2,
             interval=1, dimensions=[])


@pytest.mark.parametrize('content, message', [
    ('{"members": [', 'pbt.json is damaged (JSONDecodeError: '),
    ('[1, 2]', 'pbt.json is damaged (ValueError: it holds no JSON object)'),
    (json.dumps(dict(_HEAD, members=[], winner=3)), 'its winner 3 is not one of its members'),
    (json.dumps(dict(_HEAD, members=[{'member': 0}], winner=0)),
     "pbt.json is damaged (SchemaError: members[0]: the field 'label' is missing)"),
    (json.dumps(dict(_HEAD, members=[], winner='0')),
     "pbt.json is damaged (SchemaError: winner: int is needed, not str '0')"),
    ('{"members": [], "winner": 3, "dimensions": []}',
     "pbt.json is damaged (SchemaError: the field 'complete' is missing)"),
])
def test_a_replay_of_a_damaged_pbt_json_is_one_line(tmp_path, content, message):
  from jaxmlp.search.pbt import _replay  # pylint: disable=g-import-not-at-top
  (tmp_path / 'pbt.json').write_text(content)
  config = registry.complete(study_lib.make_config(
      search='pbt_replay', pbt_replay=dict(study=str(tmp_path))))
  with pytest.raises(UserError, match=re.escape(message)):
    _replay.source(config)
