"""The Detections pages: list with filters and toggles, a detection's page (escaped code, tests, pasted event)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from onca.detections.enablement import enabled_content

from .conftest import db
from .test_detections_api import HOSTILE_PY, KEY_FOR_OTHER_USER, OWN, OWN_KEY, audit_actions, install_rule


@pytest.fixture
def analyst(client: Callable[..., TestClient]) -> TestClient:
    return client("Analyst")


def test_list_page_filters(analyst: TestClient, web_home: Path) -> None:
    install_rule(web_home, "Sandbox.Hostile", HOSTILE_PY, name="Hostile sandbox rule")
    page = analyst.get("/detections")
    assert page.status_code == 200 and f'href="/detections/{OWN}"' in page.text
    assert "Sandbox.Hostile" in page.text and "Older &rarr;</span>" in page.text  # all on one page of 50
    filtered = analyst.get("/detections", params={"tag": "Sandbox", "severity": "High"})
    assert "1 detection match, 1 running" in filtered.text and OWN not in filtered.text
    assert ">Hostile sandbox rule</a>" in filtered.text
    assert 'action="/detections/Sandbox.Hostile/disable"' in filtered.text  # an Analyst may toggle
    cloudtrail = analyst.get("/detections", params={"log_type": "AWS.CloudTrail", "text": "access key"})
    assert OWN in cloudtrail.text and "Sandbox.Hostile" not in cloudtrail.text
    assert 'option value="AWS.CloudTrail" selected' in cloudtrail.text
    assert analyst.get("/detections", params={"page": 2}).text.count('href="/detections/') == 0
    assert analyst.get("/detections", params={"page": 0}).status_code == 422


def test_toggle_from_the_list_with_csrf(client: Callable[..., TestClient], app: FastAPI, web_home: Path) -> None:
    analyst = client("Analyst")

    def running() -> bool:
        with db(app) as session:
            return OWN in {item.id for item in enabled_content(web_home, session).items}

    back = "/detections?text=access+key&page=1"
    off = analyst.post(f"/detections/{OWN}/disable", data={"csrf_token": analyst.csrf_token, "back": back},
                       headers={"X-CSRF-Token": ""}, follow_redirects=False)
    assert off.status_code == 303 and off.headers["location"] == back and not running()
    shown = analyst.get(back)
    assert "disabled: workers stop running it" in shown.text and "disabled by an operator" in shown.text
    assert f'action="/detections/{OWN}/enable"' in shown.text
    forged = TestClient(app, cookies=analyst.cookies)  # the session cookie without its CSRF token
    assert forged.post(f"/detections/{OWN}/enable", data={"back": back}).status_code == 403 and not running()
    away = analyst.post(f"/detections/{OWN}/enable", data={"back": "//evil.example.com/"}, follow_redirects=False)
    assert away.headers["location"] == f"/detections/{OWN}" and running()  # no open redirect

    reader = client("ReadOnly")
    assert "/disable" not in reader.get("/detections").text  # no toggles for those who may not use them
    assert reader.post(f"/detections/{OWN}/disable", follow_redirects=False).status_code == 403 and running()


def test_code_is_escaped_and_numbered(analyst: TestClient, web_home: Path, app: FastAPI) -> None:
    install_rule(web_home, "Sandbox.Hostile", HOSTILE_PY)
    page = analyst.get("/detections/Sandbox.Hostile")
    assert page.status_code == 200
    assert "<script>" not in page.text and "</pre><script>" not in page.text
    assert '# &lt;/pre&gt;&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;' in page.text
    code = re.search(r'<pre class="code"><code>(.*?)</code></pre>', page.text, re.S)
    assert code is not None
    lines = code.group(1).splitlines()
    assert len(lines) == len(HOSTILE_PY.splitlines())
    assert lines[1] == '<span class="ln">   2</span>  def rule(event):'
    assert [r.target for r in audit_actions(app, "detection.read")] == ["Sandbox.Hostile"]


def test_run_tests_button(analyst: TestClient, web_home: Path) -> None:
    page = analyst.get(f"/detections/{OWN}")
    assert "Key created for another user" in page.text and f'action="/detections/{OWN}/tests#tests"' in page.text
    run = analyst.post(f"/detections/{OWN}/tests")
    assert run.status_code == 200 and "3 passed, 0 failed" in run.text
    install_rule(web_home, "Sandbox.Hostile", HOSTILE_PY)
    failed = analyst.post("/detections/Sandbox.Hostile/tests")
    assert "0 passed, 1 failed" in failed.text and "KeyError: &#39;missing&#39;" in failed.text
    assert "checked ListUsers" in failed.text  # what the rule printed


def test_pasted_event(analyst: TestClient) -> None:
    page = analyst.get(f"/detections/{OWN}")
    assert "eventName" in page.text and "<textarea" in page.text  # the first test's event as a starting point
    hit = analyst.post(f"/detections/{OWN}/event", data={"event": json.dumps(KEY_FOR_OTHER_USER)})
    assert hit.status_code == 200 and "an alert would be raised" in hit.text
    assert "[ci-runner] created an access key for another IAM user [finance-admin]" in hit.text
    miss = analyst.post(f"/detections/{OWN}/event", data={"event": json.dumps(OWN_KEY)})
    assert miss.status_code == 200 and "no match" in miss.text and "would be raised" not in miss.text
    broken = analyst.post(f"/detections/{OWN}/event", data={"event": '{"eventName": </textarea><script>'})
    assert broken.status_code == 422 and "the event is not valid JSON" in broken.text
    assert "&lt;/textarea&gt;&lt;script&gt;" in broken.text and "<script>" not in broken.text
    listed = analyst.post(f"/detections/{OWN}/event", data={"event": "[1]"})
    assert listed.status_code == 422 and "must be a JSON object" in listed.text


@pytest.mark.parametrize("role", ["Support", "Operations"])
def test_operator_roles_get_403_on_every_page(role: str, client: Callable[..., TestClient]) -> None:
    operator = client(role)
    assert "/detections" not in operator.get("/account").text  # not in their navigation either
    for method, url, data in [("GET", "/detections", None), ("GET", f"/detections/{OWN}", None),
                              ("POST", f"/detections/{OWN}/enable", {}), ("POST", f"/detections/{OWN}/disable", {}),
                              ("POST", f"/detections/{OWN}/tests", {}),
                              ("POST", f"/detections/{OWN}/event", {"event": json.dumps(KEY_FOR_OTHER_USER)})]:
        answer = operator.request(method, url, data=data, follow_redirects=False)
        assert answer.status_code == 403 and "def rule" not in answer.text, (role, method, url)
