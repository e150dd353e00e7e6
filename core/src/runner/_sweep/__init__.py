"""``runner sweep``: one search over many runs of a recipe.

The core owns what every search needs: the plan (axes from ``[sweep]`` and ``-o
key=choice(...)``), the sweep directory with its trial ledger (so a killed sweep resumes
without rerunning finished trials), running each trial as a normal ``runner run`` with
bounded parallelism, and reading the trial's validation metric as it is logged, so a
sweeper can prune. Sweepers (``register_sweepers``) only decide which trials to run:
``grid`` and ``random`` here, Optuna in runner-optuna, Ray Tune in runner-ray.
"""
