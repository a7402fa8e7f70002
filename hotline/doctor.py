"""``hotline doctor``: is this installation ready to run, and if not, what to run to fix it.

Each check returns a :class:`Check` (name, ok / warn / fail, what it found, and
for anything not ok the exact command or setting that fixes it). The checks read
files, run the two environments' interpreters and probe ports; none of them
changes anything, so the doctor can run beside a live system.

Example:
    >>> Check("redis", Level.OK, "not configured").ok
    True
    >>> Check("rasa model", Level.FAIL, "bot/models/hotline.tar.gz is missing")
    Traceback (most recent call last):
    ...
    ValueError: check 'rasa model' fails without saying how to fix it
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import json
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from knowledge_base.settings import Settings, shared_secret

if TYPE_CHECKING:
    from knowledge_base.search.textnorm import TextNormaliser

ACTION_PORT = 5055  # scripts/bot.sh's default for HOTLINE_ACTION_PORT
RASA_MODEL = Path("bot") / "models" / "hotline.tar.gz"
# What `rasa train` reads: a model older than any of them answers with yesterday's dialogue.
RASA_INPUTS = (
    Path("bot/domain.yml"),
    Path("bot/config.yml"),
    Path("bot/data"),
    Path("knowledge_base/data/userdict.txt"),
)
SETUP_ENV = "bash scripts/setup-env.sh"
SETUP_RASA = "bash scripts/setup-rasa.sh"


class Level(enum.StrEnum):
    """How a check came out."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    """One finding of the doctor.

    Attributes:
        name: what was checked (e.g. ``"rasa model"``).
        level: ok, warn (works, but look at it) or fail (will not work).
        detail: what was found, with the paths and versions involved.
        fix: the command or setting that fixes it; required unless ok.
    """

    name: str
    level: Level
    detail: str
    fix: str = ""

    def __post_init__(self) -> None:
        if self.level is Level.FAIL and not self.fix:
            raise ValueError(f"check {self.name!r} fails without saying how to fix it")

    @property
    def ok(self) -> bool:
        return self.level is Level.OK


@dataclass(frozen=True)
class Ports:
    """Where the three servers listen.

    Attributes:
        rasa_host: host of ``rasa_url`` (the web app talks to Rasa there).
        rasa: Rasa's port (``HOTLINE_RASA_PORT`` of scripts/bot.sh, else ``rasa_url``'s).
        actions: the action server's port (``HOTLINE_ACTION_PORT``, else 5055).
        web_host: the web app's address (setting ``web_host``).
        web: the web app's port (setting ``web_port``).
    """

    rasa_host: str
    rasa: int
    actions: int
    web_host: str
    web: int

    @classmethod
    def of(cls, settings: Settings, environ: Mapping[str, str]) -> Ports:
        """Read from the settings and, for the two scripts/bot.sh variables, from ``environ``.

        Raises:
            ValueError: a port variable is not a number.
        """
        url = urlsplit(settings.rasa_url)

        def port(name: str, default: int) -> int:
            raw = environ.get(name, "")
            try:
                return int(raw) if raw else default
            except ValueError:
                raise ValueError(f"{name} must be a port number, got {raw!r}") from None

        return cls(
            rasa_host=url.hostname or "127.0.0.1",
            rasa=port("HOTLINE_RASA_PORT", url.port or 5005),
            actions=port("HOTLINE_ACTION_PORT", ACTION_PORT),
            web_host=settings.web_host,
            web=settings.web_port,
        )


def run_checks(
    settings: Settings,
    *,
    root: Path,
    environ: Mapping[str, str] | None = None,
    load_model: bool = True,
    timeout: float = 2.0,
) -> list[Check]:
    """Run every check, in the order one would fix them.

    Args:
        settings: the deployment's settings.
        root: the checkout (holds ``.venv``, ``.venv-rasa``, ``bot/``).
        environ: where the scripts' port variables are read (none when None).
        load_model: also load the embedding model and embed one sentence (a few seconds).
        timeout: seconds to wait for Redis and each server probe.

    Returns:
        The checks, failed or not.
    """
    try:
        ports: Ports | None = Ports.of(settings, environ or {})
        port_problem = None
    except ValueError as exc:
        ports, port_problem = None, Check("ports", Level.FAIL, str(exc), "set the variable to a number or unset it")
    checks = [check_python_env(root), check_rasa_env(root), check_model(settings, load=load_model)]
    database, db_version = check_database(settings)
    checks += [
        database,
        check_index(settings, db_version, _normaliser(settings, database.level is not Level.FAIL)),
        check_rasa_model(root),
        check_redis(settings, timeout=timeout),
    ]
    if ports is None:
        assert port_problem is not None
        checks.append(port_problem)
    else:
        token = shared_secret(settings, "rasa_token", create=False)
        checks += [
            check_rasa_port(ports.rasa_host, ports.rasa, timeout=timeout, token=token),
            check_action_port(ports.actions, timeout=timeout),
            check_web_port(ports.web_host, ports.web, timeout=timeout),
            *check_exposure(settings, ports, timeout=timeout),
        ]
    return checks


# -- environments ----------------------------------------------------------------


def _run_python(python: Path, code: str, timeout: float) -> tuple[int, str]:
    """Run ``code`` with ``python``; (exit status, stdout or the error text)."""
    try:
        done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return 127, f"{python} does not exist"
    except PermissionError:
        return 126, f"{python} is not executable"
    except subprocess.TimeoutExpired:
        return 124, f"{python} did not answer within {timeout:.0f} s"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return done.returncode, lines[-1] if lines else f"exit status {done.returncode}"
    return 0, done.stdout.strip()


_PY_PROBE = """
import importlib.util, sys
need = ("knowledge_base", "faiss", "sentence_transformers", "rasa_sdk", "redis", "flask", "click")
print(sys.version.split()[0])
print(" ".join(m for m in need if importlib.util.find_spec(m) is None))
"""


def check_python_env(root: Path, *, timeout: float = 60.0) -> Check:
    """``.venv``: Python 3.11 with hotline-qa and its dependencies installed."""
    python = root / ".venv" / "bin" / "python"
    if not python.exists():
        return Check("python env", Level.FAIL, f"{python} is missing", SETUP_ENV)
    status, out = _run_python(python, _PY_PROBE, timeout)
    if status != 0:
        return Check("python env", Level.FAIL, f"{python} does not run: {out}", SETUP_ENV)
    version, _, missing = out.partition("\n")
    if not version.startswith("3.11."):
        return Check("python env", Level.FAIL, f"{python} is Python {version}, hotline-qa needs 3.11", SETUP_ENV)
    if missing.strip():
        return Check("python env", Level.FAIL, f"{python} lacks: {missing.strip()}", SETUP_ENV)
    return Check("python env", Level.OK, f"Python {version} in {python.parent.parent}")


def check_rasa_env(root: Path, *, timeout: float = 180.0) -> Check:
    """``.venv-rasa``: its own Python with Rasa importable (found by running that Python)."""
    python = root / ".venv-rasa" / "bin" / "python"
    if not python.exists():
        return Check("rasa env", Level.FAIL, f"{python} is missing", SETUP_RASA)
    status, out = _run_python(python, "import sys, rasa; print(rasa.__version__, sys.version.split()[0])", timeout)
    if status != 0:
        return Check("rasa env", Level.FAIL, f"rasa does not import with {python}: {out}", SETUP_RASA)
    rasa_version, _, py_version = out.partition(" ")
    return Check("rasa env", Level.OK, f"Rasa {rasa_version} on Python {py_version} in {python.parent.parent}")


# -- knowledge base ------------------------------------------------------------------


def check_model(settings: Settings, *, load: bool = True) -> Check:
    """The embedding model folder is complete and (with ``load``) loads and embeds a sentence."""
    from hotline.model_build import is_built, onnx_is_current

    path = settings.model_path
    if not settings.model_dir and not is_built(path):
        what = "is incomplete or from other sources" if path.exists() else "does not exist"
        fix = "hotline model build --force" if path.exists() else "hotline model build"
        return Check("embedding model", Level.FAIL, f"{path} {what}", fix)
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        return Check(
            "embedding model",
            Level.FAIL,
            f"model_dir {path} holds no sentence-transformers model",
            "point model_dir at a sentence-transformers folder, or empty it and run `hotline model build`",
        )
    if settings.embedder == "onnx" and not (path / "onnx" / "model.onnx").is_file():
        return Check(
            "embedding model",
            Level.FAIL,
            f"embedder is onnx but {path} has no ONNX export (onnx/model.onnx)",
            "hotline model build (exports it), or set embedder: torch",
        )
    if settings.embedder == "onnx" and not onnx_is_current(path):
        # An export of an older format still runs, but holds the whole vocabulary in float32 (about 3 times the
        # memory); a missing weights or tokenizer file fails at load.
        return Check(
            "embedding model",
            Level.WARN,
            f"the ONNX export in {path} is incomplete, out of date or of an older format (onnx/EXPORT.json)",
            "hotline model build (exports it again)",
        )
    if not load:
        return Check("embedding model", Level.OK, f"{path} is complete (not loaded)")
    from knowledge_base.search.embedder import make_embedder

    started = time.perf_counter()
    try:
        # The encoder the workers run (embedder setting): with onnx, a missing export fails here with its fix.
        vector = make_embedder(settings).encode(["社保卡丢了怎么补办"])[0]
    except Exception as exc:
        return Check("embedding model", Level.FAIL, f"{path} does not load: {exc}", "hotline model build --force")
    norm = float((vector**2).sum()) ** 0.5
    if abs(norm - 1.0) > 1e-3:
        return Check(
            "embedding model",
            Level.FAIL,
            f"{path} gives vectors of length {norm:.3f}, not 1",
            "hotline model build --force",
        )
    seconds = time.perf_counter() - started
    return Check(
        "embedding model", Level.OK, f"{path}: {len(vector)} dimensions, loaded and embedded in {seconds:.1f} s"
    )


def check_database(settings: Settings) -> tuple[Check, int | None]:
    """The database opens at this code's schema revision; returns the check and its KB version (None: unreadable)."""
    from knowledge_base.factory import open_database, open_store
    from knowledge_base.storage.database import redact_url
    from knowledge_base.storage.migrate import status

    postgres = settings.database_url.startswith(("postgresql://", "postgres://"))
    if postgres:
        where = redact_url(settings.database_url)
        unreadable = "start PostgreSQL or correct database_url (postgresql://user:password@host:port/dbname)"
    else:
        try:
            path = settings.sqlite_path
        except ValueError as exc:
            return Check("database", Level.FAIL, str(exc), "set database_url to sqlite:///PATH or leave it empty"), None
        if not path.is_file():
            # Opening would create an empty one; the doctor changes nothing.
            return Check("database", Level.FAIL, f"no database at {path}", "hotline setup"), None
        where = str(path)
        unreadable = f"check that {path} is a hotline-qa database readable by this user (or restore it from a backup)"
    try:
        db = open_database(settings)
        schema = status(db)
        if schema.usable:
            store = open_store(settings, db)
            version, count = store.kb_version(), store.count()
    except Exception as exc:
        detail = str(exc).replace(settings.database_url, where) if postgres else str(exc)
        return Check("database", Level.FAIL, f"{where} cannot be read: {detail}", unreadable), None
    if schema.state == "ahead":
        newer = "run the hotline-qa release that upgraded it, or restore a backup made before into an empty database"
        return Check("database", Level.FAIL, f"{where}: {schema.describe()}", newer), None
    if not schema.usable:
        return Check("database", Level.FAIL, f"{where}: {schema.describe()}", "hotline db upgrade"), None
    revision = f"schema revision {schema.head} (latest)"
    if count == 0:
        return Check(
            "database",
            Level.WARN,
            f"{where} is empty (KB version {version}, {revision})",
            "hotline setup (illustrative sample) or hotline import FILE",
        ), version
    return Check("database", Level.OK, f"{where}: {count} entries, KB version {version}, {revision}"), version


