"""Issue 11, finding 2: in proxy mode the user and groups headers are believed only from the
proxy, which proves itself with a shared secret header; without a secret, proxy mode refuses to
serve on anything but loopback."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.conftest import make_settings
from ui.auth import login

FORGED = {"X-Forwarded-User": "mallory", "X-Forwarded-Groups": "admins,staff"}


def _ask(monkeypatch, settings, headers, address="0.0.0.0"):
    fake_st = SimpleNamespace(context=SimpleNamespace(headers=headers),
                              get_option=lambda key: address if key == "server.address" else None)
    monkeypatch.setattr(login, "st", fake_st)
    return login.current_principal(settings, users=None)


def test_forged_proxy_headers_without_the_secret_are_not_authenticated(tmp_path, monkeypatch):
    s = make_settings(tmp_path / "d", auth_mode="proxy", proxy_secret="pr0xy-shared-s3cret")
    assert _ask(monkeypatch, s, FORGED) is None
    assert _ask(monkeypatch, s, {**FORGED, "X-Docent-Proxy-Secret": "wrong"}) is None
    assert _ask(monkeypatch, s, {**FORGED, "X-Docent-Proxy-Secret": ""}) is None
    ok = _ask(monkeypatch, s, {**FORGED, "X-Docent-Proxy-Secret": "pr0xy-shared-s3cret"})
    assert ok is not None and ok.user == "mallory" and ok.is_admin


def test_proxy_mode_without_a_secret_is_refused_off_loopback(tmp_path, monkeypatch):
    s = make_settings(tmp_path / "d", auth_mode="proxy")
    for address in ("0.0.0.0", "", "10.1.2.3", "::"):
        with pytest.raises(login.ProxyConfigError, match="DOCENT_PROXY_SECRET"):
            _ask(monkeypatch, s, FORGED, address=address)
    # Bound to loopback only (a proxy on the same host), the headers are taken as before.
    assert _ask(monkeypatch, s, FORGED, address="127.0.0.1").user == "mallory"


def test_docent_ui_refuses_proxy_mode_on_all_interfaces_without_a_secret(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from .conftest import REPO

    env = {**os.environ, "DOCENT_DATA_DIR": str(tmp_path / "d"), "PYTHONPATH": str(REPO),
           "DOCENT_AUTH_MODE": "proxy", "DOCENT_PROXY_SECRET": ""}
    proc = subprocess.Popen([sys.executable, "-m", "ui.cli.main", "ui", "--address", "0.0.0.0", "--port", "18599"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # it started serving: stop it and everything it started
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("docent ui served proxy mode on 0.0.0.0 without a proxy secret")
    assert proc.returncode == 2, err
    assert "DOCENT_PROXY_SECRET" in err
