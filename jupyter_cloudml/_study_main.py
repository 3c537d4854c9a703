"""Run a study's driver: the entry module of every study's driver job
(``python -m jupyter_cloudml._study_main``, in the driver job's working directory).

The tuning spec comes from ``$CLOUDML_TUNING``, the trial template from the code package; the
trials run on the backend the configuration names (in a pod: the environment the Kubernetes
backend gave it). SIGTERM (a cancel) lets the driver stop its trials and write its summary.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from pathlib import Path

from .client import Client
from .models import TrainSpec, TuningSpec, from_dict
from .tuning.driver import Driver
from .tuning.study import NOTIFY_ENV, TRIAL_SPEC_FILE, TUNING_ENV


def main() -> None:
    tuning = from_dict(TuningSpec, json.loads(os.environ[TUNING_ENV]))
    template = from_dict(TrainSpec, json.loads(Path(TRIAL_SPEC_FILE).read_text()))
    # The trials' secrets reach the driver as its own environment, their names in the template.
    template = dataclasses.replace(
        template, secrets={name: os.environ[name] for name in template.secrets}
    )
    driver = Driver(
        Client().backend,
        os.environ["CLOUDML_JOB_ID"],
        tuning,
        template,
        Path(os.environ["CLOUDML_JOB_DIR"]),
        Path(os.environ["CLOUDML_OUTPUT_DIR"]),
    )

    def on_term(signum: int, frame: object) -> None:
        driver.cancelled = True

    signal.signal(signal.SIGTERM, on_term)
    driver.run()
    if os.environ.get(NOTIFY_ENV):
        driver.notify(os.environ[NOTIFY_ENV])
    print(
        f"study {driver.study_id} done"
        + (f": {driver.failed_reason}" if driver.failed_reason else ""),
        flush=True,
    )


if __name__ == "__main__":
    main()