def _normaliser(settings: Settings, database_ok: bool) -> TextNormaliser:
    """The normaliser a starting worker builds: the staff-edited tables in the database, else the shipped ones."""
    from knowledge_base.search.textnorm import TextNormaliser

    if database_ok:
        from knowledge_base.factory import open_database
        from knowledge_base.search.dictionaries import DictionaryStore

        try:
            return DictionaryStore(open_database(settings)).normaliser()
        except Exception:  # the database check already reports why it cannot be read
            pass
    return TextNormaliser.from_dir()


def _files_digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def check_index(settings: Settings, db_version: int | None, normaliser: TextNormaliser | None = None) -> Check:
    """The saved FAISS index is whole, fits the model and normaliser, and how far it lags the database.

    Args:
        settings: the deployment's settings.
        db_version: the database's KB version (None: unknown).
        normaliser: the one workers use (default: the shipped tables).
    """
    from knowledge_base.search.embedder import make_embedder
    from knowledge_base.search.index import Manifest
    from knowledge_base.search.kb import index_manifest, manifest_differences
    from knowledge_base.search.textnorm import TextNormaliser

    folder = settings.index_path
    rebuild = "hotline index rebuild"
    try:
        manifest = Manifest(**json.loads((folder / "manifest.json").read_text(encoding="utf-8")))
    except FileNotFoundError:
        return Check("index", Level.FAIL, f"no saved index in {folder}", "hotline setup")
    except (OSError, ValueError, TypeError) as exc:
        return Check("index", Level.FAIL, f"unreadable manifest in {folder}: {exc}", rebuild)
    try:
        whole = _files_digest(folder / "index.faiss", folder / "phrasings.json") == manifest.checksum
    except OSError as exc:
        return Check("index", Level.FAIL, f"index files in {folder} unreadable: {exc}", rebuild)
    if not whole:
        return Check(
            "index", Level.FAIL, f"index files in {folder} do not match their manifest (corrupt or partial)", rebuild
        )
    model_path = settings.model_path
    if not (model_path / "config.json").is_file():
        return Check("index", Level.WARN, "cannot compare with the model: the model is missing", "hotline model build")
    embedder = make_embedder(settings)  # its name only (nothing is loaded): the workers' encoder
    running = index_manifest(embedder, normaliser or TextNormaliser.from_dir(), settings, manifest.kb_version)
    differences = manifest_differences(manifest, running)
    if differences:
        return Check("index", Level.FAIL, "built for other parts: " + "; ".join(differences), rebuild)
    at = f"{manifest.count} phrasings at KB version {manifest.kb_version}"
    if db_version is None:
        return Check("index", Level.WARN, f"{at}; database unreadable, versions not compared", "see the database check")
    if manifest.kb_version > db_version:
        return Check("index", Level.FAIL, f"{at}, newer than the database's {db_version} (another database?)", rebuild)
    if manifest.kb_version < db_version:
        return Check(
            "index",
            Level.WARN,
            f"{at}, database at {db_version}: stale, will catch up on start",
        )
    return Check("index", Level.OK, f"{at}, same as the database")


