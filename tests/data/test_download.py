"""Checked, atomic downloads against a local HTTP server; never the internet (download.py)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading

import pytest

from robust.data import cifar, download, gtsrb, idx, load
from robust.data.download import MIRROR_ENV, Remote, fetch
from robust.errors import ConfigError, DataError
from tests.data.formats import gtsrb_contents, write_cifar, write_idx_set, write_zip


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path.endswith("/truncated"):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            return
        if self.path.endswith("/unannounced"):  # no Content-Length: the body ends at close
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"x" * 3000)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """A directory served over HTTP on 127.0.0.1; yields (directory, base URL)."""
    directory = tmp_path / "www"
    directory.mkdir()
    handler = functools.partial(_Handler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield directory, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def dead_url():
    """A URL on a local port where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.bin"


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def test_fetch_lands_file_with_checksum(served, tmp_path):
    www, url = served
    (www / "a.bin").write_bytes(b"payload" * 1000)
    dest = tmp_path / "out" / "a.bin"
    assert fetch(f"{url}/a.bin", dest, _md5(b"payload" * 1000), timeout=5) == dest
    assert dest.read_bytes() == b"payload" * 1000
    assert [p.name for p in dest.parent.iterdir()] == ["a.bin"]
    fetch(f"{url}/a.bin", tmp_path / "b.bin", None, timeout=5)  # md5=None skips the check
    assert (tmp_path / "b.bin").stat().st_size == 7000


def test_checksum_mismatch_leaves_nothing(served, tmp_path):
    www, url = served
    (www / "a.bin").write_bytes(b"tampered")
    dest = tmp_path / "out" / "a.bin"
    with pytest.raises(
        DataError,
        match=rf"download of {url}/a\.bin failed: checksum mismatch for a\.bin, expected MD5 "
        rf"0{{32}} but got {_md5(b'tampered')}; download a\.bin by hand from",
    ):
        fetch(f"{url}/a.bin", dest, "0" * 32, timeout=5)
    assert list(dest.parent.iterdir()) == []


def test_http_error_and_truncation_leave_nothing(served, tmp_path):
    _, url = served
    with pytest.raises(DataError, match=r"missing\.bin failed: HTTP 404 .*; get it from here"):
        fetch(f"{url}/missing.bin", tmp_path / "m.bin", None, timeout=5, hint="get it from here")
    with pytest.raises(DataError, match=r"truncated failed: .*(IncompleteRead|truncated)"):
        fetch(f"{url}/truncated", tmp_path / "t.bin", None, timeout=5)
    assert list(tmp_path.glob("*.bin*")) == [] and list(tmp_path.glob(".*")) == []


def test_download_over_the_cap_leaves_nothing(served, tmp_path, monkeypatch):
    www, url = served
    (www / "a.bin").write_bytes(bytes(2000))
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 1999)
    with pytest.raises(
        DataError,
        match=rf"^download of {url}/a\.bin failed: larger than the cap of 1,999 bytes "
        r"\(robust\.data\.download\.MAX_DOWNLOAD_BYTES\): Content-Length is 2,000; get it$",
    ):
        fetch(f"{url}/a.bin", tmp_path / "a.bin", None, timeout=5, hint="get it")
    with pytest.raises(
        DataError, match=r"unannounced failed: larger than the cap of 1,999 bytes .*: more was"
    ):
        fetch(f"{url}/unannounced", tmp_path / "u.bin", None, timeout=5, hint="get it")
    assert list(tmp_path.iterdir()) == [www]
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 2000)
    assert fetch(f"{url}/a.bin", tmp_path / "a.bin", None, timeout=5).stat().st_size == 2000
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 3000)
    assert fetch(f"{url}/unannounced", tmp_path / "u.bin", None, timeout=5).stat().st_size == 3000


def test_server_down_names_url_and_hint(dead_url, tmp_path):
    with pytest.raises(
        DataError, match=rf"download of {dead_url} failed: .*refused.*; put file\.bin in place"
    ):
        fetch(dead_url, tmp_path / "file.bin", None, timeout=5, hint="put file.bin in place")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param(
            {"url": "ftp://x/y"}, "url must start with one of http, https, file", id="url"
        ),
        pytest.param({"md5": "abc"}, "md5 must be 32 lowercase hex digits", id="md5"),
        pytest.param(
            {"timeout": 0}, "timeout must be positive seconds, but got timeout=0", id="t"
        ),
    ],
)
def test_fetch_checks_arguments(tmp_path, kwargs, match):
    args = {"url": "http://127.0.0.1/x", "dest": tmp_path / "x", "md5": None, **kwargs}
    timeout = args.pop("timeout", 30)
    with pytest.raises(ConfigError, match=match):
        fetch(**args, timeout=timeout)


