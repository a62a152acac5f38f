"""Structured JSON logs (Powertools Logger) with secrets scrubbed from every record."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from .redact import redact


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Redacts the final serialized line, so message, extras and exceptions are all covered."""

    def serialize(self, log: dict) -> str:
        return redact(super().serialize(log))


def get_logger(service: str) -> Logger:
    return Logger(service=service, logger_formatter=RedactingFormatter())
