"""CIFAR-10: find it, decode it once into a uint8 cache, and subset it (``batches`` batches it).

Where the data comes from (``resolve_source``), first match wins:

1. the explicit ``data`` argument (the config's ``data:`` / ``--set data=PATH``);
2. the ``CNN_LAB_DATA`` environment variable;
3. the project's ``data/`` folder (``<root>/data``);
4. ``<root>/../shared/datasets/`` (the offline copy on the build machines);
5. with ``download=True`` only: ``torchvision.datasets.CIFAR10`` downloads the official
   release into ``<root>/data`` and that is used.

Each place may hold any of these forms (checked in this order, so the official release
wins when several are present, because the JPEG copy is lossy):

* ``cifar-10-batches-py/`` — the official python release (the place may also *be* it);
* ``train/<class>/*.jpg`` + ``test/<class>/*.jpg`` — a JPEG folder (also ``cifar10-jpeg/``);
* ``cifar10-jpeg.tar.gz`` — the JPEG archive (an explicit path may name any ``.tar.gz``).

An explicit path or ``CNN_LAB_DATA`` that holds nothing usable is an error naming that
path rather than a silent fall-through, so a typo never trains on a different data set.
A relative explicit path is tried against the working directory, then the project root
(notebooks run from ``notebooks/``). When nothing is found, ``DataNotFoundError`` lists
every place tried and how to supply the data.

Decoding (JPEG or pickled batches) happens once per source: the result is stored as
uncompressed uint8 arrays in ``<root>/data/cache/`` under a name keyed on a fingerprint of
the source (paths, sizes, mtimes and ``FORMAT_VERSION``), so a changed source never gets a
stale cache and a cached load of all 60,000 images takes well under a second. A source that
cannot be decoded (a truncated archive or batch file, an unreadable image) raises
``DataDamagedError`` naming the file, and no cache is written for it.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
CLASSES_ZH: tuple[str, ...] = ("飞机", "汽车", "鸟", "猫", "鹿", "狗", "青蛙", "马", "船", "卡车")

# Bump when the cache layout or decoding changes, so old cache files are never reused.
FORMAT_VERSION = 1
ENV_VAR = "CNN_LAB_DATA"
OFFICIAL_DIR = "cifar-10-batches-py"
ARCHIVE_NAME = "cifar10-jpeg.tar.gz"
JPEG_DIR = "cifar10-jpeg"
SPLITS = ("train", "test")
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
IMAGE_EXTS = (".jpg", ".jpeg", ".png")
ARCHIVE_EXTS = (".tar.gz", ".tgz")
IMAGE_SHAPE = (3, 32, 32)
_CLASS_INDEX = {name: i for i, name in enumerate(CLASSES)}
_KIND_LABELS = {
    "official": "CIFAR-10 official python release",
    "jpeg-archive": "CIFAR-10 JPEG archive",
    "jpeg-folder": "CIFAR-10 JPEG folder",
}

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x_train, y_train, x_test, y_test


class DataNotFoundError(FileNotFoundError):
    """No usable CIFAR-10 copy; ``str(err)`` lists the places tried and how to supply one."""


class DataDamagedError(DataNotFoundError):
    """A CIFAR-10 file that is there but cannot be read; ``str(err)`` names it and the remedy."""


# What reading a truncated or corrupt archive, pickle or image raises.
_DAMAGE = (OSError, EOFError, tarfile.TarError, zlib.error, pickle.UnpicklingError, ValueError, KeyError,
           IndexError, TypeError)
_REFETCH = {
    "official": "download the official release (cifar-10-python.tar.gz) again and unpack it",
    "jpeg-archive": "copy or download the archive again",
    "jpeg-folder": "replace or delete that image",
}


def _damaged(path: str | os.PathLike, kind: str, err: BaseException) -> DataDamagedError:
    if isinstance(err, PermissionError):
        what = "cannot be read"
    else:
        what = "truncated or damaged" if kind != "jpeg-folder" else "not a readable image"
    reason = str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}".rstrip(": ")
    reason = " ".join(reason.split())  # one line
    return DataDamagedError(f"{path}: {what} ({reason}); {_REFETCH[kind]}, "
                            f"or point `--set data=PATH` at another copy")


@dataclass(frozen=True)
class DataSource:
    """One concrete copy of CIFAR-10 on disk."""

    kind: str  # "official" | "jpeg-archive" | "jpeg-folder"
    path: str  # absolute path of the archive or folder

    def describe(self) -> str:
        """A short label for logs and reports (which copy was used matters: JPEG is lossy)."""
        return f"{_KIND_LABELS.get(self.kind, self.kind)} ({_display_path(self.path)})"


@dataclass
class CifarData:
    """The whole data set as uint8 N×3×32×32 images and int64 labels, plus where it came from."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: DataSource
    fingerprint: str = ""
    cache_file: str | None = None

    def info(self) -> dict:
        """JSON-serialisable provenance, recorded with every run."""
        return {
            "kind": self.source.kind,
            "path": self.source.path,
            "description": self.source.describe(),
            "fingerprint": self.fingerprint,
            "n_train": int(len(self.y_train)),
            "n_test": int(len(self.y_test)),
            "cache_file": self.cache_file,
        }


