"""The optional C half of ``rerun_logging.capture`` (everything else is in pyproject.toml).

``optional=True``: where it cannot be compiled (no compiler, no Python headers) the
package installs without it, and ``capture`` runs the same steps in Python, as
websockets does with its ``speedups``. ``RERUN_LOGGING_NO_SPEEDUPS=1`` at run time
leaves a built one unused.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("rerun_logging._speedups", sources=["rerun_logging/_speedups.c", "rerun_logging/_arrow.c"], optional=True),
    ],
)
