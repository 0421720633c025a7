"""`python -m dynsal` = the `dynsal` command."""
import sys

from dynsal.cli import main

sys.exit(main())
