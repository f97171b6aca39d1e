"""--config.FIELD=VALUE: any field of a study's config from the command line.

A tuple of values makes a member field (study.MEMBER_FIELDS) a sweep axis, or replaces
the axis it already was: --config.learning_rate='(0.01, 0.001)',
--config.optimizer='(adam, sgd)', --config.hidden_sizes='((64,), (128, 64, 32))'.
A command-line value wins over the study's arms as well.
"""

import ast
from typing import Any

import ml_collections

from jaxmlp.studies import space
from jaxmlp.studies import study as study_lib
from jaxmlp.common.errors import UserError

PREFIX = '--config.'

HELP = (
    "Override a field of the study's config: --config.FIELD=VALUE. A tuple of values "
    "makes a member field a sweep axis, or replaces the axis it was: "
    "--config.learning_rate='(0.01, 0.001)', --config.optimizer='(adam, rmsprop)', "
    "--config.hidden_sizes='((64,), (128, 64, 32))' (or '(64, 128x64x32)'), "
    "--config.batch_size='(32, 256)'. A single value narrows an axis: "
    "--config.batch_size=256. --config.arm=NAME runs one arm of a study. Member fields: "
    f"{', '.join(study_lib.MEMBER_FIELDS)}. Run-wide fields (one value): "
    f"{', '.join(f for f in study_lib.RUN_FIELDS + study_lib.FREE_FIELDS if f not in study_lib.FILE_ONLY_FIELDS)}. "
    "A search's settings: --config.SEARCH.SETTING=VALUE (see --search).")


