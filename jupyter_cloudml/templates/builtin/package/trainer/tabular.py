"""tabular-regression and tabular-classification: a table in (CSV, Parquet or a DataFrame), a
scikit-learn pipeline out that takes raw rows ({column: value}, strings for categories).

Numeric columns are imputed and scaled, the others one-hot encoded (unknown categories
ignored), through one ColumnTransformer; the model is HistGradientBoosting (default), a linear
model or an MLP. The metric is measured on a held-out split and reported for studies.

    python -m trainer.tabular --task regression --data diabetes.csv --target target
"""

from __future__ import annotations

from typing import Any

from jupyter_cloudml.templates.data import check_table, read_table
from trainer import common


def parser() -> Any:
    """The trainer's flags: the common ones, the task, and the hyperparameters."""
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--task", choices=("regression", "classification"), required=True)
    p.add_argument("--model", choices=("hgb", "linear", "mlp"), default="hgb")
    p.add_argument("--learning_rate", type=float, default=0.1)
    p.add_argument("--max_iter", type=int, default=100)
    p.add_argument("--max_leaf_nodes", type=int, default=31)
    p.add_argument("--min_samples_leaf", type=int, default=20)
    p.add_argument("--l2_regularization", type=float, default=0.0)
    p.add_argument("--alpha", type=float, default=0.0001)
    p.add_argument("--hidden_units", type=int, default=64)
    return p


def estimator(args: Any) -> Any:
    """The model the flags choose, seeded."""
    from sklearn import ensemble, linear_model, neural_network

    regression = args.task == "regression"
    if args.model == "hgb":
        kind = (
            ensemble.HistGradientBoostingRegressor
            if regression
            else ensemble.HistGradientBoostingClassifier
        )
        return kind(
            learning_rate=args.learning_rate,
            max_iter=args.max_iter,
            max_leaf_nodes=args.max_leaf_nodes,
            min_samples_leaf=args.min_samples_leaf,
            l2_regularization=args.l2_regularization,
            random_state=args.seed,
        )
    if args.model == "linear":
        if regression:
            return linear_model.Ridge(alpha=args.alpha)
        return linear_model.LogisticRegression(C=1.0 / args.alpha, max_iter=2000)
    kind = neural_network.MLPRegressor if regression else neural_network.MLPClassifier
    return kind(
        hidden_layer_sizes=(args.hidden_units,),
        alpha=args.alpha,
        learning_rate_init=min(args.learning_rate, 0.01),
        max_iter=max(args.max_iter, 200),
        early_stopping=True,
        random_state=args.seed,
    )


def pipeline(features: Any, args: Any) -> Any:
    """Encoding of the feature columns, then the model: one object that takes raw rows."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = list(features.select_dtypes(include=np.number).columns)
    categorical = [c for c in features.columns if c not in numeric]
    encode = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                categorical,
            ),
        ]
    )
    return Pipeline([("encode", encode), ("model", estimator(args))])


def regression_report(y_true: Any, y_pred: Any) -> tuple[dict, Any]:
    """Held-out regression metrics and a residual plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    metrics = {
        "r2": float(r2_score(y_true, y_pred)),
        "rmse": float(np.sqrt(mean_squared_error(y_true, y_pred))),
        "mae": float(mean_absolute_error(y_true, y_pred)),
    }
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(y_pred, np.asarray(y_true) - np.asarray(y_pred), s=12, alpha=0.7)
    ax.axhline(0, color="gray", lw=1)
    ax.set_xlabel("predicted")
    ax.set_ylabel("residual (true - predicted)")
    ax.set_title(f"residuals, r2 {metrics['r2']:.3f}")
    return {"task": "regression", "metrics": metrics, "n_test": len(y_true)}, fig


def main() -> None:
    from sklearn.model_selection import train_test_split

    args = parser().parse_args()
    if not args.target:
        raise common.InvalidSpec("--target: name the column to predict")
    frame = read_table(args.data)
    check_table(frame, args.target, args.task, args.data)
    frame = frame.dropna(subset=[args.target])
    x, y = frame.drop(columns=[args.target]), frame[args.target]
    counts = y.value_counts()
    stratify = y if args.task == "classification" and counts.min() >= 2 else None
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=args.test_size, random_state=args.seed, stratify=stratify
    )
    model = pipeline(x_train, args).fit(x_train, y_train)
    predicted = model.predict(x_test)
    if args.task == "regression":
        report, figure = regression_report(y_test, predicted)
        metric = "r2"
    else:
        report, figure = common.classification_report(list(y_test), list(predicted))
        metric = "accuracy"
    report.update(model=args.model, n_train=len(x_train), columns=list(x.columns))
    common.save_model(model, args.job_dir)
    common.write_report(args.job_dir, report, figure, metric, report["metrics"][metric])


if __name__ == "__main__":
    common.run(main)
