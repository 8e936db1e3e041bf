"""Compression and deployment: each with a parity or accuracy check."""
