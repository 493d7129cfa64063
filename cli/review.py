"""`anytasktune review`: the review web app over the data folder's latest build."""

from __future__ import annotations

import getpass
import json
import os
from typing import Annotated

import typer

from catalog.errors import display_path
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
        name: Annotated[
            str | None, typer.Option(help="The build to score against. Default: the project's name.")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    ) -> None:
        """The human-agreement table: every blind annotation in reviews/ scored against the build's test split."""
        from catalog.layout import release_path
        from pipeline.build import release_agreement
        from validation.reviews import read_reviews

        catalog, where = catalog_or_exit(), settings()
        release = release_path(where.build_dir, name or project_or_exit().name)
        if not release.is_dir():
            raise fail(f"no build at {display_path(release)}: run `anytasktune build` first")
        reviews = read_reviews(where.reviews_dir, catalog)
        result = release_agreement(release, reviews.annotations, catalog)
        if as_json:
            typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
            return
        rows = [
            {**r, "agreement": f"{r['agreement']:.3f}", "kappa": "" if r["kappa"] is None else f"{r['kappa']:.3f}"}
            for r in result["table"]
        ]
        title = f"{result['annotations']} annotations, {result['scored']} of them on test records"
        if rows:
            print_table(rows, title=title)
        else:
            typer.echo(title + ": no agreement to report yet")
