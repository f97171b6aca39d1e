"""Fuzzing what a user types before anything trains: the command line's flags and
--config.FIELD=VALUE overrides, the Python API's fields, study names, and every check
that runs before data is loaded (pipeline.check_study, what api.run_configs calls).

Hypothesis generates the inputs: study names from configs/, field names from the
configs themselves (the baseline's fields, every search's section settings, the flat
names of releases before sections) and misspellings of them, values as typed (numbers
with nan/inf/-0.0/1e308/tiny/huge ints, bools, words, tuples of mixed values, empty and
nested parentheses, lists, sets, dicts, NxM networks, distributions with bad bounds,
unicode, quotes, commas, newlines, NUL, paths, long and deeply nested texts) and as
Python values through jaxmlp.load_study. Nothing trains and no data is loaded.

The contract every case must meet, in this process:
  (a) accepted: the config passes the checks;
  (b) refused with jaxmlp.common.errors.UserError whose message is ONE line (no \\n or
      \\r): the command line prints it as `error: MESSAGE` and exits 2;
  (c) a documented refusal of the command line itself (test_command_lines only):
      - a mistake in a flag that absl parses (--seeds=abc, --search=nope, an unknown
        flag, --config.FIELD with no value): launch.parse_flags prints it as one
        `error:` line and exits 2;
      - positional arguments left over (`jaxmlp.launch --study=x junk`): launch.main
        raises absl's app.UsageError, which absl reports with the usage, exit 1;
      - --help (and -h, --helpshort, --helpfull): absl prints the help, exit 0.
Anything else (TypeError, ValueError, KeyError, OverflowError, RecursionError,
MemoryError, OSError...) is a bug, and so are a multi-line UserError and a check that
does not end within CASE_SECONDS (e.g. a huge --seeds, expanded member by member for
hours): the test fails and Hypothesis prints the input. The inputs are derandomized,
so CI sees the same cases on every run. Each test's @example lines are inputs that
failed the contract when this file was written (found by these strategies, and by
reading the code they reach), the shortest found: regression cases.

How the cases ended is counted (every execution, Hypothesis's replays and shrinking
included) and printed after this file's tests: pytest -n0 tests/test_fuzz.py.
Environment:
  JAXMLP_FUZZ_SHRINK=0   report failing inputs as generated, not shrunk (faster).
  JAXMLP_FUZZ_CENSUS=1   count every generated case instead of failing on the first
                         bugs, and list each distinct bug (its kind, where it is raised,
                         the shortest input): the counts a passing run would have, and
                         its time. The @example cases are left out. Never set in CI.
"""

import collections
import contextlib
import io
import os
import signal
import threading
import traceback

from absl import flags
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
import ml_collections
import pytest

from jaxmlp import api
from jaxmlp import launch
from jaxmlp import pipeline
from jaxmlp.common.errors import UserError
from jaxmlp.core import model as model_lib
from jaxmlp.core import optim
from jaxmlp.engine import checkpoint as checkpoint_lib
from jaxmlp.search import registry
from jaxmlp.search import optuna as optuna_search
# What the searches' validate_config imports on first use (Optuna takes seconds): here,
# so that no case's time limit is spent importing.
from jaxmlp.search.hyperband import _search as _hyperband_search  # noqa: F401
from jaxmlp.search.optuna import _space as _optuna_space  # noqa: F401
from jaxmlp.search.pbt import _replay as _pbt_replay  # noqa: F401
from jaxmlp.search.pbt import _search as _pbt_search  # noqa: F401
from jaxmlp.studies import overrides as overrides_lib
from jaxmlp.studies import space
from jaxmlp.studies import study as study_lib

# A check that takes longer has hung, for a user: nothing is printed while it runs.
CASE_SECONDS = 3.0
# The time limit's alarm may land in a garbage collector's callback, where Python
# ignores it (see _limited): that is no failure of the code under test.
pytestmark = pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')

CENSUS = os.environ.get('JAXMLP_FUZZ_CENSUS', '0') == '1'
_SHRINK = os.environ.get('JAXMLP_FUZZ_SHRINK', '1') != '0' and not CENSUS
# Derandomized: the same cases on every run, so no example database is kept either.
COMMON = dict(deadline=None, derandomize=True, database=None, print_blob=True,
              phases=([] if CENSUS else [Phase.explicit]) + [Phase.generate] +
              ([Phase.shrink, Phase.explain] if _SHRINK else []),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much])

