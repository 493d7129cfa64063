"""The review app: a small Starlette app with server-rendered Jinja2 templates (autoescaped) over a ReviewStore.

Pages: the record list with filters and full-text search, a record with its decision forms, blind annotation
(instruction and input only until the answer is saved), and the build report with the counts per task. Every
state change is a POST carrying the app's CSRF token from a page of the same origin.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import polars as pl
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from catalog.spec import TaskSpec
from review.decisions import DecisionLog
from review.security import Guard, same_origin, same_token
from review.store import FILTERS, PUBLISHED, ReviewStore
from validation.agreement import agreement_table, latest_round, scored_annotations
from validation.metrics import score
from validation.outputs import parse_output
from validation.reviews import ANNOTATE, VERDICTS

HERE = Path(__file__).parent
PAGE_SIZE = 50
CSRF_FIELD = "csrf"
BLIND_DEFAULTS = {"split": "test", "status": "published"}  # the benchmark is what second annotation measures


@dataclass
class ReviewApp:
    store: ReviewStore
    log: DecisionLog
    csrf: str
    templates: Environment
    blind_only: bool = False

    @property
    def reviewer(self) -> str:
        return self.log.reviewer

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        page = self.templates.get_template(template).render(
            request=request,
            reviewer=self.reviewer,
            csrf=self.csrf,
            csrf_field=CSRF_FIELD,
            blind_only=self.blind_only,
            **context,
        )
        return HTMLResponse(page, status_code=status)


def create_app(
    store: ReviewStore, log: DecisionLog, *, token: str | None = None, blind_only: bool = False
) -> Starlette:
    """The app; `blind_only` serves an annotator nothing but blind annotation (no record, list or report page,
    where references are shown), so a second annotation stays blind by construction, not by discipline."""
    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True), trim_blocks=True
    )
    review = ReviewApp(store, log, secrets.token_urlsafe(32), templates, blind_only)

    async def browse(request: Request) -> Response:
        filters, query = _selection(request)
        offset = max(_int(request.query_params.get("offset"), 0), 0)
        page = store.page(filters, query, offset, PAGE_SIZE)
        for row in page.rows:
            row["decision"] = store.verdict_of(row["id"])
        return review.render(
            request,
            "browse.html",
            page=page,
            filters=filters,
            query=query,
            facets=store.facets(),
            state=_state(filters, query),
            filter_names=FILTERS,
            saved=_saved(request),
            prev_offset=max(offset - PAGE_SIZE, 0) if offset > 0 else None,
            next_offset=offset + PAGE_SIZE if offset + PAGE_SIZE < page.total else None,
        )

    async def record(request: Request) -> Response:
        found = store.get(request.path_params["record_id"])
        if found is None:
            return _no_such_record()
        return _record_page(review, request, found)

    async def decide(request: Request) -> Response:
        found = store.get(request.path_params["record_id"])
        if found is None:
            return _no_such_record()
        form = await _checked_form(review, request)
        if isinstance(form, Response):
            return form
        verdict = str(form.get("verdict", ""))
        if verdict not in VERDICTS:
            return PlainTextResponse(f"verdict must be one of {', '.join(VERDICTS)}", 400)
        output = str(form.get("output", "")) if verdict == "fix" else None
        decision, problems = log.append(
            found, verdict, reason=str(form.get("reason", "")), output=output, note=str(form.get("note", ""))
        )
        if decision is None:
            return _record_page(review, request, found, problems=problems, typed=form, status=422)
        store.remember(decision)
        filters, query = _selection(request)
        _, after = store.neighbours(found["id"], filters, query)
        saved = {"saved": verdict, "saved_id": found["id"]}
        target = f"/record/{after}" if after else "/"
        return RedirectResponse(f"{target}?{_state(filters, query, **saved)}", status_code=303)

    async def blind_next(request: Request) -> Response:
        filters, query = _selection(request, BLIND_DEFAULTS)
        upcoming = store.next_unannotated(review.reviewer, filters, query)
        if upcoming is None:
            return review.render(request, "blind_done.html", filters=filters, state=_state(filters, query))
        return RedirectResponse(f"/blind/{upcoming}?{_state(filters, query)}", status_code=303)

    async def blind(request: Request) -> Response:
        found = store.get(request.path_params["record_id"])
        if found is None:
            return _no_such_record()
        filters, query = _selection(request, BLIND_DEFAULTS)
        if store.annotated_by(found["id"], review.reviewer) is not None:
            return RedirectResponse(f"/blind-result/{found['id']}?{_state(filters, query)}", status_code=303)
        if request.method == "GET":
            return _blind_page(review, request, found, filters, query)
        form = await _checked_form(review, request)
        if isinstance(form, Response):
            return form
        decision, problems = log.append(found, ANNOTATE, output=str(form.get("output", "")))
        if decision is None:
            return _blind_page(review, request, found, filters, query, problems=problems, typed=form, status=422)
        store.remember(decision)
        return RedirectResponse(f"/blind-result/{found['id']}?{_state(filters, query)}", status_code=303)

    async def blind_result(request: Request) -> Response:
        found = store.get(request.path_params["record_id"])
        if found is None:
            return _no_such_record()
        filters, query = _selection(request, BLIND_DEFAULTS)
        mine = store.annotated_by(found["id"], review.reviewer)
        if mine is None:  # the reference only after this reviewer's own answer is saved
            return RedirectResponse(f"/blind/{found['id']}?{_state(filters, query)}", status_code=303)
        spec = store.catalog.get(found["task"])
        return review.render(
            request,
            "blind_result.html",
            record=found,
            spec=spec,
            mine=_readable_output(spec, mine["output"]),
            reference=_readable_output(spec, found["output"]),
            score=score(spec, mine["output"], found["output"]),
            state=_state(filters, query),
        )

    async def report(request: Request) -> Response:
        store.reload_reviews()  # every reviewer's files as they are now, with any problem they have
        references = store.records.filter(pl.col("status") == PUBLISHED)
        scored = scored_annotations(latest_round(store.reviews.annotations), references, store.catalog)
        return review.render(
            request,
            "report.html",
            report=store.report,
            counts=store.counts(),
            agreement=agreement_table(scored, store.catalog),
            reviews=store.reviews,
            name=store.name,
        )

    async def to_blind(request: Request) -> Response:
        return RedirectResponse("/blind", status_code=303)

    open_pages = {"browse": browse, "record": record, "decide": decide, "report": report}
    if blind_only:
        open_pages = dict.fromkeys(open_pages, to_blind)
    routes = [
        Route("/", open_pages["browse"]),
        Route("/record/{record_id:path}", open_pages["record"]),
        Route("/decide/{record_id:path}", open_pages["decide"], methods=["POST"]),
        Route("/report", open_pages["report"]),
        Route("/blind", blind_next),
        Route("/blind/{record_id:path}", blind, methods=["GET", "POST"]),
        Route("/blind-result/{record_id:path}", blind_result),
        # Only the files of the app's own static folder; Starlette refuses paths that leave it.
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(Guard, token=token)])


def _no_such_record() -> Response:
    return PlainTextResponse("no such record in this build", 404)


async def _checked_form(review: ReviewApp, request: Request) -> Any:
    """The POSTed form, or a 403 when it lacks the app's CSRF token or comes from another origin."""
    form = await request.form()
    if not same_origin(request) or not same_token(str(form.get(CSRF_FIELD, "")), review.csrf):
        return PlainTextResponse("refused: this form did not come from the review app's own page", 403)
    return form


