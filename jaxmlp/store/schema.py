"""The typed schema of the JSON files a study writes, and the one loader that checks a
file against it: a file of the right syntax but the wrong shape (a missing field, a
string where a number was written) is named as damaged where it is read, never a
TypeError later.

A schema is a TypedDict (a JSON object: its required and optional keys, each typed;
other keys are let be, as a later release may add some), a dataclass (its fields, those
without a default required), or any type hint over JSON's values: int, float (an int is
a float), str, bool, None, unions, list[T], tuple[T, ...] (a JSON list), dict[str, T]
and Any. folders.load_json reads a file through it.
"""

import dataclasses
import functools
import types
import typing
from typing import Any, Union


class SchemaError(ValueError):
  """A JSON value that does not have its schema's shape; says where and what."""


def _name(hint) -> str:
  if hint is type(None):
    return 'null'
  if isinstance(hint, type):
    return hint.__name__
  return str(hint).replace('typing.', '')


def _is_typed_dict(hint) -> bool:
  return isinstance(hint, type) and issubclass(hint, dict) and hasattr(hint, '__required_keys__')


def check(value: Any, hint: Any, where: str = '') -> None:
  """Raises SchemaError unless `value` (parsed JSON) has the shape `hint` says."""
  at = where or 'the file'
  if hint is Any:
    return
  if _is_typed_dict(hint) or dataclasses.is_dataclass(hint):
    check_fields(value, fields_of(hint), where)
    return
  origin, args = typing.get_origin(hint), typing.get_args(hint)
  if origin in (Union, types.UnionType):
    errors = []
    for option in args:
      try:
        return check(value, option, where)
      except SchemaError as e:
        errors.append(e)
    # The deepest option's complaint says most (a list whose item is wrong).
    if any(_is_container(o) and _matches_outer(value, o) for o in args):
      raise next(e for o, e in zip(args, errors) if _is_container(o) and _matches_outer(value, o))
    raise SchemaError(f'{at}: {_name(hint)} is needed, not {_shown(value)}')
  if origin in (list, tuple):
    if not isinstance(value, list):
      raise SchemaError(f'{at}: a list is needed, not {_shown(value)}')
    inner = args[0] if args else Any
    for i, item in enumerate(value):
      check(item, inner, f'{where}[{i}]')
    return
  if origin is dict:
    if not isinstance(value, dict):
      raise SchemaError(f'{at}: an object is needed, not {_shown(value)}')
    inner = args[1] if len(args) == 2 else Any
    for key, item in value.items():
      check(item, inner, f'{where}.{key}' if where else str(key))
    return
  ok = {
      type(None): value is None,
      bool: isinstance(value, bool),
      int: isinstance(value, int) and not isinstance(value, bool),
      float: isinstance(value, (int, float)) and not isinstance(value, bool),
      str: isinstance(value, str),
  }.get(hint)
  if ok is None:
    raise TypeError(f'no JSON schema for {hint!r}')
  if not ok:
    raise SchemaError(f'{at}: {_name(hint)} is needed, not {_shown(value)}')


@functools.cache
def fields_of(kind, skip: tuple[str, ...] = ()) -> dict[str, tuple[Any, bool]]:
  """A TypedDict's or a dataclass's fields: name -> (type hint, required); resolved
  once per kind (every record read checks against them). Do not mutate the result."""
  hints = typing.get_type_hints(kind)
  if dataclasses.is_dataclass(kind):
    required = {f.name for f in dataclasses.fields(kind)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
  else:
    required = set(kind.__required_keys__)
  return {k: (h, k in required) for k, h in hints.items() if k not in skip}


def check_fields(value: Any, fields: dict[str, tuple[Any, bool]], where: str = '') -> None:
  """`value` is an object with every required field of `fields`, each of its type."""
  if not isinstance(value, dict):
    raise SchemaError(f'{where or "the file"}: an object is needed, not {_shown(value)}')
  missing = [k for k, (_, required) in fields.items() if required and k not in value]
  if missing:
    raise SchemaError(f'{where + ": " if where else ""}the field {missing[0]!r} is missing')
  for key, (inner, _) in fields.items():
    if key in value:
      check(value[key], inner, f'{where}.{key}' if where else key)


def _is_container(hint) -> bool:
  return _is_typed_dict(hint) or dataclasses.is_dataclass(hint) or typing.get_origin(hint) in (list, tuple, dict)


def _matches_outer(value, hint) -> bool:
  return isinstance(value, list if typing.get_origin(hint) in (list, tuple) else dict)


def _shown(value) -> str:
  text = repr(value)
  return f'{type(value).__name__} {text[:40]}' if value is not None else 'null'
