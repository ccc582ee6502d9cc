"""The runners behind the ``ldp-rec`` subcommands (``ldp_rec.cli``) and their result files.

* :mod:`.fl` (``ldp-rec fl``), :mod:`.demo` (``ldp-rec demo``), :mod:`.dme` (``ldp-rec dme``;
  :func:`run_dme` from Python), :mod:`.mechanisms_table`, :mod:`.bench`, :mod:`.audit`,
  :mod:`.report`;
* :mod:`.runconfig` and :mod:`.sweep` — ``--config`` files, grids and seed lists, one driver for
  ``fl`` and ``dme``; :mod:`.sweep_summary` — mean ± t-interval across seeds;
* :mod:`.results` — :func:`write_result`: strict JSON with config, versions, commit and coin source,
  CSV beside every table;
* :mod:`.runlog`, :mod:`.interrupt` — quiet Flower/Ray logs and the Ctrl-C handler.
"""

from .._lazy import lazy_api

_PUBLIC = {"run_dme": ".dme", "write_result": ".results"}
__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_api(__name__, _PUBLIC)
