"""Studies are data: every config expands, groups, validates and finds its reference."""

from pathlib import Path

import pytest

from jaxmlp import pipeline
from jaxmlp.search import registry
from jaxmlp.studies import checks
from jaxmlp.studies import study
from jaxmlp.common.errors import UserError

EXPECTED = {  # study -> (configurations, compiled groups)
    'baseline': (1, 1), 'batch_size': (3, 3), 'rmsprop': (2, 1), 'init': (1, 1),
    'regularization': (6, 2), 'dropout': (2, 2), 'finetune': (36, 4),
}


SEARCHED = {'finetune_optuna', 'finetune_pbt', 'finetune_pb2'}   # spaces for --search=optuna, pbt and pb2
PARETO = {'finetune_pareto'}   # several objectives


def test_every_spec_study_has_a_config():
  assert set(study.available_studies()) == set(EXPECTED) | SEARCHED | PARETO


def test_the_pareto_study_is_both_widths_by_two_objectives():
  config = registry.complete(study.load_config('finetune_pareto'))
  pipeline.check_study(config, study.training_rows(config))
  members = study.expand(config, 1)
  assert len(members) == 100 and len(study.group(members)) == 25   # a program a network
  assert [o.name for o in study.objectives(config.objective)] == ['val_accuracy',
                                                                   'parameter_count']
  assert config.final_reference['configuration'] in {m.label for m in members}
  config.search = 'optuna'   # its own Optuna section: a sampler of several objectives
  pipeline.check_study(config, study.training_rows(config))


def test_the_optuna_study_is_a_space_its_search_accepts():
  config = study.load_config('finetune_optuna')
  assert config.search == 'optuna'
  pipeline.check_study(config, study.training_rows(config))
  with pytest.raises(UserError, match='holds a distribution'):  # not a grid
    checks.check_members(study.expand(config, 1), study.training_rows(config))


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_study_expands_into_its_configurations(name):
  config = study.load_config(name)
  members = study.expand(config, seeds=3)
  labels = {m.label for m in members}
  configurations, groups = EXPECTED[name]
  assert len(labels) == configurations
  assert len(members) == 3 * configurations
  assert len(study.group(members)) == groups
  checks.check_members(members, study.training_rows(config))
  # Every configuration the original reported on carries the original's numbers.
  with_reference = {m.label for m in members if study.reference_for(config, m)}
  assert len(with_reference) == (1 if name == 'finetune' else configurations)


def test_regularization_members():
  config = study.load_config('regularization')
  members = study.expand(config, seeds=2)
  by_label = {m.label: m for m in members}
  sgd = by_label['sgd_normal10,l2=0.01']
  assert sgd.values['optimizer'] == 'sgd' and sgd.values['init_mean'] == 10.0
  assert sgd.hparams['l2'] == 0.01 and sgd.hparams['learning_rate'] == 0.01
  assert sgd.structure.kernel_init == 'normal' and sgd.structure.use_l2
  rms = by_label['rmsprop,l2=0.1']
  assert rms.hparams['rho'] == 0.99 and rms.structure.kernel_init == 'glorot_uniform'
  assert study.reference_for(config, rms) == {'test_accuracy': 0.8837, 'test_loss': 0.56}
  # Values of one hyperparameter share a program; the arms' structures differ.
  assert sorted(len(g) for g in study.group(members).values()) == [6, 6]


def test_narrowing_a_sweep_axis_and_an_arm():
  config = study.load_config('batch_size')
  with config.unlocked():
    config.batch_size = (256,)
  assert {m.label for m in study.expand(config, 1)} == {'batch_size=256'}
  config = study.load_config('regularization')
  config.arm = 'rmsprop'
  assert {m.arm for m in study.expand(config, 1)} == {'rmsprop'}
  config.arm = 'adamw'
  with pytest.raises(UserError, match='--config.arm must be one of rmsprop, sgd_normal10'):
    study.expand(config, 1)


@pytest.mark.parametrize('field,value,message', [
    ('batch_size', 0, 'from 1 to 48000'),
    ('batch_size', 48_001, 'from 1 to 48000'),
    ('learning_rate', -0.1, 'learning rate'),
    ('l2', -1.0, 'alpha'),
    ('l1', -1.0, 'alpha'),
    ('dropout_rate', 1.0, r'\[0, 1\)'),
    ('dropout_rate', -0.1, r'\[0, 1\)'),
    ('optimizer', 'adagrad', 'adam, rmsprop, sgd'),
    ('kernel_init', 'zeros', 'glorot_uniform'),
    ('hidden_sizes', (128, 0), 'positive'),
    ('epochs', 0, 'at least 1 epoch'),
])
def test_impossible_values_are_refused(field, value, message):
  config = study.load_config('baseline')
  with config.unlocked():
    config[field] = value
  with pytest.raises(UserError, match=message) as error:
    checks.check_members(study.expand(config, 1), 48_000)
  assert f'--config.{field}=' in str(error.value)
  assert '\n' not in str(error.value)


