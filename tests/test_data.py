"""Tests for cnn_lab.data on a small synthetic CIFAR-10 JPEG archive in the real one's layout
(and, where it is present, on the offline archive itself)."""
from __future__ import annotations

import io
import os
import pickle
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnn_lab import data as D
from cnn_lab import batches as B

from conftest import write_archive

N_TRAIN_PER_CLASS = 20
N_TEST_PER_CLASS = 10


def shared_archive() -> Path:
    return (D.project_root() / ".." / "shared" / "datasets" / D.ARCHIVE_NAME).resolve()


def take(members: dict[str, bytes], n_train: int, n_test: int) -> dict[str, bytes]:
    """The first n_train / n_test files (by number) of each class."""
    limit = {"train": n_train, "test": n_test}
    return {k: v for k, v in members.items() if int(Path(k).stem) < limit[k.split("/")[0]]}


@pytest.fixture(autouse=True)
def _no_env_data(monkeypatch):
    """The user's CNN_LAB_DATA must not leak into resolution tests."""
    monkeypatch.delenv(D.ENV_VAR, raising=False)


@pytest.fixture(scope="session")
def slice_members() -> dict[str, bytes]:
    """20 train + 10 test JPEGs per class in the archive's layout (``train/<class>/0000.jpg``),
    each a different random 32x32 image: the tests run wherever the project is, with or
    without the offline archive (which ``test_full_archive`` reads where it is present)."""
    rng = np.random.default_rng(0)
    members = {}
    for split, n in (("train", N_TRAIN_PER_CLASS), ("test", N_TEST_PER_CLASS)):
        for cls in D.CLASSES:
            for i in range(n):
                buf = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, format="JPEG")
                members[f"{split}/{cls}/{i:04d}.jpg"] = buf.getvalue()
    return members


@pytest.fixture(scope="session")
def slice_archive(tmp_path_factory, slice_members) -> Path:
    return write_archive(tmp_path_factory.mktemp("slice") / "slice.tar.gz", slice_members)


@pytest.fixture(scope="session")
def slice_data(slice_archive, tmp_path_factory) -> D.CifarData:
    return D.load_cifar10(str(slice_archive), cache_dir=tmp_path_factory.mktemp("cache"))


def make_jpeg_folder(folder: Path, members: dict[str, bytes]) -> Path:
    for name, raw in members.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(raw)
    return folder


def make_official_folder(folder: Path, data: D.CifarData) -> Path:
    """A cifar-10-batches-py/ in the official release's exact pickle format."""
    folder.mkdir(parents=True)

    def dump(name: str, x: torch.Tensor, y: torch.Tensor) -> None:
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in y],
            b"data": x.numpy().reshape(len(x), -1),
            b"filenames": [f"{i}.png".encode() for i in range(len(x))],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)

    chunks = torch.arange(len(data.y_train)).chunk(5)
    for name, idx in zip(D.TRAIN_BATCHES, chunks):
        dump(name, data.x_train[idx], data.y_train[idx])
    dump(D.TEST_BATCH, data.x_test, data.y_test)
    return folder


def assert_same(a: D.CifarData, b: D.CifarData) -> None:
    for key in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, key), getattr(b, key)), key


# --------------------------------------------------------------------------- loading


def test_slice_archive_loads(slice_data, slice_archive, slice_members):
    d = slice_data
    assert d.x_train.shape == (200, 3, 32, 32) and d.x_test.shape == (100, 3, 32, 32)
    assert d.x_train.dtype == torch.uint8 and d.y_train.dtype == torch.int64
    assert d.x_train.is_contiguous() and d.x_test.is_contiguous()
    assert Counter(d.y_train.tolist()) == {c: 20 for c in range(10)}
    assert Counter(d.y_test.tolist()) == {c: 10 for c in range(10)}
    # sorted by (class, file name): labels run 0..9 in blocks, pixels match the files
    assert d.y_train.tolist() == [c for c in range(10) for _ in range(20)]
    for i, name in ((0, "train/airplane/0000.jpg"), (199, "train/truck/0019.jpg")):
        ref = np.array(Image.open(io.BytesIO(slice_members[name])).convert("RGB"))
        assert torch.equal(d.x_train[i], torch.from_numpy(ref).permute(2, 0, 1))
    info = d.info()
    assert info["kind"] == "jpeg-archive" and info["path"] == str(slice_archive.resolve())
    assert info["n_train"] == 200 and info["n_test"] == 100
    assert "JPEG archive" in info["description"] and info["fingerprint"]
    assert Path(info["cache_file"]).is_file()


