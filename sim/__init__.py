"""Numeric (bit-exact) and timing (cycle) models, and the Verilator/cocotb runner."""
