import sys

from sdloop.cli.main import main

sys.exit(main())
