"""The shipped design configs and workload topologies, installed as package data.

``tpegen configs`` lists them; every command that takes a config accepts a shipped config's name
(``int8_os_16x16``, ``compare/lut_w2a8_128``) as well as a path (see :func:`tpegen.config.shipped_configs`).
"""
