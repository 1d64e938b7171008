"""Helpers for the page tests: where Debian's chromium is, and reading a scope's row count."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

GRAPH = Path(__file__).with_name("graph.yaml")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def scope_rows(driver: Any, stream: str) -> int:
    """Rows the page's scope of ``stream`` has received so far (0 before it exists)."""
    from selenium.webdriver.common.by import By

    el = driver.find_elements(By.CSS_SELECTOR, f'.scope[data-stream="{stream}"]')
    return int(el[0].get_attribute("data-rows") or 0) if el else 0
