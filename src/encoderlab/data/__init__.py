"""Reading user data and the datasets that ship inside packages."""

from .text_input import read_texts

__all__ = ["read_texts"]