# --------------------------------------------------------------------------- locating


def project_root() -> Path:
    """The repository root: the folder holding the ``cnn_lab`` package."""
    return Path(__file__).resolve().parent.parent


def _display_path(path: str | os.PathLike) -> str:
    """``path`` relative to the project when it is in or beside it, else absolute."""
    try:
        rel = os.path.relpath(path, project_root())
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if rel.startswith(os.path.join(os.pardir, os.pardir)) else rel


def _is_official(folder: Path) -> bool:
    return all((folder / name).is_file() for name in TRAIN_BATCHES + (TEST_BATCH,))


def _is_jpeg_folder(folder: Path) -> bool:
    """``train/`` and ``test/`` each with at least one class folder."""
    return all(
        any((folder / split / name).is_dir() for name in CLASSES) for split in SPLITS
    )


def _is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_EXTS)


def find_source_in(path: Path) -> DataSource | None:
    """The best CIFAR-10 copy at ``path`` (a file or a folder), or None."""
    path = Path(path).expanduser().resolve()
    if _is_archive(path):
        return DataSource("jpeg-archive", str(path))
    if not path.is_dir():
        return None
    candidates = (
        ("official", path, _is_official),
        ("official", path / OFFICIAL_DIR, _is_official),
        ("jpeg-folder", path, _is_jpeg_folder),
        ("jpeg-folder", path / JPEG_DIR, _is_jpeg_folder),
        ("jpeg-archive", path / ARCHIVE_NAME, _is_archive),
    )
    for kind, candidate, check in candidates:
        if check(candidate):
            return DataSource(kind, str(candidate))
    return None


def _explicit_candidates(raw: str, root: Path) -> list[Path]:
    """Where a user-given path may point: as given (cwd-relative), then root-relative."""
    p = Path(raw).expanduser()
    if p.is_absolute():
        return [p.resolve()]
    seen: list[Path] = []
    for c in (Path.cwd() / p, root / p):
        if c.resolve() not in seen:
            seen.append(c.resolve())
    return seen


def _require_source(raw: str, origin: str, root: Path) -> DataSource:
    """The source an explicit setting names; strict, because falling through hides typos."""
    candidates = _explicit_candidates(raw, root)
    for candidate in candidates:
        found = find_source_in(candidate)
        if found is not None:
            return found
    where = " or ".join(str(c) for c in candidates)
    raise DataNotFoundError(
        f"{origin} is {raw!r}, but {where} holds no CIFAR-10 data: expected a .tar.gz JPEG "
        f"archive, a folder with train/ and test/ class folders, a {OFFICIAL_DIR}/ folder "
        f"(or a folder containing one), or a folder containing {ARCHIVE_NAME}.\n" + _HOW_TO
    )


_HOW_TO = (
    "Supply the data in one of these ways:\n"
    f"  - point to it: `data: PATH` in the config, `--set data=PATH`, or the {ENV_VAR} "
    f"environment variable (PATH: the official {OFFICIAL_DIR}/ folder or its parent, the "
    f"{ARCHIVE_NAME} JPEG archive, or a folder with train/ and test/);\n"
    f"  - put the official release ({OFFICIAL_DIR}/) or the JPEG archive ({ARCHIVE_NAME}) "
    "in the project's data/ folder;\n"
    "  - allow downloading the official release: `download: true` (or `--set download=true`)."
)


def _not_found_message(tried: list[str]) -> str:
    lines = "\n".join(f"  - {t}" for t in tried)
    return f"CIFAR-10 not found. Places tried:\n{lines}\n{_HOW_TO}"


def _download_official(dest: Path) -> DataSource:
    """Fetch the official release with torchvision (imported here: only needed for this)."""
    from torchvision.datasets import CIFAR10

    dest.mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        CIFAR10(str(dest), train=train, download=True)
    found = find_source_in(dest / OFFICIAL_DIR)
    if found is None:
        raise DataNotFoundError(f"downloaded CIFAR-10 into {dest} but found no {OFFICIAL_DIR}/ there")
    return found


