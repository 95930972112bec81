"""Hardware generators (Amaranth): processing elements in ``pe``, arrays of them in ``arrays``."""
