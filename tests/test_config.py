"""`jupyter_cloudml.config`: config files merged from the Jupyter config path, and which backend
class a name (a --backend flag, $CLOUDML_BACKEND, ``c.CloudML.backend``) stands for.

Real files in real folders named by ``JUPYTER_CONFIG_DIR`` / ``JUPYTER_CONFIG_PATH`` (conftest
points the user folder at the test's tmp dir), real imports of the named classes.
"""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from jupyter_core.paths import jupyter_config_dir, jupyter_config_path

from jupyter_cloudml.backends.base import Backend
from jupyter_cloudml.backends.kubernetes import KubernetesBackend
from jupyter_cloudml.backends.local import LocalBackend
from jupyter_cloudml.client import Client
from jupyter_cloudml.config import CloudML, load_config
from jupyter_cloudml.exceptions import InvalidSpec


def write_py(folder: Path, code: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "jupyter_cloudml_config.py"
    path.write_text(textwrap.dedent(code))
    return path


def write_json(folder: Path, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "jupyter_cloudml_config.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def user_dir() -> Path:
    """The user's Jupyter config folder (conftest's $JUPYTER_CONFIG_DIR, not yet created)."""
    folder = Path(jupyter_config_dir())
    assert not folder.exists()
    return folder


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`plugin(code)` -> the name of a fresh importable module holding `code` (a real file)."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    names: list[str] = []

    def make(code: str) -> str:
        name = f"cloudml_plugin_{uuid.uuid4().hex[:8]}"
        (folder / f"{name}.py").write_text(textwrap.dedent(code))
        names.append(name)
        return name

    yield make
    for name in names:
        sys.modules.pop(name, None)


# --- load_config -------------------------------------------------------------------------------


def test_no_config_files_give_an_empty_config_and_the_local_default(user_dir):
    config = load_config()
    assert config == {}
    assert CloudML(config=config).backend == "local"
    assert CloudML(config=config).backend_name() == "local"


def test_the_user_folder_python_file_is_read(user_dir):
    write_py(user_dir, 'c.CloudML.backend = "kubernetes"\nc.LocalBackend.cpu_slots = 3.0\n')
    config = load_config()
    assert config.CloudML.backend == "kubernetes"
    assert CloudML(config=config).backend_name() == "kubernetes"
    assert config.LocalBackend.cpu_slots == 3.0


def test_the_user_folder_json_file_is_read(user_dir):
    write_json(user_dir, {"CloudML": {"backend": "kubernetes"}, "LocalBackend": {"gpu_ids": [1]}})
    config = load_config()
    assert CloudML(config=config).backend == "kubernetes"
    assert config.LocalBackend.gpu_ids == [1]


def test_json_and_python_in_one_folder_merge_and_the_python_file_wins(user_dir):
    write_json(
        user_dir,
        {"CloudML": {"backend": "kubernetes"}, "LocalBackend": {"cpu_slots": 2.0, "gpu_ids": [0]}},
    )
    write_py(user_dir, "c.LocalBackend.cpu_slots = 7.0\n")
    config = load_config()
    assert config.LocalBackend.cpu_slots == 7.0  # the .py file, read after the .json
    assert config.LocalBackend.gpu_ids == [0]  # only in the .json: kept
    assert config.CloudML.backend == "kubernetes"


def test_folders_merge_key_by_key_and_the_first_on_the_jupyter_path_wins(
    user_dir, tmp_path, monkeypatch
):
    """Jupyter's order: $JUPYTER_CONFIG_PATH entries (in order), then the user folder, then the
    environment's and the system's (in a virtualenv the environment's comes before the user's
    unless JUPYTER_PREFER_ENV_PATH=0); a folder earlier on it overrides the later ones key by
    key, and keys set only further down are kept."""
    high, middle = tmp_path / "path-high", tmp_path / "path-middle"
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", f"{high}:{middle}")
    monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", "0")
    assert jupyter_config_path()[:3] == [str(high), str(middle), str(user_dir)]

    write_py(
        user_dir,
        """
        c.CloudML.backend = "user-choice"
        c.LocalBackend.cpu_slots = 1.0
        c.LocalBackend.gpu_ids = [0]
        c.LocalBackend.cancel_grace_seconds = 5.0
        """,
    )
    write_json(middle, {"LocalBackend": {"cpu_slots": 2.0, "gpu_ids": [1, 2]}})
    write_py(high, "c.LocalBackend.cpu_slots = 4.0\n")

    config = load_config()
    assert config.LocalBackend.cpu_slots == 4.0  # high beats middle beats user
    assert config.LocalBackend.gpu_ids == [1, 2]  # middle beats user
    assert config.LocalBackend.cancel_grace_seconds == 5.0  # only the user set it
    assert config.CloudML.backend == "user-choice"


def test_with_only_the_user_folder_the_user_file_is_what_counts(user_dir, tmp_path, monkeypatch):
    """A folder on $JUPYTER_CONFIG_PATH that has no cloudml file changes nothing."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "jupyter_server_config.py").write_text("c.CloudML.backend = 'not-ours'\n")
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(empty))
    write_py(user_dir, 'c.CloudML.backend = "kubernetes"\n')
    assert CloudML(config=load_config()).backend == "kubernetes"


def test_the_merged_config_configures_the_backend_a_client_makes(user_dir, isolated_home):
    write_py(
        user_dir,
        """
        c.CloudML.backend = "local"
        c.LocalBackend.cpu_slots = 3.0
        c.LocalBackend.gpu_ids = [4, 5]
        c.LocalBackend.cancel_grace_seconds = 1.5
        """,
    )
    backend = Client().backend
    assert type(backend) is LocalBackend
    assert (backend.cpu_slots, list(backend.gpu_ids)) == (3.0, [4, 5])
    assert backend.settings.gpu_ids == (4, 5)
    assert backend.settings.grace_seconds == 1.5
    assert backend.settings.home == str(isolated_home)  # $CLOUDML_HOME, not set in the file


# --- backend_name: flag > $CLOUDML_BACKEND > config ---------------------------------------------


def test_backend_name_precedence(user_dir, monkeypatch):
    write_py(user_dir, 'c.CloudML.backend = "from-config"\n')
    settings = CloudML(config=load_config())
    assert settings.backend_name() == "from-config"
    monkeypatch.setenv("CLOUDML_BACKEND", "from-env")
    assert settings.backend_name() == "from-env"
    assert settings.backend_name("from-flag") == "from-flag"
    monkeypatch.delenv("CLOUDML_BACKEND")
    assert settings.backend_name("from-flag") == "from-flag"
    assert settings.backend_name() == "from-config"


def test_empty_flag_and_empty_env_fall_through(user_dir, monkeypatch):
    write_py(user_dir, 'c.CloudML.backend = "kubernetes"\n')
    settings = CloudML(config=load_config())
    monkeypatch.setenv("CLOUDML_BACKEND", "")
    assert settings.backend_name("") == "kubernetes"
    assert settings.backend_name(None) == "kubernetes"


# --- backend_class ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"), [("local", LocalBackend), ("kubernetes", KubernetesBackend)]
)
def test_built_in_names_resolve_to_their_classes(name, cls):
    assert CloudML().backend_class(name) is cls


def test_the_class_comes_from_env_or_config_when_no_flag(user_dir, monkeypatch):
    write_py(user_dir, 'c.CloudML.backend = "kubernetes"\n')
    settings = CloudML(config=load_config())
    assert settings.backend_class() is KubernetesBackend
    monkeypatch.setenv("CLOUDML_BACKEND", "local")
    assert settings.backend_class() is LocalBackend
    assert settings.backend_class("kubernetes") is KubernetesBackend
    assert CloudML().backend_class() is LocalBackend  # the default


def test_a_dotted_path_to_a_backend_subclass_is_imported(plugin):
    module = plugin(
        """
        from jupyter_cloudml.backends.local import LocalBackend

        class TeamBackend(LocalBackend):
            '''A site's own backend.'''
        """
    )
    cls = CloudML().backend_class(f"{module}.TeamBackend")
    assert cls.__name__ == "TeamBackend" and cls.__module__ == module
    assert issubclass(cls, Backend)
    assert cls is sys.modules[module].TeamBackend


def test_a_dotted_backend_from_config_is_made_and_configured_by_the_client(
    user_dir, plugin, isolated_home
):
    module = plugin(
        """
        from jupyter_cloudml.backends.local import LocalBackend

        class TeamBackend(LocalBackend):
            pass
        """
    )
    write_py(
        user_dir,
        f"""
        c.CloudML.backend = "{module}.TeamBackend"
        c.TeamBackend.cpu_slots = 6.0
        """,
    )
    backend = Client().backend
    assert type(backend).__name__ == "TeamBackend"
    assert backend.settings.cpu_slots == 6.0  # configured under its own class name


def test_a_dotted_path_given_as_the_flag_wins_over_config(user_dir, plugin):
    module = plugin("from jupyter_cloudml.backends.local import LocalBackend as Renamed\n")
    write_py(user_dir, 'c.CloudML.backend = "kubernetes"\n')
    assert CloudML(config=load_config()).backend_class(f"{module}.Renamed") is LocalBackend


def _known_named(message: str) -> None:
    assert "local" in message and "kubernetes" in message, message


@pytest.mark.parametrize(
    "name",
    [
        "locl",  # a typo of a built-in name
        "docker",  # a name nobody registered
        "no_such_module_anywhere.Backend",  # a module that does not exist
        "jupyter_cloudml.backends.local.NoSuchBackend",  # a class the module lacks
        "jupyter_cloudml.backends",  # a module, not a class
        "jupyter_cloudml.config.load_config",  # a function
        "collections.OrderedDict",  # a class that is no Backend
        "jupyter_cloudml.config.CloudML",  # a Configurable that is no Backend
        "json",  # a module name with no dot
    ],
)
def test_unknown_names_and_non_backend_classes_are_refused_naming_the_known_ones(name):
    with pytest.raises(InvalidSpec) as refused:
        CloudML().backend_class(name)
    message = str(refused.value)
    assert repr(name) in message
    _known_named(message)


def test_a_plugin_class_that_is_no_backend_is_refused(plugin):
    module = plugin("class NotABackend:\n    pass\n")
    with pytest.raises(InvalidSpec, match=f"unknown backend '{module}.NotABackend'") as refused:
        CloudML().backend_class(f"{module}.NotABackend")
    _known_named(str(refused.value))


def test_an_unknown_backend_in_env_or_config_is_refused_by_the_client(user_dir, monkeypatch):
    write_py(user_dir, 'c.CloudML.backend = "from-a-typo"\n')
    with pytest.raises(InvalidSpec, match="'from-a-typo'"):
        Client()
    monkeypatch.setenv("CLOUDML_BACKEND", "envtypo")
    with pytest.raises(InvalidSpec, match="'envtypo'"):
        Client()
    # a good flag saves the day: the bad settings under it are never imported
    assert type(Client(backend_name="local").backend) is LocalBackend
