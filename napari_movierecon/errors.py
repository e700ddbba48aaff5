"""The project's error types: one base class users can catch, messages that name what is wrong."""


class MovieReconError(Exception):
    """Base class of every error this package raises on purpose."""


class RecordingError(MovieReconError):
    """A recording folder or array is missing, malformed, or inconsistent.

    The message always names the offending file (or array) and the problem.
    """


class SimulationError(MovieReconError):
    """Bad parameters or inputs for the in-silico mouse."""


class CheckpointError(MovieReconError):
    """An encoder checkpoint cannot be saved or loaded, or does not fit the recording.

    The message always names the checkpoint file (or folder) and the problem.
    """
