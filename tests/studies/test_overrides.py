"""--config.FIELD=VALUE: any field, and a tuple of values is a sweep axis on any study."""

import pytest

from jaxmlp.studies import overrides
from jaxmlp.studies import study
from jaxmlp.common.errors import UserError


@pytest.mark.parametrize('field, text, value', [
    ('learning_rate', '(0.01, 0.001)', (0.01, 0.001)),
    ('learning_rate', '0.01', 0.01),
    ('learning_rate', '1', 1.0),                       # an int where a float goes
    ('l2', '[1e-3, 1e-6]', (1e-3, 1e-6)),
    ('optimizer', '(adam, sgd)', ('adam', 'sgd')),
    ('optimizer', "('adam', 'rmsprop')", ('adam', 'rmsprop')),
    ('optimizer', 'rmsprop', 'rmsprop'),
    ('hidden_sizes', '(128, 256)', (128, 256)),        # one network
    ('hidden_sizes', '128x256', (128, 256)),
    ('hidden_sizes', '64', (64,)),
    ('hidden_sizes', '((64,), (128, 64, 32))', ((64,), (128, 64, 32))),  # two networks
    ('hidden_sizes', '(64, 128x64x32)', ((64,), (128, 64, 32))),
    ('batch_size', '(32, 256)', (32, 256)),
    ('batch_size', '4.8e4', 48_000),
    ('shuffle', 'true', True),
    ('shuffle', '(False, True)', (False, True)),
    ('epochs', '(2, 3)', (2, 3)),
    ('seeds', '5', 5),
    ('arm', 'rmsprop', 'rmsprop'),
])
def test_values_and_sweep_axes_parse(field, text, value):
  assert overrides.parse(field, text) == value


@pytest.mark.parametrize('field, text, message', [
    ('learning_rate', 'fast', 'is not a number'),
    ('batch_size', '1.5', 'is not a whole number'),
    ('shuffle', 'maybe', 'is not True or False'),
    ('hidden_sizes', '(64, x)', "is not a network's layer widths"),
    ('seeds', '(1, 2)', 'one value for the whole run, not a sweep axis'),
    ('l2', '()', 'empty sweep axis'),
    ('l2', '(0.1, 0.1)', 'repeats a value'),
    ('learnin_rate', '0.1', "unknown config field 'learnin_rate'"),
    ('arms', '{}', 'set in the study file only'),
])
def test_impossible_overrides_are_one_line_errors(field, text, message):
  with pytest.raises(UserError, match=message) as error:
    overrides.parse(field, text)
  assert '\n' not in str(error.value)


def test_a_field_becomes_a_sweep_axis_on_any_study():
  config = overrides.apply(study.load_config('baseline'),
                           [('learning_rate', '(0.01, 0.001)'),
                            ('hidden_sizes', '((64,), (128, 64, 32))')])
  members = study.expand(config, 1)
  assert [m.label for m in members] == [
      'hidden_sizes=64,learning_rate=0.01', 'hidden_sizes=64,learning_rate=0.001',
      'hidden_sizes=128x64x32,learning_rate=0.01', 'hidden_sizes=128x64x32,learning_rate=0.001']
  assert len(study.group(members)) == 2   # one program per network shape


def test_an_axis_given_again_replaces_the_axis_and_wins_over_the_arms():
  config = overrides.apply(study.load_config('regularization'),
                           [('l2', '(0.5,)'), ('learning_rate', '0.005')])
  members = study.expand(config, 1)
  assert {m.label for m in members} == {'rmsprop,l2=0.5', 'sgd_normal10,l2=0.5'}
  assert {m.values['learning_rate'] for m in members} == {0.005}


def test_the_originals_numbers_stay_with_the_originals_configuration():
  config = overrides.apply(study.load_config('baseline'),
                           [('learning_rate', '(0.001, 0.01)')])
  references = {m.label: study.reference_for(config, m) for m in study.expand(config, 1)}
  assert references['learning_rate=0.001']['test_accuracy'] == 0.9817
  assert references['learning_rate=0.01'] == {}


def test_split_argv_takes_the_overrides_out():
  argv, found = overrides.split_argv(
      ['prog', '--study=baseline', '--config.l2=(0.1, 0.01)', '--config.arm', 'rmsprop',
       '--seeds=2'])
  assert argv == ['prog', '--study=baseline', '--seeds=2']
  assert found == [('l2', '(0.1, 0.01)'), ('arm', 'rmsprop')]
