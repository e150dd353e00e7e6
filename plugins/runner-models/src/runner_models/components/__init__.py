"""Every component of the plugin, each declared once (torch-free: ``build`` imports the
modules that make the objects, so recipes validate without torch)."""
