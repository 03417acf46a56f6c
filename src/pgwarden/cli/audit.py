"""`pgwarden audit`: who can change this database, judged against the role policy."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pgwarden.cli import EXIT_FINDINGS, dsn_option, err, handle_errors, out, print_json, styled


@click.command()
@dsn_option
@click.option(
    "--env",
    "env",
    default=None,
    help="Environment whose role policy applies (default: the one the database is stamped with).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif", "github"]),
    default="text",
    help="Output format.",
)
@click.option(
    "--fix-plan",
    "fix_plan_file",
    default=None,
    metavar="FILE",
    help="Write the SQL that brings the database to the policy (apply it with pgwarden apply).",
)
@click.option("--config", default=None, metavar="FILE", help="pgwarden.toml or pyproject.toml.")
@handle_errors
def audit(
    database_url: str | None,
    env: str | None,
    fmt: str,
    fix_plan_file: str | None,
    config: str | None,
) -> None:
    """Who can write or change schema here, and why, judged against the role policy.

    Every login role's capabilities (superuser, ownership, writes, CREATE, default
    privileges) with the membership or grant that gives them.

    Read only. Exit 1 when an error is found (in a protected environment: a role that
    can write or change schema beyond its class, an undeclared superuser, an overdue
    restore drill).
    """
    from pgwarden.access.audit import audit_connection
    from pgwarden.access.fixplan import header, stamped
    from pgwarden.access.render import github_annotations, sarif, text
    from pgwarden.backup.cadence import drill_max_age, drill_status, judge_drills
    from pgwarden.errors import UsageError
    from pgwarden.pg.connect import connect, resolve_dsn
    from pgwarden.settings import config_table, load_settings

    settings = load_settings(config)
    dsn = resolve_dsn(database_url)
    assert dsn is not None
    max_age = drill_max_age(settings)
    with connect(dsn, application_name="pgwarden-audit") as conn:
        report = audit_connection(conn, env=env, settings=settings)
        drills = drill_status(conn, settings.backup_catalogue)
        drill_findings = judge_drills(
            drills, max_age, protected=report.protected, config=settings.source
        )
        report = report.with_findings(drill_findings)
        plan_text = None
        if fix_plan_file is not None:
            plan = report.fix_plan()
            if plan is None:
                env_key = report.environment or "<env>"
                raise UsageError(
                    "--fix-plan needs a role policy to fix towards: none is declared for "
                    + (report.environment or "this database (no --env, no stamp)"),
                    hint=f"declare {config_table(f'environments.{env_key}.roles', settings.source)}"
                    " and pass --env (docs/audit.md)",
                )
            top = header(
                report.catalog,
                report.environment,
                fix_plan_file,
                empty=plan.empty,
                stamped=stamped(conn),
            )
            plan_text = plan.render(conn, top)
            nothing, notes = plan.empty, list(plan.notes)
    if plan_text is not None and fix_plan_file is not None:
        target = Path(fix_plan_file)
        try:
            target.write_text(plan_text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                f"{fix_plan_file}: cannot write the fix plan: {exc.strerror}",
                hint="pass a writable path to --fix-plan",
            ) from None
        err.print(
            f"fix plan written to {fix_plan_file}"
            + (": nothing to fix" if nothing else "; review it, then `pgwarden apply` it")
        )
        for note in notes:
            err.print(styled("[yellow]warning:[/] the fix plan {}", note))
    if fmt == "json":
        print_json(report.to_dict())
    elif fmt == "sarif":
        print_json(sarif(report, settings.source))
    elif fmt == "github":
        sys.stdout.write(github_annotations(report))
    else:
        from rich.console import Console
        from rich.table import Table

        # never hard-wrapped when piped (a CI log): the table as wide as it needs
        wide = out if out.is_terminal else Console(file=sys.stdout, width=250, highlight=False)
        for item in text(report):
            if isinstance(item, Table):
                wide.print(item)
            else:
                out.print(item, soft_wrap=True)
    if report.count("error"):
        sys.exit(EXIT_FINDINGS)


COMMANDS = (audit,)
