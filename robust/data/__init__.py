"""Datasets: a registry of loaders (digits, mnist, fashion, cifar10, gtsrb, intel) and splits.

``load(name, root=None, seed=0)`` returns a ``Dataset`` with seeded ``train``/``val``/``test``
``Split``s of (N, C, H, W) float32 images in [0, 1] and int64 labels. ``digits`` is bundled with
scikit-learn; the others read their standard published files from ``<root>/<name>/``
(``expected_files(name)`` lists them) and download them with a checksum where a public URL
exists. See ``robust.data.registry`` for splits and the ``guided_retraining`` preset.
``fingerprint(name, root=None)`` digests the files a loader reads (for reuse keys) and
``resolve_root(root=None)`` gives the absolute data directory.

Example:
    >>> from robust.data import load
    >>> ds = load("digits")
    >>> len(ds.train), len(ds.val), len(ds.test)
    (1078, 359, 360)
"""

from robust.data._fingerprint import fingerprint
from robust.data.dataset import Dataset, Split
from robust.data.registry import DATASETS, expected_files, load, resolve_root

__all__ = ["DATASETS", "Dataset", "Split", "expected_files", "fingerprint", "load", "resolve_root"]