# ---------------------------------------------------------------------------
# What the configs hold: the names to draw from (enumerated, not hard-coded).

STUDIES = sorted(study_lib.available_studies())
BASELINE = study_lib.baseline()
SECTIONS = registry.sections()               # section -> {setting: default}
RENAMED = registry.renamed_fields()          # flat name of old releases -> SECTION.NAME
PLAIN_FIELDS = sorted(BASELINE)
SETTING_FIELDS = sorted(f'{s}.{n}' for s, d in SECTIONS.items() for n in d)
KNOWN_FIELDS = PLAIN_FIELDS + SETTING_FIELDS + sorted(RENAMED)
STUDY_ARMS = {name: sorted(study_lib.load_config(name).arms) for name in STUDIES}
ARMS = sorted({arm for arms in STUDY_ARMS.values() for arm in arms})
WORDS = sorted({*optim.OPTIMIZERS, *model_lib.KERNEL_INITS, *study_lib.OBJECTIVES,
                *study_lib.MATMUL_PRECISIONS, *study_lib.DATA_SOURCES, *registry.SEARCHES,
                *optuna_search.SAMPLERS, *optuna_search.PRUNERS, *ARMS, *STUDIES,
                launch.ALL, 'auto', 'off', 'log'})
LAUNCH_FLAGS = {f.name: f for f in flags.FLAGS.get_flags_for_module(launch.__name__)}
DISTRIBUTION_NAMES = sorted(overrides_lib.DISTRIBUTIONS)

# ---------------------------------------------------------------------------
# The outcome of a case.

COUNTS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
# (kind, where raised) -> (length, the shortest input and its error), in a census.
BUGS: dict[tuple[str, str], tuple[int, str]] = {}


class _TooLong(BaseException):
  """The alarm's: a BaseException, so that no `except Exception` of the code under test
  turns it into something else (load_config wraps what a study file raises)."""


_ARMED = [False]


def _alarm(signum, frame):
  del signum, frame
  if _ARMED[0]:
    raise _TooLong()


def _limited(case):
  """case()'s result, or _TooLong once it has run CASE_SECONDS. The alarm repeats every
  0.1 s until it is disarmed: a raise inside a garbage collector's callback (jax has
  one) is swallowed by Python, and the next one lands."""
  previous = signal.signal(signal.SIGALRM, _alarm)
  _ARMED[0] = True
  signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS, 0.1)
  try:
    return case()
  finally:
    _ARMED[0] = False
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def _one_line(message: str) -> bool:
  return '\n' not in message and '\r' not in message


def _raised_at(error: BaseException) -> str:
  """The innermost jaxmlp line of the traceback (else the innermost line)."""
  frames = traceback.extract_tb(error.__traceback__)
  ours = [f for f in frames if f'{os.sep}jaxmlp{os.sep}' in f.filename] or frames
  return f'{os.path.relpath(ours[-1].filename)}:{ours[-1].lineno}' if ours else '?'


def _bug(test: str, kind: str, where: str, inputs, error: BaseException) -> bool:
  """Counts a bug; in a census, keeps its shortest input and returns True (go on)."""
  COUNTS[test][f'BUG: {kind}'] += 1
  if CENSUS:
    shown = repr(inputs)
    key = (kind, where)
    if key not in BUGS or len(shown) < BUGS[key][0]:
      BUGS[key] = (len(shown), f'{shown[:300]} -> {type(error).__name__}: '
                               f'{str(error)[:200]!r}')
  return CENSUS


