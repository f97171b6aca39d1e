"""--search=NAME -> the search that runs a study, and what the rest of the tool asks of
every search at once: the names, --search's help, the config sections and their
defaults, and the flat flags of releases before sections.

A search's class is light (its package imports Optuna, plotting and the engine's
heavy parts only when it runs), so --help and the command line's parser may load
every search's class. Adding a search: its module or subpackage, and one line here.
"""

import functools
import importlib
from typing import Any

import ml_collections

from jaxmlp.common.errors import UserError
from jaxmlp.store import run_identity
from jaxmlp.studies import study as study_lib

# name -> (module, class): a subclass of jaxmlp.search.base.Search.
SEARCHES = {
    'grid': ('jaxmlp.search.grid', 'GridSearch'),
    'hyperband': ('jaxmlp.search.hyperband', 'HyperbandSearch'),
    'optuna': ('jaxmlp.search.optuna', 'OptunaSearch'),
    'pbt': ('jaxmlp.search.pbt', 'PBTSearch'),
    'pbt_replay': ('jaxmlp.search.pbt', 'ReplaySearch'),
    'pb2': ('jaxmlp.search.pb2', 'PB2Search'),
}


def search_class(name: str):
  if name not in SEARCHES:
    raise UserError(f"--config.search={name} is impossible: choose one of "
                    f"{', '.join(SEARCHES)}")
  module, cls = SEARCHES[name]
  return getattr(importlib.import_module(module), cls)


def search_named(name: str):
  """The search registered as `name`, one instance per process (a search keeps no
  state of a run); UserError for another name, or a value no name is."""
  if not isinstance(name, str) or name not in SEARCHES:
    search_class(str(name))   # its one line
  return _instance(name)


@functools.cache
def _instance(name: str):
  return search_class(name)()


def sections() -> dict[str, dict[str, Any]]:
  """Section name -> its settings' defaults, for every search that has settings."""
  return {name: search_class(name).defaults() for name in SEARCHES
          if search_class(name).settings}


def renamed_fields() -> dict[str, str]:
  """A flat field of releases before sections -> its name now (pbt_population ->
  pbt.population)."""
  return {s.legacy: f'{name}.{s.name}' for name in SEARCHES
          for s in search_class(name).settings if s.legacy}


def free_fields() -> tuple[str, ...]:
  """Settings that may change on a rerun (a budget, a layout), dotted."""
  return tuple(f'{name}.{s.name}' for name in SEARCHES for s in search_class(name).settings
               if s.free)


def search_help() -> str:
  """--search's help: each search's sentence and its settings."""
  parts = []
  for name in SEARCHES:
    cls = search_class(name)
    settings = ', '.join(f'--config.{name}.{s.name} ({s.default!r}: {s.help})'
                         for s in cls.settings)
    parts.append(f'{name}: {cls.help}' + (f' Settings: {settings}.' if settings else ''))
  return ' '.join(parts) + ' = --config.search'


def complete(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The config with every search's section, its settings filled with their defaults
  where the study file left them out; a section or setting no search has, or a flat
  name of releases before sections, is refused (one line)."""
  known, renamed, baseline = sections(), renamed_fields(), study_lib.baseline()
  with config.unlocked():
    for key in [k for k in config if k not in baseline]:
      is_section = isinstance(config[key], (dict, ml_collections.ConfigDict))
      if key in renamed and not (key in known and is_section):   # pbt_replay was flat
        section, _, setting = renamed[key].partition('.')
        raise UserError(f'the study sets {key}, which is now {renamed[key]}: write '
                        f'{section}=dict({setting}=...) in its make_config(...)')
      if key not in known or not is_section:
        raise UserError(f'the study sets {key!r}, which is no config field or search '
                        f"section (sections: {', '.join(known)})")
      unknown = set(config[key]) - set(known[key])
      if unknown:
        raise UserError(f'the study sets {key}.{sorted(unknown)[0]}, which --search={key} '
                        f"does not have: its settings are {', '.join(known[key])}")
    for name, defaults in known.items():
      given = dict(config[name]) if name in config else {}
      config[name] = ml_collections.ConfigDict({**defaults, **given}, type_safe=False)
  return config


def identity_rules(name: str) -> run_identity.Rules:
  """What search `name` says of a study's identity in run.json (run_identity.Rules)."""
  search = search_named(name)
  return run_identity.Rules(
      section=name if search.settings else '', sections=frozenset(sections()),
      free=frozenset(free_fields()),
      defaults={f'{name}.{s.name}': s.default for s in search.settings},
      renamed=renamed_fields(), adds_work=search.adds_work)


def check_settings(config: ml_collections.ConfigDict) -> None:
  """Every search's section of `config` against its settings' rules (a value given for
  another search than the one that runs is still a mistake to name)."""
  for name in SEARCHES:
    search_named(name).check_settings(config)   # the cached instances
