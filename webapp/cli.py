"""The `almenflow` command line: a thin caller of the engine's services.

Every listing takes --json (a stable contract other tools script against). Bad input exits
with status 2 and one readable line on stderr, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from engine import DeploymentError, Engine, EngineError, FormValidationError

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ROOT / "processes"
ORGANISATION = PROCESSES / "organisation.yaml"


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def engine_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn engine errors into exit status 2 with one line on stderr."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FormValidationError as exc:
            fields = "; ".join(f"{k}: {' '.join(v)}" for k, v in sorted(exc.errors.items()))
            fail(f"invalid form data: {fields}")
        except DeploymentError as exc:
            fail("deployment refused: " + " | ".join(str(p) for p in exc.problems))
        except EngineError as exc:
            fail(exc.message)
        except (OSError, ValueError) as exc:
            fail(str(exc))
        except Exception as exc:  # never a traceback on the console; the message still names the cause
            click.echo(f"internal error: {exc.__class__.__name__}: {exc}", err=True)
            sys.exit(1)

    return wrapper


def parse_json(value: str | None, what: str = "--data") -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        fail(f"{what} is not valid JSON: {exc.msg} at position {exc.pos}")


def emit(obj: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    if as_json:
        click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(text(obj))


class Context:
    def __init__(self) -> None:
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine.create()
            try:
                self._engine.identity.refresh_calendar()
            except Exception:
                pass  # not initialised yet: `init` will create the schema
        return self._engine


pass_ctx = click.make_pass_decorator(Context, ensure=True)


@click.group()
@click.version_option(package_name="almenflow")
def cli() -> None:
    """AlmenFlow: BPMN processes for Københavns Kommune and the housing organisations."""


def _check_schema(ctx: Context) -> None:
    from sqlalchemy import inspect

    if not inspect(ctx.engine.db.engine).has_table("definitions"):
        fail("the database is not initialised; run `almenflow init` first")


def needs_db(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        _check_schema(ctx)
        return fn(ctx, *args, **kwargs)

    return wrapper


def db_command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The common shape of a command: --json, the engine context, an initialised schema, and
    engine errors as exit status 2."""
    return click.option("--json", "as_json", is_flag=True)(pass_ctx(needs_db(engine_errors(fn))))


@cli.command()
@pass_ctx
def init(ctx: Context) -> None:
    """Create or upgrade the database schema."""
    ctx.engine.init_db()
    click.echo(f"database ready: {ctx.engine.db.engine.url.render_as_string(hide_password=True)}")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--user", default=None, help="Who deploys (recorded on each version).")
@db_command
def deploy(ctx: Context, paths: tuple[str, ...], user: str | None, as_json: bool) -> None:
    """Deploy BPMN/DMN files or folders as new definition versions."""
    result = ctx.engine.definitions.deploy(list(paths), user=user)
    out = {k: [d.to_dict() for d in v] for k, v in result.items()}

    def text(o: dict) -> str:
        lines = [f"deployed {d['key']} version {d['version']}" for d in o["deployed"]]
        lines += [f"unchanged {d['key']} version {d['version']}" for d in o["unchanged"]]
        return "\n".join(lines) or "nothing new to deploy"

    emit(out, as_json, text)


@cli.command()
@click.option("--latest", is_flag=True, help="Only the newest version of each process.")
@db_command
def definitions(ctx: Context, latest: bool, as_json: bool) -> None:
    """List deployed process definitions."""
    rows = [d.to_dict() for d in ctx.engine.definitions.list(latest_only=latest)]
    emit(rows, as_json, lambda rs: "\n".join(f"{r['key']:<30} v{r['version']:<4} {r['name']}" for r in rs))


@cli.command()
@click.argument("key")
@click.option("--business-key", default=None)
@click.option("--data", default=None, help="Initial variables as a JSON object.")
@click.option("--user", default=None)
@click.option("--version", "version", type=int, default=None)
@db_command
def start(ctx: Context, key: str, business_key: str | None, data: str | None, user: str | None,
          version: int | None, as_json: bool) -> None:
    """Start an instance of process KEY."""
    view = ctx.engine.runtime.start(key, business_key, parse_json(data), user, version)
    emit(view.to_dict(), as_json, lambda v: f"started instance {v['id']} ({v['status']}), "
                                            f"{len(v['tasks'])} open task(s)")


