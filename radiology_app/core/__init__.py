"""Domain types, errors, progress/cancel, configuration and logging: the bottom layer."""
