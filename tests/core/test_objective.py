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