def test_unknown_study_and_user_config_files(tmp_path):
  with pytest.raises(UserError, match='unknown study .nope.: choose one of baseline'):
    study.config_path('nope')
  own = tmp_path / 'my_study.py'
  own.write_text('from jaxmlp.studies.study import make_config\n'
                 'def get_config():\n'
                 '  return make_config(name="mine", learning_rate=(0.1, 0.2))\n')
  config = study.load_config(str(own))
  assert [m.label for m in study.expand(config, 1)] == ['learning_rate=0.1',
                                                        'learning_rate=0.2']


def test_make_config_refuses_unknown_fields():
  with pytest.raises(ValueError, match='learnin_rate'):
    study.make_config(learnin_rate=0.1)


def test_values_one_float32_bit_apart_are_two_configurations_and_two_folders():
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jaxmlp.store import folders  # pylint: disable=g-import-not-at-top
  next_up = float(np.nextafter(np.float32(0.1), np.float32(1)))
  for pair in ((0.1, next_up), (0.1, 0.1000001)):
    config = study.make_config(name='s', learning_rate=pair, seeds=2)
    members = study.expand(config)
    labels = {m.label for m in members}
    assert len(labels) == 2, labels
    assert len({folders.member_dir(Path('m'), m) for m in members}) == 4   # 2 x 2 seeds
  # Standard values keep their short labels (the folders of earlier runs).
  assert {m.label for m in study.expand(study.make_config(
      name='s', learning_rate=(1e-3, 1e-6)))} == {'learning_rate=0.001',
                                                    'learning_rate=1e-06'}


def test_values_that_train_as_one_float32_are_refused_before_training():
  config = study.make_config(name='s', learning_rate=(0.1, 0.1 + 1e-12))
  with pytest.raises(UserError, match=r'learning_rate=0\.1 names two configurations '
                     r'\(learning_rate=0\.1; learning_rate=0\.10000000000100001\): '):
    study.expand(config)


@pytest.mark.parametrize('objective, search, message', [
    ('(val_accuracy, size)', 'grid', "'size' is not an objective"),
    ('(val_accuracy, val_accuracy:min)', 'grid', 'val_accuracy is given twice'),
    ('(parameter_count, flops)', 'grid', 'name a validation metric too'),
    ('(val_accuracy, parameter_count)', 'pb2',
     'several objectives run with --search=grid or hyperband or optuna or pbt'),
    ('accuracy', 'grid', 'choose one of val_accuracy'),
])
def test_objectives_a_study_cannot_rank_by_are_refused_in_one_line(objective, search, message):
  config = registry.complete(study.load_config('finetune'))
  config.search, config.objective = search, objective
  with pytest.raises(UserError, match=message) as error:
    pipeline.check_study(config, study.training_rows(config))
  assert '\n' not in str(error.value)


@pytest.mark.parametrize('objective, field, value, message', [
    ('(val_accuracy, parameter_count)', 'constraints', '(size <= 10,)',
     "'size' is not a name a constraint may bound"),
    ('(val_accuracy, parameter_count)', 'constraints', '(parameter_count = 10,)',
     'is not a bound: write NAME <= NUMBER'),
    ('val_accuracy', 'constraints', '(parameter_count <= 10,)',
     'constraints rank with several objectives'),
    ('(val_accuracy, parameter_count)', 'hypervolume_reference', (0.9,),
     'give one finite number per objective, 2'),
    ('(val_accuracy, parameter_count)', 'hypervolume_reference', 0.9,
     'give one finite number per objective'),
    ('(val_accuracy, parameter_count)', 'hypervolume_reference', (0.9, 'x'),
     'give one finite number per objective'),
    ('(val_accuracy, parameter_count)', 'hypervolume_reference', (float('nan'), 1e5),
     'give one finite number per objective'),
    ('(val_accuracy, parameter_count)', 'constraints', 5, 'give bounds as'),
    ('(val_accuracy, parameter_count)', 'final_front_size', 0,
     'final_front_size must be a whole number >= 1'),
])
def test_bounds_and_references_that_do_not_fit_are_refused_in_one_line(
    objective, field, value, message):
  config = registry.complete(study.load_config('finetune'))
  config.objective, config[field] = objective, value
  with pytest.raises(UserError, match=message) as error:
    pipeline.check_study(config, study.training_rows(config))
  assert '\n' not in str(error.value)


def test_several_objectives_track_the_first_validation_metric():
  assert study.tracked_objective('val_loss') == 'val_loss'
  assert study.tracked_objective('(parameter_count, val_f1, val_loss)') == 'val_f1'
  config = study.load_config('finetune')
  config.objective = '(flops, val_loss)'
  assert study.expand(config, 1)[0].tracking.objective == 'val_loss'
