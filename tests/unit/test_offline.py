"""shortlist._offline: the telemetry switches ``import shortlist`` sets, as defaults, in a fresh process each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shortlist import _offline

SHOW = "import json, os, shortlist; print(json.dumps({k: os.environ.get(k) for k in shortlist._offline.ENV_DEFAULTS}))"


def _python(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in _offline.ENV_DEFAULTS}
    base["HOME"] = str(tmp_path)  # onnxruntime's telemetry (when on) writes under ~/.cache
    return subprocess.run(
        [sys.executable, "-c", code], env=base | env, capture_output=True, text=True, timeout=60, check=True
    )


def test_import_sets_every_switch_as_a_default(tmp_path: Path) -> None:
    values = json.loads(_python(SHOW, tmp_path).stdout)
    assert values == dict(_offline.ENV_DEFAULTS)
    assert values["ORT_DISABLE_TELEMETRY"] == "1"
    assert values["ANONYMIZED_TELEMETRY"] == "False"


def test_a_value_the_user_set_wins(tmp_path: Path) -> None:
    values = json.loads(_python(SHOW, tmp_path, ORT_DISABLE_TELEMETRY="0", HF_HUB_DISABLE_TELEMETRY="").stdout)
    assert values["ORT_DISABLE_TELEMETRY"] == "0"
    assert values["HF_HUB_DISABLE_TELEMETRY"] == ""
    assert values["ANONYMIZED_TELEMETRY"] == "False"


@pytest.mark.parametrize(
    ("value", "disabled"),
    [("1", True), ("true", True), (" YES ", True), ("on", True), ("0", False), ("", False), ("no", False)],
)
def test_what_counts_as_disabled(value: str, disabled: bool) -> None:
    # onnxruntime 1.32 itself: 1/true/yes/TRUE silence it, 0 does not (checked under strace, see the module).
    assert _offline.onnxruntime_telemetry_disabled({"ORT_DISABLE_TELEMETRY": value}) is disabled
    assert _offline.onnxruntime_telemetry_disabled({}) is False


LATE = """
import logging
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
import onnxruntime
import shortlist
shortlist._offline.check_onnxruntime()
shortlist._offline.check_onnxruntime()
"""


def test_onnxruntime_imported_before_shortlist_is_named_once(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    late = _python(LATE, tmp_path).stderr
    assert late.count("WARNING shortlist._offline onnxruntime was imported before shortlist") == 1, late
    assert "Export ORT_DISABLE_TELEMETRY=1" in late
    # Exported beforehand (the fix the warning names), or onnxruntime imported after shortlist: no warning.
    assert "WARNING" not in _python(LATE, tmp_path, ORT_DISABLE_TELEMETRY="1").stderr
    after = LATE.replace("import onnxruntime\nimport shortlist", "import shortlist\nimport onnxruntime")
    assert "WARNING" not in _python(after, tmp_path).stderr
