"""The package's version, in a module of its own at the bottom of the imports.

Modules that name the version (the stream header, error messages) import it from
here rather than from the package top, so no import runs back up the layers.
"""

__version__ = "0.1.0"
