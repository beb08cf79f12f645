"""simlab.feed (see DEVELOPERS layout)."""
