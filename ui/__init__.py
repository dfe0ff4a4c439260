"""User interfaces: the Streamlit app and the ``docent`` command line. Nothing imports this package."""
