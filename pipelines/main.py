"""The whole study on one dataset as one parent run, each stage a child run.

For now the study is the ``train`` stage; later stages (attacks, metrics, retraining,
evaluation, report) join as they are built. An identical FINISHED stage is reused, not rerun,
and the parent records each stage's run id as tag ``robust.child.<stage>``.
Params: those of ``train`` (same names). Metrics: the stage run's ``time/*``, ``energy/*``.
"""

from __future__ import annotations

import logging

from pipelines import _cli, train
from robust import tracking

log = logging.getLogger("robust")


def main(p: train.Params) -> str:
    """Run the study; return the parent run id."""
    with tracking.stage(
        "main", _cli.as_dict(p), dataset=p.dataset, force=True, quiet=p.quiet
    ) as run:
        with run.phase("train"):
            train_id = train.main(train.Params(**_cli.as_dict(p)))
        run.set_tags({"robust.child.train": train_id})
        log.info("study on %s done: train run %s", p.dataset, train_id)
        return run.run_id


if __name__ == "__main__":
    _cli.entry(main, train.Params)
