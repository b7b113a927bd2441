"""The viewer app."""