# -- dialogue ----------------------------------------------------------------------


def check_rasa_model(root: Path) -> Check:
    """``bot/models/hotline.tar.gz`` exists and is newer than everything ``rasa train`` reads."""
    model = root / RASA_MODEL
    train = "scripts/bot.sh train"
    if not model.is_file():
        return Check("rasa model", Level.FAIL, f"{model} is missing", train)
    inputs = [
        p
        for item in RASA_INPUTS
        for p in ((root / item).rglob("*") if (root / item).is_dir() else [root / item])
        if p.is_file()
    ]
    if not inputs:
        return Check("rasa model", Level.WARN, f"{model} found, but none of its inputs (bot/domain.yml ...)", train)
    newest = max(inputs, key=lambda p: p.stat().st_mtime)
    trained = model.stat().st_mtime
    if newest.stat().st_mtime > trained:
        changed = datetime.fromtimestamp(newest.stat().st_mtime).isoformat(sep=" ", timespec="seconds")
        return Check(
            "rasa model",
            Level.FAIL,
            f"{model} is older than {newest.relative_to(root)} (changed {changed})",
            train,
        )
    when = datetime.fromtimestamp(trained).isoformat(sep=" ", timespec="seconds")
    return Check("rasa model", Level.OK, f"{model} trained {when}, newer than its {len(inputs)} input files")


