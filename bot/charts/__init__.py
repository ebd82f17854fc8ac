"""Charts drawn for a phone first: few series, large type, labels on the lines."""
