"""Synthesis flow: area, timing and energy of generated Verilog."""
