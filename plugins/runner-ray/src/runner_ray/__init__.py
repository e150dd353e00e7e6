"""runner-ray: run ``[[process]]`` shards as Ray tasks and train recipes with Ray Train.

Importing this package (and its entry module :mod:`runner_ray.plugin`) imports neither
Ray nor torch; :mod:`runner_ray.executor` and :mod:`runner_ray.backend` import Ray when a
recipe uses them.
"""

from runner_ray._version import __version__

__all__ = ["__version__"]
