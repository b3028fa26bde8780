import sys

from dcim.cli import main

sys.exit(main())
