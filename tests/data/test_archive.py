"""Size caps on archive members: decompression bombs are refused, real files load (archive.py).

Each loader's cap is patched small where a test needs it; the tiny real-format files then sit on
both sides of it.
"""

from __future__ import annotations

import gzip
import io
import logging
import tarfile
import zipfile

import numpy as np
import pytest

from robust.data import cache, cifar, gtsrb, idx, load
from robust.data.archive import read_capped
from robust.errors import DataError
from tests.data.formats import gtsrb_contents, write_cifar, write_idx_set, write_tar, write_zip

ZEROS = 4 << 20  # a bomb's uncompressed size: 4 MiB of zeros, a few KB compressed


def _one_line(excinfo: pytest.ExceptionInfo) -> None:
    assert "\n" not in str(excinfo.value)


# --- read_capped -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 9, 10])
def test_read_capped_accepts_up_to_the_cap(size):
    data = bytes(range(size))
    assert read_capped(io.BytesIO(data), archive="a.zip", member="m", cap=10, cap_name="C") == data
    got = read_capped(
        io.BytesIO(data), archive="a.zip", member="m", cap=10, cap_name="C", declared=10
    )
    assert got == data


def test_read_capped_refuses_more_actual_bytes():
    with pytest.raises(
        DataError,
        match=r"^a\.gz member 'm' decompresses to more, over the cap of 10 bytes \(C\); "
        r"refusing to read it: the file is corrupt or a decompression bomb$",
    ):
        read_capped(io.BytesIO(bytes(11)), archive="a.gz", member="m", cap=10, cap_name="C")


def test_read_capped_refuses_a_larger_declared_size_before_reading():
    f = io.BytesIO(bytes(5))
    with pytest.raises(
        DataError, match=r"^a\.zip member 'm' declares 1,000 bytes, over the cap of 10 bytes \(C\)"
    ) as excinfo:
        read_capped(f, archive="a.zip", member="m", cap=10, cap_name="C", declared=1000)
    assert f.tell() == 0
    _one_line(excinfo)


def test_member_names_cannot_break_the_line():
    with pytest.raises(DataError, match=r"member 'a\\nb'") as excinfo:
        read_capped(io.BytesIO(bytes(2)), archive="z", member="a\nb", cap=1, cap_name="C")
    _one_line(excinfo)


def test_caps_are_above_the_largest_real_files():
    assert cifar.MAX_MEMBER_BYTES >= 2 * 31_035_704  # python data_batch_1, the largest
    assert gtsrb.MAX_MEMBER_BYTES >= 2 * (15 + 250 * 250 * 3)  # a 250×250 ppm
    assert idx.MAX_MEMBER_BYTES >= 2 * (16 + 60_000 * 28 * 28)  # train-images


# --- cifar10: tar members --------------------------------------------------------------------


def test_cifar_member_over_the_cap_is_refused(tmp_path, monkeypatch):
    write_cifar(tmp_path / "cifar10", "bin", archive=True)
    batch = 20 * (1 + 3072)  # 61,460 bytes: every tiny batch has 20 records
    monkeypatch.setattr(cifar, "MAX_MEMBER_BYTES", batch - 1)
    with pytest.raises(
        DataError,
        match=r"cifar-10-binary\.tar\.gz member 'cifar-10-batches-bin/data_batch_1\.bin' "
        r"declares 61,460 bytes, over the cap of 61,459 bytes "
        r"\(robust\.data\.cifar\.MAX_MEMBER_BYTES\); refusing",
    ) as excinfo:
        load("cifar10", tmp_path, download=False)
    _one_line(excinfo)
    assert not (tmp_path / "cifar10" / cifar.BIN_DIR).exists()  # nothing extracted, no folder
    monkeypatch.setattr(cifar, "MAX_MEMBER_BYTES", batch)
    assert len(load("cifar10", tmp_path, download=False).test) == 20


def test_cifar_bomb_in_an_unrelated_member_is_refused_before_decompressing(tmp_path):
    """A 4 MiB-of-zeros member anywhere in the archive stops the scan at its header."""
    contents = {f"{cifar.BIN_DIR}/readme.html": bytes(ZEROS)}
    (tmp_path / "cifar10").mkdir()
    write_tar(tmp_path / "cifar10" / cifar.BIN_ARCHIVE, contents)
    assert (tmp_path / "cifar10" / cifar.BIN_ARCHIVE).stat().st_size < 100_000
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cifar, "MAX_MEMBER_BYTES", 1 << 20)
        with pytest.raises(
            DataError,
            match=r"member 'cifar-10-batches-bin/readme\.html' declares 4,194,304 bytes, over "
            r"the cap of 1,048,576 bytes",
        ):
            load("cifar10", tmp_path, download=False)


def test_cifar_archive_with_too_many_entries_is_refused(tmp_path, monkeypatch):
    write_cifar(tmp_path / "cifar10", "py", archive=True)  # exactly the 6 batches
    monkeypatch.setattr(cifar, "MAX_MEMBERS", 5)
    with pytest.raises(
        DataError,
        match=r"cifar-10-python\.tar\.gz has more than 5 entries "
        r"\(robust\.data\.cifar\.MAX_MEMBERS\), the CIFAR-10 archive has 9; refusing",
    ):
        load("cifar10", tmp_path, download=False)
    monkeypatch.setattr(cifar, "MAX_MEMBERS", 6)
    assert len(load("cifar10", tmp_path, download=False).test) == 20


