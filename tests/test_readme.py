"""The README's Python examples run as written (with fewer epochs)."""

import re
from pathlib import Path


def test_readme_examples_run():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    exec(
        compile("\n".join(blocks).replace("num_epochs=20", "num_epochs=2"), "README", "exec"),
        namespace,
    )
    assert namespace["log_p"].shape == (1, 4) and namespace["p"].shape == (1, 4)
    assert len(namespace["result"].losses) == 2
