"""Data plumbing the engine needs for exact, resumable iteration."""
