"""Chunks on a dask.distributed LocalCluster (loopback, two worker processes) give the local result."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import MODELS
from test_ensemble import _assert_same

distributed = pytest.importorskip("dask.distributed")


def test_local_cluster_gives_bit_identical_results():
    from sdloop.experiments.ensemble import run_ensemble
    from sdloop.experiments.uncertainty import load_uncertainty
    from sdloop.report.ensemble_report import design_for
    from test_ensemble import study_of

    study = study_of(cases="ic", strategies="no_policy,simultaneous,lifecycle_phased",
                     scenarios="baseline,export_controls")
    design = design_for(study)
    space = load_uncertainty(MODELS / "uncertainty.toml").checked(study.sim.resolve)
    local = run_ensemble(design, space, 48, seed=21, chunk_size=16, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        remote = run_ensemble(design, space, 48, seed=21, chunk_size=16, scheduler=cluster.scheduler_address,
                              progress=False)
    _assert_same(local, remote)
    assert remote.runs == 48 * 2 * 3 and np.all(remote.parts[("ic", "baseline")]["nonfinite"] == 0)