def _ends(test: str, case, *inputs) -> str:
  """Runs case(); returns how it ended: 'accepted', 'user_error', or what case returns
  (a documented refusal). A multi-line UserError, a case that runs past CASE_SECONDS,
  or any other exception fails the test: the exception propagates as raised (a
  UserError's AssertionError chained to it), so Hypothesis tells each apart and
  prints its input."""
  assert threading.current_thread() is threading.main_thread(), 'SIGALRM needs it'
  try:
    outcome = _limited(case) or 'accepted'
  except _TooLong as e:
    if _bug(test, 'did not end', _raised_at(e), inputs, e):
      return 'bug'
    raise AssertionError(f'the check did not end within {CASE_SECONDS} s') from None
  except UserError as e:
    if not _one_line(str(e)):
      if _bug(test, 'multi-line UserError', _raised_at(e), inputs, e):
        return 'bug'
      raise AssertionError(f'a UserError with a line break (the command line prints '
                           f'one line): {str(e)!r}') from e
    outcome = 'user_error'
  except Exception as e:  # pylint: disable=broad-except
    if _bug(test, type(e).__name__, _raised_at(e), inputs, e):
      return 'bug'
    if isinstance(e, RecursionError):   # not thousands of frames in the report
      raise RecursionError(f'{e}, raised at {_raised_at(e)}') from None
    raise
  COUNTS[test][outcome] += 1
  return outcome


def _check(config: ml_collections.ConfigDict) -> None:
  """What api.run_configs checks of a study before loading data."""
  pipeline.check_study(config, study_lib.training_rows(config))


def _configure_and_check(study: str, overrides: list[tuple[str, str]]) -> None:
  """A study with --config overrides, as launch.configure makes it, then checked."""
  _check(launch.configure(study_lib.load_config(study), overrides))


@pytest.fixture(scope='module', autouse=True)
def _unparsed_flags():
  """absl's flags unparsed before this file's tests and after them: launch.configure
  applies the shorthands (--seeds...) that a parsed command line holds, and another
  test in this process may have parsed one (tests/test_launch.py does)."""
  flags.FLAGS.unparse_flags()
  yield
  flags.FLAGS.unparse_flags()


@pytest.fixture(scope='module', autouse=True)
def _print_counts(request):
  """How the cases ended, after the file's tests (in the terminal; with -s on an xdist
  worker); in a census, each distinct bug too."""
  yield
  lines = ['fuzz outcomes (executions, replays and shrinking included):']
  for test, counts in COUNTS.items():
    lines.append(f'  {test}: {sum(counts.values())} cases: ' +
                 ', '.join(f'{k} {v}' for k, v in counts.most_common()))
  if CENSUS:
    lines.append(f'distinct bugs: {len(BUGS)}')
    lines += [f'  {kind} at {where}: {shown}'
              for (kind, where), (_, shown) in sorted(BUGS.items())]
  plugins = request.config.pluginmanager
  reporter = plugins.get_plugin('terminalreporter')
  capture = plugins.get_plugin('capturemanager')
  if reporter is None or capture is None or os.environ.get('PYTEST_XDIST_WORKER'):
    print('\n' + '\n'.join(lines))
    return
  with capture.global_and_fixture_disabled():   # as capsys.disabled() does
    reporter.write_line('')
    for line in lines:
      reporter.write_line(line)


# ---------------------------------------------------------------------------
# Strategies: names.

studies = st.sampled_from(STUDIES)


@st.composite
def misspelled_fields(draw) -> str:
  """A known field name with a typo: a letter dropped, doubled or changed, a dot
  moved, a section that does not exist, case changed, spaces."""
  name = draw(st.sampled_from(KNOWN_FIELDS))
  i = draw(st.integers(0, len(name) - 1))
  how = draw(st.sampled_from(['drop', 'double', 'change', 'upper', 'flat', 'dot',
                              'section', 'setting', 'space', 'empty_part']))
  if how == 'drop':
    return name[:i] + name[i + 1:]
  if how == 'double':
    return name[:i] + name[i] + name[i:]
  if how == 'change':
    return name[:i] + draw(st.characters()) + name[i + 1:]
  if how == 'upper':
    return name.upper()
  if how == 'flat':
    return name.replace('.', '_')
  if how == 'dot':
    return name[:i] + '.' + name[i:]
  if how == 'section':
    return f'{draw(st.text(max_size=6))}.{name.rpartition(".")[2]}'
  if how == 'setting':
    return f'{draw(st.sampled_from(sorted(SECTIONS)))}.{draw(st.text(max_size=8))}'
  if how == 'space':
    return f' {name} '
  return draw(st.sampled_from([f'{name}.', f'.{name}', f'{name}..x']))


fields = st.one_of(st.sampled_from(PLAIN_FIELDS), st.sampled_from(SETTING_FIELDS),
                   st.sampled_from(sorted(RENAMED)), misspelled_fields(),
                   st.text(max_size=12))


