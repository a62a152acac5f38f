"""Turn AWS failures into domain errors in one place: unreachable or throttled → Unavailable (503)."""

from __future__ import annotations

import contextlib

from ..errors import Unavailable
from . import aws


@contextlib.contextmanager
def translate(service: str):
    from botocore.exceptions import ClientError

    try:
        yield
    except aws.unavailable_errors() as exc:
        raise Unavailable(f"{service} cannot be reached right now; try again shortly") from exc
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if (
            code in aws.THROTTLE_CODES
            or status >= 500
            or code in ("NoSuchBucket", "ResourceNotFoundException")
        ):
            raise Unavailable(
                f"{service} is temporarily unavailable ({code or status}); try again shortly"
            ) from exc
        raise
