"""Detections as an analyst manages them: filter the list, open one, read its code, switch it off (it shows
as off, in the list too) and on again."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

ANALYST = ("Analyst", "lee.chen@example.com", "Lee Chen")
DETECTION = "Onca.AWS.IAMAdminPolicyAttached"


def test_analyst_disables_and_enables_a_detection(signed_in: Callable[..., Page],
                                                  shot: Callable[[Page, str], Path]) -> None:
    page = signed_in(*ANALYST)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Detections").click()
    expect(page.get_by_role("heading", name="Detections", level=1)).to_be_visible()
    count = page.locator("#detections-count")
    expect(count).to_have_text(re.compile(r"^\d+ detections match, \d+ running\.$"))
    everything = int(count.inner_text().split()[0])
    rows = page.locator("table.detections tbody tr")
    shot(page, "detections")

    filters = page.get_by_role("form", name="Filter detections")
    filters.get_by_label("Log type").select_option("AWS.CloudTrail")
    filters.get_by_label("Search").fill("IAM")
    filters.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"log_type=AWS.CloudTrail"))
    matching = int(count.inner_text().split()[0])
    assert 0 < matching < everything
    expect(rows).to_have_count(matching)
    for log_types in rows.locator("td:nth-child(4)").all_inner_texts():
        assert "AWS.CloudTrail" in log_types

    rows.filter(has=page.get_by_text(DETECTION, exact=True)).get_by_role("link").click()
    expect(page.locator("dl.kv")).to_contain_text(DETECTION)
    code = page.locator("#code pre.code").first
    expect(code).to_contain_text("def rule(event):")
    expect(code).to_contain_text("AdministratorAccess")
    state = page.locator("dl.kv dd").filter(has=page.locator(".badge"))
    expect(state).to_contain_text("running")
    shot(page, "detection-detail")

    page.get_by_role("button", name=f"Disable {DETECTION}").click()
    expect(page.locator(".flash")).to_be_visible()
    expect(state).to_contain_text("disabled by an operator")
    expect(page.get_by_role("button", name=f"Enable {DETECTION}")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Detections").click()
    page.get_by_role("form", name="Filter detections").get_by_label("State").select_option("false")
    page.get_by_role("form", name="Filter detections").get_by_role("button", name="Filter").click()
    off = rows.filter(has=page.get_by_text(DETECTION, exact=True))
    expect(off).to_contain_text("disabled by an operator")
    off.get_by_role("button", name=f"Enable {DETECTION}").click()
    expect(page.locator(".flash")).to_be_visible()
    expect(rows.filter(has=page.get_by_text(DETECTION, exact=True))).to_have_count(0)  # running again

    page.get_by_role("link", name="Clear").click()
    running = rows.filter(has=page.get_by_text(DETECTION, exact=True))
    expect(running.locator(".badge")).to_have_text("running")
    expect(running.get_by_role("button", name=f"Disable {DETECTION}")).to_be_visible()
