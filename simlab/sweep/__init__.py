"""simlab.sweep (see DEVELOPERS layout)."""
