"""A Support user keeps Onca running without seeing its data: no alerts, search or detections in the nav,
and the refusal page when typing their addresses."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from .conftest import Console

SUPPORT = ("Support", "vendor.support@example.com", "Vendor Support")


def test_support_cannot_reach_security_data(console: Console, signed_in: Callable[..., Page]) -> None:
    page = signed_in(*SUPPORT)
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(["Overview", "Deployment"])
    expect(page.get_by_role("heading", name="Open alerts")).to_have_count(0)
    expect(page.get_by_role("heading", name="Source health")).to_be_visible()  # health is theirs to see

    for path in ("/alerts", "/alerts?severity=CRITICAL", "/search?kind=ip&value=203.0.113.77",
                 "/detections", "/detections/Onca.AWS.RootConsoleLogin"):
        answer = page.goto(f"{console.url}{path}")
        assert answer is not None and answer.status == 403, path
        expect(page.locator(".error-page h1")).to_have_text("403 · Not allowed")
        expect(page.locator("main")).not_to_contain_text("203.0.113.77")
        expect(page.locator("main")).not_to_contain_text("root user")
        expect(nav.get_by_role("link")).to_have_text(["Overview", "Deployment"])

    nav.get_by_role("link", name="Deployment").click()
    expect(page.get_by_role("heading", name="Deployment", level=1)).to_be_visible()
