"""Arrays of processing elements with their skew, control and streaming interfaces."""
