"""``python -m lrtool``: Ctrl-C while the CLI is still being imported is one line too."""

import sys

try:
    from lrtool.entry import main
except KeyboardInterrupt:
    sys.stderr.write("interrupted (SIGINT)\n")
    sys.exit(130)

main()
