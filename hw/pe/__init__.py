"""Processing elements: one multiply-accumulate datapath each."""
