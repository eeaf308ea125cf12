"""The README's Python code runs as written: its ``python`` blocks, in order, as one script
file (later blocks use what earlier ones made, as a reader following along would), in a
fresh directory. The shell blocks are the CLI, which tests/test_train_cli.py and the other
CLI tests run on tiny configs; ``.ci/run`` runs the install and test commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def test_the_readme_has_python_blocks_to_run():
    blocks = python_blocks()
    assert len(blocks) >= 6
    assert any("metarl.MAMLTRPO(" in block for block in blocks)


def test_every_python_block_of_the_readme_runs_as_written(tmp_path):
    script = tmp_path / "readme_blocks.py"
    script.write_text("\n\n".join(python_blocks()))
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "runs" / "nav" / "checkpoints").is_dir()
    assert (tmp_path / "nav.json").is_file()
