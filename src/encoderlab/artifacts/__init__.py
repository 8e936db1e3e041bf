"""Saved models: what a directory holds, how to load it, and what it can do (encode / predict / score)."""
