"""report.md for a study: what ran, the search's own section, the final model, and
the index of `--study=all`. What a section says is the search outcome's business
(search/base.Outcome); this module lays out the page around it."""

import ast
import re
import subprocess
from pathlib import Path

from jaxmlp.common import faults
from jaxmlp.store import records as records_lib
from jaxmlp.store import folders
from jaxmlp.report import summaries
from jaxmlp.report import test_set
from jaxmlp.store import run_identity

# A URL's password (scheme://user:PASSWORD@host): a report is shared, a password is not.
_PASSWORD = re.compile(r'\b([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@', re.IGNORECASE)


def mask_passwords(text: str) -> str:
  """`text` with every URL's password replaced by ***, as SQLAlchemy renders it."""
  return _PASSWORD.sub(r'\1***@', text)


def git_revision() -> str:
  here = Path(__file__).resolve().parent
  try:
    out = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=here, text=True,
                         capture_output=True, timeout=10)
  except (OSError, subprocess.TimeoutExpired):
    return 'unknown'
  return out.stdout.strip() if out.returncode == 0 else 'unknown (installed package)'


def _docstring(source: Path | None) -> str:
  if source is None or not source.is_file():
    return ''
  return ast.get_docstring(ast.parse(source.read_text())) or ''


def _what_ran(study_dir: Path, command: str, what: str, cost: str) -> list[str]:
  run = run_identity.read(study_dir)
  return [
      '## What ran', '',
      f'- command: `{command}`',
      f'- search: {what}',
      f'- cost: {cost}',
      f'- devices: {", ".join(sorted(set(run["devices"])))} ({len(run["devices"])})'
      + (f', XLA:CPU threads {run["cpu_threads"]}' if run.get('cpu_threads') else ''),
      '- versions: ' + ', '.join(f'{k} {v}' for k, v in run['versions'].items()),
      f'- git revision: {git_revision()}', '']


def write_report(study_dir: Path, config, split, *, command: str, outcome,
                 source: Path | None = None,
                 final: records_lib.FinalModel | None = None) -> Path:
  """The search's `outcome` (a search.base.Outcome), then its `final` model."""
  lines = [f'# Study `{config.name}`', '']
  doc = _docstring(source)
  if doc:
    lines += ['```', doc, '```', '']
  lines += _what_ran(study_dir, command, *outcome.what_ran(config))
  lines += outcome.report_section(config, study_dir, split, retrained=final is not None)
  if final is not None:
    lines += test_set.final_model_section(final, config, split, study_dir)
  lines += outcome.report_appendix(config, study_dir)
  faults.passed('report')   # a test's kill lands with the figures drawn, report.md not
  path = study_dir / 'report.md'
  folders.write_atomic(path, mask_passwords('\n'.join(lines) + '\n'))
  return path


def write_index(output_dir: Path,
                studies: list[tuple[str, Path, list[records_lib.MemberRecord]]],
                command: str) -> Path:
  """report.md over every study, in the original report's order: (name, folder, its
  members' records, as the run that trained them holds them)."""
  lines = ['# Every study', '', f'- command: `{command}`', f'- git revision: {git_revision()}',
           '']
  for name, study_dir, records in studies:
    # In the order of their folders, as the members/ folder lists them.
    records = sorted(records, key=lambda r: folders.member_dir(study_dir, r).name)
    lines += [f'## [{name}]({study_dir.relative_to(output_dir)}/report.md)', '',
              summaries.summary_markdown(records), '']
  path = output_dir / 'report.md'
  folders.write_atomic(path, mask_passwords('\n'.join(lines) + '\n'))
  return path
