"""python -m jaxmlp.results: a study's table as csv, parquet or markdown."""

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import jaxmlp
from jaxmlp import results as results_cli
from jaxmlp.common.errors import UserError


def _results(args, cwd) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, '-m', 'jaxmlp.results', *args], cwd=cwd,
                        capture_output=True, timeout=120)


@pytest.fixture(scope='module')
def study_dir(tmp_path_factory) -> Path:
  """A tiny grid study (2 seeds, 2 epochs), run once for the module."""
  cwd = tmp_path_factory.mktemp('grid')
  result = subprocess.run([sys.executable, '-m', 'jaxmlp.launch', '--study=baseline',
                           '--epochs=2', '--seeds=2', '--data_limit=600', '--progress=false',
                           '--output_dir=out'], cwd=cwd, capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr
  return cwd / 'out' / 'baseline'


def _assert_csv_holds(read_back: pd.DataFrame, frame: pd.DataFrame) -> None:
  # CSV has no empty string apart from a missing value (the baseline's arm is ''), and
  # a column of only missing values reads back as float: values compared, not dtypes.
  pd.testing.assert_frame_equal(read_back, frame.replace({'': np.nan}), check_exact=True,
                                check_dtype=False)
  numeric = frame.select_dtypes('number').columns
  assert (read_back[numeric].dtypes == frame[numeric].dtypes).all()


@pytest.mark.parametrize('history', [False, True])
def test_csv_reads_back_as_the_same_frame(study_dir, tmp_path, history):
  result = _results([str(study_dir), '--format=csv', *(['--history'] if history else [])],
                    tmp_path)
  assert result.returncode == 0, result.stderr
  frame = (jaxmlp.read_history if history else jaxmlp.read_results)(study_dir)
  read_back = pd.read_csv(io.BytesIO(result.stdout))
  assert len(read_back) == len(frame) > 0
  _assert_csv_holds(read_back, frame)


def test_output_writes_the_file_and_nothing_to_stdout(study_dir, tmp_path):
  result = _results([str(study_dir), '--output=table.csv'], tmp_path)
  assert result.returncode == 0 and result.stdout == b''
  _assert_csv_holds(pd.read_csv(tmp_path / 'table.csv'), jaxmlp.read_results(study_dir))


def test_markdown_without_tabulate_is_a_table_of_every_row(study_dir, monkeypatch):
  monkeypatch.setitem(sys.modules, 'tabulate', None)   # import tabulate fails
  frame = jaxmlp.read_results(study_dir)
  lines = results_cli.table_bytes(frame, 'markdown').decode().splitlines()
  assert lines[0] == '| ' + ' | '.join(frame.columns) + ' |'
  assert lines[1] == '|' + '---|' * len(frame.columns)
  assert len(lines) == 2 + len(frame)
  first = lines[2].strip('| ').split(' | ')
  assert first[:5] == ['member', 'baseline__seed0', 'baseline', '', '0']


def test_markdown_escapes_pipes_and_leaves_missing_values_empty():
  frame = pd.DataFrame({'a|b': ['x|y', None], 'n': [1.5, float('nan')]})
  assert results_cli.markdown_table(frame) == (
      '| a|b | n |\n|---|---|\n| x\\|y | 1.5 |\n|  |  |\n')


def test_parquet_without_pyarrow_is_one_clear_error(study_dir, monkeypatch):
  monkeypatch.setitem(sys.modules, 'pyarrow', None)   # import pyarrow fails
  with pytest.raises(UserError) as error:
    results_cli.export(str(study_dir), 'parquet')
  assert str(error.value) == "--format=parquet needs pyarrow: pip install 'jaxmlp[parquet]'"


def test_parquet_reads_back_as_the_same_frame(study_dir, tmp_path):
  pytest.importorskip('pyarrow')
  results_cli.export(str(study_dir), 'parquet', str(tmp_path / 'table.parquet'))
  pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / 'table.parquet'),
                                jaxmlp.read_results(study_dir))


@pytest.mark.parametrize('args', [['{tmp}'], ['{tmp}/absent'], [], ['{tmp}', '--format=xml']])
def test_no_study_folder_or_a_bad_flag_is_one_line_and_exit_2(tmp_path, args):
  result = _results([a.format(tmp=tmp_path) for a in args], tmp_path)
  assert result.returncode == 2
  lines = result.stderr.decode().strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('error: '), lines
  if args:
    assert args[-1].format(tmp=tmp_path) in lines[0]


def test_pareto_table_is_read_pareto(study_dir, tmp_path):
  objectives = '(val_loss, flops)'
  result = _results([str(study_dir), f'--pareto={objectives}'], tmp_path)
  assert result.returncode == 0, result.stderr
  read_back = pd.read_csv(io.BytesIO(result.stdout))
  pd.testing.assert_frame_equal(read_back, jaxmlp.read_pareto(study_dir, objectives),
                                check_dtype=False)
  both = _results([str(study_dir), '--history', f'--pareto={objectives}'], tmp_path)
  assert both.returncode == 2 and b'pass one of them' in both.stderr
