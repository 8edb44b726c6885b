"""python -m agent: the same as hoshino-agent."""

import sys

from agent.cli import main

sys.exit(main())
