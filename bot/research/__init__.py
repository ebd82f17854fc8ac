"""Research data out: the pseudonymised export and its codebook, the impact report, retention."""
