"""Kept for users of the original toolkit who run `python setup.py develop`; pyproject.toml holds the metadata."""
from setuptools import setup

setup()