def resolve_source(
    data: str | None = None, *, download: bool = False, root: Path | None = None
) -> DataSource:
    """The CIFAR-10 copy to use, by the order in the module docstring."""
    root = Path(root).resolve() if root is not None else project_root()
    if data:  # "" (the config default) means "not set"
        return _require_source(str(data), "the data setting", root)
    env = os.environ.get(ENV_VAR)
    if env:
        return _require_source(env, f"the {ENV_VAR} environment variable", root)
    tried = [f"{ENV_VAR}: not set", "the data setting: not set"]
    for place in (root / "data", root / ".." / "shared" / "datasets"):
        place = place.resolve()
        found = find_source_in(place)
        if found is not None:
            return found
        tried.append(
            f"{place} (looked for {OFFICIAL_DIR}/, train/ + test/, {JPEG_DIR}/, {ARCHIVE_NAME})"
        )
    if download:
        return _download_official(root / "data")
    tried.append("download: off")
    raise DataNotFoundError(_not_found_message(tried))


# --------------------------------------------------------------------------- fingerprints


def _file_stats(files: list[Path]) -> tuple[int, int, int]:
    """(count, total size, newest mtime in ns): cheap to compute, changes with any edit."""
    stats = [f.stat() for f in files]
    return len(stats), sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)


def _folder_entries(source: DataSource) -> list:
    """Per-file (official) or per-class-folder (JPEG) stats that the fingerprint hashes."""
    folder = Path(source.path)
    if source.kind == "official":
        return [[name, *_file_stats([folder / name])] for name in TRAIN_BATCHES + (TEST_BATCH,)]
    entries = []
    for split in SPLITS:
        for name in CLASSES:
            files = _image_files(folder / split / name)
            entries.append([f"{split}/{name}", *_file_stats(files)])
    return entries


def fingerprint(source: DataSource) -> str:
    """A short hash that changes whenever the source's files (or the cache format) change."""
    path = Path(source.path)
    if source.kind == "jpeg-archive":
        st = path.stat()
        entries: list = [st.st_size, st.st_mtime_ns]
    else:
        entries = _folder_entries(source)
    blob = json.dumps([FORMAT_VERSION, source.kind, source.path, entries])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- decoding


def _decode_image(raw: bytes, name: str = "") -> np.ndarray:
    """One JPEG/PNG as a 32×32×3 uint8 array; ``name`` prefixes the ValueError it raises."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as img:
            arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except UnidentifiedImageError:
        raise ValueError(f"{name}not a JPEG or PNG image") from None
    except (OSError, SyntaxError) as err:  # e.g. "image file is truncated"
        raise ValueError(f"{name}{err}") from None
    if arr.shape != (32, 32, 3):
        raise ValueError(f"{name}expected a 32×32 image, got {arr.shape[1]}×{arr.shape[0]}")
    return arr


def _image_key(name: str) -> tuple[int, int, str] | None:
    """(split, class index, file name) for ``.../<split>/<class>/<file>``, else None."""
    parts = PurePosixPath(name).parts
    if len(parts) < 3:
        return None
    split, cls, fname = parts[-3:]
    if split not in SPLITS or cls not in _CLASS_INDEX or fname.startswith("."):
        return None
    if not fname.lower().endswith(IMAGE_EXTS):
        return None
    return SPLITS.index(split), _CLASS_INDEX[cls], fname


def _stack(items: list[tuple[tuple[int, int, str], np.ndarray]], origin: str) -> Arrays:
    """Sort decoded images by (split, class, file name) and stack them as N×3×32×32."""
    items.sort(key=lambda item: item[0])
    out: list[np.ndarray] = []
    for split_idx, split in enumerate(SPLITS):
        chosen = [(key, arr) for key, arr in items if key[0] == split_idx]
        if not chosen:
            raise DataNotFoundError(f"{origin} holds no {split}/<class>/*.jpg images")
        x = np.stack([arr for _, arr in chosen]).transpose(0, 3, 1, 2)
        out.append(np.ascontiguousarray(x))
        out.append(np.array([key[1] for key, _ in chosen], dtype=np.int64))
    return out[0], out[1], out[2], out[3]


def _decode_archive(path: Path) -> Arrays:
    """Stream the tar once; 17-21 s for all 60,000 JPEGs on one core (BENCHMARKS.md), so no worker pool."""
    items = []
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for member in tar:
                key = _image_key(member.name) if member.isfile() else None
                if key is None:
                    continue
                raw = tar.extractfile(member).read()
                items.append((key, _decode_image(raw, f"{member.name}: ")))
    except _DAMAGE as err:
        raise _damaged(path, "jpeg-archive", err) from None
    return _stack(items, str(path))


def _image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir()
        if p.name.lower().endswith(IMAGE_EXTS) and not p.name.startswith(".")
    )


def _decode_folder(folder: Path) -> Arrays:
    items = []
    for split_idx, split in enumerate(SPLITS):
        for cls_idx, cls in enumerate(CLASSES):
            for f in _image_files(folder / split / cls):
                try:
                    items.append(((split_idx, cls_idx, f.name), _decode_image(f.read_bytes())))
                except _DAMAGE as err:
                    raise _damaged(f, "jpeg-folder", err) from None
    return _stack(items, str(folder))


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch of the official release: b"data" N×3072 uint8, b"labels" list."""
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        x = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, *IMAGE_SHAPE)
        y = np.asarray(batch[b"labels"], dtype=np.int64)
        if len(x) != len(y):
            raise ValueError(f"{len(x)} images but {len(y)} labels")
    except _DAMAGE as err:
        raise _damaged(path, "official", err) from None
    return x, y


