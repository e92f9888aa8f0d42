"""``python -m analysis``: see :mod:`analysis.cli`."""

import sys

try:
    from analysis.cli import main
except ModuleNotFoundError as exc:  # run from a checkout without installing the package
    sys.exit(f"error: the package's dependency '{(exc.name or '?').split('.')[0]}' is not "
             "installed. Install the "
             "project first: python -m pip install -e .  (from the project's folder; add "
             "\".[dev]\" for the tests)")

sys.exit(main())
