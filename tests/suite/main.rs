//! The integration suite: one test binary, one module per concern.

mod common;

mod agents;
mod capture;
mod cli;
mod concurrency;
mod errors;
mod escapes;
mod faults;
mod lifeline;
mod matrix;
mod program_path;
mod report;
mod rstest_example;
