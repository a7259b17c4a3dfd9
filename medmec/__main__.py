import sys

from medmec.cli import main

sys.exit(main())
