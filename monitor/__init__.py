"""ctmonitor: follow CAR T, CAAR T, CAR-Treg and T-cell-engager trials in autoimmune disease on
ClinicalTrials.gov, keep every change, and tell people about it."""

__version__ = "0.1.0"
