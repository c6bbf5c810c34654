"""A simulated grid substation: admits EV charging sessions atomically against its capacity."""
