"""simlab.emulator (see DEVELOPERS layout)."""
