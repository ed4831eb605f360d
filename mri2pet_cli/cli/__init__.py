"""The ``mri2pet`` command line: one module per command group; each parses, calls the library, prints.

``app`` (in ``app.py``) holds the shared options and the error handling; importing a command module
registers its commands, in the order ``mri2pet --help`` lists them.
"""

from mri2pet_cli.cli import simulate, preprocess, merge, models, train, synthesize, adapt, calibrate, evaluate  # noqa: F401, I001
from mri2pet_cli.cli.app import app

__all__ = ["app"]
