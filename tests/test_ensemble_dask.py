"""Chunks on a dask.distributed LocalCluster (loopback, two worker processes) give the local result."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import MODELS
from test_ensemble import _assert_same

distributed = pytest.importorskip("dask.distributed")


def test_local_cluster_gives_bit_identical_results():
    from sdloop.experiments.ensemble import design_from_experiment, run_ensemble
    from sdloop.report.sector_report import load_experiment
    from sdloop.experiments.uncertainty import load_uncertainty

    experiment = load_experiment(MODELS, cases="ic", strategies="no_policy,simultaneous,lifecycle_phased",
                                 scenarios="baseline,export_controls")
    design = design_from_experiment(experiment)
    space = load_uncertainty(MODELS / "uncertainty.toml")
    local = run_ensemble(design, space, 48, seed=21, chunk_size=16, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        remote = run_ensemble(design, space, 48, seed=21, chunk_size=16, scheduler=cluster.scheduler_address,
                              progress=False)
    _assert_same(local, remote)
    assert remote.runs == 48 * 2 * 3 and np.all(remote.parts[("ic", "baseline")]["nonfinite"] == 0)
