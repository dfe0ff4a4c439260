"""One module per page. Each is a Streamlit page script (run with ``__name__ == "__main__"``)
and an importable module; views render, ``ui.services`` and friends do the work."""