def test_jpeg_folder_matches_archive(tmp_path, slice_members, slice_data):
    folder = make_jpeg_folder(tmp_path / "jpegs", slice_members)
    d = D.load_cifar10(str(folder), cache_dir=tmp_path / "cache")
    assert d.source == D.DataSource("jpeg-folder", str(folder.resolve()))
    assert_same(d, slice_data)


def test_official_format_matches(tmp_path, slice_data):
    official = make_official_folder(tmp_path / "release" / D.OFFICIAL_DIR, slice_data)
    for given in (official, official.parent):  # the folder itself or its parent
        d = D.load_cifar10(str(given), cache_dir=tmp_path / "cache")
        assert d.source.kind == "official" and d.source.path == str(official.resolve())
        assert_same(d, slice_data)


def test_cache_reused_and_never_stale(tmp_path, slice_members, monkeypatch):
    archive = write_archive(tmp_path / "a.tar.gz", take(slice_members, 5, 2))
    cache = tmp_path / "cache"
    first = D.load_cifar10(str(archive), cache_dir=cache)
    assert Path(first.cache_file).is_file() and Path(first.cache_file).parent == cache
    assert not list(cache.glob("*.tmp")), "temp files left behind"

    def no_decode(source):
        raise AssertionError("decoded again despite a valid cache")

    monkeypatch.setattr(D, "_decode_source", no_decode)
    again = D.load_cifar10(str(archive), cache_dir=cache)
    assert_same(first, again)
    assert again.cache_file == first.cache_file

    # Same path, different contents: a new fingerprint, so it must decode afresh.
    monkeypatch.undo()
    monkeypatch.delenv(D.ENV_VAR, raising=False)
    calls = []
    real = D._decode_source
    monkeypatch.setattr(D, "_decode_source", lambda s: calls.append(s) or real(s))
    write_archive(archive, take(slice_members, 3, 2))
    st = archive.stat()
    os.utime(archive, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    changed = D.load_cifar10(str(archive), cache_dir=cache)
    assert len(calls) == 1
    assert changed.fingerprint != first.fingerprint and changed.cache_file != first.cache_file
    assert changed.x_train.shape[0] == 30 and first.x_train.shape[0] == 50


def test_corrupt_cache_is_rebuilt(tmp_path, slice_members):
    archive = write_archive(tmp_path / "a.tar.gz", take(slice_members, 2, 1))
    first = D.load_cifar10(str(archive), cache_dir=tmp_path / "cache")
    Path(first.cache_file).write_bytes(b"not a zip")
    with pytest.warns(UserWarning, match="unreadable data cache"):
        again = D.load_cifar10(str(archive), cache_dir=tmp_path / "cache")
    assert_same(first, again)


# --------------------------------------------------------------------------- resolution


@pytest.fixture()
def places(tmp_path, slice_archive):
    """A fake project root, its data/, a shared/datasets/ beside it, and two explicit copies."""
    root = tmp_path / "proj"
    shared = tmp_path / "shared" / "datasets"
    (root / "data").mkdir(parents=True)
    shared.mkdir(parents=True)
    explicit = tmp_path / "explicit.tar.gz"
    env_dir = tmp_path / "envdir"
    env_dir.mkdir()
    for dest in (explicit, env_dir / D.ARCHIVE_NAME, root / "data" / D.ARCHIVE_NAME, shared / D.ARCHIVE_NAME):
        shutil.copy(slice_archive, dest)
    return {"root": root, "explicit": explicit, "env": env_dir, "data": root / "data", "shared": shared}


def test_resolution_order(places, monkeypatch):
    root = places["root"]
    monkeypatch.setenv(D.ENV_VAR, str(places["env"]))
    assert D.resolve_source(str(places["explicit"]), root=root).path == str(places["explicit"])
    assert D.resolve_source(None, root=root).path == str(places["env"] / D.ARCHIVE_NAME)
    monkeypatch.delenv(D.ENV_VAR)
    assert D.resolve_source("", root=root).path == str(places["data"] / D.ARCHIVE_NAME)
    (places["data"] / D.ARCHIVE_NAME).unlink()
    src = D.resolve_source(None, root=root)
    assert src == D.DataSource("jpeg-archive", str(places["shared"] / D.ARCHIVE_NAME))


def test_official_preferred_in_one_place(places, slice_data):
    make_official_folder(places["data"] / D.OFFICIAL_DIR, slice_data)
    src = D.resolve_source(None, root=places["root"])
    assert src == D.DataSource("official", str(places["data"] / D.OFFICIAL_DIR))


def test_jpeg_folder_in_data_dir(places, slice_members):
    (places["data"] / D.ARCHIVE_NAME).unlink()
    make_jpeg_folder(places["data"] / D.JPEG_DIR, take(slice_members, 1, 1))
    src = D.resolve_source(None, root=places["root"])
    assert src == D.DataSource("jpeg-folder", str(places["data"] / D.JPEG_DIR))


def test_relative_explicit_path_uses_project_root(places, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path / "shared")  # cwd-relative lookup misses, root-relative hits
    src = D.resolve_source("data", root=places["root"])
    assert src.path == str(places["data"] / D.ARCHIVE_NAME)


def test_missing_everywhere(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    with pytest.raises(D.DataNotFoundError) as err:
        D.resolve_source(None, root=root)
    msg = str(err.value)
    for place in (root / "data", tmp_path / "shared" / "datasets"):
        assert str(place.resolve()) in msg
    for hint in ("CNN_LAB_DATA", "--set data=", "download: true", D.ARCHIVE_NAME, D.OFFICIAL_DIR):
        assert hint in msg
    assert isinstance(err.value, FileNotFoundError)


def test_download_true_fetches_the_official_release_into_data_and_uses_it(tmp_path, monkeypatch, slice_data):
    """``download: true``, with CIFAR-10 nowhere: torchvision's CIFAR10 (here a stand-in that
    writes what the real one unpacks: a small cifar-10-batches-py/) fetches both splits into
    the project's data/, and that release is what loads; later runs find it there."""
    import torchvision.datasets

    calls = []

    class FakeCIFAR10:
        def __init__(self, root: str, train: bool, download: bool):
            calls.append((root, train, download))
            if not (Path(root) / D.OFFICIAL_DIR).exists():
                make_official_folder(Path(root) / D.OFFICIAL_DIR, slice_data)

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    root = tmp_path / "proj"
    root.mkdir()
    with pytest.raises(D.DataNotFoundError, match="download: off"):
        D.resolve_source(None, root=root)
    assert calls == []  # nothing fetched unless asked
    d = D.load_cifar10(None, download=True, root=root, cache_dir=tmp_path / "cache")
    official = (root / "data" / D.OFFICIAL_DIR).resolve()
    assert d.source == D.DataSource("official", str(official))
    assert calls == [(str(root / "data"), True, True), (str(root / "data"), False, True)]
    assert_same(d, slice_data)
    assert D.resolve_source(None, root=root) == d.source and len(calls) == 2  # found in data/ from now on


def test_explicit_path_without_data_is_an_error(places, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(D.DataNotFoundError, match=str(empty)):
        D.resolve_source(str(empty), root=places["root"])  # no fall-through to data/
    monkeypatch.setenv(D.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(D.DataNotFoundError, match="CNN_LAB_DATA") as err:
        D.resolve_source(None, root=places["root"])
    assert str(tmp_path / "nowhere") in str(err.value)


def test_describe_is_short():
    src = D.DataSource("jpeg-archive", str(shared_archive()))
    assert src.describe() == f"CIFAR-10 JPEG archive ({D._display_path(src.path)})"
    # beside the project: shown relative to it; elsewhere: absolute
    beside = D.project_root() / ".." / "shared" / "datasets" / D.ARCHIVE_NAME
    assert D._display_path(beside) == os.path.join("..", "shared", "datasets", D.ARCHIVE_NAME)
    assert D._display_path("/somewhere/else/x.tar.gz") == "/somewhere/else/x.tar.gz"


# --------------------------------------------------------------------------- subsets


def test_balanced_subset(slice_data):
    x, y = slice_data.x_train, slice_data.y_train
    xs, ys = D.balanced_subset(x, y, 53, seed=1)
    counts = Counter(ys.tolist())
    assert len(ys) == 53 and [counts[c] for c in range(10)] == [6, 6, 6] + [5] * 7
    xs2, ys2 = D.balanced_subset(x, y, 53, seed=1)
    assert torch.equal(xs, xs2) and torch.equal(ys, ys2)
    xs3, _ = D.balanced_subset(x, y, 53, seed=2)
    assert not torch.equal(xs, xs3)
    # every chosen image is a real row of x with the right label
    rows = {bytes(img.flatten().tolist()): int(lbl) for img, lbl in zip(x, y)}
    assert all(rows[bytes(img.flatten().tolist())] == int(lbl) for img, lbl in zip(xs, ys))
    for n in (0, len(y), len(y) + 5):
        assert D.balanced_subset(x, y, n)[0] is x
    with pytest.raises(ValueError):
        D.balanced_subset(x, y, -1)


# --------------------------------------------------------------------------- augment / normalize


def bright_pixel_batch(n: int, r: int = 16, c: int = 8) -> torch.Tensor:
    x = torch.zeros(n, 3, 32, 32, dtype=torch.uint8)
    x[:, :, r, c] = 255
    return x


def test_augment_shape_and_determinism():
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    a = B.augment(x, torch.Generator().manual_seed(0))
    b = B.augment(x, torch.Generator().manual_seed(0))
    c = B.augment(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_augment_is_crop_plus_flip():
    """Each output equals some 4-px-padded crop of its input, possibly mirrored."""
    x = torch.randint(1, 256, (12, 3, 32, 32), dtype=torch.uint8)
    out = B.augment(x, torch.Generator().manual_seed(3))
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for img, res in zip(padded, out):
        crops = [img[:, dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)]
        assert any(torch.equal(res, cr) or torch.equal(res, cr.flip(-1)) for cr in crops)


def test_augment_flips_and_shifts():
    n = 1000
    out = B.augment(bright_pixel_batch(n), torch.Generator().manual_seed(0))
    found = out[:, 0].flatten(1).argmax(1)
    visible = out[:, 0].flatten(1).amax(1) == 255
    assert visible.all()  # a pixel at (16, 8) never leaves the frame with 4-px shifts
    rows, cols = found // 32, found % 32
    assert (rows - 16).abs().max() <= 4
    flipped = cols > 15  # unflipped columns land in 4..12, mirrored ones in 19..27
    straight = torch.where(flipped, 31 - cols, cols)
    assert (straight - 8).abs().max() <= 4
    assert 0.4 < flipped.float().mean() < 0.6
    assert len(set(rows.tolist())) == 9 and len(set(straight.tolist())) == 9


def test_augment_pads_with_zeros():
    out = B.augment(torch.full((200, 3, 32, 32), 255, dtype=torch.uint8), torch.Generator().manual_seed(0))
    assert set(out.unique().tolist()) <= {0, 255} and (out == 0).any()
    zero_rows = (out[:, 0] == 0).all(2).sum(1)
    zero_cols = (out[:, 0] == 0).all(1).sum(1)
    assert zero_rows.max() <= 4 and zero_cols.max() <= 4
    assert ((out[:, 0] == 0).sum((1, 2)) == 32 * zero_rows + 32 * zero_cols - zero_rows * zero_cols).all()


def test_augment_rejects_generator_on_other_device():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    with pytest.raises(ValueError, match="generator"):
        B.augment(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.Generator(device="cuda"))


def test_normalize():
    mean_px = torch.tensor([round(m * 255) for m in B.MEAN], dtype=torch.uint8).view(1, 3, 1, 1)
    z = B.normalize(mean_px.expand(8, 3, 32, 32).contiguous())
    assert z.dtype == torch.float32 and z.shape == (8, 3, 32, 32)
    assert z.abs().max() < 0.01
    white = B.normalize(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8))
    expected = torch.tensor([(1 - m) / s for m, s in zip(B.MEAN, B.STD)])
    assert torch.allclose(white[0, :, 0, 0], expected, atol=1e-5)


# --------------------------------------------------------------------------- batches


def labelled(n: int = 103) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images and labels equal to their index, so a batch's labels name its rows."""
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return x, torch.arange(n)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int = 1) -> list[torch.Tensor]:
    """The global batches of indices the training loop draws in one epoch."""
    order = B.epoch_order(n, seed, epoch)
    return [order[s : s + batch_size] for s in B.batch_starts(n, batch_size)]


def test_epoch_order_is_a_permutation_fixed_by_seed_and_epoch():
    order = B.epoch_order(103, seed=0, epoch=1)
    assert sorted(order.tolist()) == list(range(103)) and order.tolist() != list(range(103))
    assert torch.equal(order, B.epoch_order(103, seed=0, epoch=1))
    assert not torch.equal(order, B.epoch_order(103, seed=1, epoch=1))
    assert not torch.equal(order, B.epoch_order(103, seed=0, epoch=2))


def test_batches_cover_every_index_once_with_the_last_partial_batch():
    batches = epoch_batches(103, 10, seed=3)
    assert [len(b) for b in batches] == [10] * 10 + [3]
    assert sorted(torch.cat(batches).tolist()) == list(range(103))


def test_normalize_keeps_channels_last_with_the_same_values():
    x = torch.randint(0, 256, (6, 3, 5, 7), dtype=torch.uint8)
    nchw = B.normalize(x)
    cl = B.normalize(x.contiguous(memory_format=torch.channels_last))
    assert cl.is_contiguous(memory_format=torch.channels_last) and not cl.is_contiguous()
    assert torch.equal(cl, nchw)  # bit for bit: the same two float32 operations per value
    assert torch.equal(nchw, x.to(torch.float32).mul(B._norm_constants(x.device)[0]).add(B._norm_constants(x.device)[1]))


def test_augment_in_channels_last_gives_the_same_crops_in_that_layout():
    x = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8)
    nchw = B.augment(x, torch.Generator().manual_seed(9))
    cl = B.augment(x, torch.Generator().manual_seed(9), channels_last=True)
    assert cl.is_contiguous(memory_format=torch.channels_last) and not cl.is_contiguous()
    assert torch.equal(cl, nchw)


@pytest.mark.parametrize("augment", [False, True])
@pytest.mark.parametrize("world", [1, 3])
def test_load_batch_in_channels_last_equals_the_nchw_batch(augment, world):
    """The channels_last path (crops written in that layout, normalised in place of layout)
    gives every rank the same values as the NCHW path, already in channels_last."""
    x, y = labelled()
    idx, cpu = B.epoch_order(103, seed=0, epoch=1)[:12], torch.device("cpu")
    for rank in range(world):
        gens = [torch.Generator().manual_seed(4) if augment else None for _ in range(2)]
        a, ya = B.load_batch(x, y, idx, device=cpu, augment_with=gens[0], rank=rank, world=world)
        b, yb = B.load_batch(x, y, idx, device=cpu, augment_with=gens[1], rank=rank, world=world,
                             channels_last=True)
        assert b.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(a, b) and torch.equal(ya, yb)


@pytest.mark.parametrize("n,batch_size,world,starts", [
    (101, 10, 1, list(range(0, 100, 10))),  # one image left over: too few for BatchNorm, dropped
    (102, 10, 1, list(range(0, 101, 10))),  # two left over: kept
    (103, 10, 2, list(range(0, 100, 10))),  # three left over cannot give each of 2 ranks two
    (104, 10, 2, list(range(0, 101, 10))),
])
def test_batch_starts_drop_only_a_last_batch_too_small_for_every_rank(n, batch_size, world, starts):
    assert B.batch_starts(n, batch_size, world) == starts


def test_load_batch_gathers_the_rows_and_normalises():
    x, y = labelled()
    idx = torch.tensor([5, 0, 99, 42])
    xb, yb = B.load_batch(x, y, idx, device=torch.device("cpu"))
    assert yb.tolist() == [5, 0, 99, 42]
    assert xb.dtype == torch.float32 and torch.equal(xb, B.normalize(x[idx]))


def test_ranks_share_the_global_batch_interleaved_and_disjoint():
    x, y = labelled()
    idx = B.epoch_order(103, seed=0, epoch=1)[:12]
    whole_x, whole_y = B.load_batch(x, y, idx, device=torch.device("cpu"))
    parts = [B.load_batch(x, y, idx, device=torch.device("cpu"), rank=r, world=3) for r in range(3)]
    assert [len(p[1]) for p in parts] == [4, 4, 4]
    assert sorted(torch.cat([p[1] for p in parts]).tolist()) == sorted(idx.tolist())
    for r, (xb, yb) in enumerate(parts):
        assert torch.equal(yb, whole_y[r::3]) and torch.equal(xb, whole_x[r::3])


def test_augmentation_is_drawn_for_the_global_batch_and_fixed_by_seed():
    x, y = labelled()
    idx = B.epoch_order(103, seed=0, epoch=1)[:8]
    cpu = torch.device("cpu")

    def load(seed, **kw):
        return B.load_batch(x, y, idx, device=cpu, augment_with=B.epoch_generator(seed, 7), **kw)[0]

    whole = load(0)
    assert torch.equal(whole, load(0))
    assert not torch.equal(whole, load(1))
    assert not torch.equal(whole, B.normalize(x[idx]))
    # rank 1 of 2 sees exactly its share of the crops drawn for all 8 images
    assert torch.equal(load(0, rank=1, world=2), whole[1::2])


def test_load_batch_shapes_and_dtypes_and_crop_flip_only_when_augmenting():
    x, y = labelled()
    idx, cpu = B.epoch_order(103, seed=0, epoch=1)[:16], torch.device("cpu")
    plain, yb = B.load_batch(x, y, idx, device=cpu)
    assert plain.shape == (16, 3, 32, 32) and plain.dtype == torch.float32
    assert yb.shape == (16,) and yb.dtype == torch.int64 and torch.equal(yb, idx)
    assert torch.equal(plain, B.normalize(x[idx]))  # no generator: the rows as they are
    aug, yb_aug = B.load_batch(x, y, idx, device=cpu, augment_with=torch.Generator().manual_seed(5))
    assert torch.equal(aug, B.normalize(B.augment(x[idx], torch.Generator().manual_seed(5))))  # crop + flip
    assert torch.equal(yb_aug, yb) and not torch.equal(aug, plain)


def test_an_epoch_over_three_ranks_gives_every_image_to_one_rank_once():
    n, batch_size, world = 120, 12, 3
    x, y = labelled(n)
    order, cpu = B.epoch_order(n, seed=2, epoch=4), torch.device("cpu")
    seen = {r: [] for r in range(world)}
    for s in B.batch_starts(n, batch_size, world):
        for r in range(world):
            seen[r] += B.load_batch(x, y, order[s:s + batch_size], device=cpu, rank=r, world=world)[1].tolist()
    assert [len(v) for v in seen.values()] == [n // world] * world
    assert sorted(sum(seen.values(), [])) == list(range(n))


def test_load_batch_channels_last():
    x, y = labelled()
    xb, _ = B.load_batch(x, y, torch.arange(4), device=torch.device("cpu"), channels_last=True)
    assert xb.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_load_batch_from_a_resident_gpu_set_matches_the_cpu():
    x, y = labelled()
    dev = torch.device("cuda")
    idx = B.epoch_order(103, seed=0, epoch=1)[:16]
    xg, yg = B.load_batch(x.to(dev), y.to(dev), idx, device=dev)
    xc, yc = B.load_batch(x, y, idx, device=torch.device("cpu"))
    assert xg.device.type == "cuda" and torch.equal(yg.cpu(), yc)
    assert torch.allclose(xg.cpu(), xc)


# --------------------------------------------------------------------------- full data


@pytest.mark.slow
def test_full_archive(tmp_path):
    archive = shared_archive()
    if not archive.is_file():
        pytest.skip(f"offline CIFAR-10 archive not found at {archive}")
    t0 = time.perf_counter()
    d = D.load_cifar10(str(archive), cache_dir=tmp_path)
    t1 = time.perf_counter()
    cached = D.load_cifar10(str(archive), cache_dir=tmp_path)
    t2 = time.perf_counter()
    print(f"\nfull CIFAR-10: first decode {t1 - t0:.1f} s, cached load {t2 - t1:.2f} s")
    assert d.x_train.shape == (50000, 3, 32, 32) and d.x_test.shape == (10000, 3, 32, 32)
    assert Counter(d.y_train.tolist()) == {c: 5000 for c in range(10)}
    assert Counter(d.y_test.tolist()) == {c: 1000 for c in range(10)}
    assert_same(d, cached)
