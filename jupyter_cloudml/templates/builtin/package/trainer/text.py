"""text-classification: a table with a text column and a class column in, a scikit-learn
pipeline out (TF-IDF of word n-grams, then a linear model) that takes raw rows
({"text": "..."}, the class as it was in the data).

    python -m trainer.text --data reviews.csv --target label --text_column text
"""

from __future__ import annotations

from typing import Any

from jupyter_cloudml.templates.data import check_column, check_table, read_table
from trainer import common


def parser() -> Any:
    """The trainer's flags: the common ones and the hyperparameters."""
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--text_column", default="text")
    p.add_argument("--C", type=float, default=1.0)
    p.add_argument("--max_ngram", type=int, default=2)
    p.add_argument("--min_df", type=int, default=1)
    p.add_argument("--max_features", type=int, default=50000)
    p.add_argument("--sublinear_tf", choices=("true", "false"), default="true")
    return p


def pipeline(args: Any) -> Any:
    """The text column's TF-IDF, then logistic regression: one object that takes raw rows."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    tfidf = TfidfVectorizer(
        ngram_range=(1, args.max_ngram),
        min_df=args.min_df,
        max_features=args.max_features,
        sublinear_tf=args.sublinear_tf == "true",
    )
    encode = ColumnTransformer([("tfidf", tfidf, args.text_column)])
    model = LogisticRegression(C=args.C, max_iter=2000, random_state=args.seed)
    return Pipeline([("encode", encode), ("model", model)])


def main() -> None:
    from sklearn.model_selection import train_test_split

    args = parser().parse_args()
    if not args.target:
        raise common.InvalidSpec("--target: name the class column")
    frame = read_table(args.data)
    check_table(frame, args.target, "classification", args.data)
    check_column(frame, args.text_column, "--param text_column", args.data)
    frame = frame.dropna(subset=[args.target])
    x = frame[[args.text_column]].fillna("").astype(str)
    y = frame[args.target]
    stratify = y if y.value_counts().min() >= 2 else None
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=args.test_size, random_state=args.seed, stratify=stratify
    )
    model = pipeline(args).fit(x_train, y_train)
    report, figure = common.classification_report(list(y_test), list(model.predict(x_test)))
    report.update(model="tfidf+logistic", n_train=len(x_train), columns=[args.text_column])
    common.save_model(model, args.job_dir)
    common.write_report(args.job_dir, report, figure, "accuracy", report["metrics"]["accuracy"])


if __name__ == "__main__":
    common.run(main)
