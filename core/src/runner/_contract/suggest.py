"""Did-you-mean suggestions for misspelt keys and names."""

from __future__ import annotations

from collections.abc import Iterable


def close_matches(word: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """Candidates close to ``word``, best first."""
    import difflib  # only needed when something is misspelt

    pool = list(candidates)
    matches = difflib.get_close_matches(word, pool, n=limit, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in pool}
        matches = [lowered[m] for m in difflib.get_close_matches(word.lower(), lowered, n=limit, cutoff=0.6)]
    return matches


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"did you mean 'x'?"`` or ``""`` when nothing is close."""
    matches = close_matches(word, candidates)
    if not matches:
        return ""
    return "did you mean " + " or ".join(repr(m) for m in matches) + "?"
