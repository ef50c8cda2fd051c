"""`python -m neuroswap` runs the command line."""

from ._cli import main

main()