@cli.command()
@click.option("--status", default=None)
@click.option("--key", default=None, help="Process key.")
@click.option("--business-key", default=None)
@click.option("--limit", type=int, default=100)
@db_command
def instances(ctx: Context, status: str | None, key: str | None, business_key: str | None, limit: int,
              as_json: bool) -> None:
    """List instances, newest first."""
    rows, _total = ctx.engine.runtime.list(status=status, key=key, business_key=business_key, limit=limit)
    emit(rows, as_json, lambda rs: "\n".join(
        f"{r['id']:>6} {r['status']:<10} {r['definition']['key']} v{r['definition']['version']} "
        f"{r['business_key'] or ''}" for r in rs))


def _task_text(t: dict) -> str:
    who = f" @{t['assignee']}" if t["assignee"] else ""
    due = f" due {t['due'][:10]}" if t["due"] else ""
    return f"{t['id']:>6} [{t['forum'] or '-'}] {t['name']} (instance {t['instance_id']}){who}{due}"


TASK_KEYS = ("id", "name", "element_id", "forum", "candidate_groups", "instance_id", "assignee", "due",
             "fields", "status", "created", "process_key", "business_key")


def _task_json(view: Any) -> dict:
    d = view.to_dict()
    return {k: d[k] for k in TASK_KEYS}


@cli.command()
@click.argument("instance_id", type=int)
@db_command
def show(ctx: Context, instance_id: int, as_json: bool) -> None:
    """Show an instance: status, variables, open tasks and history."""
    v = ctx.engine.runtime.get(instance_id)
    d = v.to_dict()
    d["tasks"] = [_task_json(t) for t in v.tasks]

    def text(o: dict) -> str:
        lines = [f"instance {o['id']}: {o['definition']['key']} v{o['definition']['version']} "
                 f"[{o['status']}] business key {o['business_key'] or '-'}"]
        if o["incident"]:
            lines.append(f"incident at {o['incident']['element_id']}: {o['incident']['message']}")
        lines.append("variables: " + json.dumps(o["data"], ensure_ascii=False, default=str))
        lines += ["open tasks:"] + [_task_text(t) for t in o["tasks"]]
        lines += ["history:"] + [f"  {h['time'][:19]} {h['type']:<16} {h['element_id'] or ''} {h['user'] or ''}"
                                 for h in o["history"]]
        return "\n".join(lines)

    emit(d, as_json, text)


@cli.command()
@click.option("--forum", default=None)
@click.option("--user", default=None)
@click.option("--instance", "instance_id", type=int, default=None)
@db_command
def tasks(ctx: Context, forum: str | None, user: str | None, instance_id: int | None, as_json: bool) -> None:
    """List open human tasks."""
    rows = [_task_json(t) for t in ctx.engine.tasks.query(forum=forum, user=user, instance_id=instance_id)]
    emit(rows, as_json, lambda rs: "\n".join(_task_text(t) for t in rs) or "no open tasks")


@cli.command()
@click.argument("task_id", type=int)
@click.option("--user", required=True)
@db_command
def claim(ctx: Context, task_id: int, user: str, as_json: bool) -> None:
    """Claim a task."""
    emit(_task_json(ctx.engine.tasks.claim(task_id, user)), as_json, lambda t: f"task {t['id']} claimed by {user}")


@cli.command()
@click.argument("task_id", type=int)
@click.option("--user", required=True)
@db_command
def unclaim(ctx: Context, task_id: int, user: str, as_json: bool) -> None:
    """Give a claimed task back to its forum."""
    emit(_task_json(ctx.engine.tasks.unclaim(task_id, user)), as_json, lambda t: f"task {t['id']} unclaimed")


@cli.command()
@click.argument("task_id", type=int)
@click.option("--user", required=True)
@click.option("--data", default="{}", help="Form data as a JSON object.")
@db_command
def complete(ctx: Context, task_id: int, user: str, data: str, as_json: bool) -> None:
    """Complete a task with form data."""
    done = ctx.engine.tasks.complete(task_id, user, parse_json(data))
    view = ctx.engine.runtime.get(done.instance_id, history=False)
    out = {"task": _task_json(done), "instance": {"id": view.id, "status": view.status,
                                                  "tasks": [_task_json(t) for t in view.tasks]}}
    emit(out, as_json, lambda o: f"task {task_id} completed; instance {view.id} is {view.status}")


@cli.command()
@click.argument("name")
@click.option("--business-key", default=None)
@click.option("--data", default=None)
@click.option("--user", default=None)
@click.option("--all", "all_instances", is_flag=True, help="Deliver to every waiting instance.")
@db_command
def message(ctx: Context, name: str, business_key: str | None, data: str | None, user: str | None,
            all_instances: bool, as_json: bool) -> None:
    """Correlate message NAME to the instance(s) waiting for it."""
    ids = ctx.engine.runtime.correlate(name, business_key, parse_json(data), user, all_instances)
    emit({"instances": ids}, as_json, lambda o: f"message delivered to instance(s) {', '.join(map(str, ids))}")


