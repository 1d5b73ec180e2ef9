"""Frame sources, writers and rendering."""
