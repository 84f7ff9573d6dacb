"""Errors that end a command with a one-line reason instead of a traceback."""


class LinkageError(Exception):
    """A failure the user can act on; its message is the whole explanation."""


class LockHeldError(LinkageError):
    """Another run holds the migration lease."""


class LockLostError(LinkageError):
    """This run's lease was taken over or expired while it was working."""


class AlertedError(LinkageError):
    """A failure whose alert has already been sent: the generic `a task failed` alert stays quiet."""


class UpdatesLostError(LinkageError):
    """The server lost concurrent updates and nobody said the app is quiet (`linkage.mongo.concurrency`): retrying
    cannot help."""


class NotTheAppError(LinkageError):
    """The database lacks the collections the steps read (a typo in its name): retrying cannot help."""


class JournalLostError(LinkageError):
    """A journal document the run wrote is not there: its batch must not be written."""


class UnshardableError(LinkageError):
    """A unique link index the collections' shard keys make impossible: no retry can change that."""
