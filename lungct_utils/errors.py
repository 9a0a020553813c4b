"""The package's user-facing error type.

Bad input (a corrupt image, a wrong folder, a missing class) raises :class:`DataError`
with a message naming the path and the problem; bad parameters raise ``ValueError``
quoting the value. The command line prints either as one line, never a traceback.
"""


class LungCTError(Exception):
    """Base class of every error this package raises on purpose."""


class DataError(LungCTError):
    """A file or folder of the dataset is missing, unreadable or not what was expected."""
