"""Operational tooling around the library, not part of the numerics.

* :mod:`.proctree` — process-tree bookkeeping on psutil (start, record and stop every process a
  deployment spawns);
* :mod:`.deploy` — orchestration of a loopback Flower deployment (SuperLink, SuperNodes,
  ``flwr run``) used by ``simulations/deploy_loopback.py`` and the deployment test;
* :mod:`.flower_poll` — the polling-interval patch of Flower's in-process simulation engine.

Import the submodules explicitly; none is imported by ``ldp_rec`` itself, so the library works
without them being loaded.
"""
