"""The schema every study file is read through: a file of the wrong shape is named, at
its field, as damaged; the files this release and the ones before wrote all pass."""

import json
import pathlib
from typing import Any, TypedDict

import pytest

from jaxmlp.common.errors import UserError
from jaxmlp.search.pbt import _files as pbt_files
from jaxmlp.store import folders
from jaxmlp.store import records
from jaxmlp.store import run_identity
from jaxmlp.store import schema

FIXTURES = pathlib.Path(__file__).parent / 'fixtures'
GRID = json.loads((FIXTURES / 'grid_member.json').read_text())


class _Point(TypedDict):
  x: float
  tags: list[str]


class _Shape(TypedDict, total=False):
  points: list[_Point]
  scale: float | None
  extra: Any


@pytest.mark.parametrize('value, message', [
    ({'points': [{'x': 1, 'tags': []}], 'scale': None}, None),
    ({'points': [{'x': 1.5, 'tags': ['a']}], 'other': 3}, None),   # unknown keys are let be
    ([], 'an object is needed, not list []'),
    ({'points': {}}, 'points: a list is needed, not dict {}'),
    ({'points': [{'x': 1}]}, "points[0]: the field 'tags' is missing"),
    ({'points': [{'x': True, 'tags': []}]}, 'points[0].x: float is needed, not bool True'),
    ({'points': [{'x': 1, 'tags': [2]}]}, 'points[0].tags[0]: str is needed, not int 2'),
    ({'scale': 'big'}, "scale: float | None is needed, not str 'big'"),
])
def test_check_names_the_field_that_has_another_shape(value, message):
  if message is None:
    schema.check(value, _Shape)
  else:
    with pytest.raises(schema.SchemaError) as e:
      schema.check(value, _Shape)
    assert str(e.value).endswith(message)


@pytest.mark.parametrize('name', sorted(p.name for p in FIXTURES.glob('*.json')))
def test_every_file_earlier_releases_wrote_has_its_schema(name):
  obj = json.loads((FIXTURES / name).read_text())
  if name.startswith('run_'):
    schema.check(obj, run_identity.RunFile)
  else:
    records.MemberRecord.check_json(obj)


@pytest.mark.parametrize('change, field', [
    (lambda r: {}, "the field 'label' is missing"),
    (lambda r: dict(r, seed='0'), "seed: int is needed, not str '0'"),
    (lambda r: dict(r, history=[]), 'history: an object is needed, not list []'),
    (lambda r: dict(r, history=dict(r['history'], val_loss=['x'])),
     "history.val_loss[0]: float | None is needed, not str 'x'"),
    (lambda r: dict(r, test_accuracy='high'),
     "test_accuracy: float | None is needed, not str 'high'"),
    (lambda r: {k: v for k, v in r.items() if k != 'program'}, "the field 'program' is missing"),
])
def test_a_result_json_of_another_shape_is_named_as_damaged(tmp_path, change, field):
  member = tmp_path / 'members' / 'm__seed0'
  member.mkdir(parents=True)
  path = member / folders.RESULT_FILE
  path.write_text(json.dumps(change(GRID)))
  with pytest.raises(folders.Damaged) as e:
    folders.read_member(member)
  assert str(e.value).startswith(f'{path} is damaged (SchemaError: {field}): delete the folder')
  assert isinstance(e.value, UserError) and '\n' not in str(e.value)


def test_a_lineage_line_of_another_shape_is_named_with_its_line(tmp_path):
  row = dict(epoch=2, generation=1, target=0, donor=1, old={'learning_rate': 0.1},
             new={'learning_rate': 0.2}, target_score=0.5, donor_score=None)
  (tmp_path / pbt_files.LINEAGE_FILE).write_text(
      json.dumps(row) + '\n' + json.dumps(dict(row, donor=None)) + '\n')
  with pytest.raises(folders.Damaged, match=r'\(SchemaError: line 2: donor: int is needed, '
                     r'not null\): rerun the PBT study'):
    pbt_files.read_lineage(tmp_path)
  (tmp_path / pbt_files.LINEAGE_FILE).write_text(json.dumps(row) + '\n')
  assert pbt_files.read_lineage(tmp_path) == [row]


def test_a_run_json_of_another_shape_is_named_as_damaged(tmp_path):
  (tmp_path / run_identity.RUN_FILE).write_text('{"config": [1]}')
  with pytest.raises(folders.Damaged, match=r'run.json is damaged \(SchemaError: config: an '
                     r'object is needed, not list \[1\]\): restore it from a copy'):
    run_identity.read(tmp_path)
