"""The locked dependency set is installed and carries no AGPL licence."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("licence_report", ROOT / "scripts" / "licence_report.py")
licence_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(licence_report)


def test_locked_set_is_installed_and_not_agpl():
    assert licence_report.main(["--lock", str(ROOT / "requirements.lock")]) == 0


def test_report_fails_on_a_package_missing_from_the_environment(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("no-such-dist-docent==1.0 \\\n    --hash=sha256:00\n", encoding="utf-8")
    assert licence_report.main(["--lock", str(lock)]) == 1


def test_agpl_pattern_matches_the_ways_metadata_spells_it():
    for text in ("AGPL-3.0-or-later", "GNU Affero General Public License v3", "agpl"):
        assert licence_report.FORBIDDEN.search(text)
    for text in ("MIT", "Apache-2.0", "GNU Lesser General Public License v3 (LGPLv3)", "GPL-2.0"):
        assert not licence_report.FORBIDDEN.search(text)


def test_every_locked_line_is_pinned_with_a_hash():
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    names = licence_report.locked_names(ROOT / "requirements.lock")
    assert len(names) > 50
    assert text.count("--hash=sha256:") >= len(names)
    assert not any(n.lower() == "torch" for n in names)  # installed first, from the CPU wheel
