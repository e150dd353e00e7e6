"""Recipe parameters of every component (torch-free, so recipes validate without torch)."""
