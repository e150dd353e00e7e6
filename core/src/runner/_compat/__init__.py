"""Workarounds for third-party packages that the bundled plugins share (private).

Each module makes one library usable where its release is broken in a known way; the
public entry points are re-exported from :mod:`runner`.
"""
