"""MNIST loading that reproduces the Keras study's data exactly.

The original study used `keras.datasets.mnist`, which reads Yann LeCun's IDX
files in file order and lets `validation_split` take the last rows as the
validation set. Reading the same verified IDX files in the same order is what
makes a run here comparable row-for-row with the Keras one, so that is the
default source; tensorflow-datasets is offered only as a convenience.

Every problem a user can fix raises `DataError` with a one-line message that
names the problem and the fix, because the CLI prints it and exits 2.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import gzip
import hashlib
import http.client
import os
import pathlib
import shutil
import struct
import tempfile
import urllib.error
import urllib.request
import zlib

from absl import logging
import numpy as np

from jaxmlp.errors import UserError

FILES: dict[str, str] = {
    'train_images': 'train-images-idx3-ubyte',
    'train_labels': 'train-labels-idx1-ubyte',
    'test_images': 't10k-images-idx3-ubyte',
    'test_labels': 't10k-labels-idx1-ubyte',
}

# SHA-256 of the decompressed originals; hashing the decompressed bytes makes
# the check independent of how a mirror or a user happened to gzip them.
SHA256: dict[str, str] = {
    'train-images-idx3-ubyte':
        'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
    'train-labels-idx1-ubyte':
        '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
    't10k-images-idx3-ubyte':
        '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
    't10k-labels-idx1-ubyte':
        'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
}

# Each serves NAME.gz. yann.lecun.com is left out: it often refuses robots.
MIRRORS: tuple[str, ...] = (
    'https://storage.googleapis.com/cvdf-datasets/mnist/',
    'https://ossci-datasets.s3.amazonaws.com/mnist/',
)

SOURCES: tuple[str, ...] = ('idx', 'tfds')

_LABELS_MAGIC = 0x00000801
_IMAGES_MAGIC = 0x00000803
_UBYTE = 0x08
_IMAGE_SHAPE = (28, 28)
_NUM_CLASSES = 10
_MNIST_COUNTS = {'train': 60000, 'test': 10000}
_GZIP_MAGIC = b'\x1f\x8b'
_CHUNK = 1 << 20
_DEFAULT_FIX = 'replace it with an intact copy'


class DataError(UserError):
  """A data problem the user can fix; the message is forced onto one line.

  Messages often embed text from elsewhere (OS errors, URL errors) that may
  hold newlines, and the CLI contract is a single printed line.
  """

  def __init__(self, message: str):
    super().__init__(' '.join(str(message).split()))


@dataclasses.dataclass(frozen=True)
class Mnist:
  """The four MNIST arrays, rows in file order.

  Images are flattened row-wise to (N, 784) uint8 because that is what the
  Keras MLP consumed (`reshape(-1, 784)`); scaling is left to the caller so
  the stored data stays exact.
  """
  train_images: np.ndarray  # (60000, 784) uint8
  train_labels: np.ndarray  # (60000,) int32
  test_images: np.ndarray  # (10000, 784) uint8
  test_labels: np.ndarray  # (10000,) int32


@dataclasses.dataclass(frozen=True)
class Split:
  """Train/validation/test arrays as Keras `validation_split` would cut them."""
  x_train: np.ndarray
  y_train: np.ndarray
  x_val: np.ndarray
  y_val: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray


# ---------------------------------------------------------------------------
# IDX parsing.


def _read_bytes(path: pathlib.Path, where: str, fix: str) -> bytes:
  """Returns the decompressed content; gzip is detected by content, not name.

  Users rename files freely (and some mirrors serve raw bytes under .gz), so
  the magic bytes are the only reliable signal.
  """
  try:
    raw = path.read_bytes()
  except OSError as e:
    raise DataError(f'cannot read {where}: {e.strerror or e}: {fix}') from e
  if raw[:2] != _GZIP_MAGIC:
    return raw
  try:
    return gzip.decompress(raw)
  except EOFError as e:
    raise DataError(f'{where}: truncated gzip stream ({e}): {fix}') from e
  except (gzip.BadGzipFile, zlib.error, OSError) as e:
    raise DataError(f'{where}: corrupt gzip data ({e}): {fix}') from e


def _parse_header(data: bytes, where: str,
                  fix: str) -> tuple[tuple[int, ...], int]:
  """Returns (dims, header length) after checking magic and type byte."""
  if len(data) < 4:
    raise DataError(f'{where}: truncated: {len(data)} bytes is shorter than an '
                    f'IDX header: {fix}')
  (magic,) = struct.unpack('>I', data[:4])
  if data[:2] == b'\0\0' and data[2] != _UBYTE and data[3] in (1, 3):
    raise DataError(f'{where}: unsupported IDX data type 0x{data[2]:02x}, only '
                    f'unsigned bytes (0x08) are supported: {fix}')
  if magic not in (_LABELS_MAGIC, _IMAGES_MAGIC):
    raise DataError(f'{where}: bad magic number 0x{magic:08x}, expected '
                    f'0x{_LABELS_MAGIC:08x} (labels) or 0x{_IMAGES_MAGIC:08x} '
                    f'(images); is it an MNIST-style IDX file? {fix}')
  ndim = magic & 0xff
  header_len = 4 + 4 * ndim
  if len(data) < header_len:
    raise DataError(f'{where}: truncated: the IDX header needs {header_len} '
                    f'bytes but the file holds {len(data)}: {fix}')
  dims = struct.unpack(f'>{ndim}I', data[4:header_len])
  return dims, header_len


def _describe(dims: tuple[int, ...]) -> str:
  """Names what a header declares, for size-mismatch messages."""
  if len(dims) == 1:
    return f'{dims[0]} labels ({dims[0]} bytes)'
  shape = 'x'.join(str(d) for d in dims[1:])
  return f'{dims[0]} images of {shape} ({int(np.prod(dims))} bytes)'


def _decode(path: pathlib.Path,
            *,
            want_digest: bool,
            fix: str = _DEFAULT_FIX,
            where: str | None = None) -> tuple[np.ndarray, str | None]:
  """Parses and structurally checks one IDX file; optionally hashes it.

  The digest is returned rather than compared here so callers can run their
  own structural checks (label range, counts) first and report those, which
  say far more than "checksum mismatch".
  """
  where = where or str(path)
  data = _read_bytes(path, where, fix)
  dims, header_len = _parse_header(data, where, fix)
  declared = int(np.prod(dims, dtype=np.int64))
  held = len(data) - header_len
  if held < declared:
    raise DataError(f'{where}: truncated: header declares {_describe(dims)} '
                    f'but file holds {held} bytes: {fix}')
  if held > declared:
    raise DataError(f'{where}: trailing bytes: header declares '
                    f'{_describe(dims)} but file holds {held} bytes '
                    f'({held - declared} extra): {fix}')
  array = np.frombuffer(data, np.uint8, offset=header_len).reshape(dims)
  digest = hashlib.sha256(data).hexdigest() if want_digest else None
  # Copy so callers get an ordinary writable array, not a view of `bytes`.
  return array.copy(), digest


def _check_digest(where: str, digest: str | None, expected: str,
                  fix: str) -> None:
  if digest != expected:
    raise DataError(f'{where}: sha256 of the decompressed content is {digest}, '
                    f'not the MNIST original {expected}: {fix}')


def read_idx(path: str | os.PathLike,
             *,
             expected_sha256: str | None = None) -> np.ndarray:
  """Reads a gzipped or raw IDX file of unsigned bytes, refusing anything off.

  Truncated or padded files are errors rather than being cropped, because a
  silently short dataset would skew a reproduction without any sign.

  Args:
    path: the file; gzip is detected from its first bytes.
    expected_sha256: if given, the SHA-256 the decompressed bytes must have.

  Returns:
    A uint8 array shaped as the header declares, e.g. (N, 28, 28) or (N,).

  Raises:
    DataError: naming the file and the problem.
  """
  path = pathlib.Path(path)
  array, digest = _decode(path, want_digest=expected_sha256 is not None)
  if expected_sha256 is not None:
    _check_digest(str(path), digest, expected_sha256, _DEFAULT_FIX)
  return array


# ---------------------------------------------------------------------------
# Locating, downloading and assembling the IDX files.


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
  return {name: _find(folder, name) for name in FILES.values()}


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
    _, digest = _decode(tmp_path, want_digest=True, fix=fix, where=url)
    _check_digest(url, digest, SHA256[name], fix)
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
  names = [f'{n}[.gz]' for n in FILES.values()]
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


def _locate(folder: pathlib.Path, cache: pathlib.Path, mirrors: Sequence[str],
            timeout_s: float) -> tuple[dict[str, pathlib.Path], str]:
  """Returns the four paths and the fix to suggest if one turns out corrupt.

  A complete user folder is used as-is, even if corrupt: silently replacing
  data the user pointed at would hide the problem.
  """
  found = _find_all(folder)
  if all(found.values()):
    return {n: p for n, p in found.items() if p}, _DEFAULT_FIX
  if any(found.values()):
    missing = [n for n, p in found.items() if p is None]
    logging.warning('%s lacks %s; using the cache %s instead', folder,
                    ', '.join(missing), cache)
  found = _find_all(cache)
  paths = {n: p for n, p in found.items() if p}
  missing = [n for n in found if n not in paths]
  if missing:
    _ensure_cache(cache)
  for name in missing:
    reason = _download(name, cache, mirrors, timeout_s)
    if reason is not None:
      raise _offline_error([folder, cache], reason)
    paths[name] = cache / f'{name}.gz'
  return paths, 'delete it so it is downloaded again'


def _check_kind(path: pathlib.Path, array: np.ndarray, images: bool) -> None:
  """Catches swapped or mislabelled files before they are used as data."""
  if images and array.ndim != 3:
    raise DataError(f'{path}: holds labels, but an image file (magic '
                    f'0x{_IMAGES_MAGIC:08x}) belongs here: check the file '
                    f'names')
  if not images and array.ndim != 1:
    raise DataError(f'{path}: holds images, but a label file (magic '
                    f'0x{_LABELS_MAGIC:08x}) belongs here: check the file '
                    f'names')
  if images and array.shape[1:] != _IMAGE_SHAPE:
    raise DataError(f'{path}: images are {array.shape[1]}x{array.shape[2]}, '
                    f'but the MLP needs 28x28: use an MNIST-style dataset')


def _check_labels(where: str, labels: np.ndarray) -> None:
  bad = np.flatnonzero(labels >= _NUM_CLASSES)
  if bad.size:
    raise DataError(f'{where}: label {int(labels[bad[0]])} out of range '
                    f'0..{_NUM_CLASSES - 1} at row {int(bad[0])}: replace it '
                    f'with an intact copy')


def _check_counts(part: str, images: np.ndarray, labels: np.ndarray,
                  verify_checksums: bool) -> None:
  if len(images) != len(labels):
    raise DataError(f'{part} split has {len(images)} images but '
                    f'{len(labels)} labels: the image and label files must '
                    f'come from the same dataset')
  if verify_checksums and len(images) != _MNIST_COUNTS[part]:
    raise DataError(f'{part} split has {len(images)} examples but MNIST has '
                    f'{_MNIST_COUNTS[part]}: use the original MNIST files, or '
                    f'turn off checksum verification for another dataset')


def _load_part(part: str, paths: dict[str, pathlib.Path],
               verify_checksums: bool,
               fix: str) -> tuple[np.ndarray, np.ndarray]:
  """Loads one split's images and labels, structure first, checksums last."""
  image_path = paths[FILES[f'{part}_images']]
  label_path = paths[FILES[f'{part}_labels']]
  images, image_digest = _decode(image_path, want_digest=verify_checksums,
                                 fix=fix)
  labels, label_digest = _decode(label_path, want_digest=verify_checksums,
                                 fix=fix)
  _check_kind(image_path, images, images=True)
  _check_kind(label_path, labels, images=False)
  _check_labels(str(label_path), labels)
  _check_counts(part, images, labels, verify_checksums)
  if verify_checksums:
    fix += (', or turn off checksum verification to load another IDX dataset '
            'such as Fashion-MNIST')
    _check_digest(str(image_path), image_digest,
                  SHA256[FILES[f'{part}_images']], fix)
    _check_digest(str(label_path), label_digest,
                  SHA256[FILES[f'{part}_labels']], fix)
  return images.reshape(len(images), -1), labels.astype(np.int32)


