"""Click through the web page in headless Chromium (selenium + Debian chromium/chromium-driver)."""

from __future__ import annotations

import shutil
import socket
import threading
import time

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="needs Debian chromium + chromium-driver: apt-get install -y chromium chromium-driver",
)


@pytest.fixture
def live_server(settings):
    import uvicorn

    from fusionrec.serving import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    t.join(10)
    sock.close()


def test_page_click_through(live_server, keys):
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
    ):
        opts.add_argument(f)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        wait = WebDriverWait(driver, 15)
        driver.get(live_server + "/")
        # without a key the page asks for one
        driver.find_element(By.ID, "user").send_keys("u0")
        driver.find_element(By.ID, "load").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "API key"))
        driver.find_element(By.ID, "key").send_keys(keys[0])
        driver.find_element(By.ID, "save-key").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "model"), "ease"))
        assert driver.execute_script("return sessionStorage.getItem('fusionrec-key')") == keys[0]
        user = driver.find_element(By.ID, "user")
        set_user = lambda v: driver.execute_script("arguments[0].value = arguments[1]", user, v)  # noqa: E731
        set_user("u0")
        driver.find_element(By.ID, "load").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#recs li.rec")) > 0)
        hist = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#history li")]
        assert hist == ["Item a", "Item b"]
        first = driver.find_element(By.CSS_SELECTOR, "#recs li.rec")
        assert first.get_attribute("data-item-id") == "c"
        assert "Item c" in first.text
        # explanation
        first.find_element(By.CSS_SELECTOR, "button.explain").click()
        wait.until(
            lambda d: (
                "because you liked" in d.find_element(By.CSS_SELECTOR, "#recs li.rec .why").text
            )
        )
        assert "Item a" in driver.find_element(By.CSS_SELECTOR, "#recs li.rec .why").text
        # feedback with a click: c leaves the recommendations and joins the history
        loaded = driver.find_element(By.ID, "recs").get_attribute("data-loaded")
        first.find_element(By.CSS_SELECTOR, "button.watched").click()
        wait.until(lambda d: d.find_element(By.ID, "recs").get_attribute("data-loaded") != loaded)
        recs = [
            li.get_attribute("data-item-id")
            for li in driver.find_elements(By.CSS_SELECTOR, "#recs li.rec")
        ]
        assert "c" not in recs and recs
        hist = [
            li.get_attribute("data-item-id")
            for li in driver.find_elements(By.CSS_SELECTOR, "#history li")
        ]
        assert hist == ["a", "b", "c"]
        # a cold user with no history gets the fallback tag
        set_user("visitor")
        driver.find_element(By.ID, "load").click()
        wait.until(lambda d: d.find_element(By.ID, "fallback").is_displayed())
    finally:
        driver.quit()
