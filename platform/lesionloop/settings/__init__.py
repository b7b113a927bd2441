"""Settings modules: ``dev`` (default, embedded), ``test`` and ``production``."""
