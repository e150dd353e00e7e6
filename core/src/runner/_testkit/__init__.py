"""Implementation of test helpers that ``runner.testing`` exports."""
