"""Ofsted contact, referral and assessment inspection letters: fetch, archive, parse, load."""

__all__ = ["__version__"]
__version__ = "0.1.0"
