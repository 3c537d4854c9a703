"""A user's template folder for the template tests: template.yaml beside trainer/task.py."""

from __future__ import annotations

from pathlib import Path

USER_TEMPLATE = """\
name: {name}
summary: a team's own model
kind: tabular
task: regression
inputs: {{data: a CSV file, target: the column}}
params:
  scale: {{default: 1.0, space: "uniform(0.5,2)", help: a factor}}
metric: score
"""

USER_TRAINER = """\
import argparse, os
import jupyter_cloudml
p = argparse.ArgumentParser()
for flag in ("--data", "--target", "--job-dir", "--seed"):
    p.add_argument(flag)
p.add_argument("--scale", type=float)
a = p.parse_args()
print("user template ran with scale", a.scale)
jupyter_cloudml.report(step=1, score=a.scale)
"""


def user_template(folder: Path, name: str = "team-model") -> Path:
    """A user's template folder: template.yaml beside trainer/task.py."""
    (folder / "trainer").mkdir(parents=True)
    (folder / "template.yaml").write_text(USER_TEMPLATE.format(name=name))
    (folder / "trainer" / "__init__.py").write_text("")
    (folder / "trainer" / "task.py").write_text(USER_TRAINER)
    return folder
