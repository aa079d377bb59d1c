"""Build hook for the optional native fan-out (media/_fastpath.c); metadata is in pyproject.

``optional=True``: when the C extension cannot be built (no compiler, no Python headers, not
Linux), setuptools only warns and the install succeeds; Salon then uses the Python fan-out
(media/batch.py), which produces the same bytes.
"""

import sys

from setuptools import Extension, setup

native = sys.platform.startswith("linux")  # sendmmsg(2) is Linux-only
setup(
    ext_modules=[
        Extension(
            "media._fastpath",
            sources=["media/_fastpath.c"],
            extra_compile_args=["-O2", "-std=c99", "-D_GNU_SOURCE"],
            optional=True,
        )
    ]
    if native
    else [],
)
