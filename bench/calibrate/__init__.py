"""`bench calibrate`: how close the Python load generator comes to native tools on the same target."""
