"""`python -m claractl` = the `claractl` command."""

from claractl.cli.main import run

run()
