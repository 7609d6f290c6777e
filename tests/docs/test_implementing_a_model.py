"""The code of docs/implementing-a-model.md runs as written (in a fresh interpreter, so its
example models do not join this process's registry)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "implementing-a-model.md"


def test_the_guide_code_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 4, "the guide lost its code blocks"
    script = tmp_path / "guide.py"
    script.write_text("\n\n".join(blocks))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
