"""Whole-system load benchmark (Locust): starts its own hotline-qa and plays citizens, callers, operators and an editor.

    .venv/bin/python scripts/load_system.py --workers 1 --seconds 60 --closed --citizens 14 --callers 6 \
        --operators 2 --out var/load/closed-1
    .venv/bin/python scripts/load_system.py --workers 1 --seconds 60 --open-rate 30 --citizens 14 --callers 6 \
        --operators 2 --operator-rate 1 --out var/load/open-1
    .venv/bin/python scripts/load_system.py --rasa-direct 20 --citizens 0 --callers 0 --operators 0 \
        --publish-every 0 --closed --out var/load/rasa   # what scripts/load_dialogue.py measured

The system under test is a fresh copy on free loopback ports with a temporary data directory (`hotline setup`
imports the sample knowledge base there; the built embedding model in var/models is reused), its own Redis key
prefix, staff accounts made with `hotline user add` (scripts/load/system.py). After an unmeasured warm-up (every
path of every worker answers --warm-up messages), Locust runs headless in a subprocess
(scripts/load/locustfile.py), so gevent never patches this process; every server is stopped at the end, also on
Ctrl-C or failure.

Users per channel: --citizens (the web app's /api/chat relay, the widget's path), --rasa-direct (Rasa's web
channel, the six scripted conversations of the old scripts/load_dialogue.py), --callers (hotline channel),
--operators (console search as they type), one editor publishing every --publish-every seconds and timing until
every worker serves the change (Locust request type PROPAGATION). With two workers every request goes to the next
worker in turn, so conversations rely on the shared tracker.

--closed: each user sends its next message as soon as the last is answered. --open-rate R: chat messages start as
a Poisson process of R per second over the chat channels (split by the user counts given), conversations with
exponential gaps of --gap seconds, start to start; operators search at --operator-rate each. Late messages
(their user still waited for a reply) are counted.

Errors: non-2xx, timeouts, refused connections and the bot's "系统暂时…" replies. Output in --out: Locust's CSV
(locust_stats.csv, locust_failures.csv, ...) and HTML report (locust.html), summary.json, and the printed table.
Linux; needs .venv with the load extra (pip install -e '.[load]'), .venv-rasa, bot/models/hotline.tar.gz and Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from load.plan import OpenLoop, Targets
from load.report import Sampler, chat_messages, git_revision, machine, print_summary, processes, read_locust_csv
from load.system import ROOT, StartupError, System, say

LOCUST = ROOT / ".venv" / "bin" / "locust"
LOCUSTFILE = ROOT / "scripts" / "load" / "locustfile.py"
QUESTIONS = ROOT / "knowledge_base" / "sample" / "test_questions.jsonl"
CLASSES = {"web chat": "WebCitizen", "rasa direct": "RasaCitizen", "hotline": "Caller", "operator search": "Operator"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n", 1)[0],
        epilog="Details: the docstring at the top of scripts/load_system.py.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--workers", type=int, choices=(1, 2), default=1, help="sets of action server, Rasa, web app")
    parser.add_argument("--seconds", type=float, default=60, help="the measured window (5-3600)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--closed", action="store_true", help="closed loop: next message as soon as answered")
    mode.add_argument("--open-rate", type=float, metavar="R", help="open loop: R chat messages/s in total (0.1-1000)")
    parser.add_argument("--gap", type=float, default=3.0, help="open loop: mean seconds between a user's messages")
    parser.add_argument("--operator-rate", type=float, default=1.0, help="open loop: searches/s of each operator")
    parser.add_argument("--citizens", type=int, default=14, help="citizens through the web app's relay (0-1000)")
    parser.add_argument("--rasa-direct", type=int, default=0, help="citizens straight to Rasa's web channel (0-1000)")
    parser.add_argument("--callers", type=int, default=6, help="callers on the hotline channel (0-1000)")
    parser.add_argument("--operators", type=int, default=2, help="operators searching as they type (0-200)")
    parser.add_argument("--publish-every", type=float, default=10, help="seconds between publishes; 0: no editor")
    parser.add_argument("--edit-entry", default="GD-SB-001", help="key of the entry the editor changes")
    parser.add_argument("--timeout", type=float, default=30, help="seconds one request may take before it is an error")
    parser.add_argument("--propagation-timeout", type=float, default=30, help="seconds to wait for a published change")
    parser.add_argument("--warm-up", type=int, default=3, help="unmeasured messages per path and worker first (1-50)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9", help="Redis for Rasa and change events")
    parser.add_argument("--start-timeout", type=float, default=300, help="seconds the servers may take to be ready")
    parser.add_argument("--sample-interval", type=float, default=0.5, help="seconds between CPU samples")
    parser.add_argument("--seed", type=int, default=12345, help="seed of the virtual users' choices")
    parser.add_argument("--build-model", action="store_true", help="build the embedding model instead of var/models")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (database, logs)")
    parser.add_argument("--out", type=Path, required=True, help="folder for Locust's CSV and HTML and summary.json")
    args = parser.parse_args(argv)
    limits = {
        "seconds": (5, 3600), "gap": (0.1, 600), "operator_rate": (0.01, 100), "citizens": (0, 1000),
        "rasa_direct": (0, 1000), "callers": (0, 1000), "operators": (0, 200), "publish_every": (0, 3600),
        "timeout": (0.1, 600), "propagation_timeout": (0.1, 600), "warm_up": (1, 50), "start_timeout": (10, 3600),
        "sample_interval": (0.05, 60),
    }  # fmt: skip
    if args.open_rate is not None:
        limits["open_rate"] = (0.1, 1000)
    for name, (low, high) in limits.items():
        value = getattr(args, name)
        if not low <= value <= high:
            parser.error(f"--{name.replace('_', '-')} must be between {low} and {high}, got {value}")
    if args.citizens + args.rasa_direct + args.callers + args.operators == 0 and not args.publish_every:
        parser.error("nothing to play: give --citizens, --rasa-direct, --callers, --operators or --publish-every")
    if args.open_rate and args.citizens + args.rasa_direct + args.callers == 0:
        parser.error("--open-rate needs users on a chat channel (--citizens, --rasa-direct or --callers)")
    return args


def run_locust(args: argparse.Namespace, targets: Targets, sampler: Sampler) -> tuple[list[str], int]:
    """Locust headless in a subprocess, watched by the sampler; returns its command and exit status."""
    classes = [CLASSES[c] for c in CLASSES if targets.user_count(c) > 0]
    if args.publish_every > 0:
        classes.append("Editor")
    users = sum(targets.user_count(c) for c in CLASSES) + (args.publish_every > 0)
    command = [
        str(LOCUST), "-f", str(LOCUSTFILE), "--headless", "--users", str(users), "--spawn-rate", str(users),
        "--run-time", f"{args.seconds:g}s", "--reset-stats", "--stop-timeout", "0", "--only-summary",
        "--csv", str(args.out / "locust"), "--html", str(args.out / "locust.html"), "--loglevel", "WARNING",
        "--host", targets.web_urls[0], *classes,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "scripts"), "LOAD_SYSTEM_TARGETS": targets.to_json()}
    say(f"locust: {users} users ({', '.join(classes)}) for {args.seconds:g} s")
    with open(args.out / "locust.log", "wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            sampler.watch("locust", proc.pid)
            status = proc.wait()
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
    # Locust exits 1 whenever a request failed: the failures are in the figures; only a crash stops us.
    if status not in (0, 1) or not (args.out / "locust_stats.csv").exists():
        tail = "\n".join((args.out / "locust.log").read_text(errors="replace").splitlines()[-20:])
        raise StartupError(f"locust exited with {status}; {args.out / 'locust.log'}:\n{tail}")
    return command, status


def open_loop_report(targets: Targets, paced: dict[str, int]) -> dict[str, Any]:
    """Per paced channel: users, mean gap, messages started in the window and those that started late."""
    paces = dict(targets.open_plan)
    operators = targets.users.get("operator search", 0)
    if operators:
        paces["operator search"] = OpenLoop(operators, 1 / targets.operator_rate)
    channels = {}
    for channel, pace in paces.items():
        if pace.users:
            late = paced.get(f"{channel}: late", 0)
            channels[channel] = {
                "users": pace.users,
                "mean_gap_s": round(pace.mean_gap_s, 3),
                "started": paced.get(f"{channel}: started", 0),
                "late": late,
                "late_ms_mean": round(paced.get(f"{channel}: late ms", 0) / late, 1) if late else 0.0,
            }
    return {"rate": targets.open_rate, "channels": channels}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join([sys.executable, *sys.argv])
    run_id = f"loadsys-{os.getpid()}-{secrets.token_hex(2)}"
    workdir = Path(tempfile.mkdtemp(prefix="hotline-load-"))
    system = System(
        args.workers, args.redis_url, run_id, workdir, start_timeout=args.start_timeout, build_model=args.build_model
    )
    sampler = Sampler(args.sample_interval)
    started_at = datetime.now().isoformat(timespec="seconds")
    info = {"machine": machine(), "git": git_revision(ROOT)}

    def terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    status, keep = 0, args.keep
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        system.check_prerequisites()
        system.set_up()
        startup_s = system.start()
        questions = [json.loads(line)["query"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line]
        first_answers = system.warm_up(args.warm_up, questions[0])
        for server in system.servers:
            sampler.watch(server.name, server.pid)
        sampler.start()
        targets = Targets(
            web_urls=[w.web.url for w in system.workers],
            rasa_urls=[w.rasa.url for w in system.workers],
            gateway_secret=system.gateway_secret, operator_user=system.operator_user,
            editor_user=system.editor_user, reviewer_user=system.reviewer_user, password=system.password,
            questions=questions, run_id=run_id,
            users={"web chat": args.citizens, "rasa direct": args.rasa_direct, "hotline": args.callers,
                   "operator search": args.operators},
            edit_entry=args.edit_entry, publish_every_s=args.publish_every,
            propagation_timeout_s=args.propagation_timeout, timeout_s=args.timeout, open_rate=args.open_rate or 0.0,
            gap_s=args.gap, operator_rate=args.operator_rate, seed=args.seed,
            results_path=str(args.out / "window.json"),
        )  # fmt: skip
        locust_command, _ = run_locust(args, targets, sampler)
        sampler.stop()
        window = json.loads((args.out / "window.json").read_text(encoding="utf-8"))
        start, end = window["window"]["start"], window["window"]["end"]
        channels, _ = read_locust_csv(args.out / "locust", end - start)
        messages = chat_messages(channels)
        paced: dict[str, int] = window["paced"]
        summary = {
            "started_at": started_at,
            "command": command,
            "locust_command": shlex.join(locust_command),
            **info,
            "layout": f"{args.workers} worker(s): {args.workers} action server, {args.workers} Rasa, "
            f"{args.workers} web app; one SQLite database; Redis {args.redis_url}",
            "load": ("closed loop" if args.closed else f"open loop at {args.open_rate:g} chat messages/s")
            + f"; users: {args.citizens} web chat, {args.rasa_direct} rasa direct, {args.callers} hotline, "
            f"{args.operators} operators, "
            + (f"1 editor every {args.publish_every:g} s" if args.publish_every else "no editor"),
            "startup_s": round(startup_s, 1),
            "warm_up_first_answer_s": first_answers,
            "window_s": round(end - start, 1),
            "channels": channels,
            "chat_messages": messages,
            "open_loop": open_loop_report(targets, paced) if args.open_rate else {},
            "processes": processes(sampler, start, end, messages),
            "memory_note": "RSS counts shared pages in every process that maps them; PSS splits them, so it adds up",
        }
        print_summary(summary)
        (args.out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1) + "\n", "utf-8")
        say(f"written: {args.out}/summary.json, locust.html, locust_*.csv")
    except StartupError as exc:
        say(f"the run failed: {exc}")
        status, keep = 1, True
    except KeyboardInterrupt:
        say("interrupted; stopping everything")
        status = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave servers behind
        if sampler.is_alive():
            sampler.stop()
        if system.servers:
            say(f"stopping {len(system.servers)} servers")
            for problem in system.stop():
                say(problem)
        if system.data_dir.exists():  # set-up began: the run may have written to Redis
            deleted = system.clean_redis()
            if deleted:
                say(f"deleted {deleted} Redis keys of this run")
        if keep and any(system.log_dir.glob("*.log")):
            say(f"kept {workdir} (database in data/, server logs in log/)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
