"""``docent ui``: start the browser app (Streamlit, headless) on a port, optionally open it."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
import webbrowser
from pathlib import Path

from retrieval.settings import Settings
from ui.auth.bootstrap import ensure_first_admin, initial_admin_file
from ui.auth.principal import ProxyConfigError, check_proxy_mode

APP = Path(__file__).resolve().parent.parent / "app.py"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="start the browser app")
    p.add_argument("--port", type=int, help="port to serve on (default: DOCENT_UI_PORT or 8501)")
    p.add_argument("--address", help="interface to listen on (default: all)")
    p.add_argument("--open", action="store_true", help="open a browser when a display exists, else print the URL")
    p.set_defaults(func=run)


def streamlit_command(settings: Settings, port: int, address: str | None = None) -> list[str]:
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.maxUploadSize", str(settings.max_file_mb),
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
        "--theme.base", "light",
        "--theme.primaryColor", "#2563eb",
    ]
    if address:
        cmd += ["--server.address", address]
    return cmd


def has_display() -> bool:
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def wait_until_up(url: str, proc: subprocess.Popen, timeout_s: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def run(settings: Settings, args: argparse.Namespace) -> int:
    port = args.port or settings.ui_port
    try:
        check_proxy_mode(settings, args.address)
    except ProxyConfigError as exc:
        print(f"docent: {exc}", file=sys.stderr)
        return 2
    url = f"http://{args.address or 'localhost'}:{port}"
    first = ensure_first_admin(settings)
    if first is not None:
        print(first.instructions(url))
    elif settings.auth_mode == "builtin" and initial_admin_file(settings).exists():
        print(f"First login: user 'admin', password in {initial_admin_file(settings)}")
    env = {**os.environ, "DOCENT_DATA_DIR": str(settings.data_dir.resolve())}
    proc = subprocess.Popen(streamlit_command(settings, port, args.address), env=env)
    # A service manager stops us with SIGTERM: pass it on so the app (and the index lock it
    # holds) does not outlive us.
    signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        if wait_until_up(url, proc):
            print(f"Docent is running at {url}  (Ctrl+C stops it)", flush=True)
            if args.open and has_display():
                webbrowser.open(url)
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 130
