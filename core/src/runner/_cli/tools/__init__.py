"""Private: not part of runner's public API (import from ``runner``)."""
