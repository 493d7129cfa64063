"""The review app in a real browser (Debian's Chromium through chromedriver, which `make test` installs): a reviewer
works through a record of every output format with the keyboard, fixes one and rejects one, and the next build
applies both; blind annotation never shows the reference before the answer is saved; hostile records stay text."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog import Catalog
from catalog.settings import Settings
from pipeline.build import build
from tests.review_support import FORMAT_TASKS, HOSTILE_INPUT, IMAGE, SCRIPT, built_folder, hostile_ids, serving
from validation.release_data import read_release
from validation.reviews import read_reviews

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (make test installs them)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    # The driver is given, so Selenium Manager never looks for one on the network.
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.fixture
def folder(tmp_path: Path, catalog: Catalog) -> Settings:
    return built_folder(tmp_path, catalog)


def wait_for(driver: webdriver.Chrome, css: str) -> None:
    WebDriverWait(driver, 20).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def press(driver: webdriver.Chrome, *keys: str) -> None:
    webdriver.ActionChains(driver).send_keys(*keys).perform()


def save_with_ctrl_enter(driver: webdriver.Chrome) -> None:
    webdriver.ActionChains(driver).key_down(Keys.CONTROL).send_keys(Keys.ENTER).key_up(Keys.CONTROL).perform()


def saved_note(driver: webdriver.Chrome) -> str:
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".saved"))
    return driver.find_element(By.CSS_SELECTOR, ".saved").text


def open_first(driver: webdriver.Chrome, base: str, task: str) -> str:
    driver.get(f"{base}?task={task}&split=train")
    wait_for(driver, "a.rec")
    link = driver.find_element(By.CSS_SELECTOR, "a.rec")
    record = link.text
    link.click()
    wait_for(driver, "#accept-form")
    return record


def test_a_reviewer_works_through_every_format_by_keyboard_and_the_next_build_applies_fix_and_reject(
    browser: webdriver.Chrome, folder: Settings, catalog: Catalog
) -> None:
    with serving(catalog, folder, "maria") as base:
        accepted = []
        for task in FORMAT_TASKS.values():
            record = open_first(browser, base, task)
            assert browser.find_element(By.ID, "output").text.strip()  # every format renders something readable
            press(browser, "a")
            assert saved_note(browser) == f"Saved: accept on {record}"
            accepted.append(record)
        # A structured output renders as fields, and the fix is checked against the schema before it is saved.
        fields = open_first(browser, base, FORMAT_TASKS["fields"])
        assert browser.find_elements(By.CSS_SELECTOR, "#output dl.fields dt")
        press(browser, "f")
        box = browser.switch_to.active_element
        assert box.get_attribute("id") == "fix-output"
        original = json.loads(box.get_attribute("value"))  # the output, indented for editing
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys('{"symptom": "a headache"}')
        save_with_ctrl_enter(browser)
        wait_for(browser, ".problems")
        assert "duration" in browser.find_element(By.CSS_SELECTOR, ".problems").text
        box = browser.find_element(By.ID, "fix-output")
        assert json.loads(box.get_attribute("value")) == {"symptom": "a headache"}  # what was typed is kept
        fixed = {**original, "symptom": "a fixed headache"}
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(json.dumps(fixed))
        save_with_ctrl_enter(browser)
        assert saved_note(browser) == f"Saved: fix on {fields}"
        # A rejection needs a reason: the field takes the key, Enter saves.
        rejected = open_first(browser, base, FORMAT_TASKS["label"])
        press(browser, "r")
        reason = browser.switch_to.active_element
        assert reason.get_attribute("id") == "reject-reason"
        reason.send_keys("the intent is really a complaint", Keys.ENTER)
        assert saved_note(browser) == f"Saved: reject on {rejected}"
        # j and k walk the filtered records.
        browser.get(f"{base}record/{rejected}?task={FORMAT_TASKS['label']}")
        wait_for(browser, "#next")
        press(browser, "j")
        WebDriverWait(browser, 20).until(lambda d: rejected not in d.find_element(By.TAG_NAME, "h1").text)
        press(browser, "k")
        WebDriverWait(browser, 20).until(lambda d: rejected in d.find_element(By.TAG_NAME, "h1").text)

    lines = [json.loads(line) for line in (folder.reviews_dir / "maria.jsonl").read_text("utf-8").splitlines()]
    assert [d["verdict"] for d in lines] == ["accept"] * len(FORMAT_TASKS) + ["fix", "reject"]
    assert not read_reviews(folder.reviews_dir, catalog).problems

    result = build(catalog, folder)
    published = read_release(result.release, catalog)
    output = published.filter(published["id"] == fields)["output"].item()
    assert json.loads(output) == fixed
    review = json.loads(published.filter(published["id"] == fields)["provenance"].item())["review"]
    assert (review["verdict"], review["reviewer"]) == ("fix", "maria")
    assert rejected not in published["id"].to_list()
    quarantine = [json.loads(line) for line in result.quarantine.read_text("utf-8").splitlines()]
    assert [q["reason"] for q in quarantine if q["id"] == rejected] == ["review_rejected"]

    with serving(catalog, folder, "maria") as base:  # and the app shows what the build did
        browser.get(f"{base}record/{rejected}")
        wait_for(browser, ".quarantine")
        assert "review_rejected" in browser.find_element(By.CSS_SELECTOR, ".quarantine").text
        assert "the intent is really a complaint" in browser.find_element(By.CSS_SELECTOR, ".quarantine").text
        browser.get(f"{base}record/{fields}")
        wait_for(browser, "#output")
        assert "a fixed headache" in browser.find_element(By.ID, "output").text


def test_blind_mode_shows_the_reference_only_after_the_answer_is_saved(
    browser: webdriver.Chrome, folder: Settings, catalog: Catalog
) -> None:
    release = read_release(folder.build_dir / "anytasktune", catalog)
    references = dict(zip(release["id"].to_list(), release["output"].to_list(), strict=True))
    reply_task = FORMAT_TASKS["text"]
    with serving(catalog, folder, "ken") as base:
        browser.get(f"{base}blind?task={reply_task}")
        wait_for(browser, "#annotate-form")
        record = browser.current_url.split("/blind/")[1].split("?")[0]
        assert release.filter(release["id"] == record)["split"].item() == "test"  # the benchmark by default
        assert references[record] not in browser.page_source
        assert not browser.find_elements(By.ID, "reference")
        # Asking for the result page first leads back to the question.
        browser.get(f"{base}blind-result/{record}?task={reply_task}")
        wait_for(browser, "#annotate-form")
        assert references[record] not in browser.page_source
        # The answer box has focus: type and save.
        answer = browser.switch_to.active_element
        assert answer.get_attribute("id") == "annotate-output"
        answer.send_keys("That sounds hard. What has helped you on days like this before?")
        save_with_ctrl_enter(browser)
        wait_for(browser, "#reference")
        assert references[record] in browser.find_element(By.ID, "reference").text
        assert "rouge_l against the reference" in browser.find_element(By.ID, "verdict").text

        # A label task: the answer is chosen from the task's labels; the right one scores 1.
        label_task = FORMAT_TASKS["label"]
        browser.get(f"{base}blind?task={label_task}")
        wait_for(browser, "#annotate-form")
        labelled = browser.current_url.split("/blind/")[1].split("?")[0]
        assert not browser.find_elements(By.ID, "reference")
        choice = webdriver.support.select.Select(browser.find_element(By.ID, "annotate-output"))
        choice.select_by_value(references[labelled])
        browser.find_element(By.CSS_SELECTOR, "#annotate-form button").click()
        wait_for(browser, "#verdict")
        assert "accuracy against the reference: 1.00" in browser.find_element(By.ID, "verdict").text

        # The record view now shows the second annotation beside the reference, and the report its agreement.
        browser.get(f"{base}record/{labelled}")
        wait_for(browser, ".annotation")
        assert "ken" in browser.find_element(By.CSS_SELECTOR, ".annotation").text
        browser.get(f"{base}report")
        wait_for(browser, "table.agreement")
        rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "table.agreement tbody tr")]
        assert any(row.startswith(f"{label_task} en 1 1.00") for row in rows), rows
    reviews = read_reviews(folder.reviews_dir, catalog)
    assert sorted(reviews.annotations["record"].to_list()) == sorted([record, labelled])
    assert reviews.decisions.is_empty()  # annotating decides nothing about the record


def test_hostile_records_render_as_text_everywhere(
    browser: webdriver.Chrome, folder: Settings, catalog: Catalog
) -> None:
    published, quarantined = hostile_ids()
    with serving(catalog, folder, "lin") as base:
        for page in (
            f"{base}?q=onerror",
            f"{base}record/{published}",
            f"{base}record/{quarantined}",
            f"{base}?status=quarantined",
            f"{base}report",
        ):
            browser.get(page)
            wait_for(browser, "main")
            assert browser.execute_script("return window.__pwned === undefined"), page
            assert not browser.find_elements(By.CSS_SELECTOR, "main img, main script"), page
        browser.get(f"{base}record/{published}")
        wait_for(browser, "#input")
        assert browser.find_element(By.ID, "input").text == HOSTILE_INPUT
        assert IMAGE in browser.find_element(By.ID, "output").text
        assert SCRIPT in browser.find_element(By.CSS_SELECTOR, ".meta").text  # the generator's name too
        browser.get(f"{base}record/{quarantined}")
        wait_for(browser, ".quarantine")
        assert SCRIPT in browser.find_element(By.ID, "input").text
        assert browser.execute_script("return window.__pwned === undefined")


def test_off_loopback_the_browser_needs_the_printed_link(
    browser: webdriver.Chrome, folder: Settings, catalog: Catalog
) -> None:
    token = "a-token-only-the-link-holds"
    with serving(catalog, folder, "noor", host="0.0.0.0", token=token) as link:
        base = link.split("?")[0]
        browser.delete_all_cookies()
        browser.get(f"{base}?task=fin_intent")
        assert "needs its token" in browser.find_element(By.TAG_NAME, "body").text
        assert not browser.find_elements(By.CSS_SELECTOR, "a.rec")
        browser.get(link)  # the link it printed: the token becomes a cookie and leaves the address bar
        wait_for(browser, "a.rec")
        assert token not in browser.current_url
        record = open_first(browser, base, FORMAT_TASKS["label"])
        press(browser, "a")
        assert saved_note(browser) == f"Saved: accept on {record}"
        browser.delete_all_cookies()
        browser.get(f"{base}record/{record}")
        assert "needs its token" in browser.find_element(By.TAG_NAME, "body").text