def _default_of(field: str):
  """The value a field's kind comes from (None for an unknown field)."""
  field = RENAMED.get(field, field)
  if '.' in field:
    section, _, name = field.partition('.')
    return SECTIONS.get(section, {}).get(name)
  return BASELINE.get(field)


# ---------------------------------------------------------------------------
# Strategies: values as typed on the command line.

# A fuzzing dictionary: numbers at the edges of what Python's literals, floats and the
# checks' ranges hold (the training rows are 48000 of 60000).
EDGE_NUMBERS = ['0', '-0', '-0.0', '0.0', '1', '-1', '2', '0.5', '1.0', '.5', '5.',
                '1e308', '-1e308', '1.7976931348623157e308', '1e999', '-1e999',
                '5e-324', '1e-400', '-1e-400', '0x10', '0o7', '0b1', '1_000', '4.8e4',
                '48000', '48001', '60000', '1j', '-1j', '1+2j', '2**8', 'nan', 'inf',
                '-inf', 'NaN', 'Infinity', '1' + '0' * 400, '-1' + '0' * 400,
                '9' * 5000]

number_texts = st.one_of(
    st.integers().map(str),
    st.integers(-3, 60_001).map(str),
    st.floats().map(repr),                      # nan, inf, -0.0, tiny, huge
    st.floats(-2, 2).map(repr),
    st.sampled_from(EDGE_NUMBERS), st.sampled_from(EDGE_NUMBERS))

bool_texts = st.sampled_from(['True', 'False', 'true', 'false', 'yes', 'no', 'TRUE',
                              'Yes', '0', '1', '2', '-1', 'None', "'True'", '1.0'])

word_texts = st.one_of(st.sampled_from(WORDS), st.sampled_from(WORDS).map(str.upper),
                       st.sampled_from(WORDS).map(lambda w: f' {w} '),
                       st.sampled_from(WORDS).map(repr))

SPECIAL = '()[]{},:\'"\\\n\r\t\0 x.-+/=~_*0123456789eEjJ'
path_parts = st.sampled_from(['', '.', '..', 'a', 'b c', '\0', 'x' * 300, '~', 'ü',
                              '\n', 'pbt.json', 'configs', 'baseline.py'])
path_texts = st.lists(path_parts, min_size=1, max_size=5).flatmap(
    lambda parts: st.sampled_from(['', '/', './', '../']).map(
        lambda root: root + '/'.join(parts)))


@st.composite
def deep_texts(draw) -> str:
  """Texts nested or repeated deeper than a parser expects (Hypothesis raises the
  recursion limit by 2000 frames while a test runs: deeper than that, too)."""
  depth = draw(st.integers(1, 3000))
  opening, closing = draw(st.sampled_from([('(', ')'), ('[', ']'), ('{', '}'),
                                           ('choice(', ')'), ('uniform(0, ', ')'),
                                           ('(1, ', ')'), ('-', ''), ('+', ''),
                                           ('~', ''), ('not ', '')]))
  inner = draw(st.sampled_from(['', '1', 'x', '0.5', '1,']))
  return opening * depth + inner + closing * depth


odd_texts = st.one_of(
    st.text(max_size=30),                            # any unicode
    st.text(alphabet=SPECIAL, max_size=30),          # quotes, commas, newlines, NUL
    st.text(alphabet=st.one_of(st.characters(categories=['Nd', 'No', 'Nl']), st.just('x')),
            min_size=1, max_size=5),                 # digits int() may not read, NxM
    path_texts,
    st.integers(1_000, 20_000).map(lambda n: 'a' * n),
    deep_texts())


def _tuple_text(items: list[str]) -> str:
  return '(' + ', '.join(items) + (',' if len(items) == 1 else '') + ')'


def _distribution_text(name: str, args: list[str]) -> str:
  return f'{name}({", ".join(args)})'


atom_texts = st.one_of(number_texts, bool_texts, word_texts,
                       st.text(alphabet='abcxyz_ü', max_size=5),
                       st.sampled_from(['', 'log', 'None', '...', "b'x'", "''", '""']))

