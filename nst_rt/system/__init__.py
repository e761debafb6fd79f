"""What the process learns from and asks of the machine: memory probes, stop signals, thread settings."""
