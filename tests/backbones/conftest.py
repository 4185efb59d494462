import os
import sys

# The tests import their shared checks as `backbone_checks` (pytest runs with
# --import-mode=importlib, which does not put test directories on sys.path).
sys.path.insert(0, os.path.dirname(__file__))
