"""simlab.sim (see DEVELOPERS layout)."""
