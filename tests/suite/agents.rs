//! The example agents (Python, Node) under every kill plan.
