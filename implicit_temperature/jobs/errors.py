"""Errors of sampling jobs. Every message names the file, line or argument at fault and the fix."""

from __future__ import annotations

from ..core.errors import ImplicitTemperatureError


class JobError(ImplicitTemperatureError):
    """A sampling job cannot start or continue (bad arguments, model, output folder, ...)."""


class ProblemFileError(JobError, ValueError):
    """The problems file is malformed; the message gives the file and line number."""


class JobMismatchError(JobError):
    """``--out`` holds a job with other arguments; resuming would mix two jobs in one file."""


class JobCorruptError(JobError):
    """A results file in ``--out`` is damaged in a way a torn last write cannot explain."""


class JobInterrupted(JobError):
    """The job was stopped (Ctrl-C / SIGTERM); finished results are kept, rerun to resume."""
