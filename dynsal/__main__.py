"""`python -m dynsal` = the `dynsal` command."""
import sys

from dynsal.cli import main

if __name__ == "__main__":  # not when worker processes import the main module (multiprocessing)
    sys.exit(main())