@cli.command()
@click.argument("name")
@click.option("--data", default=None, help="Variables the signal carries, as a JSON object.")
@click.option("--user", default=None)
@db_command
def signal(ctx: Context, name: str, data: str | None, user: str | None, as_json: bool) -> None:
    """Broadcast signal NAME to every instance waiting for it; start processes it starts."""
    result = ctx.engine.runtime.signal(name, parse_json(data), user)
    emit(result, as_json, lambda o: f"signal '{name}' delivered to {len(o['instances'])} instance(s), "
                                    f"started {len(o['started'])} instance(s)")


@cli.command("run-due")
@db_command
def run_due(ctx: Context, as_json: bool) -> None:
    """Fire every due timer now."""
    emit(ctx.engine.scheduler.run_due(), as_json,
         lambda o: f"fired timers on {o['fired']} instance(s), started {o['started']} instance(s)")


def whole_number(value: str, what: str, minimum: int = 1) -> int:
    """A command-line number checked here, so a bad one is one line on stderr (not click's usage text)."""
    try:
        number = int(value.strip())
    except ValueError:
        fail(f"{what} must be a whole number, not '{value}'")
    if number < minimum:
        fail(f"{what} must be at least {minimum}")
    return number


@cli.command()
@click.argument("instance_id")
@db_command
def history(ctx: Context, instance_id: str, as_json: bool) -> None:
    """Export a case's history: audit events, comments and tasks (--json for the archive format)."""
    export = ctx.engine.history.export(whole_number(instance_id, "the instance id"))

    def text(o: dict) -> str:
        inst = o["instance"]
        lines = [f"instance {inst['id']}: {inst['process']['key']} v{inst['process']['version']} [{inst['status']}] "
                 f"business key {inst['business_key'] or '-'}"]
        lines += [f"  {e['time'][:19]} {e['type']:<16} {e['element_id'] or ''} {e['user'] or ''}" for e in o["events"]]
        lines += [f"  {c['time'][:19]} comment by {c['user']}: {c['text']}" for c in o["comments"]]
        return "\n".join(lines)

    emit(export, as_json, text)


@cli.command()
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option("--limit", default="1000", show_default=True, help="Most instances to remove in this run.")
@click.option("--user", default=None, help="Who runs the cleanup (recorded in the audit trail).")
@db_command
def cleanup(ctx: Context, dry_run: bool, limit: str, user: str | None, as_json: bool) -> None:
    """Remove ended instances older than their process's historyTimeToLive."""
    report = ctx.engine.cleanup.run(dry_run=dry_run, limit=whole_number(limit, "--limit"), user=user)

    def text(o: dict) -> str:
        verb = "would remove" if o["dry_run"] else "removed"
        lines = [f"{i['instance_id']:>6} {i['process_key']} v{i['process_version']} {i['business_key'] or '-'} "
                 f"ended {i['ended_at'][:10]} (kept {i['ttl_days']} days)" for i in o["instances"]]
        lines.append(f"{verb} {o['count']} instance(s)" + (", more remain" if o["more"] else ""))
        if o["held_back"]:
            lines.append(f"kept {len(o['held_back'])} instance(s) whose parent instance still runs")
        return "\n".join(lines)

    emit(report, as_json, text)


def _instance_op(name: str, doc: str, with_reason: bool = False) -> None:
    @click.argument("instance_id", type=int)
    @click.option("--user", default=None)
    @db_command
    def op(ctx: Context, instance_id: int, user: str | None, as_json: bool, reason: str | None = None,
           data: str | None = None) -> None:
        runtime = ctx.engine.runtime
        if name == "terminate":
            view = runtime.terminate(instance_id, user, reason)
        elif name == "retry":
            view = runtime.retry(instance_id, user, parse_json(data))
        else:
            view = getattr(runtime, name)(instance_id, user)
        emit({"id": view.id, "status": view.status}, as_json, lambda o: f"instance {o['id']} is {o['status']}")

    op.__doc__ = doc
    if with_reason:
        op = click.option("--reason", required=True, help="Why (recorded in the audit trail).")(op)
    if name == "retry":
        op = click.option("--data", default=None, help="Corrected variables as JSON before retrying.")(op)
    cli.command(name)(op)


