"""The one exception type the extension raises for problems a user can fix."""


class IcLightError(RuntimeError):
    """A refusal whose message names the problem and how to fix it."""
