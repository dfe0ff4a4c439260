"""One module per page. Each is a Streamlit page script (run with ``__name__ == "__main__"``)
and an importable module; views render, the application layer (``ui.usecases``) does the work."""