_instance_op("suspend", "Suspend an instance: its tasks and timers wait.")
_instance_op("resume", "Resume a suspended instance.")
_instance_op("terminate", "Terminate an instance (a reason is required).", with_reason=True)
_instance_op("retry", "Retry the failed step of an instance with an incident.")


MIGRATE_REFUSED_EXIT = 3


@cli.command()
@click.argument("key")
@click.option("--from", "from_version", type=int, required=True, help="The version the instances run now.")
@click.option("--to", "to_version", type=int, required=True, help="The version to move them to.")
@click.option("--instance", "instance_ids", type=int, multiple=True,
              help="Only this instance; give it more than once. Default: every running instance of --from.")
@click.option("--dry-run", is_flag=True, help="Report what would happen; change nothing.")
@click.option("--user", default=None, help="Who migrates (recorded in each instance's audit trail).")
@db_command
def migrate(ctx: Context, key: str, from_version: int, to_version: int, instance_ids: tuple[int, ...],
            dry_run: bool, user: str | None, as_json: bool) -> None:
    """Move running instances of process KEY from version --from to version --to.

    Each instance moves on its own, or is refused with the reason and left unchanged: its active
    steps (open tasks, timer and message waits, running sub-processes) must exist unchanged in the
    new version. Completed and terminated instances are never migrated.

    Exit status: 0 when every instance listed migrated (or, with --dry-run, would migrate; also when
    there is nothing to migrate), 3 when at least one was refused or is not running (the report on
    stdout says which and why; the others were migrated), 2 for bad input.
    """
    service = ctx.engine.migration
    ids = list(instance_ids) or None
    if dry_run:
        report = service.plan(key, from_version, to_version, ids)
    else:
        report = service.migrate(key, from_version, to_version, ids, user=user)
    emit(report.to_dict(), as_json, _migration_text)
    if any(i.outcome in ("refused", "not_running") for i in report.instances):
        sys.exit(MIGRATE_REFUSED_EXIT)


def _migration_text(r: dict) -> str:
    what = " (dry run: nothing is changed)" if r["dry_run"] else ""
    lines = [f"Migrating {r['key']} from version {r['from_version']} to version {r['to_version']}{what}"]
    changes = r["changes"]
    parts = [f"{kind} " + ", ".join(e["element_id"] for e in changes[kind]) for kind in ("added", "removed")
             if changes[kind]]
    if changes["changed"]:
        parts.append("changed " + ", ".join(
            f"{e['element_id']}{' -> ' + e['new_id'] if e['new_id'] else ''} ({', '.join(e['changes'])})"
            for e in changes["changed"]))
    lines.append("Changes: " + (" | ".join(parts) if parts else "none"))
    finished = r["counts"]["finished_not_listed"]
    if not r["instances"]:
        lines.append(f"No running instances of {r['key']} version {r['from_version']}; nothing to migrate.")
    else:
        lines.append(f"{'Instance':>8}  {'Business key':<16} {'Status':<10} {'Result':<12} Details")
        for i in r["instances"]:
            details = i["reasons"] or i["notes"] or [""]
            lines.append(f"{i['id']:>8}  {(i['business_key'] or '-')[:16]:<16} {i['status']:<10} "
                         f"{i['outcome'].replace('_', ' '):<12} {details[0]}")
            lines += [" " * 50 + d for d in details[1:]]
        counts = {k: v for k, v in r["counts"].items() if v and k != "finished_not_listed"}
        lines.append(f"{len(r['instances'])} instance(s): "
                     + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()) + ".")
    if finished:
        lines.append(f"{finished} completed or terminated instance(s) of version {r['from_version']} "
                     f"are not migrated.")
    return "\n".join(lines)


@cli.group()
def user() -> None:
    """Manage users."""


