import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))

# The dsmlir package lives in the build tree (no install step).
_build = os.environ.get("DS_BUILD_DIR") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "build")
sys.path.insert(0, os.path.join(_build, "python"))
BIN_DIR = os.path.join(_build, "bin")
