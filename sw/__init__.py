"""Software driver: maps GEMMs onto generated arrays and runs them on a backend."""
