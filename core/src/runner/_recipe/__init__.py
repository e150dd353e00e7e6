"""Reading, validating and rendering recipes."""
