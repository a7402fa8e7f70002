"""Upgrading a database of release 2c742a7, on SQLite and PostgreSQL, keeps every row and ends at the declared schema.

The database comes from tests/fixtures/release-2c742a7.sql (written by the release's own code, see
make_release_fixture.py beside it): its DDL exactly as the release ran it (on PostgreSQL through the
same ``postgres_ddl`` translation the release used), then its rows with their ids, and on PostgreSQL
the sequences moved past those ids as a live database has them. PostgreSQL is reached as in
test_postgres.py: a throwaway database on HOTLINE_TEST_POSTGRES_URL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from knowledge_base.errors import SchemaOutdated
from knowledge_base.records import Entry
from knowledge_base.search.embedder import FakeEmbedder
from knowledge_base.search.kb import KnowledgeBase
from knowledge_base.staff.accounts import AccountStore
from knowledge_base.staff.interactions import InteractionStore
from knowledge_base.staff.workflow import Workflow
from knowledge_base.storage import schema
from knowledge_base.storage.database import Database, open_database, postgres_ddl, split_statements
from knowledge_base.storage.migrate import (
    head_revision,
    known_revisions,
    schema_differences,
    status,
    table_names,
    upgrade,
)
from knowledge_base.storage.store import SQLStore
from tests.fixtures.make_release_fixture import PASSWORDS
from tests.integration.test_postgres import empty_schema_url, postgres  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parents[1] / "fixtures" / "release-2c742a7.sql"


@pytest.fixture(params=["sqlite", "postgresql"])
def new_database(request, tmp_path):
    """Makes empty databases of the backend under test."""
    made: list[Database] = []

    def make() -> Database:
        if request.param == "sqlite":
            made.append(open_database(tmp_path / f"db{len(made)}.sqlite3"))
        else:
            made.append(open_database(empty_schema_url(request.getfixturevalue("postgres"))))
        return made[-1]

    yield make
    for db in made:
        db.close()


def load_release(db: Database) -> None:
    """The fixture's statements, as release 2c742a7 would have run them on this dialect."""
    with db.transaction():
        for statement in split_statements(FIXTURE.read_text(encoding="utf-8")):
            is_ddl = statement.lstrip().upper().startswith("CREATE")
            db.execute(postgres_ddl(statement) if is_ddl and db.dialect == "postgresql" else statement)
        if db.dialect == "postgresql":
            for table in schema.metadata.sorted_tables:
                if schema.numbered(table) and table.name in table_names(db):  # later revisions add tables
                    db.query(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 1) FROM {table.name}))"
                    )


