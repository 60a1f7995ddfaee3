"""Every test session: no load-time calibration (tests of other code paths stay fast and
see the runtimes' defaults); tests/unit/test_calibrate.py turns it on where it tests it."""

import os

os.environ.setdefault("SLMKIT_CALIBRATE", "0")
