import sys

from iscsi_hookgen.cli import main

sys.exit(main())
