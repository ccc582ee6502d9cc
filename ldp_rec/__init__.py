"""ldp-rec: federated learning under local differential privacy with relative entropy coding.

Subpackages
-----------
- :mod:`ldp_rec.mechanisms`: ε-LDP randomisers with density ratios against public references.
- :mod:`ldp_rec.rec`: channel simulators (REC) on shared, randomly accessible randomness.
- :mod:`ldp_rec.coding`: index models and coders, bit packing.
- :mod:`ldp_rec.privacy`: privacy events of transcripts, composition, audits.
- :mod:`ldp_rec.fl`, :mod:`ldp_rec.data`, :mod:`ldp_rec.experiments`: the simulator and its experiments.
"""

__version__ = "0.1.0"
