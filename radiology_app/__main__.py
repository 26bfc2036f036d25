"""Allow ``python -m radiology_app``."""

from radiology_app.cli import main

raise SystemExit(main())
