import sys

from conv3dt.cli import main

sys.exit(main())
