"""Triage as an analyst does it: the alerts list, a severity filter, a bulk status change, an alert's events
and context, then resolving and assigning it, and the list showing the change."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

ANALYST = ("Analyst", "sam.rivera@example.com", "Sam Rivera")
ROOT_LOGIN = "AWS root user signed in to the console of account [111122223333] from [203.0.113.77]"


def test_analyst_triages_alerts(signed_in: Callable[..., Page], shot: Callable[[Page, str], Path]) -> None:
    page = signed_in(*ANALYST)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    expect(page.get_by_role("heading", name="Alerts", level=1)).to_be_visible()
    expect(page.locator("#alerts-count")).to_have_text(re.compile(r"\d+ alerts match\."))
    everything = int(page.locator("#alerts-count").inner_text().split()[0])
    rows = page.locator("table.data tbody tr")
    expect(rows.first).to_be_visible()
    shot(page, "alerts")

    filters = page.get_by_role("form", name="Filter alerts")
    filters.get_by_label("Critical").check()
    filters.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"severity=CRITICAL"))
    critical = int(page.locator("#alerts-count").inner_text().split()[0])
    assert 0 < critical < everything
    expect(rows).to_have_count(critical)
    expect(rows.locator(".sev")).to_have_text(["CRITICAL"] * critical, ignore_case=True)

    # Tick the root-login alert and mark it TRIAGED from the bulk bar.
    page.get_by_role("checkbox", name=f"Select: {ROOT_LOGIN}").check()
    bulk = page.get_by_role("group", name="Triage the selected alerts")
    bulk.get_by_label("Status").select_option("TRIAGED")
    bulk.get_by_role("button", name="Apply").click()
    expect(page.locator(".flash")).to_be_visible()
    expect(page).to_have_url(re.compile(r"severity=CRITICAL"))  # back on the same filtered list
    row = rows.filter(has=page.get_by_role("link", name=ROOT_LOGIN, exact=True))
    expect(row.locator(".badge")).to_have_text("TRIAGED", ignore_case=True)
    expect(rows.locator(".badge", has_text=re.compile("^triaged$", re.I))).to_have_count(1)

    # The alert itself: what happened, in the rule's context and the matching lake events.
    row.get_by_role("link", name=ROOT_LOGIN).click()
    expect(page.get_by_role("heading", name=ROOT_LOGIN, level=1)).to_be_visible()
    about = page.locator("section[aria-labelledby=about]")
    expect(about).to_contain_text("Onca.AWS.RootConsoleLogin")
    expect(about).to_contain_text("AWS.CloudTrail")
    context = page.locator("section[aria-labelledby=context]")
    expect(context.get_by_role("row", name=re.compile(r"^sourceIPAddress\s+203\.0\.113\.77$"))).to_be_visible()
    expect(context.get_by_role("row", name=re.compile(r"^mfa_used\s+No$"))).to_be_visible()
    events = page.locator("section[aria-labelledby=events]")
    expect(events.locator("details.event")).not_to_have_count(0)
    first = events.locator("details.event").first
    first.locator("summary").click()
    expect(first.locator("pre")).to_contain_text('"eventName": "ConsoleLogin"')
    expect(first.locator("pre")).to_contain_text('"sourceIPAddress": "203.0.113.77"')
    deliveries = page.locator("section[aria-labelledby=deliveries]")
    expect(deliveries).to_contain_text("slack-secops")  # CRITICAL alerts go to Slack and PagerDuty
    expect(deliveries).to_contain_text("pagerduty-oncall")
    shot(page, "alert-detail")

    triage = page.locator("section[aria-labelledby=triage]")
    triage.get_by_label("Status").select_option("RESOLVED")
    triage.get_by_label("Assignee").fill(ANALYST[1])
    triage.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_be_visible()
    expect(page.get_by_role("heading", name=ROOT_LOGIN, level=1)).to_be_visible()
    expect(triage.get_by_label("Status")).to_have_value("RESOLVED")
    expect(triage.get_by_label("Assignee")).to_have_value(ANALYST[1])

    page.get_by_role("link", name="← Alerts").click()
    # The samples raise more alerts than one page shows: find this one as a person would, by its title.
    filters.get_by_label("Title contains").fill("root user signed in")
    filters.get_by_role("button", name="Filter").click()
    row = rows.filter(has=page.get_by_role("link", name=ROOT_LOGIN, exact=True))
    expect(row.locator(".badge")).to_have_text("RESOLVED", ignore_case=True)
    expect(row).to_contain_text(ANALYST[1])