def load_idx(data_dir: str | None = None,
             *,
             verify_checksums: bool = True,
             mirrors: Sequence[str] | None = None,
             cache_dir: pathlib.Path | None = None,
             timeout_s: float = 30.0) -> Mnist:
  """Loads MNIST from IDX files, downloading into the cache only if needed.

  Args:
    data_dir: folder holding the four files (raw or .gz); None falls back to
      $MNIST_DIR, then the cache.
    verify_checksums: compare against the original MNIST SHA-256 sums. Turn
      off to load another IDX dataset such as Fashion-MNIST; the structural
      checks still run.
    mirrors: base URLs tried in order for each missing file; default
      $JAXMLP_MNIST_MIRRORS (comma-separated, e.g. a local mirror), else MIRRORS.
    cache_dir: where downloads go; defaults to `default_cache_dir()`.
    timeout_s: socket timeout per download request.

  Returns:
    The dataset in file order, images flattened to (N, 784).

  Raises:
    DataError: a file is missing and cannot be downloaded, or one is corrupt.
  """
  if mirrors is None:
    mirrors = tuple(filter(None, os.environ.get('JAXMLP_MNIST_MIRRORS', '').split(','))
                    ) or MIRRORS
  folder = resolve_data_dir(data_dir)
  cache = pathlib.Path(cache_dir) if cache_dir else default_cache_dir()
  paths, fix = _locate(folder, cache, mirrors, timeout_s)
  train_images, train_labels = _load_part('train', paths, verify_checksums, fix)
  test_images, test_labels = _load_part('test', paths, verify_checksums, fix)
  return Mnist(train_images, train_labels, test_images, test_labels)