def test_mirror_env_replaces_base_url(monkeypatch):
    remote = Remote("mnist", "https://example.org/mnist/", page="https://example.org")
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert remote.url("a.gz") == "https://example.org/mnist/a.gz"
    monkeypatch.setenv(MIRROR_ENV, "http://127.0.0.1:9/m/")
    assert remote.url("a.gz") == "http://127.0.0.1:9/m/mnist/a.gz"


def _mirror_mnist(www, monkeypatch):
    write_idx_set(www / "mnist")
    for f in idx.FILES:
        monkeypatch.setitem(idx.REMOTES["mnist"].md5, f, _md5((www / "mnist" / f).read_bytes()))


def test_load_downloads_missing_files_then_loads(served, tmp_path, monkeypatch):
    www, url = served
    _mirror_mnist(www, monkeypatch)
    monkeypatch.setenv(MIRROR_ENV, url)
    ds = load("mnist", tmp_path / "data", download=True)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (90, 10, 30)
    assert sorted(p.name for p in (tmp_path / "data" / "mnist").iterdir()) == sorted(idx.FILES)


def test_load_with_bad_checksum_keeps_no_file(served, tmp_path, monkeypatch):
    www, url = served
    _mirror_mnist(www, monkeypatch)
    monkeypatch.setitem(idx.REMOTES["mnist"].md5, idx.FILES[0], "f" * 32)
    monkeypatch.setenv(MIRROR_ENV, url)
    with pytest.raises(
        DataError,
        match=r"checksum mismatch for train-images-idx3-ubyte\.gz, expected MD5 f{32} but got "
        r"[0-9a-f]{32}; mnist needs train-images-idx3-ubyte\.gz, .* download them by hand from "
        r"https://ossci-datasets",
    ):
        load("mnist", tmp_path / "data", download=True)
    assert list((tmp_path / "data" / "mnist").iterdir()) == []


def test_load_with_server_down_names_files_and_url(dead_url, tmp_path, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, dead_url.rsplit("/", 1)[0])
    with pytest.raises(
        DataError,
        match=r"download of http://127\.0\.0\.1:\d+/fashion/train-images-idx3-ubyte\.gz failed: "
        r".*refused.*; fashion needs train-images-idx3-ubyte\.gz, train-labels-idx1-ubyte\.gz, "
        r".* by hand from https://github\.com/zalandoresearch/fashion-mnist",
    ):
        load("fashion", tmp_path, download=True)
    assert list((tmp_path / "fashion").iterdir()) == []


def test_cifar_downloads_binary_archive(served, tmp_path, monkeypatch):
    www, url = served
    write_cifar(www / "cifar10", "bin", archive=True)
    data = (www / "cifar10" / cifar.BIN_ARCHIVE).read_bytes()
    monkeypatch.setitem(cifar.REMOTE.md5, cifar.BIN_ARCHIVE, _md5(data))
    monkeypatch.setenv(MIRROR_ENV, url)
    ds = load("cifar10", tmp_path, download=True)
    assert len(ds.test) == 20 and (tmp_path / "cifar10" / cifar.BIN_DIR).is_dir()


def test_gtsrb_downloads_training_zip(served, tmp_path, monkeypatch):
    www, url = served
    write_zip(www / "gtsrb" / gtsrb.ARCHIVE, gtsrb_contents(per_class=10))
    data = (www / "gtsrb" / gtsrb.ARCHIVE).read_bytes()
    monkeypatch.setitem(gtsrb.REMOTE.md5, gtsrb.ARCHIVE, _md5(data))
    monkeypatch.setenv(MIRROR_ENV, url)
    ds = load("gtsrb", tmp_path, size=8, download=True)
    assert len(ds.train) == 344 and (tmp_path / "gtsrb" / gtsrb.ARCHIVE).read_bytes() == data