def check_redis(settings: Settings, *, timeout: float = 2.0) -> Check:
    """Redis answers when ``redis_url`` is set."""
    if not settings.redis_url:
        return Check("redis", Level.OK, "not configured: one process, edits seen at the next search")
    import redis

    shown = _without_password(settings.redis_url)
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
        version = client.info("server").get("redis_version", "?")
    except redis.RedisError as exc:
        return Check(
            "redis",
            Level.FAIL,
            f"cannot reach {shown}: {exc}",
            "start Redis (e.g. `redis-server --daemonize yes`), correct redis_url, or empty it for one process",
        )
    finally:
        client.close()
    return Check("redis", Level.OK, f"Redis {version} at {shown}")


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


# -- servers -----------------------------------------------------------------------


def _listening(host: str, port: int, timeout: float) -> bool | None:
    """True: something accepts connections; False: refused (free); None: no answer at all."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except ConnectionRefusedError:
        return False
    except OSError:
        return None


HUNG = -1  # the status _get gives when a server accepted the connection and then said nothing in time


def _get(url: str, timeout: float) -> tuple[int, str]:
    """(status, body) of a GET; (HUNG, error) when no answer came in time, (0, error) when it is not HTTP."""
    import requests

    try:
        reply = requests.get(url, timeout=timeout)
    except requests.Timeout as exc:
        return HUNG, str(exc)
    except requests.RequestException as exc:
        return 0, str(exc)
    return reply.status_code, reply.text


def _hung(what: str, host: str, port: int, path: str, timeout: float, fix: str) -> Check:
    return Check(
        f"{what} port {port}",
        Level.FAIL,
        f"{host}:{port} accepts connections but {path} did not answer within {timeout:g} s: the server is hung",
        fix,
    )


def _taken(what: str, host: str, port: int, variable: str) -> str:
    return f"stop the program on {host}:{port} (`ss -ltnp 'sport = :{port}'` shows it) or move {what}: {variable}"


def check_rasa_port(host: str, port: int, *, timeout: float = 2.0, token: str = "") -> Check:
    """Rasa's port is free, or Rasa answers there (``/status``, with the API token ``token``)."""
    name = f"rasa port {port}"
    state = _listening(host, port, timeout)
    if state is False:
        return Check(name, Level.OK, f"{host}:{port} free (Rasa not running; bash scripts/run.sh starts it)")
    if state is None:
        return Check(
            name, Level.FAIL, f"no answer from {host}:{port}", f"start Rasa there or correct rasa_url ({host})"
        )
    status, body = _get(f"http://{host}:{port}/status" + (f"?token={token}" if token else ""), timeout)
    if status == HUNG:
        return _hung("rasa", host, port, "/status", timeout, "restart it (scripts/run.sh's supervisor does by itself)")
    try:
        info = json.loads(body) if status == 200 else None
    except ValueError:
        info = None
    if isinstance(info, dict) and "model_file" in info:
        model = info.get("model_file") or "no model loaded"
        level = Level.OK if info.get("model_file") else Level.WARN
        return Check(
            name,
            level,
            f"Rasa is running on {host}:{port} ({model})",
            "" if level is Level.OK else "scripts/bot.sh train, then restart Rasa",
        )
    status, body = _get(f"http://{host}:{port}/", timeout)
    if status == 200 and body.startswith("Hello from Rasa"):
        return Check(name, Level.OK, f"{body.strip()} on {host}:{port} (HTTP API off, or behind another token)")
    return Check(
        name,
        Level.FAIL,
        f"{host}:{port} is taken by something that is not Rasa",
        _taken("Rasa", host, port, "HOTLINE_RASA_PORT=... and rasa_url"),
    )


