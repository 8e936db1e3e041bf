"""Metrics beyond training losses: anomaly scores (AUROC, AP, thresholds), ..."""
