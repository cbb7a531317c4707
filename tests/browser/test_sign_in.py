"""The first administrator opens the invite link `onca deploy` printed, sets a password, lands on the
Overview, signs out, and signs in again with that password."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect

from tests.api.conftest import ADMIN_EMAIL, PASSWORD

from .conftest import Console, sign_in


def test_first_admin_accepts_the_invite_then_signs_in(console: Console, new_page: Callable[[], Page],
                                                      shot: Callable[[Page, str], Path]) -> None:
    assert console.invite_url.startswith(f"{console.url}/invite?token=")  # the link points at this console
    page = new_page()
    page.goto(console.invite_url)
    expect(page.get_by_role("heading", name="Set your password")).to_be_visible()
    expect(page.get_by_text(f"Welcome, {ADMIN_EMAIL}")).to_be_visible()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Set password and sign in").click()

    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    assert urlsplit(page.url).path == "/"
    nav = page.get_by_role("navigation", name="Main")
    for item in ("Alerts", "Detections", "Search", "Sources", "Destinations", "Deployment", "Users", "Audit log"):
        expect(nav.get_by_role("link", name=item, exact=True)).to_be_visible()
    expect(page.locator(".usermenu a[href='/account']")).to_have_attribute("title", ADMIN_EMAIL)
    expect(page.locator(".usermenu")).to_contain_text("Admin")
    expect(page.get_by_role("heading", name="Open alerts")).to_be_visible()
    shot(page, "overview")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    page.goto(f"{console.url}/alerts")  # signed out: the console sends people to the sign-in page
    assert urlsplit(page.url).path == "/login"
    shot(page, "login")
    page.goto(console.invite_url)  # a one-time link
    expect(page.get_by_role("heading", name="Set your password")).to_be_visible()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_label("Password", exact=True)).to_have_count(0)

    sign_in(page, console, ADMIN_EMAIL, PASSWORD + " typo")
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    sign_in(page, console, ADMIN_EMAIL)
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    expect(page.locator(".usermenu a[href='/account']")).to_have_attribute("title", ADMIN_EMAIL)
