"""The pure core: values, the status machine, durations, validation. No I/O."""