# ---------------------------------------------------------------------------
# tensorflow-datasets.


def _import_tfds():
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    if e.name in (None, 'tensorflow_datasets'):
      raise DataError("tensorflow-datasets is not installed: pip install "
                      "'jaxmlp[tfds]', or use --data_source=idx") from e
    raise DataError(f"tensorflow-datasets could not be imported ({e}): pip "
                    f"install 'jaxmlp[tfds]', or use --data_source=idx") from e
  return tfds


def load_tfds(data_dir: str | None = None) -> Mnist:
  """Loads MNIST through tensorflow-datasets.

  tfds stores and returns the examples in its own order, which differs from
  the IDX file order that Keras uses. Even with identical seeds the
  train/validation split and the batches therefore differ, so results are
  not comparable row-for-row with the original Keras study; use
  `load_idx` for a faithful reproduction.

  Args:
    data_dir: tfds data folder; None uses tfds' default.

  Returns:
    The dataset in tfds order, images flattened to (N, 784).

  Raises:
    DataError: tensorflow-datasets is missing or could not provide MNIST.
  """
  tfds = _import_tfds()
  try:
    train, test = tfds.as_numpy(
        tfds.load('mnist', split=['train', 'test'], batch_size=-1,
                  as_supervised=True, data_dir=data_dir))
  except Exception as e:  # pylint: disable=broad-except
    # tfds raises many unrelated types when offline or misconfigured.
    raise DataError(f'tensorflow-datasets could not load mnist '
                    f'({type(e).__name__}: {e}): check the network or '
                    f'--data_dir, or use --data_source=idx') from e
  parts = []
  for part, (images, labels) in (('train', train), ('test', test)):
    images = np.asarray(images, np.uint8).reshape(len(images), -1)
    labels = np.asarray(labels).astype(np.int32)
    if images.shape[1] != np.prod(_IMAGE_SHAPE):
      raise DataError(f'tfds mnist {part} images have {images.shape[1]} '
                      f'pixels, not 784: clear the tfds cache in --data_dir')
    _check_labels(f'tfds mnist {part}', labels)
    _check_counts(part, images, labels, verify_checksums=True)
    parts += [images, labels]
  return Mnist(*parts)


