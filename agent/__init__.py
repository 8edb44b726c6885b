"""Hoshino's tunnel agent: IPv6 packets through an S3 bucket."""

__version__ = "0.1.0"
