"""text-classification on sentence embeddings, with the real sentence-transformers package and
a tiny model built here (random BERT weights, a WordPiece vocabulary of the test's words; the
Hugging Face hub is never asked): trained as a job, deployed, raw text predicted; `auto` falls
back to TF-IDF without the model or without the package, and says why."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import sysconfig
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("sentence_transformers", reason="the test extras: pip install -e .[test]")

TOPICS = {
    "sports": "goal match team score league player coach referee stadium season",
    "cooking": "recipe oven flour sauce garlic simmer bake butter onion pepper",
}


def cloudml(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jupyter_cloudml.cli", *args],
        capture_output=True, text=True, timeout=600, cwd=cwd,
    )  # fmt: skip


def tiny_model(folder: Path) -> Path:
    """A sentence-transformers model (BERT of one layer, mean pooling) saved in `folder`."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = " ".join(TOPICS.values()).split()
    bert = folder / "bert"
    bert.mkdir(parents=True)
    vocab = bert / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    config = BertConfig(
        vocab_size=len(words) + 5, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
    )  # fmt: skip
    torch.manual_seed(0)
    BertModel(config).save_pretrained(bert)
    BertTokenizerFast(str(vocab)).save_pretrained(bert)
    layer = Transformer(str(bert))
    model = SentenceTransformer(modules=[layer, Pooling(layer.get_embedding_dimension())])
    model.save(str(folder / "sentences"))
    return folder / "sentences"


def texts(folder: Path) -> None:
    rng = random.Random(0)
    rows = [
        {"text": " ".join(rng.sample(words.split(), 5)), "topic": topic}
        for _ in range(40)
        for topic, words in TOPICS.items()
    ]
    pd.DataFrame(rows).to_csv(folder / "texts.csv", index=False)


def train(
    tmp_path: Path, *params: str, out: str = "out", python: Path | None = None
) -> subprocess.CompletedProcess[str]:
    flags = [arg for p in params for arg in ("--param", p)]
    flags += ["--python", str(python)] if python else []
    return cloudml(
        "train", "--template", "text-classification", "--data", "texts.csv", "--target", "topic",
        *flags, "--job-dir", str(tmp_path / out), "--wait", cwd=tmp_path,
    )  # fmt: skip


def test_embeddings_train_as_a_job_deploy_and_answer_raw_text(
    tmp_path: Path, serving_python: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDML_SERVING_PYTHON", serving_python)
    model = tiny_model(tmp_path / "embedder")
    texts(tmp_path)
    relative = model.relative_to(tmp_path)  # the command's folder: made absolute for the job
    result = train(tmp_path, "features=embeddings", f"embedding_model={relative}")
    assert result.returncode == 0, result.stdout + result.stderr
    said = f"features=embeddings: sentence embeddings of {model} from the folder {model}"
    assert said in result.stdout
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert report["model"] == "embeddings+logistic" and report["features"] == said
    assert report["metrics"]["accuracy"] >= 0.9
    job_id = result.stdout.split("submitted job ", 1)[1].split()[0]
    deployed = cloudml(
        "models", "deploy", "topics", "--model", f"job:{job_id}/model.joblib",
        "--framework", "sklearn", cwd=tmp_path,
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    import jupyter_cloudml

    rows = [{"text": "team match goal score coach"}, {"text": "bake flour oven garlic sauce"}]
    assert jupyter_cloudml.Client().predict("topics", rows) == ["sports", "cooking"]


def test_auto_without_the_model_falls_back_to_tfidf_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    texts(tmp_path)
    missing = tmp_path / "no-such-model"
    result = train(tmp_path, f"embedding_model={missing}")
    assert result.returncode == 0, result.stdout + result.stderr
    said = f"features=auto: TF-IDF, since embedding model '{missing}' not found locally"
    assert said in result.stdout
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert report["model"] == "tfidf+logistic" and report["features"].startswith(said)
    # Asked for by name and not in the (empty) Hugging Face cache: the job says where it looked.
    result = train(tmp_path, "features=embeddings", "embedding_model=acme/unknown", out="out2")
    assert result.returncode != 0
    assert "--param features=embeddings: embedding model 'acme/unknown' not found locally " in (
        result.stdout + result.stderr
    )
    assert "Hugging Face cache" in result.stdout + result.stderr


def python_without_sentence_transformers(folder: Path) -> Path:
    """A venv holding this environment's packages (linked) except sentence-transformers."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    ours = Path(sysconfig.get_paths()["purelib"])
    (theirs,) = folder.glob("lib/python*/site-packages")
    for entry in ours.iterdir():
        if not entry.name.startswith("sentence_transformers"):
            target = theirs / entry.name
            if not target.exists():
                target.symlink_to(entry)
    return folder / "bin" / "python"


def test_auto_without_the_package_falls_back_and_embeddings_name_the_install(
    tmp_path: Path,
) -> None:
    model = tiny_model(tmp_path / "embedder")
    python = python_without_sentence_transformers(tmp_path / "venv")
    found = subprocess.run([python, "-c", "import sentence_transformers"], capture_output=True)
    assert found.returncode != 0 and b"No module named 'sentence_transformers'" in found.stderr
    texts(tmp_path)
    result = train(tmp_path, f"embedding_model={model}", python=python)
    assert result.returncode == 0, result.stdout + result.stderr
    said = "features=auto: TF-IDF, since sentence-transformers is not installed in this job's "
    assert said + "Python (pip install sentence-transformers)" in result.stdout
    result = train(
        tmp_path, "features=embeddings", f"embedding_model={model}", out="out2", python=python
    )
    assert result.returncode != 0
    assert "pip install sentence-transformers" in result.stdout + result.stderr


def test_an_embedding_model_with_tfidf_features_is_refused_before_submitting(
    tmp_path: Path,
) -> None:
    texts(tmp_path)
    result = train(tmp_path, "features=tfidf", "embedding_model=acme/model")
    assert result.returncode == 2 and "submitted" not in result.stdout
    assert result.stderr.strip().endswith(
        "--param embedding_model=acme/model: not used with features=tfidf "
        "(drop it, or use features=auto or embeddings)"
    )
    assert not os.path.exists(tmp_path / "out")


def test_tfidf_parameters_with_embeddings_are_refused_and_a_study_leaves_them_alone(
    tmp_path: Path,
) -> None:
    texts(tmp_path)
    result = train(tmp_path, "features=embeddings", "max_ngram=3")
    assert result.returncode == 2 and "submitted" not in result.stdout
    assert result.stderr.strip().endswith(
        "--param max_ngram: a TF-IDF parameter, not used with features=embeddings "
        "(drop it, or use features=auto or tfidf)"
    )
    from jupyter_cloudml.commands.grammar import parse_command
    from jupyter_cloudml.commands.template_flags import template_tuning

    ns = parse_command(
        ["train", "--template", "text-classification", "--data", "texts.csv", "--target", "topic",
         "--param", "features=embeddings", "--tune", "--trials", "2"]
    )  # fmt: skip
    study = template_tuning(ns, tmp_path)
    assert study is not None and [p.name for p in study.params] == ["C"]
