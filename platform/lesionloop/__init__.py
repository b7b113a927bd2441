"""The LesionLoop Django project."""
