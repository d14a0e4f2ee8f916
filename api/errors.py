"""How a call is refused before Kimi is asked."""


class Refusal(Exception):
    """A call refused before Kimi is asked, as the OpenAI API refuses one: its HTTP status,
    error type (the names Moonshot uses) and message."""

    def __init__(
        self, status: int, kind: str, message: str, code: str | None = None, retry_after: int = 0
    ) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.code = status, kind, message, code
        self.retry_after = retry_after
