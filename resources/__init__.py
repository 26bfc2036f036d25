"""Package data: the shipped models and their cards, fonts and licences, styles, icons and the demo note.

Installed as ``radiology_app_resources`` (see ``pyproject.toml``); read through
``radiology_app.core.resources``.
"""
