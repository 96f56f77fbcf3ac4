"""Pure measurement: numbers in, numbers out, time passed in."""
