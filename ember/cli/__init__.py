"""The ``ember`` command line (``ember train CONFIG``, ``eval``, ``predict``, ``info``,
``init``)."""

__all__ = ["main"]


def main(argv=None):
    import sys

    from .main import main as _main

    sys.exit(_main(argv))
