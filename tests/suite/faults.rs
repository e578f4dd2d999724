//! Faults: harness death, bystanders, PID reuse, concurrency, fork storms.
