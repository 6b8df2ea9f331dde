//! Scenario tests and properties of the registry state machine.
