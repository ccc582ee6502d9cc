"""Federated learning: the client's work, the one server round, and thin Flower glue.

Public API (Flower is imported only by the Flower modules, on first use):

* :class:`FLConfig` — every setting of a run (``ldp-rec fl`` options, ``[tool.flwr.app.config]`` keys);
* :class:`FLData`, :func:`load_data`, :func:`make_fl_model` — data (built-in or ``package.module:loader``)
  and model (built-in or ``package.module:factory``);
* :func:`client_round` — a node's round for its cohort of users: local training, clipping, the
  mechanism and one cohort frame (wire v2), with private coins from :func:`private_coins`;
  :func:`round_codec` — the codec both ends build from a config;
* :class:`FederationServer`, :class:`Reply`, :func:`run_in_process` — the server's round (plan, decode,
  aggregate, per-user ledger, checkpoint/resume), driven by the Flower strategy or in process;
* :class:`NodePolicy` — what a node agrees to do, whatever the server asks;
* Flower apps: :mod:`.client_app`, :mod:`.server_app`, :mod:`.strategy` (thin glue).
"""

from .._lazy import lazy_api

_PUBLIC = {
    "FLConfig": ".config", "FLData": ".federation", "load_data": ".federation", "make_fl_model": ".federation",
    "client_round": ".federation", "round_codec": ".federation", "private_coins": ".federation",
    "FederationServer": ".server", "Reply": ".server", "run_in_process": ".server", "NodePolicy": ".policy",
}
__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_api(__name__, _PUBLIC)
