"""Honk: a self-hosted GitHub App that turns a label or `/honk` into a verified pull request."""

__version__ = "0.1.0"
