"""`jupyter_cloudml.templates`: the built-in templates, user template folders (named directly or
on the search path), installed ones (a real dist-info with an entry point on sys.path), and
template.yaml mistakes named by field."""

from __future__ import annotations

import importlib
import sys

import pytest
from template_testkit import user_template

from jupyter_cloudml.exceptions import InvalidSpec
from jupyter_cloudml.models import ParamType
from jupyter_cloudml.templates import find_templates, get_template
from jupyter_cloudml.templates.registry import BUILTIN_DIR

BUILTINS = {
    "tabular-regression",
    "tabular-classification",
    "text-classification",
    "image-classification",
}


def test_the_built_in_templates_declare_inputs_params_and_a_metric():
    found = find_templates()
    assert set(found) >= BUILTINS
    for name in BUILTINS:
        t = found[name]
        assert t.source == "built-in" and t.metric and t.goal == "maximize"
        assert "data" in t.inputs and t.params and (t.package_dir / "setup.py").is_file()
        assert any(p.space is not None for p in t.params)
        assert f"{t.module.replace('.', '/')}.py" in t.code()
    assert found["tabular-regression"].metric == "r2"
    assert "target" not in found["image-classification"].inputs


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_each_trainer_has_the_defaults_its_template_declares(name, monkeypatch):
    """One default per parameter: the trainer's own flags agree with template.yaml."""
    t = find_templates()[name]
    monkeypatch.syspath_prepend(str(t.package_dir))
    for cached in [m for m in sys.modules if m == "trainer" or m.startswith("trainer.")]:
        monkeypatch.delitem(sys.modules, cached)
    module = importlib.import_module(t.module)
    parser = module.parser()
    for p in t.params:
        assert parser.get_default(p.name) == p.default, p.name


def test_a_folder_template_is_found_on_the_search_path_and_by_path(tmp_path, monkeypatch):
    user_template(tmp_path / "teams" / "team-model")
    monkeypatch.setenv("CLOUDML_TEMPLATE_PATH", str(tmp_path / "teams"))
    t = find_templates()["team-model"]
    assert t.source == str(tmp_path / "teams" / "team-model")
    assert t.package_dir == (tmp_path / "teams" / "team-model").resolve()
    monkeypatch.delenv("CLOUDML_TEMPLATE_PATH")
    assert "team-model" not in find_templates()
    by_path = get_template("./teams/team-model", source_dir=tmp_path)
    assert by_path.name == "team-model" and by_path.params[0].space.type is ParamType.DOUBLE
    assert find_templates([str(tmp_path / "teams" / "team-model")])["team-model"].metric == "score"


def test_an_installed_package_publishes_a_template_through_its_entry_point(tmp_path, monkeypatch):
    site = tmp_path / "site"
    user_template(site / "team_pkg", name="installed-model")
    (site / "team_pkg" / "__init__.py").write_text("")
    info = site / "team_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: team-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[jupyter_cloudml.templates]\ninstalled-model = team_pkg\n"
    )
    monkeypatch.syspath_prepend(str(site))
    t = find_templates()["installed-model"]
    assert "entry point 'installed-model'" in t.source
    assert t.package_dir == (site / "team_pkg").resolve()


def test_a_name_given_twice_is_refused_naming_both(tmp_path, monkeypatch):
    user_template(tmp_path / "mine", name="tabular-regression")
    monkeypatch.setenv("CLOUDML_TEMPLATE_PATH", str(tmp_path / "mine"))
    with pytest.raises(InvalidSpec, match=r"defined twice: by built-in and by .*mine"):
        find_templates()


def test_an_unknown_template_gets_the_closest_name():
    with pytest.raises(
        InvalidSpec, match=r"no such template \(did you mean tabular-regression\?\)"
    ):
        get_template("tabular-regresion")
    with pytest.raises(InvalidSpec, match=r"no template\.yaml in"):
        get_template("./nowhere")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("metric: score\n", ""), "metric: missing"),
        (("kind: tabular", "kind: audio"), "kind: expected one of tabular, text, image"),
        (("task: regression", "task: ranking"), "task: expected one of classification"),
        (('space: "uniform(0.5,2)"', 'space: "uniform(2,1)"'), "params.scale.space: --param"),
        (("default: 1.0, ", ""), "params.scale: missing default"),
        (("metric: score", "metric: score\nmetrik: x"), "unknown key 'metrik'"),
    ],
)
def test_template_yaml_mistakes_are_named_by_field(tmp_path, change, message):
    folder = user_template(tmp_path / "t")
    text = (folder / "template.yaml").read_text()
    assert change[0] in text
    (folder / "template.yaml").write_text(text.replace(*change))
    with pytest.raises(InvalidSpec, match=message.replace("(", r"\(")):
        get_template(str(folder))


def test_builtin_specs_name_a_package_folder():
    assert sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml")) == sorted(BUILTINS)
