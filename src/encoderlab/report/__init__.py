"""Plots and run reports (PNG files written with matplotlib's Agg backend)."""
