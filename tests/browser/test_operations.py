"""The administrator's pages: sources (adding one shows its token once), destinations (secrets never shown),
the deployment, users and the audit log of what people did."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

ADMIN = ("Admin", "dana.whitfield@example.com", "Dana Whitfield")


def test_admin_pages(signed_in: Callable[..., Page], shot: Callable[[Page, str], Path]) -> None:
    page = signed_in(*ADMIN)
    nav = page.get_by_role("navigation", name="Main")

    nav.get_by_role("link", name="Sources").click()
    expect(page.get_by_role("heading", name="Sources", level=1)).to_be_visible()
    cloudtrail = page.get_by_role("row").filter(has=page.get_by_role("link", name="demo-aws-cloudtrail", exact=True))
    expect(cloudtrail).to_contain_text("AWS.CloudTrail")
    shot(page, "sources")

    page.get_by_label("Name").fill("cloudtrail-org")
    page.get_by_label("Kind").select_option("http")
    page.get_by_label("Log types").fill("AWS.CloudTrail")
    page.get_by_role("button", name="Add source").click()
    expect(page.get_by_role("heading", name="Source cloudtrail-org", level=1)).to_be_visible()
    token = page.locator(".secret").inner_text().strip()
    assert len(token) >= 32
    page.get_by_role("link", name="All sources").click()
    page.get_by_role("link", name="cloudtrail-org", exact=True).click()
    expect(page.get_by_role("heading", name="Source cloudtrail-org", level=1)).to_be_visible()
    expect(page.locator(".secret")).to_have_count(0)  # shown once
    expect(page.locator("main")).not_to_contain_text(token)
    page.get_by_role("link", name="All sources").click()
    page.get_by_role("link", name="demo-aws-cloudtrail", exact=True).click()
    expect(page.get_by_role("heading", name="Source demo-aws-cloudtrail", level=1)).to_be_visible()
    expect(page.locator(".card", has_text="Events (all)").locator(".value")).not_to_have_text("0")
    shot(page, "source-detail")

    nav.get_by_role("link", name="Destinations").click()
    expect(page.get_by_role("heading", name="Destinations", level=1)).to_be_visible()
    for name, kind in (("slack-secops", "slack"), ("pagerduty-oncall", "pagerduty")):
        row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=name, exact=True))
        expect(row).to_contain_text(kind)
        expect(row).to_contain_text("secrets stored encrypted, never shown")
    expect(page.locator("main")).not_to_contain_text("XXXXXXXXXXXXXXXX")  # the webhook's secret part
    expect(page.locator("main")).not_to_contain_text("0123456789abcdef0123456789abcdef")  # the routing key
    shot(page, "destinations")

    nav.get_by_role("link", name="Deployment").click()
    expect(page.get_by_role("heading", name="Deployment", level=1)).to_be_visible()
    expect(page.locator(".card", has_text="Status")).to_contain_text("CREATE_COMPLETE")
    shot(page, "deployment")

    nav.get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", name="Users and roles", level=1)).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=ADMIN[1])).to_contain_text("Admin")
    shot(page, "users")

    nav.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_visible()
    added = page.get_by_role("row").filter(has_text="cloudtrail-org").filter(has_text=ADMIN[1])
    expect(added.first).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=re.compile(r"user\.login")).first).to_be_visible()
    shot(page, "audit")
