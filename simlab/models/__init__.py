"""simlab.models (see DEVELOPERS layout)."""
