"""simlab.monitor (see DEVELOPERS layout)."""
