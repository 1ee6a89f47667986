"""Shared test set-up."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import shutil  # noqa: E402

import pytest  # noqa: E402

# Debian's chromium and its matching chromedriver (`apt-get install chromium
# chromium-driver`; .ci/run installs them). Named explicitly so Selenium never
# tries to download a driver.
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")


def pytest_collection_modifyitems(items):
    """The files that run the whole pipeline (*_e2e.py) first, in their order: on
    two workers the longest files start first and the short ones fill in after."""
    items.sort(key=lambda item: not item.path.name.endswith("_e2e.py"))


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium driven through Selenium WebDriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(path), f"{path} not found: apt-get install chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,2000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
