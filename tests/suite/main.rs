//! The integration suite: one test binary, one module per concern.

mod common;

mod agents;
mod capture;
mod cli;
mod concurrency;
mod deadlines;
mod endings;
mod errors;
mod escapes;
mod faults;
mod html;
mod lifeline;
mod matrix;
mod natural_endings;
mod nextest_wrapper;
mod program_path;
mod report;
mod report_looks;
mod reuse;
mod rstest_example;
mod sentinel_faults;
mod sweep;
mod timeline;
mod wrap;
