"""What every command line shares (train, evaluate, predict, serve, scripts/convert.py): a mistake the user can
fix is one ``error:`` line and exit code 2, never a traceback (docs/ERRORS.md)."""
from __future__ import annotations

import logging
import os
import sys
import time

from hmtl.errors import HmtlError
from hmtl.training import distributed


def run_command(main) -> None:
    """Run a command's ``main()``, turning an ``HmtlError`` into its one line on stderr and exit code 2."""
    # under torchrun rank 0 does the talking: the other ranks log warnings only and exit 2 on an error, silently
    quiet = distributed.rank() > 0
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        main()
    except HmtlError as error:
        distributed.exit_code_on_stop(2)
        if not quiet:
            print(f"error: {error}", file=sys.stderr)
        if distributed.under_torchrun():  # torchrun stops every rank as soon as one exits (a SIGTERM)
            # rank 0 goes first, having said what is wrong, but leaves a lagging rank a moment to reach its own
            # error; the SIGTERM then ends the others with 2 as well
            time.sleep(2 if quiet else 0.5)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)  # at once: a SIGTERM during the interpreter's teardown would end the process with -15
        sys.exit(2)
