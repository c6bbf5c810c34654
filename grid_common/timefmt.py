from datetime import UTC, datetime


def iso_utc(wall_seconds: float | None) -> str | None:
    if wall_seconds is None:
        return None
    return datetime.fromtimestamp(wall_seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
