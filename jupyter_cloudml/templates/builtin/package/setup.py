"""The built-in templates' trainer package (Google AI Platform layout): one entry module per
template (`trainer.tabular`, `trainer.text`, `trainer.image`), run as `python -m MODULE`.

It needs scikit-learn, pandas and matplotlib (torch for `trainer.image`), which the product's
environment has; they are not listed as install_requires so that a job installs nothing."""

from setuptools import find_packages, setup

setup(name="cloudml-templates-trainer", version="0.1.0", packages=find_packages())