def split_argv(argv: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
  """(argv without the --config.FIELD overrides, [(FIELD, VALUE text)] in order)."""
  rest, found = [], []
  args = iter(argv)
  for arg in args:
    if arg == '--':
      rest += [arg, *args]
      break
    if not arg.startswith(PREFIX):
      rest.append(arg)
      continue
    field, has_value, text = arg[len(PREFIX):].partition('=')
    if not has_value:
      text = next(args, None)
      if text is None:
        raise UserError(f'{arg} needs a value: {arg}=VALUE')
    found.append((field, text))
  return rest, found


DISTRIBUTIONS = {'uniform': space.uniform, 'loguniform': space.log_uniform,
                 'int': space.integer, 'logint': lambda low, high: space.integer(low, high,
                                                                               log=True),
                 'choice': space.categorical}


# A value typed on the command line: longer or deeper is no sweep anyone types, and
# Python's parser would run out of memory or recursion on it.
MAX_TEXT = 2_000_000
MAX_DEPTH = 50


def _split_top(text: str) -> list[str]:
  """`text` split at the commas outside parentheses."""
  parts, depth, current = [], 0, ''
  for c in text:
    if c == ',' and depth == 0:
      parts.append(current.strip())
      current = ''
      continue
    depth += (c == '(') - (c == ')')
    current += c
  if current.strip():
    parts.append(current.strip())
  return parts


def _literal(text: str) -> Any:
  """A Python literal, or bare words: adam -> 'adam', (adam, sgd) -> ('adam', 'sgd'),
  128x256 -> (128, 256); or a distribution: loguniform(1e-4, 1e-1), uniform(a, b),
  int(a, b), logint(a, b), choice(a, b, ...)."""
  text = text.strip()
  if len(text) > MAX_TEXT:
    raise UserError(f'a --config value of {len(text)} characters is too long (at most '
                    f'{MAX_TEXT}): put long sweeps in a study file (--study=PATH.py)')
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
    pass   # bare words, NxM, a distribution's call, or an unhashable {[]: 1}
  if text.count('(') > MAX_DEPTH:
    raise UserError(f'{text[:40]}... nests more than {MAX_DEPTH} parentheses: give a '
                    'value, a tuple or a distribution')
  name, paren, rest = text.partition('(')
  if paren and name.strip() in DISTRIBUTIONS and rest.endswith(')'):
    args = [_literal(a) for a in _split_top(rest[:-1])]
    try:
      return DISTRIBUTIONS[name.strip()](*args)
    except (TypeError, ValueError, OverflowError) as e:
      raise UserError(f'{text} is not a distribution: {e}') from e
  if text.startswith('(') and text.endswith(')'):
    return tuple(_literal(p) for p in _split_top(text[1:-1]))
  if 'x' in text and all(p.isascii() and p.isdigit() for p in text.split('x')):
    return tuple(int(p) for p in text.split('x'))
  return text


def _kind_of(field: str) -> type:
  return type(study_lib.baseline()[field])


def _one(field: str, value: Any, text: str, kind: type | None = None) -> Any:
  """One value of `field`, as the baseline (or `kind`) types it; refuses what cannot be."""
  kind = kind or _kind_of(field)
  wrong = lambda what: UserError(f'--config.{field}={text} is not {what}')
  if field == 'hidden_sizes':
    if isinstance(value, int) and not isinstance(value, bool):
      value = (value,)
    if not (isinstance(value, tuple) and value and
            all(isinstance(h, int) and not isinstance(h, bool) for h in value)):
      raise wrong("a network's layer widths, e.g. '(128, 256)' or 128x256")
    return value
  if kind is bool:
    if isinstance(value, str) and value.lower() in ('true', 'false', 'yes', 'no'):
      return value.lower() in ('true', 'yes')
    if isinstance(value, int) and value in (0, 1):
      return bool(value)
    raise wrong('True or False')
  if kind is float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
      try:
        return float(value)
      except OverflowError:
        raise wrong('a number a float can hold') from None
    raise wrong("a number (or a tuple of numbers, e.g. '(0.01, 0.001)')")
  if kind is int:
    if isinstance(value, float) and value.is_integer():
      value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
      return value
    raise wrong('a whole number')
  if kind is str:
    if isinstance(value, (tuple, list, dict)):
      raise wrong('a word')
    return str(value)
  raise wrong('settable from the command line')


def _numbers(field: str, value, text: str) -> tuple[float, ...]:
  if not (isinstance(value, tuple) and value and all(
      isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
    raise UserError(f"--config.{field}={text} is not a tuple of numbers, e.g. '(0.8, 1.2)'")
  try:
    return tuple(float(v) for v in value)
  except OverflowError:
    raise UserError(f'--config.{field}={text} holds a number a float cannot hold') from None


def _setting(field: str, text: str, sections: dict[str, dict[str, Any]]) -> Any:
  """The value `text` gives a search's setting, SECTION.NAME, typed as its default."""
  section, _, name = field.partition('.')
  if section not in sections:
    raise UserError(f'unknown config section {section!r} in --config.{field}: a search\'s '
                    f"settings are --config.SEARCH.SETTING, SEARCH one of {', '.join(sections)}")
  if name not in sections[section]:
    raise UserError(f'unknown setting {name!r} of --search={section}: --config.{section}.'
                    f"SETTING must be one of {', '.join(sections[section])}")
  default = sections[section][name]
  value = _literal(text)
  if isinstance(value, list):
    value = tuple(value)
  if isinstance(default, tuple):
    return _numbers(field, value, text)
  return _one(field, value, text, type(default))


def parse(field: str, text: str, sections: dict[str, dict[str, Any]] | None = None,
          renamed: dict[str, str] | None = None) -> Any:
  """The value `text` gives `field`: one value, or a tuple (a sweep axis); a search's
  setting where `field` is SECTION.NAME (`sections`: each one's defaults). A flat
  name of releases before sections (`renamed`) is refused with its new spelling."""
  if renamed and field in renamed:
    raise UserError(f'--config.{field} is now --config.{renamed[field]}: pass '
                    f'--config.{renamed[field]}={text}')
  if '.' in field:
    return _setting(field, text, sections or {})
  baseline = study_lib.baseline()
  if field not in baseline:
    raise UserError(f"unknown config field {field!r}: --config.FIELD must be one of "
                    f"{', '.join(f for f in baseline if f not in study_lib.FILE_ONLY_FIELDS)}")
  if field in study_lib.FILE_ONLY_FIELDS:
    raise UserError(f'--config.{field} is set in the study file only: copy the file from '
                    'configs/, edit it and pass --study=PATH.py')
  if field == 'constraints':   # one text, parsed by core.objective.constraints_of
    return text.strip()
  value = _literal(text)
  if isinstance(value, list):
    value = tuple(value)
  if field == 'objective' and isinstance(value, tuple):   # several: one text, parsed by
    return '(' + ', '.join(map(str, value)) + ')'        # core.objective.objectives_of
  if field == 'hypervolume_reference':   # one point, not a sweep axis
    return () if value == () else _numbers(field, value, text)
  if space.has_distribution(field, value):
    if field not in study_lib.MEMBER_FIELDS:
      raise UserError(f'--config.{field}={text}: {field} is one value for the whole run, '
                      'not a search dimension')
    return _distribution(field, value, text)
  is_axis = isinstance(value, tuple) and (
      field != 'hidden_sizes' or (bool(value) and
                                  all(isinstance(v, (tuple, list, int)) for v in value) and
                                  any(isinstance(v, (tuple, list)) for v in value)))
  if not is_axis:
    return _one(field, value, text)
  if field not in study_lib.MEMBER_FIELDS:
    raise UserError(f'--config.{field}={text}: {field} is one value for the whole run, '
                    'not a sweep axis')
  if not value:
    raise UserError(f'--config.{field}={text} is an empty sweep axis: give at least one value')
  values = tuple(_one(field, tuple(v) if isinstance(v, list) else v, text) for v in value)
  if len(set(values)) != len(values):
    raise UserError(f'--config.{field}={text} repeats a value: give each value once')
  return values


def _pin_references(config: ml_collections.ConfigDict, field: str) -> None:
  """The original's numbers belong to the study file's value of `field`: a reference
  row that did not name it gets that value, so that only the members that keep it
  are compared with the original."""
  if field not in study_lib.MEMBER_FIELDS:
    return
  rows = []
  for row in config.reference:
    row = dict(row)
    if field not in row:
      arm = config.arms.get(row.get('arm', ''), {})
      value = arm[field] if field in arm else config[field]
      if not study_lib.is_sweep(field, value):
        row[field] = value
    rows.append(row)
  config.reference = tuple(rows)


def _distribution(field: str, value, text: str):
  """A distribution (or a network whose layers hold some) with its values typed."""
  if field == 'hidden_sizes' and not space.is_distribution(value):
    return tuple(_distribution('hidden_sizes[]', v, text) if space.is_distribution(v)
                 else _one('hidden_sizes', v, text)[0] for v in value)
  space.check(field.replace('[]', ''), value)
  kind = value[space.KEY]
  if kind == 'categorical':
    target = 'batch_size' if field == 'hidden_sizes[]' else field
    choices = tuple(_one(target, c, text) for c in value['choices'])
    return space.categorical(*choices)
  if field != 'hidden_sizes[]' and _kind_of(field) not in (int, float):
    raise UserError(f'--config.{field}={text}: {field} takes a categorical '
                    "(choice(a, b)), not a numeric distribution")
  space.check(field, value)
  return value


def apply(config: ml_collections.ConfigDict, overrides: list[tuple[str, str]],
          renamed: dict[str, str] | None = None) -> ml_collections.ConfigDict:
  """The config with every override applied, over the arms' values too. A search's
  setting (SECTION.NAME) goes to its section, which the config holds already
  (search.registry.complete)."""
  baseline = study_lib.baseline()
  sections = {k: dict(v) for k, v in config.items() if k not in baseline}
  with config.unlocked():
    for field, text in overrides:
      value = parse(field, text, sections, renamed)
      if '.' in field:
        section, _, name = field.partition('.')
        config[section][name] = value
        continue
      _pin_references(config, field)
      config[field] = value
      for arm in config.arms.values():
        if field in arm:
          arm[field] = value
  return config


# Fields the command line also sets by a flag of their own (--seeds, --epochs...).
SHORTHAND_FIELDS = ('seeds', 'epochs', 'search', 'final_batch_size', 'final_shuffle',
                    'matmul_precision', 'data_source', 'data_checksums', 'data_limit')


def apply_shorthands(config: ml_collections.ConfigDict,
                     values: dict[str, Any]) -> ml_collections.ConfigDict:
  """The config with the shorthands' values set: `epochs` sets the final model's
  epochs too (where it has one), and every arm's that names its own."""
  with config.unlocked():
    for field, value in values.items():
      config[field] = value
      if field == 'epochs':
        config.final_epochs = value if config.final_epochs else 0
        for arm in config.arms.values():
          if 'epochs' in arm:
            arm.epochs = value
  return config
