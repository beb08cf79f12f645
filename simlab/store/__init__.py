"""simlab.store (see DEVELOPERS layout)."""