# Python literals and the overrides' own syntax, nested: tuples '(0.1, x)', '()',
# lists, sets, dicts (whose keys may be unhashable), NxM networks, distributions.
literal_texts = st.recursive(
    atom_texts,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(_tuple_text),
        st.lists(children, max_size=4).map(lambda xs: '[' + ', '.join(xs) + ']'),
        st.lists(children, min_size=1, max_size=3).map(lambda xs: '{' + ', '.join(xs) + '}'),
        st.lists(st.tuples(children, children), max_size=3).map(
            lambda kv: '{' + ', '.join(f'{k}: {v}' for k, v in kv) + '}'),
        st.lists(children, min_size=2, max_size=4).map('x'.join),
        st.builds(_distribution_text,
                  st.sampled_from(DISTRIBUTION_NAMES + ['float', 'normal', 'Choice', '']),
                  st.lists(children, max_size=4))),
    max_leaves=8)

value_texts = st.one_of(literal_texts, literal_texts, odd_texts)

number_tuple_texts = st.lists(number_texts, max_size=4).map(_tuple_text)
network_texts = st.one_of(
    st.lists(st.integers(-2, 300).map(str), min_size=1, max_size=4).map('x'.join),
    st.lists(st.lists(st.integers(-2, 300).map(str), max_size=3).map(_tuple_text),
             max_size=3).map(_tuple_text),
    st.text(alphabet=st.characters(categories=['Nd', 'No']), min_size=1, max_size=2).map(
        lambda d: f'{d}x{d}'))

# Distributions as typed for --search=optuna (and pbt/pb2): the overrides' names with
# bounds that are fine, reversed, equal, zero or negative under log, infinite, huge,
# not numbers, too few or too many; and hidden_sizes layers holding them.
distribution_args = st.one_of(number_texts, number_texts, number_texts,
                              st.sampled_from(['log', 'True', 'x', '', '()', '(1, 2)',
                                               '128x256', 'adam']),
                              literal_texts)
flat_distribution_texts = st.builds(
    _distribution_text,
    st.one_of(st.sampled_from(DISTRIBUTION_NAMES), st.sampled_from(DISTRIBUTION_NAMES),
              st.sampled_from(['float', 'normal', 'choice ', ' uniform', 'Int'])),
    st.lists(distribution_args, max_size=4))
# A distribution as the dict it is stored as (space.py), typed as a Python literal.
space_dict_texts = st.builds(
    lambda kind, rest: '{' + ', '.join(f'{k!r}: {v}' for k, v in
                                       {space.KEY: kind, **rest}.items()) + '}',
    st.sampled_from(["'float'", "'int'", "'categorical'", "'normal'", '1', '()']),
    st.dictionaries(st.sampled_from(['low', 'high', 'log', 'choices', 'step']),
                    st.one_of(number_texts, literal_texts), max_size=3))
distribution_texts = st.one_of(
    flat_distribution_texts, flat_distribution_texts, space_dict_texts,
    st.lists(st.one_of(flat_distribution_texts, st.integers(-1, 300).map(str)),
             min_size=1, max_size=3).map(_tuple_text))


# Values a user would type, so that cases also get past the first checks.
_PLAUSIBLE = {
    'bool': st.sampled_from(['True', 'False', 'true', 'false']),
    'number': st.one_of(st.integers(0, 300).map(str), st.floats(0, 0.99).map(repr),
                        st.sampled_from(['1e-4', '0.001', '(0.01, 0.001)', '(1, 2)',
                                         'loguniform(1e-4, 1e-1)', 'uniform(0, 0.5)',
                                         'int(1, 3)', 'choice(0, 1e-3)'])),
    'str': word_texts,
    'tuple': st.sampled_from(['(64, 32)', '128x256', '((64,), (128, 64))', '(0.8, 1.2)',
                              '64', '(choice(64, 128), 32)']),
}


def _typed(kind: str) -> st.SearchStrategy[str]:
  if kind == 'bool':
    return st.one_of(bool_texts, number_texts,
                     st.lists(bool_texts, max_size=3).map(_tuple_text))
  if kind == 'number':
    return st.one_of(number_texts, number_texts, number_tuple_texts, distribution_texts)
  if kind == 'str':
    return st.one_of(word_texts, path_texts, odd_texts,
                     st.lists(word_texts, max_size=3).map(_tuple_text))
  return st.one_of(number_tuple_texts, network_texts, distribution_texts)


# Texts for a field: mostly of its kind (numbers for a number...), else anything.
_VALUES_BY_KIND = {kind: st.one_of(_PLAUSIBLE[kind], _typed(kind), _typed(kind),
                                   value_texts)
                   for kind in ('bool', 'number', 'str', 'tuple')}


