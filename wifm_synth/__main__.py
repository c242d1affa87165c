import sys

from wifm_synth.cli import main

sys.exit(main())
