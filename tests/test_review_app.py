"""The review app over real HTTP on loopback: what it is safe against (a token off loopback, foreign Hosts, cross-site
posts, paths outside its folder), what it refuses to save (an output the task's schema rejects), and that what it
saves is a decision the build and `validate` accept."""

from __future__ import annotations

import html
import http.client
import json
import re
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from typer.testing import CliRunner

from catalog import Catalog
from catalog.settings import DATA_DIR_VARIABLE, Settings
from cli.main import app
from review.security import ExposureError
from review.server import review_server
from tests.conftest import DATA
from tests.review_support import FORMAT_TASKS, built_folder, hostile_ids, serving
from validation.release_data import read_release
from validation.reviews import read_reviews


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog) -> Settings:
    return built_folder(tmp_path_factory.mktemp("review"), catalog)


def call(
    base: str, method: str, path: str, *, body: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """One request, redirects not followed: status, headers (lower-case names), body."""
    where = urlsplit(base)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    payload = urlencode(body) if body is not None else None
    sent = {"content-type": "application/x-www-form-urlencoded"} if body is not None else {}
    connection.request(method, path, body=payload, headers={**sent, **(headers or {})})
    response = connection.getresponse()
    answer = response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    connection.close()
    return answer


def first_record(base: str, task: str, **headers: str) -> str:
    status, _, page = call(base, "GET", f"/?task={task}&split=train", headers=headers)
    assert status == 200
    return re.findall(r'href="/record/([0-9a-f]{16})', page)[0]


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def lines_of(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_off_loopback_the_app_refuses_to_start_without_a_token_and_every_request_needs_it(
    folder: Settings, catalog: Catalog
) -> None:
    with pytest.raises(ExposureError, match="--token"):
        review_server(catalog, folder, name="anytasktune", reviewer="ana", host="0.0.0.0", port=0)
    token = "s3cret-token-for-the-test"
    with serving(catalog, folder, "ana", host="0.0.0.0", token=token) as link:
        base = link.split("?")[0]
        for path in ("/", "/report", f"/record/{hostile_ids()[0]}", "/blind", "/static/review.js"):
            status, _, body = call(base, "GET", path)
            assert status == 401, path
            assert "token" in body
            assert call(base, "GET", path, headers={"cookie": "review_token=wrong"})[0] == 401
        # The printed link trades the token for a cookie and drops it from the address.
        status, headers, _ = call(base, "GET", f"/?task=fin_intent&token={token}")
        assert status == 303
        assert headers["location"] == "/?task=fin_intent"
        assert "HttpOnly" in headers["set-cookie"] and "SameSite=strict" in headers["set-cookie"]
        cookie = headers["set-cookie"].split(";")[0]
        assert call(base, "GET", "/", headers={"cookie": cookie})[0] == 200
        assert call(base, "GET", "/", headers={"authorization": f"Bearer {token}"})[0] == 200
        # A post with the token still needs the page's CSRF token.
        record = first_record(base, "fin_intent", cookie=cookie)
        status, _, _ = call(base, "POST", f"/decide/{record}", body={"verdict": "accept"}, headers={"cookie": cookie})
        assert status == 403
    assert not (folder.reviews_dir / "ana.jsonl").exists()


def test_cli_refuses_a_public_address_without_a_token(folder: Settings) -> None:
    result = CliRunner().invoke(
        app, ["review", "--host", "0.0.0.0", "--reviewer", "ana"], env={DATA_DIR_VARIABLE: str(folder.data_dir)}
    )
    assert result.exit_code == 1
    assert "--token" in result.output


def test_cli_names_a_folder_with_no_build(tmp_path: Path) -> None:
    data = tmp_path / "empty"
    (data / "tasks").mkdir(parents=True)
    (data / "tasks" / "fin_intent.yaml").write_text((DATA / "tasks" / "fin_intent.yaml").read_text("utf-8"), "utf-8")
    result = CliRunner().invoke(app, ["review", "--reviewer", "ana"], env={DATA_DIR_VARIABLE: str(data)})
    assert result.exit_code == 1
    assert "anytasktune build" in result.output


def test_on_loopback_a_foreign_host_header_is_refused(folder: Settings, catalog: Catalog) -> None:
    with serving(catalog, folder, "ben") as base:
        assert call(base, "GET", "/")[0] == 200
        status, _, body = call(base, "GET", "/", headers={"host": "attacker.example:8809"})
        assert status == 400
        assert "Host" in body


def test_posts_without_the_csrf_token_or_from_another_origin_change_nothing(folder: Settings, catalog: Catalog) -> None:
    with serving(catalog, folder, "cai") as base:
        record = first_record(base, "fin_intent")
        _, headers, page = call(base, "GET", f"/record/{record}")
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        csrf = csrf_of(page)
        log = folder.reviews_dir / "cai.jsonl"
        refused = [
            ({"verdict": "accept"}, {}),
            ({"verdict": "accept", "csrf": "guessed"}, {}),
            ({"verdict": "accept", "csrf": csrf}, {"origin": "http://attacker.example"}),
            ({"verdict": "accept", "csrf": csrf}, {"origin": "null"}),
            ({"verdict": "accept", "csrf": csrf}, {"referer": "http://attacker.example/page"}),
        ]
        for body, headers in refused:
            status, _, _ = call(base, "POST", f"/decide/{record}", body=body, headers=headers)
            assert status == 403, (body, headers)
        assert not log.exists()
        status, headers, _ = call(
            base,
            "POST",
            f"/decide/{record}",
            body={"verdict": "accept", "csrf": csrf},
            headers={"origin": base.rstrip("/")},
        )
        assert status == 303
        assert "saved=accept" in headers["location"]
        assert [(d["record"], d["verdict"], d["reviewer"]) for d in lines_of(log)] == [(record, "accept", "cai")]


def test_no_path_outside_the_app_is_served(folder: Settings, catalog: Catalog) -> None:
    secret = folder.data_dir / "tasks" / "fin_intent.yaml"
    marker = secret.read_text(encoding="utf-8").splitlines()[0]
    with serving(catalog, folder, "dee") as base:
        assert call(base, "GET", "/static/review.css")[0] == 200
        for path in (
            "/static/../../pyproject.toml",
            "/static/%2e%2e/%2e%2e/pyproject.toml",
            "/static/..%2f..%2fapp.py",
            f"/static/{secret}",
            "/record/../../etc/passwd",
            f"/record/{secret}",
            "/record/%2e%2e%2f%2e%2e%2ftasks%2ffin_intent.yaml",
            "/blind/../../../etc/passwd",
        ):
            status, _, body = call(base, "GET", path)
            assert status in (400, 404), path
            assert marker not in body and "[project]" not in body and "root:" not in body


def test_a_fix_the_schema_rejects_is_not_saved_and_names_the_field(folder: Settings, catalog: Catalog) -> None:
    with serving(catalog, folder, "eva") as base:
        record = first_record(base, FORMAT_TASKS["fields"])
        _, _, page = call(base, "GET", f"/record/{record}")
        csrf = csrf_of(page)
        broken = json.dumps({"symptom": "headache"})  # the other keys are required
        status, _, page = call(
            base, "POST", f"/decide/{record}", body={"verdict": "fix", "output": broken, "csrf": csrf}
        )
        assert status == 422
        assert "Not saved" in page and "duration" in page
        assert "headache" in page  # what the reviewer typed is kept in the box
        status, _, page = call(
            base, "POST", f"/decide/{record}", body={"verdict": "fix", "output": "{not json", "csrf": csrf}
        )
        assert status == 422 and "JSON" in page
        status, _, page = call(base, "POST", f"/decide/{record}", body={"verdict": "reject", "csrf": csrf})
        assert status == 422 and "reason" in page
        label_record = first_record(base, FORMAT_TASKS["label"])
        status, _, page = call(
            base, "POST", f"/decide/{label_record}", body={"verdict": "fix", "output": "not a label", "csrf": csrf}
        )
        assert status == 422
    assert not (folder.reviews_dir / "eva.jsonl").exists()


def test_saved_decisions_and_annotations_are_valid_review_data(folder: Settings, catalog: Catalog) -> None:
    with serving(catalog, folder, "fay") as base:
        record = first_record(base, FORMAT_TASKS["object"])
        _, _, page = call(base, "GET", f"/record/{record}")
        csrf = csrf_of(page)
        fixed = re.search(r'<textarea name="output" id="fix-output"[^>]*>(.*?)</textarea>', page, re.S).group(1)
        value = json.loads(html.unescape(fixed))
        status, _, _ = call(
            base,
            "POST",
            f"/decide/{record}",
            body={"verdict": "fix", "output": json.dumps(value, indent=4), "csrf": csrf, "note": "same"},
        )
        assert status == 303
        status, headers, _ = call(base, "GET", "/blind?task=fin_intent")
        assert status == 303
        blind = headers["location"].split("?")[0].removeprefix("/blind/")
        spec = catalog.get("fin_intent")
        label = spec.labels(spec.label_set, "en")[0]
        status, headers, _ = call(base, "POST", f"/blind/{blind}?task=fin_intent", body={"output": label, "csrf": csrf})
        assert status == 303 and headers["location"].startswith(f"/blind-result/{blind}")
    lines = lines_of(folder.reviews_dir / "fay.jsonl")
    assert [d["verdict"] for d in lines] == ["fix", "annotate"]
    assert lines[0]["output"] == json.dumps(value, ensure_ascii=False, separators=(",", ":"))  # stored compact
    reviews = read_reviews(folder.reviews_dir, catalog)
    assert not [p for p in reviews.problems if "fay" in p.file]
    assert blind in reviews.annotations["record"].to_list()
    assert blind not in reviews.decisions["record"].to_list()  # an annotation is not a decision
    result = CliRunner().invoke(app, ["validate"], env={DATA_DIR_VARIABLE: str(folder.data_dir)})
    assert "fay.jsonl" not in result.output, result.output


def test_a_blind_only_server_shows_no_reference_before_the_answer(folder: Settings, catalog: Catalog) -> None:
    release = read_release(folder.build_dir / "anytasktune", catalog)
    outputs = dict(zip(release["id"].to_list(), release["output"].to_list(), strict=True))
    with serving(catalog, folder, "gus", blind_only=True) as base:
        record = release.filter(release["task"] == FORMAT_TASKS["text"])["id"][0]
        for path in ("/", f"/record/{record}", "/report", f"/?q={record}"):
            status, headers, body = call(base, "GET", path)
            assert (status, headers.get("location")) == (303, "/blind"), path
            assert outputs[record] not in html.unescape(body)
        status, _, _ = call(base, "POST", f"/decide/{record}", body={"verdict": "accept"})
        assert status == 303
        # Every page of the blind queue, in turn: none holds its record's reference until the answer is saved.
        status, _, page = call(base, "GET", f"/blind/{record}")
        assert status == 200
        assert (
            outputs[record] not in html.unescape(page) and 'href="/record/' not in page and 'href="/report"' not in page
        )
        status, headers, _ = call(base, "GET", f"/blind-result/{record}")
        assert status == 303 and headers["location"].startswith(f"/blind/{record}")
        status, _, _ = call(
            base,
            "POST",
            f"/blind/{record}",
            body={
                "output": "That sounds like a heavy week. What would help you most right now, talking it through or a plan?",
                "csrf": csrf_of(page),
            },
        )
        assert status == 303
        status, _, page = call(base, "GET", f"/blind-result/{record}")
        assert status == 200 and outputs[record] in html.unescape(page)
    assert not (folder.reviews_dir / "gus.jsonl").read_text("utf-8").count('"verdict":"accept"')