def values_for(field: str) -> st.SearchStrategy[str]:
  default = _default_of(field)
  kind = ('bool' if isinstance(default, bool) else
          'number' if isinstance(default, (int, float)) else
          'str' if isinstance(default, str) else
          'tuple' if isinstance(default, tuple) else None)
  return _VALUES_BY_KIND[kind] if kind else value_texts


field_and_text = fields.flatmap(lambda f: st.tuples(st.just(f), values_for(f)))

# Overrides that send a case to each search's own checks (a search space for those
# that need one); the arm that optuna, pbt and pb2 need on a study with arms.
SEARCH_CONTEXTS = [
    (), (('final_epochs', '1'),), (('search', 'grid'),),
    (('search', 'hyperband'), ('learning_rate', '(0.01, 0.001)')),
    (('search', 'pbt_replay'),),
] + [(('search', s), ('learning_rate', 'loguniform(1e-4, 1e-1)'))
     for s in ('optuna', 'pbt', 'pb2')]
assert {c[0][1] for c in SEARCH_CONTEXTS if c and c[0][0] == 'search'} == set(
    registry.SEARCHES), 'a search without a context here: add one'


@st.composite
def contexts(draw, study: str) -> list[tuple[str, str]]:
  context = list(draw(st.sampled_from(SEARCH_CONTEXTS)))
  if STUDY_ARMS[study] and draw(st.booleans()):
    context.append(('arm', draw(st.sampled_from(STUDY_ARMS[study]))))
  return context


# ---------------------------------------------------------------------------
# The tests. Each @example is an input that failed the contract when this file was
# written (the shortest found): a regression case, kept until the bug is fixed and after.

_HUGE = '1' + '0' * 400          # an int no float holds


@settings(max_examples=500, **COMMON)
@given(field_and_text=field_and_text)
@example(field_and_text=('learning_rate', '{{}}'))            # TypeError in literal_eval
@example(field_and_text=('learning_rate', '(1, ' * 200 + '1' + ')' * 200))   # MemoryError
@example(field_and_text=('learning_rate', '(' * 3000 + ')' * 3000))       # RecursionError
@example(field_and_text=('learning_rate', _HUGE))                            # OverflowError
@example(field_and_text=('learning_rate', f'uniform({_HUGE}, 2)'))          # OverflowError
@example(field_and_text=('hidden_sizes', '²x3'))                 # ValueError: int('²')
@example(field_and_text=('learning_rate', "{'distribution': 'categorical'}"))  # KeyError
@example(field_and_text=('learning_rate', 'a\nb'))                 # multi-line UserErrors:
@example(field_and_text=('pbt.factors', 'a\nb'))
@example(field_and_text=('x\n.y', '1'))
@example(field_and_text=('pbt_population', '\n'))
def test_one_override_parses_or_is_refused(field_and_text):
  """overrides.parse alone: the value one --config.FIELD=VALUE gives its field."""
  field, text = field_and_text
  _ends('parse', lambda: overrides_lib.parse(field, text, SECTIONS, RENAMED) and None,
        field, text)


@st.composite
def override_cases(draw) -> tuple[str, list[tuple[str, str]]]:
  study = draw(studies)
  return study, (draw(contexts(study)) +
                 draw(st.lists(field_and_text, min_size=1, max_size=3)))


@settings(max_examples=500, **COMMON)
@given(case=override_cases())
@example(case=('baseline', [('validation_split', '-1e308')]))     # OverflowError, rows
@example(case=('baseline', [('search', 'pbt_replay'), ('pbt_replay.study', 'a' * 256)]))
@example(case=('baseline', [('seeds', '1000000000')]))                   # does not end
@example(case=('finetune_pbt', [('pbt.population', '1000000000')]))      # does not end
@example(case=('baseline', [('name', 'a\n/')]))                    # multi-line UserErrors:
@example(case=('baseline', [('optimizer', 'a\nb')]))
@example(case=('baseline', [('optuna.sampler', 'a\nb')]))
@example(case=('baseline', [('search', 'pbt_replay'), ('pbt_replay.study', 'a\nb')]))
def test_overrides_as_typed_are_checked_or_refused(case):
  """--config.FIELD=VALUE overrides on a study (after some that send it to each
  search), configured as launch.configure does and checked as api.run_configs does."""
  study, overrides = case
  _ends('overrides', lambda: _configure_and_check(study, overrides), study, overrides)


