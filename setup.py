"""Packages: `claractl`, and the bundled operators in `operators/` importable as `claractl_operators`
(the folder keeps the name DESIGN.md gives it; everything else is in pyproject.toml)."""

from setuptools import find_packages, setup

operator_packages = ["claractl_operators"] + [f"claractl_operators.{p}" for p in find_packages("operators")]

setup(
    packages=find_packages(include=["claractl", "claractl.*"]) + operator_packages,
    package_dir={"claractl_operators": "operators"},
    include_package_data=True,
    package_data={
        "claractl_operators": ["*/operator.yaml", "*/Dockerfile", "*/README.md"],
        # built by `npm run build` (scripts/setup.sh); absent in a source checkout until then
        "claractl.platform.render": ["static/dist/*", "static/dist/assets/*"],
    },
)
