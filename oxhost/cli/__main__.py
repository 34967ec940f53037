"""`python -m oxhost.cli`: the `ox` command without its console script."""
from . import main

main(prog_name="ox")
