"""Locating the four MNIST files, downloading missing ones into a cache."""

from __future__ import annotations

from collections.abc import Sequence
import http.client
import os
import pathlib
import shutil
import tempfile
import urllib.error
import urllib.request

from absl import logging

from jaxmlp.data import idx
from jaxmlp.common.errors import DataError

# Each serves NAME.gz. yann.lecun.com is left out: it often refuses robots.
MIRRORS: tuple[str, ...] = (
    'https://storage.googleapis.com/cvdf-datasets/mnist/',
    'https://ossci-datasets.s3.amazonaws.com/mnist/',
)

_CHUNK = 1 << 20


def default_cache_dir() -> pathlib.Path:
  """Where downloads go, following XDG so users can relocate caches."""
  override = os.environ.get('JAXMLP_CACHE_DIR')
  if override:
    return pathlib.Path(override).expanduser()
  xdg = os.environ.get('XDG_CACHE_HOME')
  # The XDG spec says relative values are invalid and must be ignored.
  if xdg and os.path.isabs(xdg):
    base = pathlib.Path(xdg)
  else:
    base = pathlib.Path.home() / '.cache'
  return base / 'jaxmlp' / 'mnist'


def resolve_data_dir(data_dir: str | None) -> pathlib.Path:
  """Applies the precedence --data_dir, then $MNIST_DIR, then the cache."""
  if data_dir:
    return pathlib.Path(data_dir).expanduser()
  env = os.environ.get('MNIST_DIR')
  if env:
    return pathlib.Path(env).expanduser()
  return default_cache_dir()


def _find(folder: pathlib.Path, name: str) -> pathlib.Path | None:
  """Prefers the raw file: it is what a user unpacked on purpose."""
  for candidate in (folder / name, folder / f'{name}.gz'):
    if candidate.is_file():
      return candidate
  return None


def _find_all(folder: pathlib.Path) -> dict[str, pathlib.Path | None]:
  return {name: _find(folder, name) for name in idx.FILES.values()}


def _fetch(url: str, name: str, cache: pathlib.Path,
           timeout_s: float) -> None:
  """Downloads one file and verifies it before it gets its final name.

  The temporary file is removed on any failure, so an interrupted or bad
  download never leaves something that a later run would take as valid.
  """
  tmp = tempfile.NamedTemporaryFile(
      dir=cache, prefix=f'{name}.gz.', suffix='.partial', delete=False)
  tmp_path = pathlib.Path(tmp.name)
  done = False
  try:
    with tmp, urllib.request.urlopen(url, timeout=timeout_s) as response:
      shutil.copyfileobj(response, tmp, _CHUNK)
    # Downloads always come from MNIST mirrors, so always verify them.
    fix = 'the mirror served a bad file'
    _, digest = idx.decode(tmp_path, want_digest=True, fix=fix, where=url)
    idx.check_digest(url, digest, idx.SHA256[name], fix)
    # NamedTemporaryFile is private (0600); a cache may be shared.
    tmp_path.chmod(0o644)
    os.replace(tmp_path, cache / f'{name}.gz')
    done = True
  finally:
    if not done:
      tmp_path.unlink(missing_ok=True)


def _why(error: Exception) -> str:
  """Keeps download failures short enough to sit inside one message line."""
  if isinstance(error, urllib.error.HTTPError):
    return f'HTTP {error.code} {error.reason}'
  if isinstance(error, urllib.error.URLError):
    return str(error.reason)
  return str(error) or type(error).__name__


def _download(name: str, cache: pathlib.Path, mirrors: Sequence[str],
              timeout_s: float) -> str | None:
  """Tries each mirror in order; returns why all failed, or None on success."""
  reasons = []
  for mirror in mirrors:
    url = f'{mirror.rstrip("/")}/{name}.gz'
    logging.info('Downloading %s from %s', name, url)
    try:
      _fetch(url, name, cache, timeout_s)
    except DataError as e:
      # Already names the URL and what was wrong with the file.
      reasons.append(str(e))
    except (OSError, http.client.HTTPException, ValueError) as e:
      # OSError covers URLError, HTTPError and socket timeouts; ValueError is
      # urllib's answer to a malformed mirror URL.
      reasons.append(f'{url}: {_why(e)}')
    else:
      logging.info('Saved %s as %s', url, cache / f'{name}.gz')
      return None
    logging.info('Could not download: %s', reasons[-1])
  return '; '.join(reasons) or 'no download mirrors configured'


def _offline_error(places: Sequence[pathlib.Path], reason: str) -> DataError:
  where = ' or '.join(str(p) for p in dict.fromkeys(places))
  names = [f'{n}[.gz]' for n in idx.FILES.values()]
  listed = f'{", ".join(names[:-1])} and {names[-1]}'
  return DataError(
      f'MNIST not found in {where} and could not be downloaded ({reason}): '
      f'put {listed} in a folder and pass --data_dir=FOLDER or set '
      f'MNIST_DIR=FOLDER')


def _ensure_cache(cache: pathlib.Path) -> None:
  try:
    cache.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise DataError(
        f'cannot create the MNIST cache folder {cache}: {e.strerror or e}: '
        f'set JAXMLP_CACHE_DIR to a writable folder, or pass '
        f'--data_dir=FOLDER holding the four MNIST files') from e


def _not_a_folder(folder: pathlib.Path) -> DataError:
  return DataError(
      f'the MNIST folder {folder} is a file, not a folder: pass --data_dir=FOLDER (or set '
      'MNIST_DIR=FOLDER) naming the folder that holds the four MNIST IDX files')


def _partial_error(folder: pathlib.Path, missing: Sequence[str], cache: pathlib.Path,
                   reason: str) -> DataError:
  names = ' and '.join(f'{n}[.gz]' for n in missing)
  return DataError(
      f'{folder} lacks {names} (it holds the other MNIST files), which is not in the '
      f'cache {cache} either and could not be downloaded ({reason}): put {names} in '
      f'{folder}')


def locate(folder: pathlib.Path, cache: pathlib.Path, mirrors: Sequence[str],
           timeout_s: float) -> tuple[dict[str, pathlib.Path], str]:
  """Returns the four paths and the fix to suggest if one turns out corrupt.

  A complete user folder is used as-is, even if corrupt: silently replacing
  data the user pointed at would hide the problem. A folder that lacks some files
  keeps the ones it has; the others come from the cache, downloaded if need be, and
  a failure names the files the folder lacks.
  """
  if folder.exists() and not folder.is_dir():
    raise _not_a_folder(folder)
  found = _find_all(folder)
  if all(found.values()):
    return {n: p for n, p in found.items() if p}, idx.DEFAULT_FIX
  partial = any(found.values()) and folder != cache
  if partial:
    missing = [n for n, p in found.items() if p is None]
    logging.info('%s lacks %s; taking it from the cache %s', folder,
                    ', '.join(missing), cache)
  if cache.exists() and not cache.is_dir():
    raise _not_a_folder(cache)
  cached = _find_all(cache)
  paths = {n: p for n, p in found.items() if p} if partial else {}
  paths.update({n: p for n, p in cached.items() if p and n not in paths})
  missing = [n for n in idx.FILES.values() if n not in paths]
  if missing:
    _ensure_cache(cache)
  for name in missing:
    reason = _download(name, cache, mirrors, timeout_s)
    if reason is not None:
      if partial:
        raise _partial_error(folder, [n for n in missing if n not in paths], cache, reason)
      raise _offline_error([folder, cache], reason)
    paths[name] = cache / f'{name}.gz'
  return paths, (idx.DEFAULT_FIX if partial else 'delete it so it is downloaded again')
