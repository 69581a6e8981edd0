"""The ``carbonlink`` command line: the edge of the shared core.

Unlike the rest of :mod:`carbonlink`, this subpackage does I/O (files, terminal). Each
subcommand lives in its own module with the same shape — ``register(subparsers)`` adds its
parser, and the function it registers imports its app only when it runs — so
``carbonlink keys`` never imports FastAPI or python-can. Nothing else in the core may import
this package (an import-linter contract holds it).
"""