def rows(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every row of every declared table the database has, in key order."""
    out = {}
    present = table_names(db)
    for table in schema.metadata.sorted_tables:
        if table.name not in present:
            continue
        order = ", ".join(c.name for c in table.primary_key.columns)
        out[table.name] = db.query(f"SELECT * FROM {table.name} ORDER BY {order}")
    return out


def test_a_release_database_is_upgraded_with_every_row_intact(new_database, normaliser):
    db = new_database()
    load_release(db)
    before = rows(db)
    assert status(db).state == "unversioned"
    with pytest.raises(SchemaOutdated, match=r"hotline db upgrade"):
        SQLStore(db)
    assert {name: len(r) for name, r in before.items()} == {
        "answer_log": 2,
        "audit_log": 5,
        "curation_done": 1,
        "dictionaries": 1,
        "drafts": 1,
        "entries": 3,
        "feedback": 2,
        "meta": 2,
        "operator_reports": 1,
        "revisions": 6,
        "users": 2,
        "work_orders": 2,
    }

    done = upgrade(db)
    assert (done.previous, done.current, done.applied) == (None, head_revision(), known_revisions())
    after = rows(db)
    # Revision 0004's table: the release's one edited dictionary is its first recorded version.
    [kept] = after.pop("dictionary_versions")
    [edited] = before["dictionaries"]
    assert (kept["name"], kept["version"], kept["content"]) == (edited["name"], edited["version"], edited["content"])
    # Revision 0003's new columns: generation 0 for every account, a distinct random URL token for every work order.
    assert [u.pop("session_generation") for u in after["users"]] == [0, 0]
    tokens = [o.pop("token") for o in after["work_orders"]]
    assert len(set(tokens)) == 2 and all(len(t) >= 22 for t in tokens)
    # Revision 0005: the release's open orders are received (待受理) consultations due two days after creation, each
    # with its creation as its first event; the new tables start empty.
    for order, old in zip(after["work_orders"], before["work_orders"], strict=True):
        life = {name: order.pop(name) for name in list(order) if name not in old}
        assert life["kind"] == "consult" and life["updated_at"] == old["created_at"]
        assert life["due_at"] == (datetime.fromisoformat(old["created_at"]) + timedelta(days=2)).isoformat()
        assert (order.pop("status"), old.pop("status")) == ("received", "open")
    events = after.pop("work_order_events")
    assert [(e["order_id"], e["action"], e["to_status"]) for e in events] == [
        (1, "created", "received"),
        (2, "created", "received"),
    ]
    assert all(after.pop(name) == [] for name in ("departments", "outbox", "order_lookups", "topic_alerts"))
    assert after == before
    assert schema_differences(db) == []
    assert upgrade(db).applied == ()  # a second run finds nothing to do

    # The upgraded database works as a new one: search, an edit through the workflow, sign-in, a work order.
    store = SQLStore(db)
    kb = KnowledgeBase(store, FakeEmbedder(), normaliser)
    kb.warm_up()
    assert kb.search("社保卡丢了怎么补办？").best.entry.key == "SB-001"
    accounts = AccountStore(db)
    flow = Workflow(kb, db, accounts.audit)
    waiting = flow.drafts()[0]  # the release's draft, submitted for review
    published = flow.publish(waiting.id, expected_version=waiting.version, reviewer="admin")
    assert published.key == "GJJ-001" and "到窗口" in published.answer
    draft = flow.save(published.replace(answer="网上办理，约3个工作日到账。"), author="editor1")
    draft = flow.submit(draft.id, expected_version=draft.version, author="editor1")
    assert "3个工作日" in flow.publish(draft.id, expected_version=draft.version, reviewer="admin").answer
    kb.sync()
    assert kb.search("公积金怎么提取？").best.entry.answer == "网上办理，约3个工作日到账。"
    assert accounts.authenticate("admin", PASSWORDS["admin"]).role == "admin"
    assert accounts.authenticate("editor1", PASSWORDS["editor1"]).username == "editor1"
    order = InteractionStore(db).create_work_order(channel="web", sender_id="s-9", description="升级后的工单")
    assert order.id == 3  # past the release's ids, on both databases (SQLite's table was copied by revision 0003)
    assert InteractionStore(db).work_order_by_token(order.token) == order
    assert store.add(Entry(question="升级后的新问题"), author="editor1").id == 5  # past the deleted entry's too


def test_migrations_and_the_declaration_build_the_same_schema(new_database):
    by_migrations, by_declaration = new_database(), new_database()
    upgrade(by_migrations)
    SQLStore(by_declaration)  # a brand-new database is created from schema.py directly
    for db in (by_migrations, by_declaration):
        assert status(db).state == "current" and schema_differences(db) == []
        assert db.query("SELECT name, value FROM meta ORDER BY name") == [
            {"name": "kb_version", "value": "0"},
            {"name": "schema_version", "value": "1"},
        ]


def test_an_older_release_missing_tables_is_adopted(new_database):
    """Releases before 2c742a7 made fewer tables: the first revision adds what is missing."""
    db = new_database()
    statements = split_statements(FIXTURE.read_text(encoding="utf-8"))
    first_other = next(i for i, s in enumerate(statements) if "TABLE IF NOT EXISTS dictionaries" in s)
    with db.transaction():
        for statement in statements[:first_other]:  # the entry store's tables only, and its seed
            db.execute(postgres_ddl(statement) if db.dialect == "postgresql" else statement)
    assert status(db).state == "unversioned"
    upgrade(db)
    assert schema_differences(db) == [] and SQLStore(db).kb_version() == 0


def test_work_order_ids_are_not_reused_after_revision_0003(new_database):
    """SQLite adds the token's NOT NULL by copying the table; its AUTOINCREMENT counter must come along."""
    db = new_database()
    load_release(db)
    db.execute("DELETE FROM work_orders WHERE id=2")  # the newest: only the counter remembers its id
    upgrade(db)
    assert InteractionStore(db).create_work_order(channel="web", sender_id="s-1", description="新工单").id == 3