@st.composite
def distribution_cases(draw) -> tuple[str, list[tuple[str, str]]]:
  """A member field given a distribution (or a network of them) under a search."""
  study = draw(studies)
  overrides = [('search', draw(st.sampled_from(sorted(registry.SEARCHES)))),
               (draw(st.sampled_from(study_lib.MEMBER_FIELDS)), draw(distribution_texts))]
  if STUDY_ARMS[study] and draw(st.booleans()):
    overrides.append(('arm', draw(st.sampled_from(STUDY_ARMS[study]))))
  return study, overrides + draw(st.lists(field_and_text, max_size=1))


@settings(max_examples=400, **COMMON)
@given(case=distribution_cases())
@example(case=('baseline', [('search', 'optuna'), (          # KeyError: 'log'
    'learning_rate', "{'distribution': 'float', 'low': 0.1, 'high': 1}")]))
@example(case=('baseline', [('search', 'pbt'),               # OverflowError in numpy
                            ('learning_rate', 'loguniform(1e-3, 1e999)')]))
@example(case=('baseline', [('search', 'optuna'),            # OverflowError in checks
                            ('learning_rate', f'int(0, {_HUGE})')]))
def test_distributions_are_checked_or_refused(case):
  study, overrides = case
  _ends('distributions', lambda: _configure_and_check(study, overrides), study, overrides)


# Python values for jaxmlp.load_study(study, **fields).
python_atoms = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([10 ** 400, -2 ** 1100]),
    st.floats(), st.text(max_size=12), st.sampled_from(WORDS), st.binary(max_size=4),
    number_texts,                                    # '100' where 100 is meant
    st.complex_numbers(max_magnitude=10), st.just(Ellipsis),
    st.builds(space.log_uniform, st.floats(), st.floats()),
    st.builds(space.categorical, st.integers(0, 3), st.sampled_from(WORDS)))
python_values = st.recursive(
    python_atoms,
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(tuple), st.lists(children, max_size=3),
        st.frozensets(st.one_of(st.integers(), st.text(max_size=3)), max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(sorted({n for d in SECTIONS.values()
                                                          for n in d})),
                                  st.text(max_size=6)),
                        children, max_size=3)),
    max_leaves=6)
api_keys = st.one_of(st.sampled_from(PLAIN_FIELDS),
                     st.sampled_from(overrides_lib.SHORTHAND_FIELDS),
                     st.sampled_from(sorted(SECTIONS)), st.sampled_from(sorted(RENAMED)),
                     misspelled_fields(), st.text(max_size=8))


@st.composite
def section_values(draw) -> dict:
  """{section: {setting: value}}, what load_study takes for a search's settings."""
  section = draw(st.sampled_from(sorted(SECTIONS)))
  return {section: draw(st.dictionaries(
      st.one_of(st.sampled_from(sorted(SECTIONS[section])), st.text(max_size=6)),
      python_values, max_size=3))}


api_fields = st.tuples(st.dictionaries(api_keys, python_values, max_size=3),
                       st.one_of(st.just({}), section_values())).map(
                           lambda pair: {**pair[0], **pair[1]})


@settings(max_examples=350, **COMMON)
@given(study=studies, fields_=api_fields)
@example(study='baseline', fields_={'search': ['grid']})    # TypeError: unhashable
@example(study='baseline', fields_={'data_limit': '100'})   # TypeError: str < int
@example(study='baseline', fields_={'seeds': {}})           # multi-line UserError
def test_python_values_through_the_api(study, fields_):
  """jaxmlp.load_study(study, **fields) with Python values (None, nan, huge ints,
  bytes, tuples, lists, sets, dicts, distributions...), then the checks before data."""
  _ends('api', lambda: _check(api.load_study(study, **fields_)), study, fields_)


