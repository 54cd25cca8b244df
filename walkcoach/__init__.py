"""walkcoach: one import name for the belt's firmware, its hardware layer and its simulator.

The three source folders are installed under this package (pyproject's ``package-dir``):
``walkcoach.device`` (``device/``: core, offline, shell, config, cli), ``walkcoach.hal``
(``hal/``) and ``walkcoach.sim`` (``sim/``), so site-packages holds no generic top-level
``device``, ``hal`` or ``sim`` of ours. ``python -m walkcoach`` is the ``walkcoach`` command.
"""

__version__ = "0.1.0"