@user.command("add")
@click.argument("name")
@click.option("--forum", "forums", multiple=True, help="Forum membership; give it more than once.")
@click.option("--role", type=click.Choice(["member", "owner", "admin"]), default="member")
@click.option("--display-name", default="")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@db_command
def user_add(ctx: Context, name: str, forums: tuple[str, ...], role: str, display_name: str,
             password_stdin: bool, as_json: bool) -> None:
    """Add user NAME."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    created = ctx.engine.identity.add_user(name, display_name, role, list(forums), password)
    emit(created, as_json, lambda u: f"user {u['username']} ({u['role']}) in {', '.join(u['forums']) or 'no forum'}")


@user.command("list")
@db_command
def user_list(ctx: Context, as_json: bool) -> None:
    """List users."""
    emit(ctx.engine.identity.users(), as_json, lambda us: "\n".join(
        f"{u['username']:<16} {u['role']:<7} {', '.join(u['forums'])}" for u in us))


@cli.group()
def token() -> None:
    """Personal API tokens (Authorization: Bearer) for scripts that call /api."""


def _token_text(t: dict) -> str:
    expires = (t["expires_at"] or "never")[:10]
    used = (t["last_used_at"] or "never")[:19]
    return (f"{t['id']:>5} {t['username']:<16} {t['status']:<8} {t['hint']}...  expires {expires:<10} "
            f"last used {used:<19} {t['name']}")


@token.command("create")
@click.argument("username")
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
@click.option("--expires", default=None, metavar="DAYS", help="Days until it expires (default: never).")
@db_command
def token_create(ctx: Context, username: str, name: str, expires: str | None, as_json: bool) -> None:
    """Create an API token for USERNAME and print it (shown this once; only its hash is stored)."""
    days = whole_number(expires, "--expires") if expires is not None else None
    created = ctx.engine.tokens.create(username, name, days)
    emit(created.to_dict(), as_json, lambda t: (
        f"{t['token']}\ntoken {t['id']} for {t['username']} ({t['name']}), expires "
        f"{(t['expires_at'] or 'never')[:10]}; it is not shown again"))


@token.command("list")
@click.argument("username")
@db_command
def token_list(ctx: Context, username: str, as_json: bool) -> None:
    """List USERNAME's API tokens (never the tokens themselves)."""
    rows = [t.to_dict() for t in ctx.engine.tokens.list(username)]
    emit(rows, as_json, lambda ts: "\n".join(_token_text(t) for t in ts) or f"{username} has no API tokens")


@token.command("revoke")
@click.argument("token_id")
@click.option("--user", default=None, help="Who revokes (recorded in the audit trail).")
@db_command
def token_revoke(ctx: Context, token_id: str, user: str | None, as_json: bool) -> None:
    """Revoke API token TOKEN_ID (the id `token list` shows): it stops working at once."""
    view = ctx.engine.tokens.revoke(whole_number(token_id, "the token id"), by=user)
    emit(view.to_dict(), as_json, lambda t: f"token {t['id']} of {t['username']} ({t['name']}) revoked")


@cli.command("forums")
@db_command
def forums_cmd(ctx: Context, as_json: bool) -> None:
    """List forums and their members."""
    emit(ctx.engine.identity.forums(), as_json, lambda fs: "\n".join(
        f"{str(f['level'] or '-'):<2} {f['name']:<36} {', '.join(f['members'])}" for f in fs))


@cli.command("load-org")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@db_command
def load_org(ctx: Context, file: str, as_json: bool) -> None:
    """Load forums, housing organisations and users from a YAML file."""
    counts = ctx.engine.identity.load_organisation(file)
    emit(counts, as_json, lambda c: ", ".join(f"{v} {k}" for k, v in c.items()))


@cli.command()
@click.option("--quiet", is_flag=True, help="Do not print the demo logins.")
@pass_ctx
@engine_errors
def demo(ctx: Context, quiet: bool) -> None:
    """Initialise the database with the demo organisation, the KK processes and a few cases."""
    from .demo import load_demo

    summary = load_demo(ctx.engine, ORGANISATION, PROCESSES)
    if not quiet:
        click.echo(summary)


@cli.command()
@click.option("--interval", default=5, type=click.FloatRange(min=0.1),
              help="Safety tick: the longest sleep between looks for timers (it wakes at each due time).")
@pass_ctx
@needs_db
def worker(ctx: Context, interval: float) -> None:
    """Fire timers in the foreground (run several against PostgreSQL to scale out)."""
    import logging

    from engine.worker import run_blocking

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    click.echo(f"worker: wakes at each timer's due time, and looks for new ones every {interval:g} s")
    run_blocking(ctx.engine, interval)


@cli.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@click.option("--no-scheduler", is_flag=True, help="Do not fire timers from this process.")
@pass_ctx
@needs_db
def serve(ctx: Context, host: str, port: int, no_scheduler: bool) -> None:
    """Serve the web application."""
    from . import create_app

    app = create_app(ctx.engine, {"ALMENFLOW_SCHEDULER": not no_scheduler})
    click.echo(f"AlmenFlow on http://{host}:{port}/")
    try:
        from waitress import serve as waitress_serve
    except ImportError:
        app.run(host=host, port=port, threaded=True, use_reloader=False)
    else:
        waitress_serve(app, host=host, port=port, threads=8)


def main() -> None:
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    cli(prog_name="almenflow")


if __name__ == "__main__":
    main()