# ---------------------------------------------------------------------------
# Entry points used by training.


def load(source: str = 'idx',
         data_dir: str | None = None,
         *,
         verify_checksums: bool = True) -> Mnist:
  """Loads MNIST from `source`, which is 'idx' (faithful) or 'tfds'.

  `verify_checksums` applies to 'idx' only; tfds verifies its own downloads.
  """
  if source == 'idx':
    return load_idx(data_dir, verify_checksums=verify_checksums)
  if source == 'tfds':
    return load_tfds(data_dir)
  valid = ', '.join(repr(s) for s in SOURCES)
  raise DataError(f'unknown data source {source!r}: use one of {valid} '
                  f'(--data_source=idx reproduces the Keras study)')


def split(mnist: Mnist, validation_split: float = 0.2) -> Split:
  """Cuts off the last `validation_split` of the training rows, like Keras.

  Keras `fit(validation_split=v)` splits at `int(n * (1 - v))` before any
  shuffling, so the validation set is the tail of the file; matching that
  exactly keeps validation metrics comparable with the original study.
  Images stay uint8 so scaling remains one explicit step elsewhere.

  Args:
    mnist: the loaded dataset.
    validation_split: fraction in [0, 1); 0 gives empty validation arrays.

  Returns:
    Views into `mnist`'s arrays; nothing is copied.

  Raises:
    DataError: `validation_split` is outside [0, 1) or leaves no train rows.
  """
  if not 0.0 <= validation_split < 1.0:
    raise DataError(f'validation_split={validation_split} is outside [0, 1): '
                    f'pass a fraction such as 0.2')
  n = len(mnist.train_images)
  at = int(n * (1.0 - validation_split))
  if at == 0:
    raise DataError(f'validation_split={validation_split} leaves no training '
                    f'rows out of {n}: pass a smaller fraction such as 0.2')
  return Split(
      x_train=mnist.train_images[:at], y_train=mnist.train_labels[:at],
      x_val=mnist.train_images[at:], y_val=mnist.train_labels[at:],
      x_test=mnist.test_images, y_test=mnist.test_labels)


def head(split_: Split, rows: int) -> Split:
  """The first `rows` rows of each part (0: all): quick smoke runs, not the protocol."""
  if rows <= 0:
    return split_
  return Split(*(a[:rows] for a in dataclasses.astuple(split_)))
