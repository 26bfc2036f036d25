"""Entry script of the PyInstaller bundle: the ``radiology-app`` command line (``gui`` opens the window)."""

import multiprocessing
import sys

from radiology_app.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
