"""Accelerator top around an array: scratchpads, DMA, command queues, output stage (issue #11)."""
