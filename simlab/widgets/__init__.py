"""simlab.widgets (see DEVELOPERS layout)."""
