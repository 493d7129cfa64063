"""`anytasktune review`: the review web app over the data folder's latest build."""

from __future__ import annotations

import getpass
import json
import os
from typing import Annotated, Any

import typer

from cli.common import catalog_or_exit, fail, project_or_exit, settings
from cli.tables import print_table

TOKEN_VARIABLE = "ANYTASKTUNE_REVIEW_TOKEN"
REVIEWER_VARIABLE = "ANYTASKTUNE_REVIEWER"


def register(app: typer.Typer) -> None:
    @app.command("review")
    def review_command(
        reviewer: Annotated[
            str | None,
            typer.Option(
                envvar=REVIEWER_VARIABLE,
                help="Your name in every decision, and your file reviews/<name>.jsonl. Default: your login name.",
                show_default=False,
            ),
        ] = None,
        name: Annotated[str | None, typer.Option(help="The build to review. Default: the project's name.")] = None,
        host: Annotated[
            str, typer.Option(help="Address to listen on; anything but loopback needs --token.")
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8809,
        token: Annotated[
            str | None,
            typer.Option(
                envvar=TOKEN_VARIABLE,
                help="A secret every request must carry (needed off loopback).",
                show_default=False,
            ),
        ] = None,
        blind_only: Annotated[
            bool,
            typer.Option("--blind-only", help="Serve only blind annotation: no page that shows a reference."),
        ] = False,
    ) -> None:
        """Read, accept, reject, fix and blind-annotate records in the browser; decisions go to reviews/."""
        try:
            from review.decisions import ReviewerError
            from review.security import ExposureError
            from review.server import review_server
            from review.store import NoBuildError
        except ImportError as err:
            raise fail(f"the review app needs its extra: pip install -e '.[review]' ({err.name} is missing)") from None
        catalog = catalog_or_exit()
        who = reviewer or os.environ.get("USER") or getpass.getuser()
        try:
            server, sock, link = review_server(
                catalog,
                settings(),
                name=name or project_or_exit().name,
                reviewer=who,
                host=host,
                port=port,
                token=token,
                blind_only=blind_only,
            )
        except (ExposureError, ReviewerError, NoBuildError, OSError) as err:
            raise fail(str(err)) from None
        typer.echo(f"reviewing as {who}: open {link}  (Ctrl+C stops)")
        server.run(sockets=[sock])

    @app.command("agreement")
    def agreement_command(
        show_open: Annotated[
            bool, typer.Option("--open", help="List the disagreements the adjudication log has no line for.")
        ] = False,
        task: Annotated[str | None, typer.Option(help="Only this task.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    ) -> None:
        """The human-agreement table from the repository's files: the blind annotations in reviews/ scored against
        the gold seeds, before and after adjudication (adjudication/), with the disagreements still open."""
        from validation.agreement import agreement_notes, human_agreement, read_folder_annotations

        catalog = catalog_or_exit()
        found = read_folder_annotations(catalog, settings())
        if found.problems:
            raise fail(f"{len(found.problems)} invalid line(s), run `anytasktune validate`; first: {found.problems[0]}")
        annotations = found.annotations
        if task is not None:
            annotations = annotations.filter(annotations["task"] == task)
        result = human_agreement(annotations, found.references, found.adjudications, catalog)
        if as_json:
            typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
            return
        title = f"{result['annotations']} annotations, {result['scored']} of them on gold records"
        if result["earlier_rounds"]:
            title += f" ({result['earlier_rounds']} of earlier blind rounds, not scored)"
        if not result["table"]:
            typer.echo(title + ": no agreement to report yet")
            return
        print_table([agreement_row(r) for r in result["table"]], title=title)
        for note in agreement_notes(result["table"]):
            typer.echo(note)
        if show_open:
            for item in result["open"]:
                typer.echo(json.dumps(item, ensure_ascii=False))
        elif result["open"]:
            typer.echo(f"{len(result['open'])} disagreement(s) not adjudicated yet: --open lists them", err=True)


def agreement_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row of the agreement table for printing: figures to three places, blanks for none, a kappa per field."""

    def shown(value: Any) -> Any:
        if isinstance(value, dict):
            return ", ".join(f"{k} {shown(v)}" for k, v in value.items())
        return ("" if value is None else f"{value:.3f}") if isinstance(value, float) or value is None else value

    printed = {}
    for key, value in row.items():
        if key not in ("kappa_fields", "note"):  # a note is printed under the table, not as a column
            printed[key] = shown(value)
        if key == "kappa":  # every row has the column, so the table lines up
            printed["kappa_fields"] = shown(row.get("kappa_fields"))
    return printed
