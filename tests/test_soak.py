"""Soak: many rounds with hundreds of simulated users on Flower's simulation engine; memory stays
bounded and every user is counted in every round (ok + failed = users), faults included."""

import psutil
import pytest

from ldp_rec.experiments.fl import run_flower
from ldp_rec.fl.config import FLConfig


@pytest.mark.slow
def test_soak_many_rounds_hundreds_of_users():
    users, rounds = 300, 15
    cfg = FLConfig(dataset="digits", partition="iid", clients=users, nodes=3, rounds=rounds, mode="ldp-rec",
                   bits=6, fault="corrupt:7,corrupt:150")
    proc = psutil.Process()
    rss = []
    rows, _ = run_flower(cfg, progress=lambda row: rss.append(proc.memory_info().rss))
    assert [r["round"] for r in rows] == list(range(1, rounds + 1))
    for r in rows:
        assert r["clients_ok"] + r["clients_failed"] == users
        assert r["clients_failed"] == 2 and r["nodes_replied"] == 3
    growth = (max(rss[3:]) - rss[3]) / 2**20
    assert growth < 150, f"server RSS grew by {growth:.0f} MiB over {rounds} rounds"
    assert rows[-1]["accuracy"] > rows[0]["accuracy"]
