"""Storage behaves the same on SQLite and PostgreSQL: UTC round trips, append-only audit,
concurrent writers, and migrations."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from storage import migrate
from storage.db import Database
from storage.models import AppendOnlyError, AuditEvent, InboxUpdate, Person, Role


async def test_datetimes_come_back_aware_and_in_utc(database: Database) -> None:
    local = datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=1)))
    async with database.transaction() as session:
        session.add(InboxUpdate(update_id=1, payload="{}", received_at=local))
    async with database.sessions() as session:
        row = await session.get(InboxUpdate, 1)
    assert row is not None
    assert row.received_at.tzinfo is not None
    assert row.received_at.utcoffset() == timedelta(0)
    assert row.received_at == local


async def test_datetimes_keep_their_stored_text_order_and_read_older_forms(
    database: Database,
) -> None:
    """Comparisons and ordering work on the stored values (SQLite compares text), and a value
    written by another tool (no microseconds, or with an offset) still reads as aware UTC."""
    base = datetime(2026, 10, 25, 0, 59, 59, 999_999, tzinfo=UTC)
    async with database.transaction() as session:
        for n, at in enumerate(
            [base, base + timedelta(microseconds=1), base - timedelta(hours=3)]
        ):
            session.add(InboxUpdate(update_id=10 + n, payload="{}", received_at=at))
    async with database.sessions() as session:
        later = (
            await session.scalars(
                select(InboxUpdate.update_id)
                .where(InboxUpdate.received_at > base)
                .order_by(InboxUpdate.received_at)
            )
        ).all()
        ordered = (
            await session.scalars(
                select(InboxUpdate.received_at).order_by(InboxUpdate.received_at)
            )
        ).all()
    assert later == [11]
    assert ordered == sorted(ordered) and ordered[0] == base - timedelta(hours=3)
    if database.url.get_backend_name() == "sqlite":
        async with database.transaction() as session:
            for update_id in (20, 21):
                session.add(InboxUpdate(update_id=update_id, payload="{}", received_at=base))
        async with database.transaction() as session:
            for update_id, stored in (
                (20, "2026-01-01 12:00:00"),
                (21, "2026-01-01 12:00:00+01:00"),
            ):
                await session.execute(
                    text("UPDATE inbox_update SET received_at = :v WHERE update_id = :id"),
                    {"v": stored, "id": update_id},
                )
        async with database.sessions() as session:
            rows = dict(
                (
                    await session.execute(
                        select(InboxUpdate.update_id, InboxUpdate.received_at).where(
                            InboxUpdate.update_id >= 20
                        )
                    )
                ).all()
            )
        assert rows == {
            20: datetime(2026, 1, 1, 12, tzinfo=UTC),
            21: datetime(2026, 1, 1, 11, tzinfo=UTC),
        }
        assert all(value.tzinfo is UTC for value in rows.values())


async def test_a_naive_datetime_is_refused(database: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        async with database.transaction() as session:
            session.add(InboxUpdate(update_id=2, received_at=datetime(2026, 1, 1)))  # noqa: DTZ001


async def test_the_audit_log_is_append_only_in_the_orm_and_in_the_database(
    database: Database,
) -> None:
    async with database.transaction() as session:
        event = AuditEvent(action="export", detail={"rows": 3}, at=datetime.now(UTC))
        session.add(event)
    with pytest.raises(AppendOnlyError):
        async with database.transaction() as session:
            row = await session.get(AuditEvent, event.id)
            assert row is not None
            row.action = "nothing happened"
    for statement in ("UPDATE audit_event SET action = 'x'", "DELETE FROM audit_event"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with database.transaction() as session:
                await session.execute(text(statement))
    async with database.sessions() as session:
        assert (await session.execute(select(AuditEvent.action))).scalar_one() == "export"


async def test_concurrent_writers_do_not_hit_database_is_locked(database: Database) -> None:
    async def writer(n: int) -> None:
        for i in range(20):
            async with database.transaction() as session:
                existing = (await session.execute(select(Person.id).limit(1))).first()
                del existing  # a read first, then a write: the upgrade that used to fail
                session.add(Person(pseudonym=f"P-{n:02d}{i:04d}", role=Role.PARTNER))

    await asyncio.gather(*(writer(n) for n in range(8)))
    async with database.sessions() as session:
        count = len((await session.execute(select(Person.id))).all())
    assert count == 160


async def test_the_schema_is_at_the_newest_migration(
    database: Database, database_url: str
) -> None:
    assert await migrate.current_revision(database_url) == migrate.head_revision()
    assert await migrate.is_up_to_date(database_url)


def test_the_newest_migration_is_the_one_alembic_finds() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    assert migrate.head_revision() == script.get_current_head()


async def test_a_fresh_sqlite_file_migrates_from_nothing(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    assert await migrate.current_revision(url) is None
    await migrate.upgrade(url)
    assert await migrate.is_up_to_date(url)


async def test_the_models_and_the_migrations_agree(database: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storage.models import Base

    async with database.engine.connect() as conn:

        def diff(sync_conn):  # type: ignore[no-untyped-def]
            context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)

        changes = await conn.run_sync(diff)
    assert changes == [], f"a model changed without a migration: {changes}"
