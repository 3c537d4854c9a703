from setuptools import find_packages, setup

REQUIRED_PACKAGES = ["cloudml-hypertune"]

setup(
    name="trainer",
    version="0.1",
    packages=find_packages(),
    install_requires=REQUIRED_PACKAGES,
    description="Branin trainer tuned with cloudml-hypertune",
)