def test_cifar_member_header_cannot_hide_its_size(tmp_path):
    """A tar member cannot yield more than its header declares: tarfile stops there."""
    path = tmp_path / "cifar10" / cifar.BIN_ARCHIVE
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(f"{cifar.BIN_DIR}/data_batch_1.bin")
        info.size = 10
        tar.addfile(info, io.BytesIO(bytes(ZEROS)))  # only 10 bytes are written
    with pytest.raises(DataError, match=r"has no member cifar-10-batches-bin/data_batch_2\.bin"):
        load("cifar10", tmp_path, download=False)


# --- gtsrb: zip members ----------------------------------------------------------------------


def _write_deflated(path, contents):
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in contents.items():
            zf.writestr(name, data)


def test_gtsrb_zip_bomb_is_refused(tmp_path):
    contents = gtsrb_contents(per_class=1)
    bomb = f"{gtsrb.IMAGES}/00005/00000_00000.ppm"
    contents[bomb] = bytes(ZEROS)
    _write_deflated(tmp_path / "gtsrb" / gtsrb.ARCHIVE, contents)
    with pytest.raises(
        DataError,
        match=rf"GTSRB_Final_Training_Images\.zip member '{bomb}' declares 4,194,304 bytes, "
        r"over the cap of 1,048,576 bytes \(robust\.data\.gtsrb\.MAX_MEMBER_BYTES\); refusing",
    ) as excinfo:
        load("gtsrb", tmp_path, download=False)
    _one_line(excinfo)


def test_gtsrb_cap_is_exact(tmp_path, monkeypatch):
    contents = gtsrb_contents(per_class=2)
    write_zip(tmp_path / "gtsrb" / gtsrb.ARCHIVE, contents)
    largest = max(len(v) for v in contents.values())
    monkeypatch.setattr(gtsrb, "MAX_MEMBER_BYTES", largest - 1)
    with pytest.raises(DataError, match=rf"declares {largest:,} bytes, over the cap of"):
        gtsrb.load_raw(tmp_path / "gtsrb", False, 8, False)
    monkeypatch.setattr(gtsrb, "MAX_MEMBER_BYTES", largest)
    assert gtsrb.load_raw(tmp_path / "gtsrb", False, 8, False).x.shape == (86, 3, 8, 8)


# --- mnist / fashion: .gz streams ------------------------------------------------------------


def test_idx_gzip_bomb_is_refused(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "mnist", n_train=10, n_test=10, side=4)
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(bytes(ZEROS)))
    monkeypatch.setattr(idx, "MAX_MEMBER_BYTES", 1 << 20)
    with pytest.raises(
        DataError,
        match=r"t10k-images-idx3-ubyte\.gz member 't10k-images-idx3-ubyte' decompresses to more, "
        r"over the cap of 1,048,576 bytes \(robust\.data\.idx\.MAX_MEMBER_BYTES\); refusing",
    ) as excinfo:
        load("mnist", tmp_path, download=False)
    _one_line(excinfo)


def test_idx_cap_is_exact(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "fashion", n_train=30, n_test=10, side=4)
    largest = 16 + 30 * 4 * 4  # train-images
    monkeypatch.setattr(idx, "MAX_MEMBER_BYTES", largest - 1)
    with pytest.raises(DataError, match="train-images-idx3-ubyte' decompresses to more"):
        idx.load_raw("fashion", tmp_path / "fashion", False)
    monkeypatch.setattr(idx, "MAX_MEMBER_BYTES", largest)
    assert idx.load_raw("fashion", tmp_path / "fashion", False).x.shape == (30, 1, 4, 4)


def test_uncompressed_idx_files_need_no_cap(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "mnist", n_train=10, n_test=10, side=4, gz=False)
    monkeypatch.setattr(idx, "MAX_MEMBER_BYTES", 1)
    assert idx.load_raw("mnist", tmp_path / "mnist", False).x.shape == (10, 1, 4, 4)


# --- the decoded-image cache: never decompressed ---------------------------------------------


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array)
    return buf.getvalue()


def test_compressed_cache_is_ignored(tmp_path, caplog):
    path = tmp_path / "cache-8-rgb.npz"
    np.savez_compressed(path, x=np.zeros(ZEROS, np.uint8), __signature__=np.array("s"))
    with caplog.at_level(logging.WARNING):
        assert cache.read(path, "s") is None
    assert "member 'x.npy' is compressed; a cache never is" in caplog.text
    assert "it will be rebuilt" in caplog.text


def test_cache_array_header_larger_than_its_data_is_ignored(tmp_path, caplog):
    """A stored npy whose header claims 10**12 bytes must not make numpy allocate them."""
    path = tmp_path / "cache-8-rgb.npz"
    member = _npy(np.zeros(4, np.uint8)).replace(b"(4,)", b"(1000000000000,)", 1)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x.npy", member)
        zf.writestr("__signature__.npy", _npy(np.array("s")))
    with caplog.at_level(logging.WARNING):
        assert cache.read(path, "s") is None
    assert "member 'x.npy' declares an array of 1,000,000,000,000 bytes, over the cap" in (
        caplog.text
    )


def test_valid_cache_is_read(tmp_path):
    path = tmp_path / "cache-8-rgb.npz"
    cache.write(path, {"x": np.arange(6, dtype=np.uint8)}, "s")
    got = cache.read(path, "s")
    assert got is not None and np.array_equal(got["x"], np.arange(6))