def check_action_port(port: int, *, timeout: float = 2.0) -> Check:
    """The action server's port is free, or the rasa-sdk action server answers ``/health``."""
    host, name = "127.0.0.1", f"action server port {port}"
    state = _listening(host, port, timeout)
    if state is False:
        return Check(name, Level.OK, f"{host}:{port} free (action server not running)")
    status, body = _get(f"http://{host}:{port}/health", timeout) if state else (0, "")
    if status == HUNG:
        fix = "restart it (scripts/run.sh's supervisor does by itself)"
        return _hung("action server", host, port, "/health", timeout, fix)
    try:
        healthy = status == 200 and json.loads(body).get("status") == "ok"
    except (ValueError, AttributeError):
        healthy = False
    if healthy:
        return Check(name, Level.OK, f"the action server is running on {host}:{port}")
    return Check(
        name,
        Level.FAIL,
        f"{host}:{port} is taken by something that is not the action server",
        _taken("the action server", host, port, "HOTLINE_ACTION_PORT=..."),
    )


def check_web_port(host: str, port: int, *, timeout: float = 2.0) -> Check:
    """The web app's port is free, or hotline-qa's web app answers there (``/healthz``, else its widget script)."""
    probe = "127.0.0.1" if host in ("0.0.0.0", "") else host
    name = f"web port {port}"
    state = _listening(probe, port, timeout)
    if state is False:
        return Check(name, Level.OK, f"{probe}:{port} free (web app not running)")
    status, body = _get(f"http://{probe}:{port}/healthz", timeout) if state else (0, "")
    if status == HUNG:
        return _hung("web", probe, port, "/healthz", timeout, "restart it (scripts/run.sh's supervisor does by itself)")
    try:
        health = json.loads(body) if status in (200, 503) else None
    except ValueError:
        health = None
    if isinstance(health, dict) and health.get("status") == "ok":
        return Check(
            name,
            Level.OK,
            f"the hotline-qa web app is running on {probe}:{port} (KB version {health.get('kb_version')})",
        )
    if isinstance(health, dict) and health.get("status") == "unhealthy":
        return Check(
            name,
            Level.FAIL,
            f"the hotline-qa web app on {probe}:{port} is unhealthy: {health.get('reason')}",
            "see the database check above and var/log/web.log, then restart the web app",
        )
    status, body = _get(f"http://{probe}:{port}/static/hotline-widget.js", timeout) if state else (0, "")
    if status == 200 and body:
        return Check(name, Level.OK, f"the hotline-qa web app is running on {probe}:{port}")
    return Check(
        name,
        Level.FAIL,
        f"{probe}:{port} is taken by something that is not the hotline-qa web app",
        _taken("the web app", probe, port, "web_port in config.yml or HOTLINE_WEB_PORT=..."),
    )


