"""GTSRB, the German Traffic Sign Recognition Benchmark: official training images, 43 classes.

Source: Stallkamp, Schlipsing, Salmen, Igel (2012), "Man vs. computer: Benchmarking machine
learning algorithms for traffic sign recognition", Neural Networks 32:323-332,
https://benchmark.ini.rub.de/gtsrb_dataset.html. ``download=True`` fetches
``GTSRB_Final_Training_Images.zip`` from
https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/ and checks MD5
f33fd80ac59bff73c82d25ab499e03a3. That digest was not computed here (no network); it is the one
six independent public code bases give for this file. (torchvision's ``gtsrb.py`` uses a
different archive, ``GTSRB-Training_fixed.zip``.)

Layout: ``GTSRB/Final_Training/Images/000NN/`` for NN = 00..42, each with ``GT-000NN.csv``
(semicolon-separated ``Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId``) and the
``.ppm`` images it lists. The extracted folder or the zip (read in place) are accepted. Images
vary in size (15..250 px), so they are resized to ``size × size`` (default 48) with Pillow's
bilinear filter; the whole image is kept (the ROI columns are ignored, as in the seed). Decoded
arrays are cached (see ``cache``). Zip members are read with a size cap, ``MAX_MEMBER_BYTES``
(see ``archive``).

Differences from the seed code: the seed split the same training images ≈80/10/10 into folders
(unseeded, after converting .ppm to lossy .jpg) and read them with ``cv2.imread(path, 0)`` and
``cv2.resize`` (no antialiasing); here the split is seeded and stratified 80/10/10 and the
images are decoded from the original .ppm files.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from robust.data import cache
from robust.data.archive import read_capped
from robust.data.download import Remote, fetch
from robust.data.images import decode_all
from robust.data.raw import Raw
from robust.errors import DataError

N_CLASSES = 43
CLASSES = tuple(str(i) for i in range(N_CLASSES))
ARCHIVE = "GTSRB_Final_Training_Images.zip"
IMAGES = "GTSRB/Final_Training/Images"
EXPECTED = (ARCHIVE, f"{IMAGES}/")
COLUMNS = ("Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId")
REMOTE = Remote(
    "gtsrb",
    "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/",
    page="https://benchmark.ini.rub.de/gtsrb_dataset.html",
    md5={ARCHIVE: "f33fd80ac59bff73c82d25ab499e03a3"},
)
# The largest real member is a 250x250 ppm (187,515 bytes; the biggest GT csv is ~80 KB), so
# 1 MiB refuses none with a 5x margin. decode_all holds up to 1,024 encoded images at once, so
# this also bounds that to 1 GiB. The cap is per member: the whole zip (~270 MB compressed) is
# read one member at a time, never at once.
MAX_MEMBER_BYTES = 1 << 20
_ARCHIVE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error)


def load_raw(directory: Path, download: bool, size: int, gray: bool) -> Raw:
    """Load the GTSRB training images from ``directory`` (folder or zip), decoded and cached.

    Args:
        directory: ``<root>/gtsrb``.
        download: fetch the zip when neither the folder nor the zip is present.
        size: output height and width.
        gray: convert to one luma channel.

    Returns:
        A Raw with every image in ``x`` (no official test labels in this archive) and
        ``test_x`` None.
    """
    folder, archive = directory / IMAGES, directory / ARCHIVE
    if not folder.is_dir() and not archive.is_file():
        if not download:
            raise DataError(
                f"gtsrb files not found in {directory}: expected {ARCHIVE} or its extracted "
                f"folder {IMAGES}/00000..00042/; download it from {REMOTE.url(ARCHIVE)} "
                f"(see {REMOTE.page}) or pass download=True with network access"
            )
        hint = (
            f"gtsrb needs {ARCHIVE} (or its extracted {IMAGES}/ folder) in {directory}; "
            f"download it by hand from {REMOTE.base_url + ARCHIVE} (see {REMOTE.page})"
        )
        fetch(REMOTE.url(ARCHIVE), archive, REMOTE.md5[ARCHIVE], hint=hint)
    if folder.is_dir():
        files = [p for p in folder.rglob("*") if p.is_file()]
        return _load(directory, cache.signature(files, directory), size, gray, _FolderTree(folder))
    try:
        with zipfile.ZipFile(archive) as zf:
            sig = cache.signature([archive], directory)
            return _load(directory, sig, size, gray, _ZipTree(zf, archive))
    except _ARCHIVE_ERRORS as e:
        raise DataError(f"cannot read {archive}: {e} (is the download complete?)") from e


class _FolderTree:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def where(self, rel: str) -> str:
        return str(self.folder / rel)

    def reader(self, rel: str) -> Callable[[], bytes] | None:
        path = self.folder / rel
        return (lambda: _read_file(path)) if path.is_file() else None


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}") from e


class _ZipTree:
    def __init__(self, zf: zipfile.ZipFile, archive: Path) -> None:
        self.zf, self.archive = zf, archive
        self.names = set(zf.namelist())

    def where(self, rel: str) -> str:
        return f"{self.archive}:{IMAGES}/{rel}"

    def reader(self, rel: str) -> Callable[[], bytes] | None:
        name = f"{IMAGES}/{rel}"
        return (lambda: self._read(name)) if name in self.names else None

    def _read(self, name: str) -> bytes:
        info = self.zf.getinfo(name)
        with self.zf.open(info) as f:
            return read_capped(
                f,
                archive=self.archive,
                member=name,
                cap=MAX_MEMBER_BYTES,
                cap_name="robust.data.gtsrb.MAX_MEMBER_BYTES",
                declared=info.file_size,
            )


def _load(directory: Path, sig: str, size: int, gray: bool, tree: _FolderTree | _ZipTree) -> Raw:
    path = cache.cache_path(directory, size, gray)
    cached = cache.read(path, sig)
    if cached is not None:
        return Raw(cached["x"], cached["y"], None, None, CLASSES)
    items: list[tuple[str, Callable[[], bytes]]] = []
    labels: list[int] = []
    for class_id in range(N_CLASSES):
        for filename in _read_gt(tree, class_id):
            rel = f"{class_id:05d}/{filename}"
            read = tree.reader(rel)
            if read is None:
                raise DataError(
                    f"{tree.where(f'{class_id:05d}/GT-{class_id:05d}.csv')} lists {filename} "
                    f"but {tree.where(rel)} is missing"
                )
            items.append((tree.where(rel), read))
            labels.append(class_id)
    x = decode_all(items, size, gray, desc="gtsrb")
    y = np.asarray(labels, dtype=np.int64)
    cache.write(path, {"x": x, "y": y}, sig)
    return Raw(x, y, None, None, CLASSES)


def _read_gt(tree: _FolderTree | _ZipTree, class_id: int) -> list[str]:
    """The image file names listed in class ``class_id``'s ground-truth csv."""
    rel = f"{class_id:05d}/GT-{class_id:05d}.csv"
    where = tree.where(rel)
    read = tree.reader(rel)
    if read is None:
        raise DataError(
            f"{where} not found: GTSRB needs {IMAGES}/000NN/GT-000NN.csv for all "
            f"{N_CLASSES} classes; the archive or its extraction is incomplete"
        )
    try:
        text = read().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{where} is not a text csv file: {e}") from e
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=";") if r]
    if not rows or tuple(c.strip() for c in rows[0]) != COLUMNS:
        got = ";".join(rows[0]) if rows else "an empty file"
        raise DataError(f"{where} must start with the header {';'.join(COLUMNS)}, but has {got}")
    names = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(COLUMNS):
            raise DataError(
                f"{where} line {line} has {len(row)} fields, expected {len(COLUMNS)}: {row}"
            )
        filename, label = row[0].strip(), row[-1].strip()
        if not filename or "/" in filename or "\\" in filename or filename.startswith("."):
            raise DataError(f"{where} line {line} has an invalid Filename {filename!r}")
        if label != str(class_id) and not (label.isdigit() and int(label) == class_id):
            raise DataError(
                f"{where} line {line} has ClassId {label!r}, expected {class_id} (its folder)"
            )
        names.append(filename)
    return names