# Command lines, parsed by launch.parse_flags in this process (a process each would
# take seconds), then configured and checked as launch.main does before loading data.
flag_args = st.one_of(
    field_and_text.map(lambda ft: [f'--config.{ft[0]}={ft[1]}']),
    field_and_text.map(lambda ft: [f'--config.{ft[0]}', ft[1]]),   # the value apart
    st.tuples(st.sampled_from(sorted(LAUNCH_FLAGS)), value_texts).map(
        lambda nv: [f'--{nv[0]}={nv[1]}']),
    st.tuples(st.sampled_from(sorted(LAUNCH_FLAGS)),
              st.one_of(number_texts, bool_texts, word_texts)).map(
                  lambda nv: [f'--{nv[0]}={nv[1]}']),
    st.sampled_from(sorted(LAUNCH_FLAGS)).map(lambda n: [f'--{n}']),
    st.sampled_from(sorted(LAUNCH_FLAGS)).map(lambda n: [f'--no{n}']),
    st.sampled_from(['--', '-', '--config.', '--config', '--config.=1', '--bogus=1',
                     '-x', 'junk', '--help', '--study']).map(lambda a: [a]),
    st.text(max_size=10).map(lambda a: [a]))


@st.composite
def command_lines(draw) -> list[str]:
  study = draw(st.one_of(studies, studies, st.just(launch.ALL), st.text(max_size=8)))
  args = [f'--study={study}'] if draw(st.integers(0, 9)) else []
  for part in draw(st.lists(flag_args, max_size=4)):
    args += part
  if draw(st.integers(0, 9)) == 0:   # a --config.FIELD whose value never comes
    args.append(draw(st.sampled_from(['--config.learning_rate', '--config.pbt.population'])))
  return ['jaxmlp.launch', *args]


def _command_line(argv: list[str]) -> str | None:
  """launch.parse_flags(argv), then what launch.main does before loading data; the
  flags unparsed again after it (the next case, and the next test, start clean)."""
  err = io.StringIO()
  try:
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
      try:
        rest = launch.parse_flags(list(argv))
      except SystemExit as e:
        if e.code == 0:
          return 'documented: --help, exit 0'
        assert e.code == 2, (e.code, err.getvalue())
        lines = [l for l in err.getvalue().splitlines() if l.strip()]
        assert len(lines) == 1 and lines[0].startswith('error: '), err.getvalue()
        return 'documented: parse_flags error line, exit 2'
    if len(rest) > 1:
      return 'documented: app.UsageError (leftover arguments), exit 1'
    # launch.main: its studies, configured; api.run_configs' checkpoint policy, checks.
    checkpoint_lib.Policy.parse(launch._CHECKPOINT_EVERY.value)  # pylint: disable=protected-access
    for config, _ in launch._studies():  # pylint: disable=protected-access
      _check(config)
    return None
  finally:
    flags.FLAGS.unparse_flags()


@settings(max_examples=200, **COMMON)
@given(argv=command_lines())
@example(argv=['jaxmlp.launch', '--study=baseline', '--checkpoint_every=a\nb'])  # 2 lines
def test_command_lines(argv):
  """Whole argv lists: absl's flags, --config.FIELD=VALUE (with its value in the same
  argument or the next), shorthands (--seeds, --epochs, --search...), --study=all."""
  _ends('command lines', lambda: _command_line(argv), argv)


def _is_other_python_file(name: str) -> bool:
  """A .py file that is no study config: loading it would run it."""
  known = {str(p.resolve()) for p in study_lib.available_studies().values()}
  try:
    return os.path.isfile(name) and os.path.realpath(name) not in known
  except (ValueError, OSError):
    return False


study_names = st.one_of(
    studies, st.just(launch.ALL), st.text(max_size=20),
    studies.map(lambda s: s + '.py'), studies.map(lambda s: f'configs/{s}.py'),
    studies.map(lambda s: str(study_lib.config_path(s))),
    path_texts.map(lambda p: p + '.py'),
    st.integers(1, 6000).map(lambda n: 'a' * n + '.py'),
    st.sampled_from(['', '.py', '/', '/.py', '..', '\0.py', 'configs/__init__.py']))


@settings(max_examples=150, **COMMON)
@given(name=study_names)
@example(name='a' * 253 + '.py')                            # OSError: name too long
def test_study_names(name):
  """--study=NAME (and load_study's first argument): a study of configs/, a config
  file's path, or refused in one line. Other existing .py files are left out (loading
  one runs it: --study=PATH.py is a documented way to run your own config file)."""
  if _is_other_python_file(name):
    return
  _ends('study names', lambda: _configure_and_check(name, []), name)
