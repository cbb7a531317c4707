"""Search as an analyst does it: SQL over the CloudTrail table with its results and CSV download, a refused
write, and an indicator search that finds the event of an IP address."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

ANALYST = ("Analyst", "priya.shah@example.com", "Priya Shah")
COLUMNS = ["eventTime", "eventName", "sourceIPAddress", "actor_type", "awsRegion", "recipientAccountId"]
SQL = """SELECT eventTime, eventName, sourceIPAddress, userIdentity.type AS actor_type, awsRegion, recipientAccountId
FROM aws_cloudtrail
ORDER BY eventName, sourceIPAddress"""
IP = "203.0.113.77"  # where the root user signed in from without MFA, in Onca's samples


def test_analyst_searches_the_lake(signed_in: Callable[..., Page], shot: Callable[[Page, str], Path]) -> None:
    page = signed_in(*ANALYST)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Search").click()
    expect(page.get_by_role("heading", name="Search", level=1)).to_be_visible()
    tables = page.locator("#tables")
    expect(tables.locator("summary").get_by_text(re.compile(r"^aws_cloudtrail \d+ rows$"))).to_be_visible()

    sql = page.locator("#sql")
    sql.get_by_role("textbox").fill(SQL)
    sql.get_by_role("button", name="Run query").click()
    expect(page.locator("#sql-count")).to_contain_text(re.compile(r"^\d+ rows\."))
    rows = int(page.locator("#sql-count").inner_text().split()[0])
    results = page.locator("#sql table.results")
    expect(results.locator("thead th")).to_have_text(COLUMNS)
    expect(results.locator("tbody tr")).to_have_count(rows)
    expect(results.locator("tbody tr", has_text="ConsoleLogin").filter(has_text=IP)).not_to_have_count(0)
    expect(sql.get_by_role("textbox")).to_have_value(SQL)  # the query stays in the editor
    shot(page, "search")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download these results as CSV").click()
    with open(download.value.path(), newline="", encoding="utf-8") as exported:
        table = list(csv.reader(exported))
    assert table[0] == COLUMNS and len(table) == rows + 1
    assert any(row[1] == "ConsoleLogin" and row[2] == IP for row in table[1:])

    sql.get_by_role("textbox").fill("DELETE FROM aws_cloudtrail")
    sql.get_by_role("button", name="Run query").click()
    expect(page.locator("#sql-error")).to_be_visible()
    expect(page.locator("#sql table.results")).to_have_count(0)

    indicators = page.locator("#indicators")
    indicators.get_by_label("Kind").select_option("ip")
    indicators.get_by_label("Value").fill(IP)
    indicators.get_by_role("button", name="Search").click()
    expect(page.locator("#indicator-count")).to_have_text(re.compile(rf"^\d+ events? mentions? {re.escape(IP)}\.$"))
    hits = page.locator("#indicators table.results tbody tr")
    expect(hits).not_to_have_count(0)
    expect(hits.filter(has_text="aws_cloudtrail").filter(has_text="AWS.CloudTrail")).not_to_have_count(0)
