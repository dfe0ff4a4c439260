"""The ``docent`` command line."""
