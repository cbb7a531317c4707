"""`python -m onca` is the `onca` command."""

from onca.cli.main import main

main()
