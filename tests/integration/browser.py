"""A real headless Chromium for the browser tests: Debian's ``/usr/bin/chromium`` driven by selenium.

``chromium(profile)`` starts one with the flags a root CI machine needs (and a fixed window,
so screenshots compare); ``sign_in`` goes through the real sign-in page; ``severe`` lists
the console's SEVERE entries (any of them fails a test).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run")


def chromium(profile: Path | None = None, *, width: int = 1920, height: int = 1080) -> Any:
    """A started headless Chromium (quit it when done), with the browser console logged."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    extra = [f"--window-size={width},{height}", "--hide-scrollbars"]
    if profile is not None:
        extra.append(f"--user-data-dir={profile}")
    for flag in (*FLAGS, *extra):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    return driver


def poll(what: str, check: Callable[[], Any], timeout: float = 60.0, every: float = 0.25) -> Any:
    """``check()`` once it is truthy; an AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - a page half drawn: try again
            last = exc
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def sign_in(d: Any, url: str, name: str, password: str) -> None:
    """Sign ``name`` in at ``url``/login and wait for their control room."""
    from selenium.webdriver.common.by import By

    d.get(url.rstrip("/") + "/login")
    d.find_element(By.ID, "login-name").send_keys(name)
    d.find_element(By.ID, "login-password").send_keys(password)
    d.find_element(By.ID, "login-submit").click()
    poll(f"{name}'s control room", lambda: name in d.find_element(By.ID, "signed-in").text)


def severe(driver: Any, *, except_refused: bool = False) -> list[str]:
    """SEVERE console entries (with ``except_refused``, not the 403 a test provoked on purpose)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"
            and not (except_refused and "status of 403" in e["message"])]
