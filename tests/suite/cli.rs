//! The command line, driven as a user would.
