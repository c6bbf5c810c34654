"""Where a substation's sessions survive its process: SQLite in WAL mode, written as they change.

Every admission, stop and completion is one small transaction. WAL with synchronous=NORMAL keeps what
was committed when the process is killed (SIGKILL, a crash): the data is in the operating system's
hands. Only a power cut can lose the last few transactions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from grid_common.sqlite import open_database
from substation_service.substation import Journal, NoJournal, Session

COLUMNS = ("session_id", "vehicle_id", "power_kw", "energy_kwh", "started_at", "ends_at", "state", "ended_at")


class SqliteJournal:
    def __init__(self, path: str) -> None:
        # The substation's own lock orders every call, so one connection shared by its greenlets is safe.
        self._db = open_database(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sessions ("
            " session_id TEXT PRIMARY KEY, vehicle_id TEXT NOT NULL, power_kw REAL NOT NULL,"
            " energy_kwh REAL NOT NULL, started_at REAL NOT NULL, ends_at REAL NOT NULL,"
            " state TEXT NOT NULL, ended_at REAL)"
        )

    def record(self, session: Session) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO sessions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
            tuple(getattr(session, column) for column in COLUMNS),
        )

    def forget(self, session_ids: Iterable[str]) -> None:
        self._db.executemany("DELETE FROM sessions WHERE session_id = ?", [(i,) for i in session_ids])

    def sessions(self) -> Iterator[Session]:
        """Every session kept, oldest first."""
        cursor = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM sessions ORDER BY started_at")
        for row in cursor:
            yield Session(**dict(zip(COLUMNS, row, strict=True)))

    def close(self) -> None:
        self._db.close()


def open_journal(path: str) -> Journal:
    return SqliteJournal(path) if path else NoJournal()