def _record_page(
    review: ReviewApp,
    request: Request,
    found: dict[str, Any],
    *,
    problems: list[Any] | None = None,
    typed: Any = None,
    status: int = 200,
) -> HTMLResponse:
    store = review.store
    filters, query = _selection(request)
    before, after = store.neighbours(found["id"], filters, query)
    spec = store.catalog.get(found["task"]) if found["task"] in store.catalog else None
    annotations = (
        [
            {**a, "readable": _readable_output(spec, a["output"]), "score": score(spec, a["output"], found["output"])}
            for a in store.annotations_of(found["id"])
        ]
        if spec is not None and found["status"] == PUBLISHED
        else []
    )
    return review.render(
        request,
        "record.html",
        status=status,
        record=found,
        spec=spec,
        output=_readable_output(spec, found["output"]),
        editable=typed["output"] if typed and "output" in typed else _editable(spec, found["output"]),
        typed=typed or {},
        problems=problems or [],
        decision=store.verdict_of(found["id"]),
        annotations=annotations,
        provenance=_json_or_text(found.get("provenance")),
        before=before,
        after=after,
        state=_state(filters, query),
        saved=_saved(request),
    )


def _blind_page(
    review: ReviewApp,
    request: Request,
    found: dict[str, Any],
    filters: dict[str, str],
    query: str,
    *,
    problems: list[Any] | None = None,
    typed: Any = None,
    status: int = 200,
) -> HTMLResponse:
    spec = review.store.catalog.get(found["task"])
    labels = spec.labels(spec.label_set, found["lang"]) if spec.label_set else []
    return review.render(
        request,
        "blind.html",
        status=status,
        # Only what the annotator may see: never the output, the provenance or another reviewer's answer.
        record={k: found[k] for k in ("id", "task", "lang", "instruction", "input")},
        spec=spec,
        labels=labels,
        skeleton=typed["output"] if typed and "output" in typed else blank_output(spec),
        problems=problems or [],
        state=_state(filters, query),
    )


def _readable_output(spec: TaskSpec | None, output: str | None) -> dict[str, Any]:
    """An output as the templates show it: structured outputs parsed into fields and lists, text as text."""
    if output is None:
        return {"text": ""}
    if spec is not None and spec.is_structured:
        try:
            return {"value": parse_output(spec, output)}
        except ValueError:
            pass
    return {"text": output}


def _editable(spec: TaskSpec | None, output: str | None) -> str:
    """The output in the fix box: structured outputs indented, one field a line."""
    if spec is not None and spec.is_structured and output:
        try:
            return json.dumps(json.loads(output), ensure_ascii=False, indent=2)
        except json.JSONDecodeError:
            return output
    return output or ""


def blank_output(spec: TaskSpec) -> str:
    """A starting point for a blind annotation that gives nothing away: the schema's keys with null values."""
    schema = spec.output.schema_
    if schema.get("type") == "object" and "properties" in schema:
        return json.dumps(dict.fromkeys(schema["properties"]), ensure_ascii=False, indent=2)
    if schema.get("type") == "array":
        return "[]"
    return ""


def _json_or_text(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return text


def _selection(request: Request, defaults: dict[str, str] | None = None) -> tuple[dict[str, str], str]:
    params = request.query_params
    filters = {name: params.get(name, (defaults or {}).get(name, "")) for name in FILTERS}
    return {k: v for k, v in filters.items() if v}, params.get("q", "")


def _state(filters: dict[str, str], query: str, **extra: str) -> str:
    return urlencode({**filters, **({"q": query} if query else {}), **extra})


def _saved(request: Request) -> dict[str, str] | None:
    verdict, record = request.query_params.get("saved"), request.query_params.get("saved_id")
    return {"verdict": verdict, "record": record} if verdict and record else None


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default