def _decode_official(folder: Path) -> Arrays:
    train = [_read_batch(folder / name) for name in TRAIN_BATCHES]
    x_test, y_test = _read_batch(folder / TEST_BATCH)
    x_train = np.ascontiguousarray(np.concatenate([x for x, _ in train]))
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, np.ascontiguousarray(x_test), y_test


def _decode_source(source: DataSource) -> Arrays:
    """Decode a source from scratch (the slow path that the cache exists to skip)."""
    decoders = {"official": _decode_official, "jpeg-archive": _decode_archive, "jpeg-folder": _decode_folder}
    return decoders[source.kind](Path(source.path))


# --------------------------------------------------------------------------- cache

_CACHE_KEYS = ("x_train", "y_train", "x_test", "y_test")


def cache_path(source: DataSource, cache_dir: Path, fp: str | None = None) -> Path:
    """The cache file for ``source``; its name carries the format version and fingerprint."""
    fp = fp or fingerprint(source)
    return Path(cache_dir) / f"cifar10-v{FORMAT_VERSION}-{source.kind}-{fp}.npz"


def _read_cache(path: Path) -> Arrays | None:
    """The cached arrays, or None if absent or unreadable (then the source is decoded again)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = tuple(z[k] for k in _CACHE_KEYS)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        warnings.warn(f"ignoring unreadable data cache {path}: {err}", stacklevel=3)
        return None
    ok = arrays[0].dtype == np.uint8 and arrays[0].shape[1:] == IMAGE_SHAPE and arrays[2].shape[1:] == IMAGE_SHAPE
    return arrays if ok else None  # type: ignore[return-value]


def _write_cache(path: Path, arrays: Arrays) -> None:
    """Write atomically (temp file + rename) so concurrent runs never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **dict(zip(_CACHE_KEYS, arrays)))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is shared by every run
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_cifar10(
    data: str | None = None,
    *,
    download: bool = False,
    cache_dir: Path | None = None,
    root: Path | None = None,
) -> CifarData:
    """The whole data set (uint8), from the cache when the source is unchanged."""
    root = Path(root).resolve() if root is not None else project_root()
    source = resolve_source(data, download=download, root=root)
    fp = fingerprint(source)
    path = cache_path(source, Path(cache_dir) if cache_dir is not None else root / "data" / "cache", fp)
    arrays = _read_cache(path)
    if arrays is None:
        arrays = _decode_source(source)
        try:
            _write_cache(path, arrays)
        except OSError as err:  # a read-only checkout still trains, just decodes every time
            warnings.warn(f"could not write data cache {path}: {err}", stacklevel=2)
    x_tr, y_tr, x_te, y_te = (torch.from_numpy(a) for a in arrays)
    return CifarData(x_tr, y_tr, x_te, y_te, source=source, fingerprint=fp, cache_file=str(path))


# --------------------------------------------------------------------------- subsets


def balanced_subset(
    x: torch.Tensor, y: torch.Tensor, n: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` examples, equally many per class (remainder to the first classes), by index order.

    The same (data, n, seed) always gives the same subset, so runs that differ only in
    model see the same images. ``n == 0`` or ``n >= len(y)`` means everything.
    """
    if n < 0:
        raise ValueError(f"subset size must be >= 0 (0 = all), got {n}")
    if n == 0 or n >= len(y):
        return x, y
    y_cpu = y.cpu()
    classes = torch.unique(y_cpu)
    k = len(classes)
    g = torch.Generator().manual_seed(seed)
    picks = []
    for i, c in enumerate(classes.tolist()):
        want = n // k + (1 if i < n % k else 0)
        idx = torch.nonzero(y_cpu == c).flatten()
        if want > len(idx):
            raise ValueError(f"subset of {n} needs {want} examples of class {c}, only {len(idx)} exist")
        picks.append(idx[torch.randperm(len(idx), generator=g)[:want]])
    sel = torch.sort(torch.cat(picks)).values
    return x[sel.to(x.device)], y[sel.to(y.device)]
