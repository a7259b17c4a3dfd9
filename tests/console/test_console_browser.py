"""The console in headless Chromium with no reachable Kubernetes API: it still serves, says
what it cannot reach, and refuses access without the right token (the page and the API)."""

import httpx
import pytest
from playwright.sync_api import expect

from medmec import netutil
from medmec.workloads.console import testing
from medmec.workloads.console.local_service import LocalConsole

TOKEN = "console-test-token-7f3a9c2e"


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("console")
    kubeconfig = workdir / "kubeconfig"
    port = netutil.free_port()  # nothing listens there
    kubeconfig.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: none, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: none, user: {{token: x}}}}]
contexts: [{{name: none, context: {{cluster: none, user: none}}}}]
current-context: none
""")
    with LocalConsole(workdir, TOKEN, {"KUBECONFIG": str(kubeconfig)}).start() as console:
        yield console.url


def test_api_refuses_missing_and_wrong_tokens_with_a_json_reason(console):
    for headers in ({}, {"Authorization": "Bearer wrong-token-000000000"},
                    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer"}):
        r = httpx.get(console + "/api/overview", headers=headers)
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
    ok = httpx.get(console + "/api/overview", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert any(p.startswith("Kubernetes API") for p in ok.json()["problems"])


def test_page_shows_login_refuses_a_wrong_token_and_serves_with_the_right_one(console):
    shots = testing.artifacts_dir("console")
    with testing.browser() as context:
        page = context.new_page()
        page.goto(console)
        page.wait_for_selector("#login:not([hidden])")
        assert page.is_hidden("#console")
        page.fill("#token", "not-the-token-1234567")
        page.click("#login-form button")
        # a locator assertion, not wait_for_function: the page's CSP forbids eval
        expect(page.locator("#login-error")).to_contain_text("refused")
        assert page.is_hidden("#console")
        page.screenshot(path=str(shots / "refused.png"))

        page.fill("#token", TOKEN)
        page.click("#login-form button")
        page.wait_for_selector("body[data-ready=true]")
        assert page.is_visible("#console") and page.is_hidden("#login")
        assert "Kubernetes API" in page.text_content("#problems")
        for panel in ("base-stations", "slices", "inference", "robots", "alerts"):
            assert page.is_visible(f"[data-panel={panel}]")
        page.screenshot(path=str(shots / "no-cluster.png"), full_page=True)

        page.click("#logout")
        page.wait_for_selector("#login:not([hidden])")
        page.reload()
        page.wait_for_selector("#login:not([hidden])")  # the token is gone with the session


def test_console_refuses_to_start_without_a_usable_token(tmp_path):
    import subprocess
    import sys
    short = tmp_path / "short"
    short.write_text("# the platform team's token goes here\nabc\n")
    for path in (short, tmp_path / "missing"):
        r = subprocess.run([sys.executable, "-m", "medmec", "serve", "console", "--tokens-file",
                            str(path)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "medmec serve console:" in r.stderr
    assert "at least 16 characters" in subprocess.run(
        [sys.executable, "-m", "medmec", "serve", "console", "--tokens-file", str(short)],
        capture_output=True, text=True, timeout=60).stderr