# -- exposure ------------------------------------------------------------------------


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: whatever it resolves to is reachable by others
        return False


def _secret_source(settings: Settings, name: str) -> str | None:
    """Where the servers will take secret ``name`` from; None when nowhere yet."""
    if getattr(settings, name):
        return f"{name} (setting / HOTLINE_{name.upper()})"
    if shared_secret(settings, name, create=False):
        return f"{settings.data_path / name}"
    return None


def _post_status(url: str, timeout: float) -> int:
    """The status of a bodiless-JSON POST; 0 when it is not HTTP at all."""
    import requests

    try:
        return requests.post(url, json={}, timeout=timeout).status_code
    except requests.RequestException:
        return 0


def check_exposure(settings: Settings, ports: Ports, *, timeout: float = 2.0) -> list[Check]:
    """Where each server listens, and whether what protects it is in place (the README's security table).

    Warns when Rasa or the action server listens beyond loopback, when a running one answers without
    its token or secret (started otherwise than by scripts/bot.sh), and when the web app listens on
    every address without trusted_proxies (fine facing citizens directly; behind a proxy, set it).
    """
    checks = []
    rasa_secret = _secret_source(settings, "rasa_token")
    action_secret = _secret_source(settings, "action_secret")
    for name, host, port, what, secret, setting in (
        ("rasa listens", settings.rasa_host, ports.rasa, "Rasa", rasa_secret, "rasa_host"),
        (
            "action server listens",
            settings.action_host,
            ports.actions,
            "the action server",
            action_secret,
            "action_host",
        ),
    ):
        kind = "HTTP API token" if setting == "rasa_host" else "calls need the secret"
        guard = f"{kind} from {secret}" if secret else f"{kind} made in data_dir by scripts/bot.sh at start"
        if _loopback(host):
            checks.append(Check(name, Level.OK, f"{host}:{port}, loopback only; {guard}"))
        else:
            checks.append(
                Check(
                    name,
                    Level.WARN,
                    f"{host}:{port}: {what} is reachable from other machines (its {guard})",
                    f"firewall the port to the machines that need it, or set {setting}: 127.0.0.1",
                )
            )
    probe = _probe_address(settings.action_host)
    base = f"http://{probe}:{ports.actions}"
    if (
        _listening(probe, ports.actions, timeout)
        and _get(f"{base}/health", timeout)[0] == 200
        and _post_status(f"{base}/webhook", timeout) != 401
    ):
        checks.append(
            Check(
                "action server secret",
                Level.WARN,
                f"the action server on {probe}:{ports.actions} runs actions for callers without action_secret",
                "start it with scripts/bot.sh actions (python -m actions.server), not python -m rasa_sdk",
            )
        )
    probe = _probe_address(settings.rasa_host)
    if _listening(probe, ports.rasa, timeout) and _get(f"http://{probe}:{ports.rasa}/status", timeout)[0] == 200:
        checks.append(
            Check(
                "rasa token",
                Level.WARN,
                f"Rasa's HTTP API on {probe}:{ports.rasa} answers without a token: anyone reaching it reads "
                "conversations",
                "start Rasa with scripts/bot.sh rasa (it passes rasa_token as --auth-token)",
            )
        )
    web = f"{settings.web_host}:{settings.web_port}"
    if _loopback(settings.web_host):
        note = "" if settings.trusted_proxies else " (behind a reverse proxy on this host: set trusted_proxies: 1)"
        checks.append(
            Check("web listens", Level.OK, f"{web}, loopback only; trusted_proxies {settings.trusted_proxies}{note}")
        )
    else:
        checks.append(
            Check(
                "web listens",
                Level.WARN if not settings.trusted_proxies else Level.OK,
                f"{web}: reachable from other machines (citizens' chat, staff sign-in; CSRF, rate limits, "
                f"sign-in throttling); trusted_proxies {settings.trusted_proxies}",
                ""
                if settings.trusted_proxies
                else "facing citizens directly this is expected; behind a reverse "
                "proxy set trusted_proxies: 1, or web_host: 127.0.0.1 with the proxy on this host",
            )
        )
    return checks


def _probe_address(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
