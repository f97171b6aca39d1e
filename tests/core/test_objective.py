"""Objectives by name: one or several, each with its direction by name or given."""

import pytest

from jaxmlp.common.errors import UserError
from jaxmlp.core import objective as objective_lib
from jaxmlp.core.objective import Direction, Objective

KNOWN = ('val_accuracy', 'val_loss', 'val_f1', 'parameter_count', 'flops')
MIN, MAX = Direction.MINIMIZE, Direction.MAXIMIZE


@pytest.mark.parametrize('name, direction', [
    ('val_accuracy', MAX), ('val_f1', MAX), ('val_loss', MIN), ('loss', MIN),
    ('parameter_count', MIN), ('flops', MIN), ('latency_ms', MIN),
    ('val_accuracy:min', MIN), ('val_loss:max', MAX)])
def test_a_direction_by_name_or_given(name, direction):
  assert Objective.of(name) == Objective(name.partition(':')[0], direction)


@pytest.mark.parametrize('value, expected', [
    ('val_accuracy', [('val_accuracy', MAX)]),
    ('(val_accuracy, parameter_count)', [('val_accuracy', MAX), ('parameter_count', MIN)]),
    ("['val_loss', 'flops:max']", [('val_loss', MIN), ('flops', MAX)]),
    (('val_f1', 'parameter_count:min'), [('val_f1', MAX), ('parameter_count', MIN)]),
    ('(val_accuracy,)', [('val_accuracy', MAX)]),
])
def test_one_or_several_objectives(value, expected):
  assert objective_lib.objectives_of(value, KNOWN) == tuple(
      Objective(n, d) for n, d in expected)


@pytest.mark.parametrize('value, says', [
    ('(val_accuracy, size)', "'size' is not an objective"),
    ('(val_accuracy, val_accuracy:min)', 'val_accuracy is given twice'),
    ('val_loss:lowest', 'a direction is :min or :max'),
    ('()', 'names no objective'),
])
def test_a_mistake_is_one_line_naming_it(value, says):
  with pytest.raises(UserError, match=says) as raised:
    objective_lib.objectives_of(value, KNOWN)
  assert '\n' not in str(raised.value)


def test_constraints_parse_into_bounds_whose_violation_is_optunas():
  known = ('val_accuracy', 'parameter_count')
  bounds = objective_lib.constraints_of('(parameter_count <= 1e5, val_accuracy>=0.97)', known)
  assert [str(b) for b in bounds] == ['parameter_count <= 100000', 'val_accuracy >= 0.97']
  assert float(bounds[0].violation(120_000)) == 20_000
  assert float(bounds[0].violation(80_000)) == -20_000   # <= 0: holds
  assert float(bounds[1].violation(0.95)) == pytest.approx(0.02)
  assert float(bounds[1].violation(float('nan'))) == float('inf')
  assert objective_lib.constraints_of('', known) == ()
  assert objective_lib.constraints_of(['parameter_count <= 5'], known)[0].bound == 5


@pytest.mark.parametrize('text, words', [
    ('(flops <= 10,)', "'flops' is not a name a constraint may bound"),
    ('(parameter_count < 10,)', 'is not a bound: write NAME <= NUMBER'),
    ('(parameter_count <= ten,)', 'is not a bound'),
    ('(parameter_count <= inf,)', 'is not a bound'),
])
def test_a_bad_constraint_is_one_line(text, words):
  with pytest.raises(UserError, match=words):
    objective_lib.constraints_of(text, ('val_accuracy', 'parameter_count'))
